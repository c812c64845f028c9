"""ext2/3/4 through openflr's own reader, against the Linux kernel's reading of the same image: every
name as bytes, type, size, time to the nanosecond, link target, inode and content must agree."""

from __future__ import annotations

import logging
import os
import struct
import subprocess
from pathlib import Path

import pytest

from openflr.guestfs.errors import VolumeError
from openflr.guestfs.filesystems.ext4 import Ext4FileSystem
from openflr.guestfs.filesystems.names import name_from_bytes
from tests.guestfs.filesystems.kernel import (
    FileSource,
    build,
    differences,
    engine_tree,
    folder_differences,
    kernel_folder_sizes,
    kernel_tree,
    mounted,
)

NAMES = [
    b"caf\xe9",  # Latin-1, not UTF-8
    b"\xff\xfe",
    b"a" * 255,  # the longest name ext4 allows
    "中".encode() * 85,  # 255 bytes of CJK
    ("x" * 101 + "中" * 50 + ".txt").encode(),
    b"back\\slash",
    b"new\nline",
    b"ctl\x01\x1f\x7f",
    b" leading space",
    b"colon:star*?.txt",
    "😀.txt".encode(),
    "private \uef80 use".encode(),  # a real character of the escape's range
    "cafe\u0301 NFD".encode(),
]
TIMES = [
    -(2**31) * 10**9,  # 1901-12-13, the oldest a 32-bit time holds
    -1_234_567_890 * 10**9 + 500,
    0,
    2**31 * 10**9 + 1,  # just past 2038
    13_569_465_600 * 10**9 + 123_456_789,  # 2400-01-01
    (2**34 - 2**31 - 1) * 10**9 + 999_999_999,  # 2446-05-10, the newest ext4 stores
]


def _populate(root: bytes) -> None:
    """A tree that reaches what ext4 stores unusually: names, times, inline data, holes, unwritten
    and fragmented extents, links, big and deep folders."""
    names = root + b"/names"
    os.mkdir(names)
    for name in NAMES:
        with open(names + b"/" + name, "wb") as f:
            f.write(b"content of " + name)
    times = root + b"/times"
    os.mkdir(times)
    for i, ns in enumerate(TIMES):
        path = times + b"/t%d" % i
        with open(path, "wb") as f:
            f.write(b"%d" % ns)
        os.utime(path, ns=(ns, ns))
    files = root + b"/files"
    os.mkdir(files)
    open(files + b"/empty", "wb").close()
    with open(files + b"/tiny", "wb") as f:
        f.write(b"x")
    with open(files + b"/sparse", "wb") as f:
        f.truncate(8 << 20)
        f.seek(5 << 20)
        f.write(b"in the middle of holes")
    with open(files + b"/unwritten", "wb") as f:
        os.posix_fallocate(f.fileno(), 0, 1 << 20)
        f.seek(40960)
        f.write(b"written inside preallocated space")
    with open(files + b"/fragmented", "wb") as f:
        for block in range(0, 1200, 2):  # every other block: hundreds of extents, an extent tree
            f.seek(block * 4096)
            f.write(bytes([block % 251]) * 4096)
    os.link(files + b"/tiny", files + b"/tiny-hardlink")
    os.symlink(b"tiny", files + b"/fast-link")
    os.symlink(b"../" * 100 + b"slow-link-target", files + b"/slow-link")
    os.symlink(b"caf\xe9", files + b"/latin1-link")
    os.mkfifo(files + b"/fifo")  # left out: nothing to restore
    big = root + b"/big"
    os.mkdir(big)
    for i in range(3000):
        open(big + b"/entry-%05d" % i, "wb").close()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for i in range(16):  # a path of 4,000 bytes, longer than PATH_MAX: made relative to each parent
        name = (b"%02d" % i) * 125
        os.mkdir(name, dir_fd=fd)
        fd, parent = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd), fd
        os.close(parent)
    with os.fdopen(os.open(b"bottom.txt", os.O_WRONLY | os.O_CREAT, dir_fd=fd), "wb") as f:
        f.write(b"at the bottom of a 4,000-byte path")
    os.close(fd)


VARIANTS = {
    "ext4": ["mkfs.ext4", "-q", "-F"],
    "ext4-inline-data": ["mkfs.ext4", "-q", "-F", "-O", "inline_data"],
    "ext4-1k-64bit-meta_bg": ["mkfs.ext4", "-q", "-F", "-b", "1024", "-O", "64bit,meta_bg,^resize_inode"],
    "ext3": ["mkfs.ext3", "-q", "-F"],
    "ext2-128-byte-inodes": ["mkfs.ext2", "-q", "-F", "-I", "128"],
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_engine_shows_what_the_kernel_reads(tmp_path: Path, variant: str) -> None:
    image = build(tmp_path / "ext.img", VARIANTS[variant], "96M", _populate)
    with mounted(image) as root:
        kernel = kernel_tree(root)
        sizes = kernel_folder_sizes(root)
    fs = Ext4FileSystem(FileSource(image))
    try:
        engine = engine_tree(fs)
    finally:
        fs.close()
    assert len(kernel) > 3000
    assert differences(kernel, engine) == []
    # Counts read without the names, and parts of a folder read before the whole of it.
    assert sizes[b"/big"] == 3000 and sizes[b"/files"] == 10  # the fifo too
    assert folder_differences(lambda: Ext4FileSystem(FileSource(image)), sizes) == []


def test_every_name_is_found_by_its_shown_name(tmp_path: Path) -> None:
    image = build(tmp_path / "ext.img", VARIANTS["ext4"], "64M", _populate)
    fs = Ext4FileSystem(FileSource(image))
    try:
        for name in NAMES:
            node = fs.lookup(["names", name_from_bytes(name)])
            assert node is not None, name
            assert fs.open(node).pread(1000, 0) == b"content of " + name
        # An NFC name in a request finds the NFD name on disk.
        assert fs.lookup(["names", "café NFD"]) is not None
        assert fs.lookup(["names", "caf\xe9"]) is None  # U+00E9 is not the byte 0xE9
    finally:
        fs.close()


def test_a_damaged_folder_block_costs_only_its_entries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    image = build(
        tmp_path / "ext.img", ["mkfs.ext4", "-q", "-F", "-b", "1024", "-O", "^dir_index"], "32M", _fill_big
    )
    blocks = subprocess.run(
        ["debugfs", "-R", "blocks /big", str(image)], capture_output=True, text=True, check=True
    )
    numbers = [int(b) for b in blocks.stdout.split()]
    assert len(numbers) > 3
    with open(image, "r+b") as f:
        f.seek(numbers[1] * 1024)
        f.write(struct.pack("<IHH", 12, 3, 1) + b"\xa5" * 1016)  # an entry whose length is impossible
    fs = Ext4FileSystem(FileSource(image))
    try:
        with caplog.at_level(logging.WARNING):
            names = [e.name for e in fs.scandir(fs.lookup(["big"]))]
        assert "a damaged entry" in caplog.text
        assert "entry-0000" in names and "entry-0299" in names  # first and last blocks still list
        assert 150 < len(names) < 300
        # Every block damaged: the folder says so instead of listing as empty.
        with open(image, "r+b") as f:
            for number in numbers:
                f.seek(number * 1024)
                f.write(b"\xa5" * 1024)
        fs.close()
        fs = Ext4FileSystem(FileSource(image))
        with pytest.raises(VolumeError, match="no block of folder"):
            fs.check_dir(fs.lookup(["big"]))
    finally:
        fs.close()


def test_a_folder_whose_every_block_is_damaged_fails_its_check_even_when_they_begin_well(
    tmp_path: Path,
) -> None:
    """Each block keeps its first entry and loses the rest: the check (which reads as little as it
    can) fails as the whole listing would, before a listing starts to stream."""
    mkfs = ["mkfs.ext4", "-q", "-F", "-b", "1024", "-O", "^dir_index"]
    image = build(tmp_path / "ext.img", mkfs, "32M", _fill_big)
    blocks = subprocess.run(
        ["debugfs", "-R", "blocks /big", str(image)], capture_output=True, text=True, check=True
    )
    with open(image, "r+b") as f:
        for number in (int(b) for b in blocks.stdout.split()):
            f.seek(number * 1024 + 4)
            first_length = struct.unpack("<H", f.read(2))[0]
            f.seek(number * 1024 + first_length)
            f.write(struct.pack("<IHH", 12, 3, 1))
    fs = Ext4FileSystem(FileSource(image))
    try:
        big = fs.lookup(["big"])
        assert big is not None
        assert next(fs.dirents(big))[0] == b"."  # the first entry alone reads well
        for read in (fs.check_dir, fs.counts, lambda node: list(fs.scandir(node))):
            with pytest.raises(VolumeError, match="no block of folder"):
                read(big)
    finally:
        fs.close()


def _fill_big(root: bytes) -> None:
    os.mkdir(root + b"/big")
    for i in range(300):
        open(root + b"/big/entry-%04d" % i, "wb").close()


def test_a_volume_that_is_not_ext_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "zeros.img"
    image.write_bytes(bytes(1 << 20))
    with pytest.raises(VolumeError, match="no ext superblock"):
        Ext4FileSystem(FileSource(image))
