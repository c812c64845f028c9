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
    with open(root + b"/$badclus", "wb") as f:  # a user's file, not the metadata file $BadClus
        f.write(b"mine")
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
        assert fs.open(fs.lookup(["$badclus"])).pread(10, 0) == b"mine"
        for metafile in (["$BadClus"], ["$MFT"], ["$mft"], ["$Extend", "$Quota"], ["$LogFile"]):
            assert fs.lookup(metafile) is None, metafile  # never listed, never found: deleted data
    finally:
        fs.close()


def test_times_over_the_whole_range_match_ntfs_3g(tmp_path: Path) -> None:
    """From 1601-01-01 (FILETIME 0, a time like any other) to 30828, in 100 ns steps."""
    times = [-11_644_473_600 * 10**9, -2_000_000_000 * 10**9 + 100, 13_569_465_600 * 10**9 + 1_234_500]

    def populate(root: bytes) -> None:
        for i, ns in enumerate(times):
            path = root + b"/t%d" % i
            open(path, "wb").close()
            os.utime(path, ns=(ns, ns))

    image = build(tmp_path / "ntfs.img", MKNTFS, "32M", populate, fuse="ntfs-3g")
    with mounted(image, fuse="ntfs-3g") as root:
        kernel = kernel_tree(root)
    fs = NtfsFileSystem(FileSource(image))
    try:
        engine = engine_tree(fs)
    finally:
        fs.close()
    assert [engine[b"/t%d" % i][2] for i in range(3)] == times  # as written: the on-disk FILETIMEs
    # ntfs-3g's own error: a time before 1970 with a fraction of a second reads back truncated
    # toward 1970 (one second late, the fraction lost); the bytes on disk hold what was written.
    facts = kernel[b"/t1"]
    assert facts[2] == -1_999_999_999 * 10**9
    kernel[b"/t1"] = (facts[0], facts[1], times[1], *facts[3:])
    assert differences(kernel, engine) == []
