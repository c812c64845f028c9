"""Images written and read back by the Linux kernel's own file systems (loop mounts; tests run as
root), and the tree an engine shows, in one comparable form."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat as st
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from openflr.guestfs.blocks import BlockSource
from openflr.guestfs.filesystems.base import FileSystem, Node
from openflr.guestfs.filesystems.inodefs import InodeFileSystem
from openflr.guestfs.filesystems.names import name_to_bytes

Facts = tuple[str, int, int | None, str, int]
"""(kind, size, mtime in ns, link target or content sha256, inode number)."""


class FileSource(BlockSource):
    """A raw image file as a block source."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDONLY)
        self.size = os.fstat(self.fd).st_size

    def pread(self, length: int, offset: int) -> bytes:
        return os.pread(self.fd, length, offset)

    def close(self) -> None:
        os.close(self.fd)


@contextlib.contextmanager
def mounted(image: Path, *, writable: bool = False, fuse: str = "") -> Iterator[bytes]:
    """The kernel's mount of ``image`` (read-only unless ``writable``), as a bytes path; with
    ``fuse``, that FUSE driver's mount instead (``ntfs-3g``)."""
    point = image.with_suffix(".mnt")
    point.mkdir(exist_ok=True)
    options = ("loop" if not fuse else "rw") if writable else ("ro,loop" if not fuse else "ro")
    command = [fuse, "-o", options] if fuse else ["mount", "-o", options]
    subprocess.run([*command, str(image), str(point)], check=True, capture_output=True)
    try:
        yield os.fsencode(point)
    finally:
        subprocess.run(["umount", str(point)], check=True)
        point.rmdir()


def build(image: Path, mkfs: list[str], size: str, populate: Callable[[bytes], None], fuse: str = "") -> Path:
    """Make the file system with ``mkfs`` on a sparse file and fill it through a kernel mount (or
    the ``fuse`` driver's)."""
    subprocess.run(["truncate", "-s", size, str(image)], check=True)
    subprocess.run([*mkfs, str(image)], check=True, capture_output=True)
    with mounted(image, writable=True, fuse=fuse) as root:
        populate(root)
    return image


def kernel_tree(root: bytes) -> dict[bytes, Facts]:
    """Every entry below ``root`` as the kernel reads it, keyed by its path in bytes. Folders are
    opened relative to their parent, so paths may be longer than PATH_MAX."""
    found: dict[bytes, Facts] = {}

    def visit(folder: bytes, fd: int, stack: list[tuple[bytes, int]]) -> None:
        for entry in os.scandir(fd):
            found.update(_kernel_entry(folder, fd, entry, stack))

    _walk_folders(root, visit)
    return found


def _walk_folders(root: bytes, visit: Callable[[bytes, int, list[tuple[bytes, int]]], None]) -> None:
    """Call ``visit(folder, fd, stack)`` for every folder below ``root`` (``b""`` for the top), each
    opened relative to its parent; ``visit`` pushes the subfolders it finds (path, open fd) on
    ``stack``, and every fd is closed after its visit."""
    stack = [(b"", os.open(root, os.O_RDONLY | os.O_DIRECTORY))]
    while stack:
        folder, fd = stack.pop()
        try:
            visit(folder, fd, stack)
        finally:
            os.close(fd)


def _kernel_entry(
    folder: bytes, fd: int, entry: os.DirEntry[str], stack: list[tuple[bytes, int]]
) -> dict[bytes, Facts]:
    name = os.fsencode(entry.name)
    path = folder + b"/" + name
    info = os.stat(name, dir_fd=fd, follow_symlinks=False)
    if st.S_ISLNK(info.st_mode):
        target = os.readlink(name, dir_fd=fd)
        return {path: ("link", info.st_size, info.st_mtime_ns, target.hex(), info.st_ino)}
    if st.S_ISDIR(info.st_mode):
        stack.append((path, os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)))
        return {path: ("dir", 0, info.st_mtime_ns, "", info.st_ino)}
    if not st.S_ISREG(info.st_mode):
        return {}  # fifos, sockets, devices: nothing to restore
    with os.fdopen(os.open(name, os.O_RDONLY, dir_fd=fd), "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return {path: ("file", info.st_size, info.st_mtime_ns, digest, info.st_ino)}


def engine_tree(fs: FileSystem) -> dict[bytes, Facts]:
    """Every entry the engine shows, in the form of ``kernel_tree``."""
    found: dict[bytes, Facts] = {}
    stack: list[tuple[bytes, Node]] = [(b"", fs.root())]
    while stack:
        folder, node = stack.pop()
        for entry in fs.scandir(node):
            path = folder + b"/" + name_to_bytes(entry.name)
            assert entry.ident is not None
            if entry.is_dir:
                found[path] = ("dir", 0, entry.mtime_ns, "", entry.ident)
                stack.append((path, entry.node))
                continue
            data = fs.open(entry.node).pread(entry.size, 0)
            assert len(data) == entry.size, path
            if entry.is_link:
                found[path] = ("link", entry.size, entry.mtime_ns, data.hex(), entry.ident)
            else:
                found[path] = (
                    "file",
                    entry.size,
                    entry.mtime_ns,
                    hashlib.sha256(data).hexdigest(),
                    entry.ident,
                )
    return found


def differences(kernel: dict[bytes, Facts], engine: dict[bytes, Facts]) -> list[str]:
    """What differs between two trees, one line per path (empty when they agree)."""
    lines = [f"only the kernel shows {p!r}: {kernel[p]}" for p in sorted(kernel.keys() - engine.keys())]
    lines += [f"only openflr shows {p!r}: {engine[p]}" for p in sorted(engine.keys() - kernel.keys())]
    lines += [
        f"{p!r}: kernel {kernel[p]} openflr {engine[p]}"
        for p in sorted(kernel.keys() & engine.keys())
        if kernel[p] != engine[p]
    ]
    return lines


def kernel_folder_sizes(root: bytes) -> dict[bytes, int]:
    """How many entries the kernel lists in each folder below ``root`` (every kind, fifos too),
    keyed by the folder's path in the form of ``kernel_tree`` (``b""`` for the top)."""
    sizes: dict[bytes, int] = {}

    def visit(folder: bytes, fd: int, stack: list[tuple[bytes, int]]) -> None:
        names = os.listdir(fd)
        sizes[folder] = len(names)
        for name in names:
            if st.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                stack.append((folder + b"/" + os.fsencode(name), os.open(name, os.O_RDONLY, dir_fd=fd)))

    _walk_folders(root, visit)
    return sizes


PARTS = ((0, 1), (0, 100), (37, 1500), (2990, 3010), (5, None))
"""(start, stop) positions of the parts of each folder read before its whole listing."""


def folder_differences(open_fs: Callable[[], InodeFileSystem], sizes: dict[bytes, int]) -> list[str]:
    """Where an inode file system's quick paths disagree with the kernel or with its own whole
    listing: each folder's count (read without its listing, on a newly opened file system) against
    the kernel's, and its ``PARTS`` read before the listing against the same parts after it."""
    lines = []
    for path, size in sorted(sizes.items()):
        fs = open_fs()
        try:
            parts = [os.fsdecode(p) for p in path.split(b"/")[1:]]
            node = fs.lookup(parts) if parts else fs.root()
            assert node is not None, path
            fs.check_dir(node)
            counted = fs.counts(node)[0]
            if counted != size:
                lines.append(f"{path!r}: the kernel lists {size} entries, openflr counts {counted}")
            early = [[e.name for e in fs.scandir(node, a, b)] for a, b in PARTS]
            fs.listing(node)
            late = [[e.name for e in fs.scandir(node, a, b)] for a, b in PARTS]
            lines += [
                f"{path!r}: positions {a}:{b} read early {e[:3]}..., after the listing {w[:3]}..."
                for (a, b), e, w in zip(PARTS, early, late, strict=True)
                if e != w
            ]
        finally:
            fs.close()
    return lines
