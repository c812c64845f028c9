"""FAT12/16/32 and exFAT through openflr's own reader, against independent tools: images made by
mkfs.fat / mkfs.exfat, filled by mtools (FAT) or an exfat-fuse mount (exFAT), and everything the
reader shows (names as UTF-16 units, kinds, sizes, times, contents) compared with what mtools or a
read-only exfat-fuse mount reads (the comparison is the oracle suite's, ``tests/guestfs/oracle.py``).
Damage is made by patching the image's bytes where the reader's own entry offsets point."""

from __future__ import annotations

import calendar
import hashlib
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from openflr.guestfs.blocks import BlockSource, Chain, OpenFile, RawLayer
from openflr.guestfs.errors import VolumeError
from openflr.guestfs.filesystems.base import FileSystem
from openflr.guestfs.filesystems.fat import (
    ExfatFileSystem,
    FatFileSystem,
    FatNode,
    dos_time,
    lfn_checksum,
    volume_offset,
)
from openflr.guestfs.filesystems.probe import open_filesystem
from tests.guestfs.oracle import (
    SPECS,
    TOOL_ENV,
    CaseResult,
    Key,
    Node,
    Seen,
    Tree,
    _Checker,
    compare,
    engine_key,
    mounted,
    oracle_read,
    write_tree,
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mcopy") is None or shutil.which("mount.exfat-fuse") is None,
    reason="needs root (FUSE mounts), mtools and exfat-fuse",
)

S = 1_000_000_000


def utc(text: str) -> int:
    """Nanoseconds of an ISO date-time taken as UTC."""
    date, _, clock = text.partition("T")
    y, mo, d = (int(x) for x in date.split("-"))
    h, mi, s = (int(x) for x in (clock or "00:00:00").split(":"))
    return calendar.timegm((y, mo, d, h, mi, s)) * S


TIMES = [
    utc("1980-01-01T00:00:00"),
    utc("2037-12-31T23:59:58"),
    utc("2038-01-19T03:14:08"),
    utc("2038-01-19T03:14:10"),
    utc("2099-06-15T12:30:44"),
    utc("2100-02-28T23:59:58"),
]
"""Times both writers and readers get right. Past 2100-02-28 the tools count 2100 as a leap year
(mtools writes the right date but ``mcopy -m`` copies it out a day late; exfat-fuse writes a day
early and reads it back a day late): those times are checked against the bytes on disk instead."""
LATE = [utc("2100-03-01T12:00:00"), utc("2106-02-07T06:28:16"), utc("2107-12-31T23:59:58")]
LONG_NAMES = [
    "a" * 255,  # the longest name: 255 UTF-16 units
    "漢" * 85,  # mtools cuts a name at 255 bytes of UTF-8
    "x" * 247 + "漢字.txt",
]


def source_of(image: Path) -> BlockSource:
    file = OpenFile(image)
    return Chain([RawLayer(file)], [file])


def engine_tree(fs: FileSystem, family: str) -> dict[Key, Seen]:
    """Everything the reader shows, keyed like the oracle (names as UTF-16LE units)."""
    out: dict[Key, Seen] = {}
    stack: list[tuple[Key, object]] = [((), fs.root())]
    while stack:
        path, node = stack.pop()
        for entry in fs.scandir(node):
            key = (*path, engine_key(entry.name, family))
            assert key not in out, f"{key!r} listed twice"
            seen = Seen("dir" if entry.is_dir else "file", entry.size, entry.mtime_ns, entry.ident)
            if entry.is_dir:
                stack.append((key, entry.node))
            else:
                seen.sha256 = hashlib.sha256(fs.open(entry.node).pread(entry.size + 1, 0)).hexdigest()
            out[key] = seen
    return out


def differences(fs_name: str, image: Path, fs: FileSystem, work: Path) -> list[str]:
    spec = SPECS[fs_name]
    notes: list[str] = []
    oracle, _how = oracle_read(spec, image, work, notes)
    result = CaseResult(fs_name, 0, "", "none", "raw")
    compare(spec, engine_tree(fs, spec.family), oracle, _Checker(result))
    assert result.checks > 0
    return [str(m) for m in result.mismatches]


def make(fs_name: str, image: Path, mib: int) -> None:
    with open(image, "wb") as f:
        f.truncate(mib * 2**20)
    subprocess.run([*SPECS[fs_name].mkfs, str(image)], check=True, capture_output=True)


def mtools(*args: str | Path) -> str:
    done = subprocess.run([str(a) for a in args], check=True, capture_output=True, env=TOOL_ENV)
    return done.stdout.decode()


def fat_tree(fs_name: str, files_in_bulk: int) -> Tree:
    """Long and short names, the whole time range, empty and many-cluster files, a deep chain."""
    nodes = [Node((b"sub",), "dir", TIMES[4]), Node((b"bulk",), "dir", TIMES[0])]
    for i, name in enumerate(LONG_NAMES):
        nodes.append(Node((name.encode(),), "file", TIMES[i % len(TIMES)], 10 + i, i))
    for i, when in enumerate(TIMES):
        nodes.append(Node((b"sub", b"t%d.txt" % i), "file", when, i * 1000, 100 + i))
    nodes += [
        Node((b"sub", b"empty"), "file", TIMES[2], 0, 7),
        Node((b"sub", b"b" * 248), "file", TIMES[2], 1, 7),
        Node((b"sub", "é".encode() * 127), "file", TIMES[2], 2, 7),
        Node((b"sub", b"SHORT.TXT"), "file", TIMES[3], 3, 8),
        Node((b"sub", b"lower.txt"), "file", TIMES[3], 4, 9),
        Node((b"sub", b"Mixed.Txt"), "file", TIMES[3], 5, 10),
        Node((b"sub", b"big.bin"), "file", TIMES[5], 3_000_001, 11),
        Node((b"sub", "Ünïcode ärger.txt".encode()), "file", TIMES[1], 6, 12),
    ]
    deep: tuple[bytes, ...] = (b"sub",)  # in the root, mtools then finds no room for long names
    for level in range(12):
        deep = (*deep, b"deep%02d" % level + b"d" * 100)
        nodes.append(Node(deep, "dir", TIMES[level % len(TIMES)]))
    nodes.append(Node((*deep, b"bottom.txt"), "file", TIMES[4], 20, 13))
    for i in range(files_in_bulk):
        nodes.append(Node((b"bulk", b"%05d file with a long name" % i), "file", TIMES[i % 6], i % 3, i))
    return Tree(fs_name, nodes)


@pytest.mark.parametrize(
    ("fs_name", "mib", "bulk"), [("fat12", 24, 40), ("fat16", 64, 40), ("fat32", 96, 40)]
)
def test_fat_shows_what_mtools_reads(tmp_path: Path, fs_name: str, mib: int, bulk: int) -> None:
    image = tmp_path / "fat.img"
    make(fs_name, image, mib)
    written = write_tree(SPECS[fs_name], image, fat_tree(fs_name, bulk), tmp_path)
    assert not written.refused
    fragment(image, tmp_path)
    fs = FatFileSystem(source_of(image))
    assert differences(fs_name, image, fs, tmp_path) == []
    names = {e.name for e in fs.scandir(fs.lookup(["sub"]))}
    assert {"SHORT.TXT", "lower.txt", "Mixed.Txt", "empty"} <= names
    assert fs.lookup(["SUB", "LOWER.TXT"]) is not None
    assert len(list(fs.scandir(fs.lookup(["bulk"])))) == bulk
    frag = fs.lookup(["frag", "last.bin"])
    assert isinstance(frag, FatNode) and len(fs.runs(frag, frag.size)) > 1, "the file was not fragmented"


def test_fat_folder_of_3000_entries(tmp_path: Path) -> None:
    """Every name ``mdir`` lists, in its order, and a sample of contents (the oracle copies each file
    out with a call of its own: too slow for thousands)."""
    image = tmp_path / "fat.img"
    make("fat32", image, 96)
    name = b"%05d file with a long name.txt"
    files = [Node((b"bulk", name % i), "file", TIMES[i % 6], i % 7, i) for i in range(3000)]
    tree = Tree("fat32", [Node((b"bulk",), "dir", TIMES[0]), *files])
    assert not write_tree(SPECS["fat32"], image, tree, tmp_path).refused
    fs = FatFileSystem(source_of(image))
    listed = [e.name for e in fs.scandir(fs.lookup(["bulk"]))]
    assert listed == [
        line[len("::/bulk/") :]
        for line in mtools("mdir", "-/", "-b", "-i", image, "::/bulk").split("\n")
        if line
    ]
    assert [e.name for e in fs.scandir(fs.lookup(["bulk"]), 1000, 1003)] == listed[1000:1003]
    for i in (0, 1234, 2999):
        node = fs.lookup(["bulk", f"{i:05d} FILE WITH A LONG NAME.TXT"])
        assert isinstance(node, FatNode) and node.size == i % 7 and node.mtime_ns == TIMES[i % 6]


def fragment(image: Path, work: Path) -> None:
    """A file written into the gap a deleted one left, and on past its neighbour: two runs."""
    local = work / "piece"
    mtools("mmd", "-i", image, "::/frag")
    for name, size in (("one", 20_000), ("two", 40_000), ("three", 20_000)):
        local.write_bytes(os.urandom(size))
        mtools("mcopy", "-i", image, local, f"::/frag/{name}")
    mtools("mdel", "-i", image, "::/frag/two")
    boot = image.read_bytes()[:512]
    if boot[82:87] == b"FAT32":  # forget FSInfo's next-free hint, so the gap is used again
        patch(image, struct.unpack_from("<H", boot, 48)[0] * 512 + 492, b"\xff\xff\xff\xff")
    local.write_bytes(os.urandom(200_000))
    mtools("mcopy", "-i", image, local, "::/frag/last.bin")


def test_times_after_2100_on_fat(tmp_path: Path) -> None:
    """mtools writes these dates right (``mdir`` lists them); the reader shows what is stored."""
    image = tmp_path / "fat.img"
    make("fat16", image, 32)
    tree = Tree("fat16", [Node((b"late%d" % i,), "file", t, 1, i) for i, t in enumerate(LATE)])
    assert not write_tree(SPECS["fat16"], image, tree, tmp_path).refused
    fs = FatFileSystem(source_of(image))
    assert [(e.name, e.mtime_ns) for e in fs.scandir(fs.root())] == [
        (f"late{i}", t) for i, t in enumerate(LATE)
    ]
    listed = mtools("mdir", "-i", image, "::/")
    for t in LATE:
        assert time.strftime("%Y-%m-%d", time.gmtime(t // S)) in listed


def test_surrogate_pairs_in_long_names(tmp_path: Path) -> None:
    """mtools cannot write a name outside the BMP (it keeps 16 bits of each character): a name of 255
    units written by mtools has its units replaced by surrogate pairs (and one unpaired surrogate)
    in place, the short name and its checksum untouched."""
    image = tmp_path / "fat.img"
    make("fat32", image, 64)
    tree = Tree(
        "fat32", [Node((b"a" * 255,), "file", TIMES[4], 5, 1), Node((b"b" * 255,), "file", TIMES[4], 6, 2)]
    )
    assert not write_tree(SPECS["fat32"], image, tree, tmp_path).refused
    fs = FatFileSystem(source_of(image))
    at = {e.name[0]: int(e.ident or 0) for e in fs.scandir(fs.root())}
    _data, runs = fs.dir_data(fs.root_node)
    wanted = {"a": "😀" * 127 + "x", "b": "漢😀" * 84 + "\ud800z"}
    for first, text in wanted.items():
        units = text.encode("utf-16-le", "surrogatepass")
        units += b"\0\0" + b"\xff" * (520 - len(units) - 2) if len(units) < 520 else b""
        for k in range(len(units) // 26):
            entry = before(runs, at[first], k + 1)
            piece = units[26 * k : 26 * (k + 1)]
            patch(image, entry + 1, piece[:10])
            patch(image, entry + 14, piece[10:22])
            patch(image, entry + 28, piece[22:26])
    fs = FatFileSystem(source_of(image))
    shown = [e.name for e in fs.scandir(fs.root())]
    assert shown[0] == wanted["a"] and len(wanted["a"].encode("utf-16-le")) == 510
    assert engine_key(shown[1], "fat") == wanted["b"].encode("utf-16-le", "surrogatepass")
    assert fs.lookup([shown[1]]) is not None and fs.lookup(["😀" * 127 + "X"]) is not None


def before(runs: list[tuple[int, int]], ident: int, entries: int) -> int:
    """The volume offset of the directory entry ``entries`` places before the one at ``ident``."""
    at = 0
    for start, length in runs:
        if start <= ident < start + length:
            return volume_offset(runs, at + ident - start - 32 * entries)
        at += length
    raise AssertionError("not in the folder")


def exfat_tree(bulk: int) -> Tree:
    names = ["a" * 255, "漢" * 85, "😀" * 63, "Ünïcode ärger.txt", "ǅ title case"]
    nodes = [Node((b"sub",), "dir", TIMES[4]), Node((b"bulk",), "dir", TIMES[0])]
    nodes += [Node((n.encode(),), "file", TIMES[i % 6], 10 + i, i) for i, n in enumerate(names)]
    for i, when in enumerate([*TIMES, utc("2099-12-31T23:59:59")]):
        nodes.append(Node((b"sub", b"t%d.txt" % i), "file", when, i * 1000, 100 + i))
    nodes += [
        Node((b"sub", b"empty"), "file", TIMES[2], 0, 7),
        Node((b"sub", b"big.bin"), "file", TIMES[5], 3_000_001, 11),
    ]
    deep: tuple[bytes, ...] = ()
    for level in range(20):
        deep = (*deep, b"deep%02d" % level + b"d" * 200)
        nodes.append(Node(deep, "dir", TIMES[level % len(TIMES)]))
    nodes.append(Node((*deep, b"bottom.txt"), "file", TIMES[4], 20, 13))
    nodes += [Node((b"bulk", b"file %05d" % i), "file", TIMES[i % 6], i % 3, i) for i in range(bulk)]
    return Tree("exfat", nodes)


def test_exfat_shows_what_exfat_fuse_reads(tmp_path: Path) -> None:
    image = tmp_path / "exfat.img"
    make("exfat", image, 96)
    assert not write_tree(SPECS["exfat"], image, exfat_tree(3000), tmp_path).refused
    with mounted(image, SPECS["exfat"], tmp_path / "rw", readonly=False) as top:
        (top / "frag").mkdir()
        for name, size in (("one", 20_000), ("two", 200_000), ("three", 20_000)):
            (top / "frag" / name).write_bytes(os.urandom(size))
        (top / "frag" / "two").unlink()
        with open(top / "frag" / "one", "ab") as f:
            f.write(os.urandom(300_000))  # no longer contiguous: a FAT chain
    fs = ExfatFileSystem(source_of(image))
    assert differences("exfat", image, fs, tmp_path) == []
    one = fs.lookup(["FRAG", "ONE"])
    assert isinstance(one, FatNode) and not one.contiguous and len(fs.runs(one, one.size)) > 1
    assert len(list(fs.scandir(fs.lookup(["bulk"])))) == 3000


def exfat_with(tmp_path: Path, names: list[str]) -> tuple[Path, ExfatFileSystem]:
    image = tmp_path / "exfat.img"
    make("exfat", image, 32)
    with mounted(image, SPECS["exfat"], tmp_path / "rw", readonly=False) as top:
        for i, name in enumerate(names):
            (top / name).write_bytes(b"%d" % i * (i + 1))
    return image, ExfatFileSystem(source_of(image))


def patch(image: Path, offset: int, data: bytes) -> None:
    with open(image, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_exfat_hundredths_and_utc_offsets(tmp_path: Path) -> None:
    image, fs = exfat_with(tmp_path, ["east", "west", "local", "late"])
    at = {e.name: int(e.ident or 0) for e in fs.scandir(fs.root())}
    date = (2040 - 1980) << 9 | 2 << 5 | 3
    clock = 4 << 11 | 5 << 5 | 3  # 04:05:06
    for name, offset in (("east", 0x80 | 4), ("west", 0x80 | (0x80 - 8)), ("local", 0x04)):
        patch(image, at[name] + 12, struct.pack("<HH", clock, date))
        patch(image, at[name] + 21, bytes([157]))  # 1.57 s more
        patch(image, at[name] + 23, bytes([offset]))
    late = 127 << 9 | 12 << 5 | 31, 23 << 11 | 59 << 5 | 29  # 2107-12-31 23:59:58
    patch(image, at["late"] + 12, struct.pack("<HH", late[1], late[0]))
    patch(image, at["late"] + 21, bytes([199, 0x80]))  # 1.99 s more, UTC
    fs = ExfatFileSystem(source_of(image))
    times = {e.name: e.mtime_ns for e in fs.scandir(fs.root())}
    wall = utc("2040-02-03T04:05:07") + 570_000_000
    last = utc("2107-12-31T23:59:59") + 990_000_000
    assert times == {"east": wall - 3600 * S, "west": wall + 2 * 3600 * S, "local": wall, "late": last}


def test_exfat_names_that_differ_only_in_case(tmp_path: Path) -> None:
    """exFAT writers refuse them; a damaged or foreign volume may hold them: both are listed and
    each is found by its exact name."""
    image, fs = exfat_with(tmp_path, ["Case", "Cass"])
    at = {e.name: e.ident for e in fs.scandir(fs.root())}
    assert at["Cass"] is not None
    patch(image, at["Cass"] + 64 + 2, "case".encode("utf-16-le"))
    fs = ExfatFileSystem(source_of(image))
    assert [e.name for e in fs.scandir(fs.root())] == ["Case", "case"]
    for name in ("Case", "case"):
        node = fs.lookup([name])
        assert isinstance(node, FatNode) and node.name == name
    assert fs.lookup(["CASE"]) is not None


def test_exfat_damaged_entry_set_costs_only_itself(tmp_path: Path) -> None:
    image, fs = exfat_with(tmp_path, ["before", "count", "stream", "after"])
    at = {e.name: e.ident for e in fs.scandir(fs.root()) if e.ident is not None}
    patch(image, at["count"] + 1, b"\x01")  # secondary count 1: no room for a name
    patch(image, at["stream"] + 32, b"\x40")  # the stream extension's in-use bit cleared
    fs = ExfatFileSystem(source_of(image))
    assert [e.name for e in fs.scandir(fs.root())] == ["before", "after"]
    assert fs.open(fs.lookup(["after"])).pread(100, 0) == b"3333"


def fat_entry_offset(fs: FatFileSystem, cluster: int) -> int:
    assert fs.bits in (16, 32)
    return fs.fat_at + cluster * fs.bits // 8


@pytest.mark.parametrize("how", ["loop", "free", "short", "long", "outside"])
def test_fat_damaged_chain_costs_only_its_file(tmp_path: Path, how: str) -> None:
    image = tmp_path / "fat.img"
    make("fat16", image, 32)
    local = tmp_path / "data"
    for name in ("before", "victim", "after"):
        local.write_bytes(name.encode() * 5000)
        mtools("mcopy", "-i", image, local, f"::/{name}")
    fs = FatFileSystem(source_of(image))
    victim = fs.lookup(["victim"])
    assert isinstance(victim, FatNode)
    clusters = list(fs.chain(victim.cluster, -(-victim.size // fs.cluster_size)))
    assert len(clusters) >= 3
    value = {
        "loop": clusters[0],
        "free": 0,
        "short": 0xFFFF,
        "long": clusters[-1] + 1000,
        "outside": fs.clusters + 10,
    }[how]
    where = clusters[-1] if how == "long" else clusters[1]
    if how == "long":
        patch(image, fat_entry_offset(fs, value), b"\xff\xff")
    patch(image, fat_entry_offset(fs, where), struct.pack("<H", value))
    fs = FatFileSystem(source_of(image))
    assert [e.name for e in fs.scandir(fs.root())] == ["before", "victim", "after"]
    with pytest.raises(VolumeError):
        fs.open(fs.lookup(["victim"]))
    for name in ("before", "after"):
        assert fs.open(fs.lookup([name])).pread(100, 0) == (name.encode() * 100)[:100]


def test_fat_folder_chain_loop_fails_only_that_folder(tmp_path: Path) -> None:
    image = tmp_path / "fat.img"
    make("fat32", image, 64)
    mtools("mmd", "-i", image, "::/good", "::/looped")
    fs = FatFileSystem(source_of(image))
    looped = fs.lookup(["looped"])
    assert isinstance(looped, FatNode)
    patch(image, fat_entry_offset(fs, looped.cluster), struct.pack("<I", looped.cluster))
    fs = FatFileSystem(source_of(image))
    with pytest.raises(VolumeError):
        fs.check_dir(fs.lookup(["looped"]))
    assert list(fs.scandir(fs.lookup(["good"]))) == []


def test_long_name_with_a_wrong_checksum_gives_the_short_name(tmp_path: Path) -> None:
    image = tmp_path / "fat.img"
    make("fat16", image, 32)
    local = tmp_path / "data"
    local.write_bytes(b"x")
    mtools("mcopy", "-i", image, local, "::/A long file name.txt")
    fs = FatFileSystem(source_of(image))
    node = fs.lookup(["a long file name.txt"])
    assert isinstance(node, FatNode)
    with open(image, "rb") as f:
        f.seek(node.ident)
        short = f.read(11)
    assert fs.lookup([node.name]) is not None
    patch(image, node.ident - 32 + 13, bytes([lfn_checksum(short) ^ 1]))
    fs = FatFileSystem(source_of(image))
    assert [e.name for e in fs.scandir(fs.root())] == [mtools("mdir", "-b", "-i", image, "::/").strip()[3:]]
    assert [e.name for e in fs.scandir(fs.root())] == ["ALONGF~1.TXT"]


def test_dos_times() -> None:
    assert dos_time(0, 0) is None
    assert dos_time(1 << 5 | 1, 0) == utc("1980-01-01T00:00:00")
    assert dos_time(127 << 9 | 12 << 5 | 31, 23 << 11 | 59 << 5 | 29) == utc("2107-12-31T23:59:58")
    assert dos_time(58 << 9 | 1 << 5 | 19, 3 << 11 | 14 << 5 | 4) == utc("2038-01-19T03:14:08")
    assert dos_time(13 << 5 | 1, 0) is None  # month 13
    assert dos_time(2 << 5 | 0, 0) is None  # day 0
    assert dos_time(120 << 9 | 2 << 5 | 29, 0) == utc("2100-03-01T00:00:00")  # 2100-02-29 counts on


@pytest.mark.parametrize("fs_name", ["fat12", "fat16", "fat32", "exfat"])
def test_probe_opens_the_volume_with_this_reader(tmp_path: Path, fs_name: str) -> None:
    image = tmp_path / "v.img"
    make(fs_name, image, 40 if fs_name != "fat12" else 8)
    fs = open_filesystem(source_of(image))
    assert isinstance(fs, FatFileSystem if fs_name != "exfat" else ExfatFileSystem)
    assert list(fs.scandir(fs.root())) == []


@pytest.mark.parametrize(
    ("offset", "value"),
    [(11, b"\x00\x03"), (13, b"\x03"), (14, b"\x00\x00"), (16, b"\x00"), (22, b"\xff\xff")],
)
def test_fat_boot_sector_checks(tmp_path: Path, offset: int, value: bytes) -> None:
    image = tmp_path / "v.img"
    make("fat16", image, 32)
    patch(image, offset, value)
    with pytest.raises(VolumeError):
        FatFileSystem(source_of(image))
