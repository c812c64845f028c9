"""Extent-mapped file reads: the map is built only when it can be trusted, and then gives the same
bytes as the file-system library, on every file system that uses it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from openflr.guestfs.blocks import BlockSource, CachedReader
from openflr.guestfs.filesystems.extents import HOLE, MIN_SIZE, SPARSE, ExtentReader, runs_of
from openflr.guestfs.filesystems.inodefs import Inode, InodeFileSystem
from openflr.guestfs.view import GuestView, open_view
from tests.guestfs.test_view import _vm
from tests.imagebuilder import Fixtures
from tests.imagebuilder.large import BIG_FILE, LARGE_VM

VOLUME = 1 << 30


def test_adjacent_runs_merge_and_holes_stay_holes() -> None:
    extents = [(4096, 4096, 0), (8192, 8192, 0), (0, 4096, SPARSE), (0, 4096, SPARSE), (65536, 4096, 0)]
    assert runs_of(extents, 24576, VOLUME) == [(4096, 12288), (HOLE, 8192), (65536, 4096)]


def test_runs_stop_once_the_file_is_covered() -> None:
    assert runs_of([(4096, 8192, 0), (1 << 20, 4096, 0)], 8000, VOLUME) == [(4096, 8192)]


@pytest.mark.parametrize(
    ("extents", "why"),
    [
        ([(4096, 4096, 0x2)], "a compressed run"),
        ([(4096, 4096, 0x10)], "a flag we do not know"),
        ([(0, 4096, 0)], "data at volume offset 0"),
        ([(VOLUME - 1024, 4096, 0)], "data past the end of the volume"),
        ([(4096, 4096, 0)], "runs that do not cover the file"),
        ([(4096, 0, 0), (8192, 8192, 0)], "an empty run"),
        ([], "no runs at all"),
    ],
)
def test_untrustworthy_maps_are_refused(extents: list[tuple[int, int, int]], why: str) -> None:
    assert runs_of(extents, 8192, VOLUME) is None, why


class _Bytes(BlockSource):
    def __init__(self, data: bytes) -> None:
        self.data, self.size = data, len(data)

    def pread(self, length: int, offset: int) -> bytes:
        return self.data[offset : offset + length]


def test_reads_cross_runs_and_holes() -> None:
    disk = bytes(range(256)) * 64  # 16 KiB
    runs = [(1000, 3000), (HOLE, 2000), (9000, 5000)]
    file = disk[1000:4000] + bytes(2000) + disk[9000:14000]
    reader = ExtentReader(_Bytes(disk), runs, 9500)
    for offset, length in ((0, 9500), (2990, 20), (3500, 2000), (4999, 2), (9000, 1000), (9499, 5)):
        assert reader.pread(length, offset) == file[offset : min(offset + length, 9500)]
        assert bytes(reader.chunk(length, offset)) == file[offset : min(offset + length, 9500)]
    assert reader.pread(10, 9500) == b""
    assert reader.pread(10, -1) == b""


def _open(fixtures: Fixtures, datastore: str, index: int) -> GuestView:
    _folder, vm = _vm(fixtures, datastore, index)
    point = vm["points"][0]
    return open_view([[fixtures.datastore(datastore) / f for f in disk] for disk in point["disks"]])


def _library_read(view: GuestView, path: str, length: int, offset: int) -> bytes:
    """The same bytes read by the file-system library (libfsext and libfsxfs for ext and XFS, which
    openflr no longer uses for them: independent readers of the same volume)."""
    where = view.locate(path)
    assert where.root is not None, path
    fs = where.root.fs
    assert fs is not None
    if isinstance(where.node, Inode):
        assert isinstance(fs, InodeFileSystem)
        import pyfsext
        import pyfsxfs

        volume = (pyfsxfs if fs.kind == "xfs" else pyfsext).volume()
        volume.open_file_object(CachedReader(fs.reader.source))
        try:
            return bytes(
                volume.get_file_entry_by_inode(where.node.number).read_buffer_at_offset(length, offset)
            )
        finally:
            volume.close()
    with fs.lock:
        data: bytes = where.node.read_buffer_at_offset(length, offset)
    return data


def _ranges(size: int, whole: bool = True, *more: int) -> Iterator[tuple[int, int]]:
    if whole:
        yield 0, size
    for offset in (1, 4095, 65535, 1 << 20, size // 2 - 3, size - 4097, size - 1, *more):
        if 0 <= offset < size:
            yield offset, 70_000


@pytest.mark.parametrize(
    ("datastore", "index", "path", "kind"),
    [
        ("vmware", 0, "C:/Data/medium.bin", "ntfs"),
        ("vmware", 1, "/data/medium.bin", "ext"),
        ("vmware", 1, "/srv/data/db.bin", "xfs"),
        ("qcow2", 0, "C:/Data/medium.bin", "ntfs"),
        ("esxi", 1, "/srv/data/db.bin", "xfs"),
    ],
)
def test_large_files_read_through_their_extents_match_the_library(
    fixtures: Fixtures, datastore: str, index: int, path: str, kind: str
) -> None:
    view = _open(fixtures, datastore, index)
    try:
        where = view.locate(path)
        assert where.root is not None and where.root.fs is not None and where.root.fs.kind == kind
        reader = view.open(where)
        assert isinstance(reader, ExtentReader), f"{path} on {kind} is not read through its extents"
        assert reader.size >= MIN_SIZE
        for offset, length in _ranges(reader.size):
            assert reader.pread(length, offset) == _library_read(view, path, length, offset), (offset, length)
    finally:
        view.close()


def test_a_sparse_2_gib_ext4_file_reads_its_holes_as_zeros(fixtures: Fixtures) -> None:
    spec = fixtures.expected("large")[LARGE_VM]["files"][BIG_FILE]
    view = open_view([[fixtures.datastore("large") / LARGE_VM / "disk0.raw"]])
    try:
        path = view.path_of(view.roots[0], BIG_FILE.split("/"))
        reader = view.open(view.locate(path))
        assert isinstance(reader, ExtentReader)
        h = hashlib.sha256()
        for offset in range(0, reader.size, 8 << 20):
            h.update(reader.chunk(8 << 20, offset))
        assert h.hexdigest() == spec["sha256"]
        # Around the edges of the data written at the start, the middle and the end (holes between).
        edges = (3 * 2**20 - 9, reader.size // 2 - 777 - 9, reader.size // 2 - 777 + 3 * 2**20 - 9)
        for offset, length in _ranges(reader.size, False, *edges):
            assert reader.pread(length, offset) == _library_read(view, path, length, offset), (offset, length)
    finally:
        view.close()


def test_small_files_stay_with_the_library(fixtures: Fixtures) -> None:
    view = _open(fixtures, "vmware", 0)
    try:
        small = [e for e in view.scandir(view.locate("C:/Documents")) if not e.is_dir and e.size < MIN_SIZE]
        assert small
        where = view.locate("C:/Documents/" + small[0].name)
        assert not isinstance(view.open(where), ExtentReader)
    finally:
        view.close()
