"""Folder reader processes: what they read is what the server reads itself, in the same order, however
the folder is split; a reader that dies or stalls fails that read with a clear error and the next read
gets a new reader."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openflr.core.folderreaders import FolderReaders
from openflr.errors import GuestPathNotFoundError
from openflr.guestfs.errors import ImagesChangedError, OpenCancelledError, VolumeError
from openflr.guestfs.filesystems.base import Entry
from openflr.guestfs.view import GuestView, Located, Opening, open_view
from tests.guestfs.test_view import _vm
from tests.imagebuilder import Fixtures
from tests.imagebuilder.trees import MANY_COUNT

# The first point of every fixture VM: NTFS, FAT, ext4, XFS, LVM, on every image format.
POINTS = [(ds, vm) for ds in ("vmware", "hyperv", "qcow2", "esxi") for vm in range(2)] + [("misc", 0)]


def _open(fixtures: Fixtures, datastore: str, vm_index: int) -> GuestView:
    _folder, vm = _vm(fixtures, datastore, vm_index)
    point = vm["points"][0]
    return open_view([[fixtures.datastore(datastore) / f for f in disk] for disk in point["disks"]])


@pytest.fixture(scope="module")
def readers() -> Iterator[FolderReaders]:
    pool = FolderReaders(3)
    yield pool
    pool.close()


def _facts(entries: Any) -> list[tuple[Any, ...]]:
    return [(e.name, e.is_dir, e.size, e.mtime_ns, e.owner, e.is_link, e.ident) for e in entries]


def _folders(view: GuestView) -> Iterator[tuple[str, Located]]:
    """Every folder a paged listing could send to readers (its size is known), two levels deep."""
    todo = [view.locate(view.path_of(root, [])) for root in view.roots if root.fs is not None]
    for depth in range(3):
        later = []
        for where in todo:
            path = view.path_of(where.root, where.parts)
            if view.counts(where)[0] is not None:
                yield path, where
            if depth < 2:
                later += [
                    view.locate(f"{path.rstrip('/')}/{e.name}") for e in view.scandir(where) if e.is_dir
                ]
        todo = later


def _read_split(readers: FolderReaders, view: GuestView, path: str, head: int, end: int) -> list[Entry]:
    assert view.opened_from is not None
    where = view.locate(path)
    reads = readers.read(view.opened_from, path, head, end, most=3)
    assert reads, "no reader was free"
    try:
        out = list(view.scandir(where, 0, head))
        for read in reads:
            for batch in read:
                out += batch
    finally:
        for read in reads:
            read.close()
    return out


@pytest.mark.parametrize(("datastore", "vm_index"), POINTS)
def test_readers_list_what_the_server_lists(
    fixtures: Fixtures, readers: FolderReaders, datastore: str, vm_index: int
) -> None:
    view = _open(fixtures, datastore, vm_index)
    try:
        checked = 0
        for path, where in _folders(view):
            whole = _facts(view.scandir(where))
            size = len(whole)
            for head in (0, 1, size // 2):  # split in three parts behind a head read here
                assert _facts(_read_split(readers, view, path, head, size)) == whole, (path, head)
            checked += 1
        assert checked >= 2
    finally:
        view.close()


def test_a_big_folder_split_between_readers(fixtures: Fixtures, readers: FolderReaders) -> None:
    view = _open(fixtures, "vmware", 1)
    try:
        whole = _facts(view.scandir(view.locate("/var/many")))
        assert len(whole) == MANY_COUNT
        for head in (0, 4096):
            got = _facts(_read_split(readers, view, "/var/many", head, MANY_COUNT))
            assert got == whole
    finally:
        view.close()


def test_an_error_in_a_reader_is_the_servers_error_and_the_reader_stays(
    fixtures: Fixtures, readers: FolderReaders
) -> None:
    view = _open(fixtures, "vmware", 1)
    try:
        assert view.opened_from is not None
        [read] = readers.read(view.opened_from, "/var/no-such-folder", 0, 10, most=1)
        with pytest.raises(GuestPathNotFoundError):
            list(read)
        read.close()
        processes = {r.process.pid for r in readers._idle}
        assert len(processes) == readers._count  # nobody was stopped
        assert len(_read_split(readers, view, "/var/many", 0, MANY_COUNT)) == MANY_COUNT
    finally:
        view.close()


@pytest.fixture
def one_reader(fixtures: Fixtures) -> Iterator[tuple[FolderReaders, GuestView, Opening]]:
    """A pool of one reader, started and idle, and a view it can open again."""
    pool = FolderReaders(1)
    view = _open(fixtures, "vmware", 1)
    assert view.opened_from is not None
    [read] = pool.read(view.opened_from, "/var", 0, 10, most=1)
    list(read)
    read.close()
    assert len(pool._idle) == 1
    yield pool, view, view.opened_from
    pool.close()
    view.close()


def test_a_reader_that_dies_fails_its_read_and_the_next_read_works(one_reader: Any) -> None:
    pool, view, opening = one_reader
    pool._idle[0].process.kill()  # as an engine crash on a hostile image would end it
    pool._idle[0].process.wait()
    [read] = pool.read(opening, "/var/many", 0, MANY_COUNT, most=1)
    with pytest.raises(VolumeError, match="process reading it stopped"):
        list(read)
    read.close()
    assert pool._count == 0 and not pool._idle
    assert len(_read_split(pool, view, "/var/many", 0, MANY_COUNT)) == MANY_COUNT


def test_a_stalled_reader_is_stopped(one_reader: Any) -> None:
    pool, view, opening = one_reader
    stalled = pool._idle[0].process
    os.kill(stalled.pid, signal.SIGSTOP)  # an engine looping forever on a damaged folder
    pool.stall_seconds = 1.0
    [read] = pool.read(opening, "/var/many", 0, MANY_COUNT, most=1)
    with pytest.raises(OpenCancelledError, match="stalled"):
        list(read)
    read.close()
    assert stalled.wait(10) is not None  # killed
    pool.stall_seconds = 300.0  # a new reader may take a while to start on a busy machine
    assert len(_read_split(pool, view, "/var/many", 0, MANY_COUNT)) == MANY_COUNT


def test_a_read_left_before_its_end_stops_its_reader(one_reader: Any) -> None:
    pool, _view, opening = one_reader
    busy = pool._idle[0].process
    os.kill(busy.pid, signal.SIGSTOP)  # so that it cannot finish before the read is left
    [read] = pool.read(opening, "/var/many", 0, MANY_COUNT, most=1)
    read.close()  # that folder's entries would still come: the reader is not reusable
    assert busy.wait(10) is not None
    assert pool._count == 0 and not pool._idle


def test_none_free_means_none_taken_and_close_ends_the_readers(one_reader: Any) -> None:
    pool, _view, opening = one_reader
    [read] = pool.read(opening, "/var/many", 0, MANY_COUNT, most=2)  # one is all there is
    assert pool.read(opening, "/var/many", 0, MANY_COUNT, most=1) == []
    assert sum(len(batch) for batch in read) > 0
    read.close()
    idle = pool._idle[0].process
    pool.close()
    assert idle.wait(10) is not None
    assert pool.read(opening, "/var", 0, 10, most=1) == []  # closed: no new readers


def test_start_brings_the_readers_up_ahead() -> None:
    pool = FolderReaders(2)
    try:
        pool.start()
        deadline = time.monotonic() + 30
        while len(pool._idle) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(pool._idle) == 2 and pool._count == 2
    finally:
        pool.close()
    assert pool._count == 0


def linked_point(fixtures: Fixtures, where: Path) -> tuple[list[list[Path]], Path]:
    """The Linux VM's first point through symbolic links in ``where`` (each image file of its folder
    linked), and the link of its first image: replacing that link is what a replica job's snapshot
    merge does to the path while a mount still reads the file it opened."""
    _folder, vm = _vm(fixtures, "vmware", 1)
    disks = vm["points"][0]["disks"]
    source = fixtures.datastore("vmware") / Path(disks[0][0]).parent
    folder = where / source.name
    folder.mkdir()
    for f in source.iterdir():
        (folder / f.name).symlink_to(f)
    return [[where / f for f in disk] for disk in disks], where / disks[0][0]


def test_a_reader_refuses_a_point_whose_files_were_replaced(
    fixtures: Fixtures, readers: FolderReaders, tmp_path: Path
) -> None:
    disks, first = linked_point(fixtures, tmp_path)
    view = open_view(disks)
    try:
        assert view.opened_from is not None and view.opened_from.unchanged()
        whole = _facts(view.scandir(view.locate("/var/many")))
        first.unlink()
        first.symlink_to(tmp_path / "elsewhere")  # the path now names another file (here: none)
        assert not view.opened_from.unchanged()
        [read] = readers.read(view.opened_from, "/var/many", 0, MANY_COUNT, most=1)
        with pytest.raises(ImagesChangedError):
            list(read)
        read.close()
        assert _facts(view.scandir(view.locate("/var/many"))) == whole  # the mount reads what it opened
    finally:
        view.close()
