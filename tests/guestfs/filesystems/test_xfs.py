"""Our XFS reader against the Linux kernel: images are made by mkfs.xfs, filled through a loop mount,
and everything the reader shows (names as bytes, kinds, sizes, times, inode numbers, contents) must
equal what a read-only mount shows."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import random
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openflr.guestfs.blocks import BlockSource, Chain, OpenFile, RawLayer
from openflr.guestfs.errors import VolumeError
from openflr.guestfs.filesystems.inodefs import Inode
from openflr.guestfs.filesystems.names import name_to_bytes
from openflr.guestfs.filesystems.xfs import XfsFileSystem
from tests.guestfs.filesystems.kernel import folder_differences, kernel_folder_sizes

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mkfs.xfs") is None, reason="needs root (loop mounts) and mkfs.xfs"
)

NS = 1_000_000_000
ODD_NAMES = [
    b"caf\xe9",
    b"a" * 255,
    "漢".encode() * 85,
    b"back\\slash",
    b"new\nline",
    b"ctl\x01\x1f\x7f",
    "\uef80 private use".encode(),
    b"\xff\xfe",
]
Facts = tuple[str, int, int, int, str]
"""(kind, size, mtime ns, inode number, sha256 of the content or link target)."""


def _inode(fs: XfsFileSystem, parts: list[str]) -> Inode:
    """The inode at ``parts``; the test fails when there is none."""
    node = fs.lookup(parts)
    assert isinstance(node, Inode), parts
    return node


@contextlib.contextmanager
def mounted(image: Path, where: Path, *options: str) -> Iterator[Path]:
    where.mkdir(exist_ok=True)
    subprocess.run(["mount", "-o", ",".join(("loop", *options)), str(image), str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def make_image(path: Path, *mkfs: str) -> Path:
    subprocess.run(["truncate", "-s", "320M", str(path)], check=True)
    subprocess.run(["mkfs.xfs", "-q", *mkfs, str(path)], check=True)
    return path


def open_xfs(image: Path) -> XfsFileSystem:
    file = OpenFile(image)
    return XfsFileSystem(Chain([RawLayer(file)], [file]))


def _files(folder: Path, count: int, content: bytes = b"") -> None:
    folder.mkdir()
    for i in range(count):
        (folder / f"file-{i:05d}-with-a-longer-name").write_bytes(content)


def populate(top: Path, node_entries: int, bigtime: bool) -> None:
    """Every kind of folder, file and link the reader must get right."""
    raw = os.fsencode(top)
    _files(top / "short", 3, b"short")
    _files(top / "block", 50, b"block")
    _files(top / "leaf", 500, b"leaf")
    _files(top / "node", node_entries)
    odd = top / "odd"
    odd.mkdir()
    for i, name in enumerate(ODD_NAMES):
        with open(os.path.join(os.fsencode(odd), name), "wb") as f:
            f.write(b"odd %d" % i)
    times = top / "times"
    times.mkdir()
    stamps = {b"1931": -1_234_567_890 * NS - 123_456_789, b"epoch": 0, b"2037": 2_100_000_000 * NS + 5}
    if bigtime:
        stamps[b"2400"] = 13_569_465_600 * NS + 987_654_321
    for name, ns in stamps.items():
        path = os.path.join(os.fsencode(times), name)
        Path(os.fsdecode(path)).write_bytes(name)
        os.utime(path, ns=(ns, ns))
    (top / "hard-1").write_bytes(b"linked")
    os.link(top / "hard-1", top / "hard-2")
    os.symlink("hard-1", top / "fast-link")
    os.symlink("t" * 999 + "!", top / "remote-link")
    os.symlink(b"caf\xe9", os.path.join(raw, b"odd-link"))
    with open(top / "sparse", "wb") as f:
        f.truncate(10 << 20)
        f.seek(5 << 20)
        f.write(os.urandom(70_000))
    with open(top / "unwritten", "wb") as f:
        os.posix_fallocate(f.fileno(), 0, 1 << 20)
        f.seek(300_000)
        f.write(b"x" * 5000)
    with open(top / "fragmented", "wb") as f:
        for i in range(0, 4000, 2):
            f.seek(i * 4096)
            f.write(i.to_bytes(4, "big") * 1024)
        f.flush()
        os.fsync(f.fileno())
    (top / "big").write_bytes(os.urandom(3 << 20) + b"tail")
    _deep(top / "deep")


def _deep(folder: Path) -> None:
    """Folders of 255-byte names nested to a path of about 4000 bytes, a file in each."""
    folder.mkdir()
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(15):
            name = bytes([0x61 + level]) * 255
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
            made = os.open(b"file", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
            os.write(made, b"level %d" % level)
            os.close(made)
    finally:
        os.close(fd)


def kernel_tree(top: Path) -> dict[tuple[bytes, ...], Facts]:
    """What a read-only mount shows below ``top`` (through folder descriptors: paths reach 4000 bytes)."""
    found: dict[tuple[bytes, ...], Facts] = {}

    def walk(fd: int, parts: tuple[bytes, ...]) -> None:
        for entry in os.scandir(fd):
            name = os.fsencode(entry.name)
            facts = os.stat(name, dir_fd=fd, follow_symlinks=False)
            key = (*parts, name)
            kind, size, digest = "file", facts.st_size, ""
            if entry.is_symlink():
                kind, digest = "link", hashlib.sha256(os.readlink(name, dir_fd=fd)).hexdigest()
            elif entry.is_dir(follow_symlinks=False):
                kind, size = "dir", 0
                inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
                try:
                    walk(inner, key)
                finally:
                    os.close(inner)
            else:
                opened = os.open(name, os.O_RDONLY, dir_fd=fd)
                with os.fdopen(opened, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            found[key] = (kind, size, facts.st_mtime_ns, facts.st_ino, digest)

    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        walk(fd, ())
    finally:
        os.close(fd)
    return found


def reader_tree(fs: XfsFileSystem) -> dict[tuple[bytes, ...], Facts]:
    found: dict[tuple[bytes, ...], Facts] = {}
    stack: list[tuple[tuple[bytes, ...], Inode]] = [((), fs.root())]
    while stack:
        parts, folder = stack.pop()
        for entry in fs.scandir(folder):
            key = (*parts, name_to_bytes(entry.name))
            assert entry.ident is not None and entry.mtime_ns is not None
            kind, digest = "file", ""
            if entry.is_dir:
                kind = "dir"
                stack.append((key, entry.node))
            else:
                kind = "link" if entry.is_link else "file"
                digest = hashlib.sha256(fs.open(entry.node).pread(entry.size, 0)).hexdigest()
            found[key] = (kind, entry.size, entry.mtime_ns, entry.ident, digest)
    return found


def build(tmp: Path, name: str, node_entries: int, *mkfs: str) -> tuple[Path, dict[tuple[bytes, ...], Facts]]:
    image = make_image(tmp / f"{name}.img", *mkfs)
    with mounted(image, tmp / "rw") as top:
        populate(top, node_entries, bigtime="bigtime=1" in ",".join(mkfs))
    with mounted(image, tmp / "ro", "ro") as top:
        return image, kernel_tree(top)


@pytest.fixture(scope="module")
def v5(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[tuple[bytes, ...], Facts]]:
    return build(tmp_path_factory.mktemp("xfs"), "v5", 20_000, "-m", "bigtime=1", "-L", "openflr-v5")


def test_v5_bigtime_shows_what_the_kernel_shows(v5: tuple[Path, dict[tuple[bytes, ...], Facts]]) -> None:
    image, want = v5
    fs = open_xfs(image)
    try:
        assert fs.label == "openflr-v5" and fs.v5 and fs.ftype
        got = reader_tree(fs)
        assert sorted(set(want) ^ set(got))[:5] == []
        for key, facts in want.items():
            assert got[key] == facts, key
        assert want[(b"times", b"2400")][2] == 13_569_465_600 * NS + 987_654_321
        assert {b"caf\xe9", b"a" * 255, "漢".encode() * 85} <= {
            k[1] for k in want if len(k) == 2 and k[0] == b"odd"
        }
        assert sum(1 for k in want if len(k) > 1 and k[0] == b"deep") == 30
    finally:
        fs.close()


def test_the_uuid_and_label_are_the_superblock_s(v5: tuple[Path, dict[tuple[bytes, ...], Facts]]) -> None:
    image, _ = v5
    shown = subprocess.run(["blkid", "-o", "value", "-s", "UUID", str(image)], capture_output=True, text=True)
    fs = open_xfs(image)
    try:
        assert fs.uuid == shown.stdout.strip()
    finally:
        fs.close()


def test_folders_in_every_format_and_big_extent_maps(v5: tuple[Path, dict[tuple[bytes, ...], Facts]]) -> None:
    image, _ = v5
    fs = open_xfs(image)
    try:
        formats = {}
        for name in ("short", "block", "leaf", "node", "fragmented"):
            node = fs.lookup([name])
            assert node is not None
            formats[name] = node.raw[5]
        # local, extents, B+tree; a node folder's map may need a tree of its own
        assert formats.pop("node") in (2, 3)
        assert formats == {"short": 1, "block": 2, "leaf": 2, "fragmented": 3}
        node = fs.lookup(["node"])
        # Linear work, counted rather than timed (a loaded machine stretches any time): each folder
        # block and inode cluster is read about once, not once per entry (865 reads, 11 MB here).
        reads = [0, 0]
        read_at = fs.reader.read_at

        def counted(at: int, length: int) -> bytes:
            reads[0] += 1
            reads[1] += length
            return read_at(at, length)

        fs.reader.read_at = counted  # type: ignore[method-assign,assignment]
        listed = list(fs.scandir(node))
        fs.reader.read_at = read_at  # type: ignore[method-assign]
        assert len(listed) == 20_000
        assert reads[0] < 2_000 and reads[1] < 1024 * len(listed), f"reads, bytes: {reads}"
        assert fs.counts(node) == (20_000, 0)
        assert fs.lookup(["node", "file-19999-with-a-longer-name"]) is not None
        assert len(fs.extent_list(_inode(fs, ["fragmented"]))) >= 1000
    finally:
        fs.close()


def kernel_sizes(image: Path, where: Path) -> dict[bytes, int]:
    with mounted(image, where, "ro") as top:
        return kernel_folder_sizes(os.fsencode(top))


def test_counts_come_from_the_hash_leaves_and_parts_need_not_read_the_whole_folder(
    v5: tuple[Path, dict[tuple[bytes, ...], Facts]], tmp_path: Path
) -> None:
    image, _ = v5
    sizes = kernel_sizes(image, tmp_path / "ro")
    assert sizes[b"/node"] == 20_000 and sizes[b"/leaf"] == 500
    assert folder_differences(lambda: open_xfs(image), sizes) == []
    fs = open_xfs(image)
    try:
        # Leaf and node folders are counted from their leaves; short and block ones are read.
        counted = {name: fs.dirent_count(_inode(fs, [name])) for name in ("short", "block", "leaf", "node")}
        assert counted == {"short": None, "block": None, "leaf": 500, "node": 20_000}
        # A node folder's check, count and first 1000 entries read a few of its blocks, not all of
        # them (bytes counted, not time): a big folder's first page does not wait for the rest.
        node = _inode(fs, ["node"])
        read_at, read = fs.reader.read_at, [0]

        def counted_read(at: int, length: int) -> bytes:
            read[0] += length
            return read_at(at, length)

        fs.reader.read_at = counted_read  # type: ignore[method-assign,assignment]
        fs.check_dir(node)
        assert fs.counts(node) == (20_000, 0)
        first = list(itertools.islice(fs.dirents(node), 1000))
        quick, read[0] = read[0], 0
        assert fs.listing(node)[:1000] == first and len(fs.listing(node)) == 20_002
        whole = read[0]
        fs.reader.read_at = read_at  # type: ignore[method-assign]
        assert quick * 4 < whole, (quick, whole)
    finally:
        fs.close()


def test_stale_and_damaged_leaves(tmp_path: Path) -> None:
    """Removed entries leave stale hash entries, which are not counted; a leaf that does not look
    right makes the count come from the entries themselves."""
    image = make_image(tmp_path / "stale.img")
    with mounted(image, tmp_path / "rw") as top:
        _files(top / "node", 3000)
        for i in range(0, 3000, 3):
            (top / "node" / f"file-{i:05d}-with-a-longer-name").unlink()
    sizes = kernel_sizes(image, tmp_path / "ro")
    assert sizes[b"/node"] == 2000
    assert folder_differences(lambda: open_xfs(image), sizes) == []
    fs = open_xfs(image)
    try:
        node = _inode(fs, ["node"])
        assert fs.dirent_count(node) == 2000
        leaf_first = (32 << 30) >> fs.block_log
        blocks = [
            fs.block_offset(physical + i, 1)
            for logical, physical, length, _unwritten in fs.extent_list(node)
            for i in range(length)
            if logical + i >= leaf_first
        ]
        # The first hash leaf (a node folder's leaves come after the interior node of its tree).
        leaf_at = next(at for at in blocks if fs.reader.read_at(at + 8, 2) == b"\x3d\xff")
    finally:
        fs.close()
    for flips in ({leaf_at + 8: 0x00}, {leaf_at + 56: 0xFF, leaf_at + 57: 0xFF}, {leaf_at + 48: 0x01}):
        fs = XfsFileSystem(_Flipped(image, flips))
        try:
            node = _inode(fs, ["node"])
            assert fs.dirent_count(node) is None, flips  # bad magic, absurd count, foreign owner
            assert fs.counts(node) == (2000, 0)
        finally:
            fs.close()


@pytest.mark.parametrize(
    ("name", "mkfs"),
    [
        ("nrext64", ("-m", "bigtime=1", "-i", "nrext64=1")),
        ("small-blocks", ("-m", "bigtime=0", "-b", "size=1024")),
        ("big-folder-blocks", ("-m", "bigtime=0", "-n", "size=16384", "-i", "size=1024")),
    ],
)
def test_other_geometries_show_what_the_kernel_shows(
    tmp_path: Path, name: str, mkfs: tuple[str, ...]
) -> None:
    image, want = build(tmp_path, name, 3000, *mkfs)
    fs = open_xfs(image)
    try:
        got = reader_tree(fs)
        assert sorted(set(want) ^ set(got))[:5] == []
        for key, facts in want.items():
            assert got[key] == facts, key
    finally:
        fs.close()
    sizes = kernel_sizes(image, tmp_path / "ro-sizes")
    assert folder_differences(lambda: open_xfs(image), sizes) == []


@pytest.mark.parametrize(
    "mkfs",
    [("-m", "crc=0", "-n", "ftype=0", "-b", "size=1024"), ("-m", "crc=0", "-n", "ftype=1")],
    ids=["v4-1k-blocks", "v4-ftype"],
)
def test_v4_made_by_mkfs_from_a_prototype(tmp_path: Path, mkfs: tuple[str, ...]) -> None:
    """This kernel no longer mounts v4 (non-CRC) XFS, so mkfs.xfs fills it from a prototype file and
    the prototype is the truth (times: when it was made)."""
    content = tmp_path / "content"
    content.write_bytes(os.urandom(3 << 20) + b"tail")
    small = tmp_path / "small"
    small.write_bytes(b"small")
    want: dict[tuple[bytes, ...], tuple[str, int, str]] = {}
    lines = [b"ignored", b"0 0", b"d--755 0 0"]

    def add(parts: tuple[bytes, ...], kind: str, spec: bytes, data: bytes = b"") -> None:
        lines.append(parts[-1] + b" " + spec)
        want[parts] = (kind, len(data) if kind != "dir" else 0, "" if kind == "dir" else _sha(data))

    for folder, count in ((b"short", 3), (b"block", 50), (b"leaf", 500), (b"node", 3000)):
        add((folder,), "dir", b"d--755 0 0")
        spec = b"---644 0 0 " + bytes(small)
        for i in range(count):
            add((folder, b"file-%05d-with-a-longer-name" % i), "file", spec, b"small")
        lines.append(b"$")
    for name in (b"caf\xe9", b"a" * 255, "漢".encode() * 85, b"back\\slash"):
        add((name,), "file", b"---644 1000 1000 " + bytes(small), b"small")
    add((b"big",), "file", b"---600 0 0 " + bytes(content), content.read_bytes())
    add((b"fast-link",), "link", b"l--777 0 0 big", b"big")
    add((b"remote-link",), "link", b"l--777 0 0 " + b"t" * 999 + b"!", b"t" * 999 + b"!")
    lines += [b"fifo p--644 0 0", b"$", b"$"]
    proto = tmp_path / "proto"
    proto.write_bytes(b"\n".join(lines) + b"\n")
    made = time.time_ns()
    image = make_image(tmp_path / "v4.img", *mkfs, "-p", str(proto))
    fs = open_xfs(image)
    try:
        assert not fs.v5 and fs.ftype == ("ftype=1" in mkfs)
        got = reader_tree(fs)
        assert {k: (kind, size, digest) for k, (kind, size, _t, _i, digest) in got.items()} == want
        assert all(abs(mtime - made) < 120 * NS for _k, _s, mtime, _i, _d in got.values())
        assert len({ident for *_, ident, _d in got.values()}) == len(got)
        for name, size in ((b"leaf", 500), (b"node", 3000)):  # counted from v4 hash leaves
            assert fs.dirent_count(_inode(fs, [name.decode()])) == size
    finally:
        fs.close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_damage_costs_only_the_damaged_block_or_inode(tmp_path: Path) -> None:
    image = make_image(tmp_path / "damaged.img")
    with mounted(image, tmp_path / "rw") as top:
        _files(top / "leaf", 500, b"leaf")
        _files(top / "few", 10, b"few")
        with open(top / "fragmented", "wb") as f:
            for i in range(0, 4000, 2):
                f.seek(i * 4096)
                f.write(b"y" * 4096)
    fs = open_xfs(image)
    try:
        leaf = _inode(fs, ["leaf"])
        blocks = list(fs._folder_blocks(leaf))
        assert len(blocks) > 2
        _logical, second_at, second = blocks[1]
        lost = {name for name, _ in fs._data_block(leaf.number, second, second_at >> 9)}
        victim = _inode(fs, ["few", "file-00003-with-a-longer-name"])
        victim_at = fs.inode_offset(victim.number)
        pointer_at = _second_pointer(fs, _inode(fs, ["fragmented"]))
    finally:
        fs.close()
    with open(image, "r+b") as f:
        f.seek(second_at)
        f.write(b"\xde\xad\xbe\xef")
        f.seek(victim_at)
        f.write(b"XX")
        f.seek(pointer_at - 8)
        first_pointer = f.read(8)
        f.write(first_pointer)  # the second leaf pointer now repeats the first: a loop
    fs = open_xfs(image)
    try:
        names = {e.name.encode() for e in fs.scandir(fs.lookup(["leaf"]))}
        assert len(names) == 500 - len(lost) and not names & lost
        few = [e.name for e in fs.scandir(fs.lookup(["few"]))]
        assert len(few) == 9 and "file-00003-with-a-longer-name" not in few
        with pytest.raises(VolumeError, match="loop"):
            fs.open(fs.lookup(["fragmented"]))
        assert fs.lookup(["few", "file-00004-with-a-longer-name"]) is not None
    finally:
        fs.close()
    # Every block of the folder damaged: its check fails, as its listing would, before a listing
    # streams; one block left whole is enough for the folder to list.
    fs = open_xfs(image)
    try:
        starts = [where for _l, where, _d in fs._folder_blocks(_inode(fs, ["leaf"]))]
    finally:
        fs.close()
    for spared in (None, starts[-1]):
        fs = XfsFileSystem(_Flipped(image, {at: 0 for at in starts if at != spared}))
        try:
            leaf = _inode(fs, ["leaf"])
            if spared is None:
                with pytest.raises(VolumeError, match="no block of folder"):
                    fs.check_dir(leaf)
                with pytest.raises(VolumeError, match="no block of folder"):
                    list(fs.scandir(leaf))
                assert fs.counts(leaf) == (500, 0)  # the hash leaves are whole: what it held
            else:
                fs.check_dir(leaf)
                assert 0 < len(list(fs.scandir(leaf))) < 500
        finally:
            fs.close()


def _second_pointer(fs: XfsFileSystem, inode: Inode) -> int:
    """Where the second child pointer of the first extent tree node with two children is."""
    fork = fs._fork(inode)[1]
    room = (len(fork) - 4) // 16
    level, records = struct.unpack_from(">HH", fork)
    pointers_at = fs.inode_offset(inode.number) + 176 + 4 + room * 8
    room = (fs.block - 72) // 16
    while records < 2:
        assert level >= 2
        with open(fs.reader.source.layers[0].file.path, "rb") as f:  # type: ignore[attr-defined]
            f.seek(pointers_at)
            block = fs.block_offset(int.from_bytes(f.read(8), "big"), 1)
            f.seek(block + 4)
            level, records = struct.unpack(">HH", f.read(4))
        pointers_at = block + 72 + room * 8
    return pointers_at + 8


class _Flipped(BlockSource):
    """An image with some bytes changed (in memory)."""

    def __init__(self, image: Path, flips: dict[int, int]) -> None:
        self.file = OpenFile(image)
        self.size = self.file.size
        self.flips = flips

    def pread(self, length: int, offset: int) -> bytes:
        data = bytearray(self.file.pread(max(0, min(length, self.size - offset)), offset))
        for at, value in self.flips.items():
            if offset <= at < offset + len(data):
                data[at - offset] = value
        return bytes(data)

    def close(self) -> None:
        self.file.close()


def _walk_all(fs: XfsFileSystem) -> int:
    """Every folder listed and every file's first and last MiB read; damage may only cost entries."""
    count = 0
    stack = [fs.root()]
    while stack:
        folder = stack.pop()
        try:
            fs.counts(folder)  # from the hash leaves where the folder has them
            entries = list(fs.scandir(folder))
        except VolumeError:
            continue
        for entry in entries:
            count += 1
            if entry.is_dir:
                stack.append(entry.node)
                continue
            with contextlib.suppress(VolumeError):
                reader = fs.open(entry.node)
                reader.pread(1 << 20, 0)
                reader.pread(1 << 20, max(0, reader.size - (1 << 20)))
    return count


def test_random_damage_to_metadata_costs_entries_never_a_crash(tmp_path: Path) -> None:
    image = make_image(tmp_path / "fuzz.img")
    with mounted(image, tmp_path / "rw") as top:
        for folder, count in (("short", 3), ("block", 40), ("leaf", 300), ("node", 1500)):
            _files(top / folder, count, b"data")
        os.symlink("t" * 1000, top / "remote-link")
        with open(top / "fragmented", "wb") as f:
            for i in range(0, 1200, 2):
                f.seek(i * 4096)
                f.write(b"y" * 4096)
    fs = open_xfs(image)
    try:
        ranges = [(0, 512)]
        stack = [fs.root()]
        while stack:
            folder = stack.pop()
            ranges.append((fs.inode_offset(folder.number), fs.inode_size))
            if folder.raw[5] != 1:  # not short form: blocks of its own
                ranges += [(where, len(data)) for _l, where, data in fs._folder_blocks(folder)]
            for entry in fs.scandir(folder):
                ranges.append((fs.inode_offset(entry.node.number), fs.inode_size))
                if entry.is_dir:
                    stack.append(entry.node)
        assert _walk_all(fs) == 6 + 3 + 40 + 300 + 1500  # four folders, a link and a file at the top
    finally:
        fs.close()
    rng = random.Random(5)
    for _ in range(40):
        flips = {}
        for _ in range(rng.choice((1, 3, 10))):
            start, length = rng.choice(ranges)
            flips[start + rng.randrange(length)] = rng.choice((0, 0xFF, rng.randrange(256)))
        try:
            damaged = XfsFileSystem(_Flipped(image, flips))
        except VolumeError:
            continue
        try:
            _walk_all(damaged)  # raises nothing but VolumeError, which it catches
        finally:
            damaged.close()
            damaged.reader.source.close()


def test_not_xfs_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "zeros.img"
    image.write_bytes(bytes(1 << 20))
    with pytest.raises(VolumeError):
        open_xfs(image)
