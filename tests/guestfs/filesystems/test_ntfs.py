"""NTFS through libfsntfs, against ntfs-3g's reading of an image it wrote: symbolic links (the
Interix links ntfs-3g makes for a Linux guest) and names that differ only in case."""

from __future__ import annotations

import os
from pathlib import Path

from openflr.guestfs.filesystems.ntfs import NtfsFileSystem
from tests.guestfs.filesystems.kernel import FileSource, build, differences, engine_tree, kernel_tree, mounted

MKNTFS = ["mkntfs", "-q", "-F", "-Q"]


def _populate(root: bytes) -> None:
    os.mkdir(root + b"/d")
    with open(root + b"/d/t.txt", "wb") as f:
        f.write(b"target of links\n")
    os.symlink(b"d/t.txt", root + b"/relative")
    os.symlink(b"/etc/passwd", root + b"/absolute")
    os.symlink("../ünïcödé 文件".encode(), root + b"/d/unicode")
    for name in (b"Case", b"CASE", b"case"):  # the POSIX namespace holds all three
        os.mkdir(root + b"/" + name)
        with open(root + b"/" + name + b"/which", "wb") as f:
            f.write(name)
    with open(root + b"/system-file-not-a-link", "wb") as f:
        f.write(b"IntxLNK")  # too short to be a link, whatever its attributes


def test_links_and_case_twins_match_ntfs_3g(tmp_path: Path) -> None:
    image = build(tmp_path / "ntfs.img", MKNTFS, "64M", _populate, fuse="ntfs-3g")
    with mounted(image, fuse="ntfs-3g") as root:
        kernel = kernel_tree(root)
    fs = NtfsFileSystem(FileSource(image))
    try:
        engine = engine_tree(fs)
        assert [kernel[p][0] for p in (b"/relative", b"/absolute", b"/d/unicode")] == ["link"] * 3
        assert differences(kernel, engine) == []
        for name in ("Case", "CASE", "case"):
            node = fs.lookup([name, "which"])
            assert fs.open(node).pread(10, 0) == name.encode()
        assert fs.stat(fs.lookup(["cAsE"])).name in {"Case", "CASE", "case"}  # any one, case-insensitively
    finally:
        fs.close()
