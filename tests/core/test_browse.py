"""The listing cache over a real guest file system: background reads hold the mount that started
them until they end, never call back into the cache while holding its lock, and give the same pages
when reader processes read a big folder."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from openflr.core.browse import ALL, ListingCache, read_page
from openflr.core.folderreaders import FolderReaders
from openflr.errors import NotFoundError
from openflr.guestfs.errors import VolumeError
from openflr.guestfs.view import GuestView, open_view
from tests.core.test_folderreaders import linked_point
from tests.guestfs.test_view import _vm
from tests.imagebuilder import Fixtures
from tests.imagebuilder.trees import MANY_COUNT


@pytest.fixture
def linux_view(fixtures: Fixtures) -> Iterator[GuestView]:
    _folder, vm = _vm(fixtures, "vmware", 1)
    point = vm["points"][0]
    view = open_view([[fixtures.datastore("vmware") / f for f in disk] for disk in point["disks"]])
    yield view
    view.close()


class Holds:
    """A stand-in for MountManager.hold that counts and can run something on release."""

    def __init__(self) -> None:
        self.inside = 0
        self.entered = 0
        self.on_release: Any = None
        self.on_enter: Any = None

    @contextlib.contextmanager
    def __call__(self, mount: Any) -> Iterator[None]:
        if mount.released:
            raise NotFoundError("removed")
        self.inside += 1
        self.entered += 1
        if self.on_enter is not None:
            self.on_enter(self.entered)
        try:
            yield
        finally:
            self.inside -= 1
            if self.on_release is not None:
                self.on_release()


def _mount(view: GuestView) -> Any:
    return SimpleNamespace(view=view, released=False, gone=False, mount_id=1)


def _listing(view: GuestView, holds: Holds) -> tuple[ListingCache, Any, Any]:
    """A cache, a mount of ``view`` and its 10,000-entry folder."""
    return ListingCache(hold=holds), _mount(view), view.locate("/var/many")


def test_reads_hold_the_mount_and_release_it(linux_view: GuestView) -> None:
    holds = Holds()
    cache, mount, where = _listing(linux_view, holds)
    scan = cache.scan(mount, where)
    scan.wait(ALL, MANY_COUNT, 60)
    assert scan.done and scan.size() == MANY_COUNT
    assert holds.entered == 1 and holds.inside == 0  # one hold: the count, then the background read


def test_releasing_a_hold_that_closes_the_view_does_not_deadlock(linux_view: GuestView) -> None:
    holds = Holds()
    cache, mount, where = _listing(linux_view, holds)
    holds.on_release = lambda: cache.forget_view(linux_view.serial)  # what closing a view does
    scans: list[Any] = []
    done = threading.Event()

    def scan() -> None:
        scans.append(cache.scan(mount, where))
        done.set()

    threading.Thread(target=scan, daemon=True).start()
    assert done.wait(30), "scan() deadlocked on its own lock"
    scans[0].wait(ALL, MANY_COUNT, 60)  # let the background read end before the view closes
    assert scans[0].error is None


def test_a_read_outlives_the_unmount_that_started_it_for_other_mounts(linux_view: GuestView) -> None:
    """Two mounts of one point share the view and its listings: removing the first while its read
    runs must not fail the second's pages (it did, with "Mount 6 was removed while being listed")."""
    holds = Holds()
    cache, first, where = _listing(linux_view, holds)

    def unmount_when_the_read_starts(entered: int) -> None:
        first.released = True

    holds.on_enter = unmount_when_the_read_starts
    scan = cache.scan(first, where)
    second = _mount(linux_view)
    assert cache.scan(second, where) is scan
    scan.wait(ALL, MANY_COUNT, 60)
    assert scan.error is None and scan.done and scan.size() == MANY_COUNT
    assert holds.entered == 1 and holds.inside == 0  # the files may close once the read is done


def test_a_big_folder_read_by_reader_processes_pages_as_if_read_here(linux_view: GuestView) -> None:
    """Head read here, the rest split between two reader processes: the pages are the same entries
    in the same order as a read in the server alone."""
    alone, _mount_alone, where = _listing(linux_view, Holds())
    readers = FolderReaders(2)
    try:
        split = ListingCache(hold=Holds(), readers=readers, reader_min_entries=100, reader_head=1000)
        pages = []
        for cache in (alone, split):
            mount = _mount(linux_view)
            got = []
            for number in range(1, MANY_COUNT // 1000 + 2):
                got += [
                    (e.name, e.size, e.mtime_ns)
                    for e in read_page(cache, mount, where, ALL, 1000, number).entries
                ]
            pages.append(got)
        assert len(pages[0]) == MANY_COUNT and pages[1] == pages[0]
        assert readers._count == 2 and len(readers._idle) == 2  # both were used and given back
    finally:
        readers.close()


def test_a_reader_that_dies_fails_the_listing_cleanly(linux_view: GuestView) -> None:
    readers = FolderReaders(1)
    try:
        cache = ListingCache(hold=Holds(), readers=readers, reader_min_entries=100, reader_head=10)
        readers.start()
        deadline = time.monotonic() + 30
        while not readers._idle and time.monotonic() < deadline:
            time.sleep(0.05)
        readers._idle[0].process.kill()
        with pytest.raises(VolumeError, match="process reading it stopped"):
            read_page(cache, _mount(linux_view), linux_view.locate("/var/many"), ALL, 1000, 5)
    finally:
        readers.close()


def test_a_point_whose_files_were_replaced_is_listed_from_the_files_the_mount_opened(
    fixtures: Fixtures, tmp_path: Path
) -> None:
    disks, first = linked_point(fixtures, tmp_path)
    view = open_view(disks)
    readers = FolderReaders(2)
    try:
        where = view.locate("/var/many")
        want = [e.name for e in view.scandir(where)]
        first.unlink()
        first.symlink_to(tmp_path / "elsewhere")
        cache = ListingCache(hold=Holds(), readers=readers, reader_min_entries=100, reader_head=1000)
        got = []
        for number in range(1, MANY_COUNT // 1000 + 1):
            got += [e.name for e in read_page(cache, _mount(view), where, ALL, 1000, number).entries]
        assert got == want and len(got) == MANY_COUNT  # same order: the parts were read in place
        assert readers._count == 2 and len(readers._idle) == 2  # they refused, and stay
    finally:
        readers.close()
        view.close()
