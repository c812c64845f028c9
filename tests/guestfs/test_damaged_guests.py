"""Degrade, never fail: a damaged part of a guest costs only itself. Each test damages one place of a
real guest (built here with the tools a distribution uses, or a copy of a fixture disk) and checks
that the point still opens, that the rest is there, and that ``notes`` names what was skipped."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from openflr.guestfs.errors import CorruptImageError, VolumeError
from openflr.guestfs.view import open_view
from tests.imagebuilder import Fixtures

MiB = 1024 * 1024


def _linux_disk(tmp_path: Path, make_etc: Callable[[Path], None]) -> Path:
    """A GPT disk of an ext4 root (label ``root``, its /etc made by ``make_etc``) and an ext4 data
    volume (label ``data``) that a good fstab mounts at /srv."""
    disk = tmp_path / "disk.raw"
    subprocess.run(["truncate", "-s", "40M", disk], check=True)
    subprocess.run(
        ["sgdisk", "-n1:2048:+16M", "-t1:8300", "-n2:0:+16M", "-t2:8300", disk],
        check=True,
        capture_output=True,
    )
    etc = tmp_path / "root" / "etc"
    etc.mkdir(parents=True)
    (etc / "hostname").write_text("damaged\n")
    make_etc(etc)
    data = tmp_path / "data"
    (data / "www").mkdir(parents=True)
    (data / "www" / "index.html").write_text("hello\n")
    for tree, label, start in ((etc.parent, "root", 2048), (data, "data", 2048 + 16 * 2048)):
        mke2fs = ["mke2fs", "-q", "-F", "-t", "ext4", "-L", label, "-E", f"offset={start * 512}"]
        subprocess.run([*mke2fs, "-d", str(tree), str(disk), "16M"], check=True, capture_output=True)
    return disk


GOOD_FSTAB = "LABEL=root / ext4 defaults 0 1\nLABEL=data /srv ext4 defaults 0 2\n"
GOOD_PASSWD = "root:x:0:0:root:/root:/bin/sh\n"


def _fstab(kind: str) -> Callable[[Path], None]:
    def make(etc: Path) -> None:
        (etc / "passwd").write_text(GOOD_PASSWD)
        fstab = etc / "fstab"
        if kind == "binary":
            fstab.write_bytes(bytes(range(256)) * 16)
        elif kind == "huge":
            fstab.write_text(GOOD_FSTAB + "#" * (2 * MiB) + "\n")
        elif kind == "symlink-loop":
            os.symlink("fstab", fstab)
        elif kind == "directory":
            fstab.mkdir()
            (fstab / "x").write_text(GOOD_FSTAB)

    return make


@pytest.mark.parametrize("kind", ["binary", "huge", "symlink-loop", "directory"])
def test_an_unusable_fstab_costs_only_the_grafts(tmp_path: Path, kind: str) -> None:
    view = open_view([[_linux_disk(tmp_path, _fstab(kind))]], "Linux")
    try:
        assert view.linux_tree
        assert [(r.name, r.mount) for r in view.roots] == [("/", ()), ("data:", None)]
        assert view.open(view.locate("/etc/hostname")).pread(100, 0) == b"damaged\n"
        assert view.open(view.locate("data:/www/index.html")).pread(100, 0) == b"hello\n"
        (note,) = view.notes
        assert note.startswith("/etc/fstab ") and "not grafted" in note
    finally:
        view.close()


def test_garbage_lines_in_fstab_cost_only_themselves(tmp_path: Path) -> None:
    def make(etc: Path) -> None:
        (etc / "passwd").write_text(GOOD_PASSWD)
        (etc / "fstab").write_bytes(
            b"garbage\n" + b"x" * 10000 + b" /mnt ext4\n" + GOOD_FSTAB.encode() + b"a b\n# comment\n\n"
        )

    view = open_view([[_linux_disk(tmp_path, make)]], "Linux")
    try:
        assert [(r.name, r.mount) for r in view.roots] == [("/", ()), ("/srv", ("srv",))]
        assert view.open(view.locate("/srv/www/index.html")).pread(100, 0) == b"hello\n"
        assert view.notes == ["/etc/fstab: 3 line(s) could not be read and were skipped"]
    finally:
        view.close()


def _passwd(content: bytes | None) -> Callable[[Path], None]:
    def make(etc: Path) -> None:
        (etc / "fstab").write_text(GOOD_FSTAB)
        if content is None:
            (etc / "passwd").mkdir()
        else:
            (etc / "passwd").write_bytes(content)

    return make


@pytest.mark.parametrize(
    ("content", "note"),
    [
        (bytes(range(256)) * 16, "/etc/passwd is not a text file: owners are shown as numbers"),
        (None, "/etc/passwd is a folder, not a file: owners are shown as numbers"),
        # A uid of Unicode digits (str.isdigit() is true, int() refuses it) and a name of control characters.
        (
            "root:x:\u00b2:0::/:/bin/sh\n\x1b[2J:x:0:0::/:/bin/sh\n".encode(),
            "/etc/passwd holds no account lines",
        ),
    ],
)
def test_an_unusable_passwd_costs_only_the_owner_names(
    tmp_path: Path, content: bytes | None, note: str
) -> None:
    view = open_view([[_linux_disk(tmp_path, _passwd(content))]], "Linux")
    try:
        assert [r.name for r in view.roots] == ["/", "/srv"]
        owners = {e.name: e.owner for e in view.scandir(view.locate("/etc"))}
        assert owners["hostname"] == "0"
        (shown,) = view.notes
        assert shown.startswith(note)
    finally:
        view.close()


def test_a_good_passwd_names_owners(tmp_path: Path) -> None:
    view = open_view([[_linux_disk(tmp_path, _passwd(GOOD_PASSWD.encode()))]], "Linux")
    try:
        assert view.notes == []
        assert {e.name: e.owner for e in view.scandir(view.locate("/etc"))}["hostname"] == "root"
    finally:
        view.close()


# --- partition tables and LVM: copies of the fixture disks, damaged in one entry ------------------------

SECTOR = 512


def _copy(fixtures: Fixtures, tmp_path: Path, name: str) -> Path:
    out = tmp_path / name
    shutil.copyfile(fixtures.root / "raw" / name, out)
    return out


def _patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def _gpt_entries(path: Path, mutate: Callable[[bytearray], None]) -> None:
    """Change the primary GPT's entries of a disk and make both of its checksums right again."""
    with open(path, "r+b") as f:
        f.seek(SECTOR)
        header = bytearray(f.read(SECTOR))
        f.seek(2 * SECTOR)
        entries = bytearray(f.read(128 * 128))
        mutate(entries)
        struct.pack_into("<I", header, 88, zlib.crc32(bytes(entries)))
        struct.pack_into("<I", header, 16, 0)
        struct.pack_into("<I", header, 16, zlib.crc32(bytes(header[:92])))
        f.seek(SECTOR)
        f.write(header)
        f.write(entries)


def _beyond(entries: bytearray) -> None:
    struct.pack_into("<Q", entries, 40, 1 << 40)  # the ESP's last LBA


def _overlapping(entries: bytearray) -> None:
    entries[256:384] = entries[0:128]  # a third partition inside the NTFS one
    struct.pack_into("<QQ", entries, 256 + 32, 100000, 120000)


@pytest.mark.parametrize(
    ("mutate", "note"),
    [
        (_beyond, "disk 0: GPT partition 1 lies beyond the end of the disk; it was skipped"),
        (_overlapping, "disk 0: GPT partition 3 overlaps partition 2; it was skipped"),
    ],
)
def test_a_damaged_gpt_entry_costs_only_itself(
    fixtures: Fixtures, tmp_path: Path, mutate: Callable[[bytearray], None], note: str
) -> None:
    disk = _copy(fixtures, tmp_path, "win-disk0-p1.raw")
    _gpt_entries(disk, mutate)
    view = open_view([[disk]])
    try:
        names = [r.name for r in view.roots]
        assert names == (["C:"] if mutate is _beyond else ["C:", "S:"])
        assert view.notes == [note]
        assert view.scandir(view.locate("C:/Windows/System32/config"))
    finally:
        view.close()


def test_a_damaged_primary_gpt_header_is_read_from_the_backup(fixtures: Fixtures, tmp_path: Path) -> None:
    disk = _copy(fixtures, tmp_path, "win-disk0-p1.raw")
    _patch(disk, SECTOR + 16, b"\x01\x00\x00\x00")  # the primary header's checksum
    view = open_view([[disk]])
    try:
        assert [r.name for r in view.roots] == ["C:", "S:"]
        assert view.notes == [
            "disk 0: the primary GPT is damaged (GPT header checksum mismatch); the backup GPT at the end "
            "of the disk was used"
        ]
    finally:
        view.close()


MISC_ROOTS = ["boot:", "DATA16:", "EXFAT:", "lvroot:", "lvdata:"]


def _misc(fixtures: Fixtures, tmp_path: Path, damage: Callable[[Path], None]) -> list[list[Path]]:
    disk = _copy(fixtures, tmp_path, "misc-disk0-p1.raw")
    damage(disk)
    return [[disk], [fixtures.root / "raw" / "misc-disk1-p1.raw"]]


@pytest.mark.parametrize(
    ("damage", "gone", "note"),
    [
        (
            # primary 1 (the ext "boot" volume) ends past the end of the disk
            lambda d: _patch(d, 446 + 12, struct.pack("<I", 0xFFFFFF00)),
            "boot:",
            "disk 0: MBR partition 1 lies beyond the end of the disk; it was skipped",
        ),
        (
            # the extended chain is cut: its first EBR loses its signature
            lambda d: _patch(d, 34816 * SECTOR + 510, b"\0\0"),
            "DATA16:",
            "disk 0: the extended boot record of logical partition 5 is damaged; it and the rest of the "
            "chain were skipped",
        ),
        (
            # the LVM metadata area of the physical volume on partition 3 (header and text) is overwritten
            lambda d: _patch(d, 104448 * SECTOR + 4096, b"\xa5" * 2048),
            "lvroot:",
            "disk 0: volume group cannot be read",
        ),
    ],
)
def test_a_damaged_mbr_entry_or_lvm_area_costs_only_its_volumes(
    fixtures: Fixtures, tmp_path: Path, damage: Callable[[Path], None], gone: str, note: str
) -> None:
    view = open_view(_misc(fixtures, tmp_path, damage))
    try:
        lost = {gone} | ({"lvdata:"} if gone == "lvroot:" else set())
        assert sorted(r.name for r in view.roots) == sorted(set(MISC_ROOTS) - lost)
        (shown,) = view.notes
        assert shown.startswith(note)
        for root in view.roots:
            assert root.fs is not None
            list(view.scandir(view.locate(root.name)))
    finally:
        view.close()


# --- one damaged inode, directory block or MFT record ----------------------------------------------------


def _debugfs_location(disk: Path, path: str) -> int:
    """The byte offset of the inode of ``path`` in an ext4 image (block size 1 KiB)."""
    out = subprocess.run(["debugfs", "-R", f"imap {path}", str(disk)], capture_output=True, text=True).stdout
    match = re.search(r"located at block (\d+), offset 0x([0-9a-f]+)", out)
    assert match, out
    return int(match[1]) * 1024 + int(match[2], 16)


def test_a_damaged_inode_or_directory_block_costs_only_itself(tmp_path: Path) -> None:
    tree = tmp_path / "tree" / "dir"
    for sub in ("sub1", "sub2"):
        (tree / sub).mkdir(parents=True)
        (tree / sub / "inner.txt").write_text(f"in {sub}\n")
    for name in "abcd":
        (tree / f"{name}.txt").write_text(f"file {name}\n")
    disk = tmp_path / "ext4.raw"
    subprocess.run(
        ["mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-d", str(tree.parent), str(disk), "8M"],
        check=True,
    )
    stat = subprocess.run(["debugfs", "-R", "blocks dir/sub1", str(disk)], capture_output=True, text=True)
    (sub1_block,) = stat.stdout.split()
    _patch(disk, _debugfs_location(disk, "dir/b.txt"), b"\xa5" * 256)  # b.txt's inode
    _patch(disk, int(sub1_block) * 1024, b"\xa5" * 1024)  # sub1's only directory block
    view = open_view([[disk]], "Linux")
    try:
        (root,) = view.roots
        names = {e.name for e in view.scandir(view.locate(f"{root.name}/dir"))}
        assert {"a.txt", "c.txt", "d.txt", "sub1", "sub2"} <= names
        assert view.open(view.locate(f"{root.name}/dir/c.txt")).pread(100, 0) == b"file c\n"
        assert view.open(view.locate(f"{root.name}/dir/sub2/inner.txt")).pread(100, 0) == b"in sub2\n"
        with pytest.raises(VolumeError):
            view.locate(f"{root.name}/dir/sub1")  # the damaged folder says so, before a listing starts
    finally:
        view.close()


def test_a_damaged_mft_record_costs_only_its_file(fixtures: Fixtures, tmp_path: Path) -> None:
    """libfsntfs answers a folder entry whose MFT record is damaged with record 0: the file must not
    serve $MFT (deleted data) under its name; its siblings list and read."""
    disk = _copy(fixtures, tmp_path, "win-disk0-p1.raw")
    part = 41 * MiB  # the NTFS partition
    with open(disk, "rb") as f:
        f.seek(part)
        boot = f.read(SECTOR)
    cluster = struct.unpack_from("<H", boot, 11)[0] * boot[13]
    record = 2 ** -struct.unpack_from("<b", boot, 0x40)[0]
    at = part + struct.unpack_from("<Q", boot, 0x30)[0] * cluster
    view = open_view([[disk]])
    try:
        entry = view.locate("C:/Documents/report.txt").entry
        assert entry is not None
        number = entry.ident
    finally:
        view.close()
    with open(disk, "rb") as f:
        f.seek(at + number * record)
        assert f.read(4) == b"FILE"
    _patch(disk, at + number * record, b"\xa5" * record)
    view = open_view([[disk]])
    try:
        assert view.notes == []
        names = [e.name for e in view.scandir(view.locate("C:/Documents"))]
        assert "report.txt" not in names and {"todelete.txt", "empty.txt", "Mixed Case"} <= set(names)
        assert view.open(view.locate("C:/Documents/todelete.txt")).pread(10, 0) == b"deleted in"
        with pytest.raises(VolumeError, match="MFT record"):
            view.locate("C:/Documents/report.txt")
    finally:
        view.close()


def test_a_disk_whose_table_cannot_be_read_costs_only_that_disk(fixtures: Fixtures, tmp_path: Path) -> None:
    """A protective MBR entry without any GPT (neither header): disk 0 is skipped, disk 1 stays; a
    point of that disk alone fails with the reason."""
    disks = _misc(fixtures, tmp_path, lambda d: _patch(d, 446 + 16 * 3 + 4, b"\xee"))
    view = open_view(disks)
    try:
        assert [r.name for r in view.roots] == ["EXFAT:"]
        assert view.notes == ["disk 0: no GPT header at sector 1: the disk's volumes were skipped"]
    finally:
        view.close()
    with pytest.raises(CorruptImageError, match="no GPT header"):
        open_view(disks[:1])
