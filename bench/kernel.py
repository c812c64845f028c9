"""The kernel's own walk and read of a bench disk: a read-only loop mount (ext4, XFS) or ntfs-3g's
FUSE mount (NTFS) of a raw copy of the disk, ``os.scandir`` with ``lstat`` of every entry, and 1 MiB
``readinto`` calls of a file. Needs root (``losetup``, ``mount``).

Each measurement gets a fresh mount, so the file system's own caches (dentries, inodes, the file's
pages, the loop device's pages) start empty; the image file itself stays in the host's page cache,
as it does for openflr, which reads the same image file.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SECTOR = 512
CHUNK = 1024 * 1024
EXTENDED = (0x05, 0x0F, 0x85)
"""MBR partition types that hold other partitions, not a file system."""


def fs_at(head: bytes) -> str | None:
    """The file system whose signature opens ``head`` (the first 2 KiB or more of a volume), or None."""
    if head[3:11] == b"NTFS    ":
        return "ntfs"
    if head[:4] == b"XFSB":
        return "xfs"
    if head[1080:1082] == b"\x53\xef":
        return "ext4"
    return None


def partition_offset(path: Path, number: int | None = None) -> int:
    """Byte offset of partition ``number`` (1-based, MBR or GPT) of a raw disk image; with no number,
    of the first partition, or 0 when the disk is one file system with no partition table (an NTFS
    boot sector also ends in 55 AA, so the file system is looked for first)."""
    with open(path, "rb") as fh:
        head = fh.read(4 * SECTOR)
        if number is None and fs_at(head):
            return 0
        if head[510:512] != b"\x55\xaa":
            raise ValueError(f"{path}: no partition table and no known file system at its start")
        mbr = [head[446 + 16 * i : 462 + 16 * i] for i in range(4)]
        starts: dict[int, int] = {}
        if any(e[4] == 0xEE for e in mbr):  # protective MBR: the GPT header is at LBA 1
            gpt = head[SECTOR : 2 * SECTOR]
            if gpt[:8] != b"EFI PART":
                raise ValueError(f"{path}: protective MBR without a GPT header")
            lba, count, size = struct.unpack_from("<QII", gpt, 72)
            fh.seek(lba * SECTOR)
            table = fh.read(count * size)
            for i in range(min(count, len(table) // size)):
                entry = table[i * size : (i + 1) * size]
                if entry[:16] != bytes(16):
                    starts[i + 1] = struct.unpack_from("<Q", entry, 32)[0]
        else:
            for i, e in enumerate(mbr):
                if e[4] and e[4] not in EXTENDED:
                    starts[i + 1] = struct.unpack_from("<I", e, 8)[0]
    if not starts:
        raise ValueError(f"{path}: no partition")
    if number is None:
        number = min(starts)
    if number not in starts:
        raise ValueError(f"{path}: no partition {number} (has {sorted(starts)})")
    return starts[number] * SECTOR


def image_format(image: Path) -> str:
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", str(image)], capture_output=True, text=True, check=True
    ).stdout
    return str(json.loads(out)["format"])


def raw_disk(image: Path, tmp: Path) -> Path:
    """``image`` itself when it is raw, else a raw copy of it (and its backing chain) in ``tmp``."""
    if image_format(image) == "raw":
        return image
    out = tmp / (image.name + ".raw")
    subprocess.run(
        ["qemu-img", "convert", "-O", "raw", str(image), str(out)], check=True, capture_output=True
    )
    return out


def mount_command(kind: str, device: str, where: Path) -> list[str]:
    """Read-only, and nothing replayed: ext4 ``noload`` (no journal), XFS ``norecovery`` (no log;
    ``nouuid``, as another copy of the image may be mounted), NTFS through ntfs-3g."""
    if kind == "ntfs":
        return ["ntfs-3g", "-o", "ro", device, str(where)]
    if kind == "xfs":
        return ["mount", "-t", "xfs", "-o", "ro,norecovery,nouuid", device, str(where)]
    if kind == "ext4":
        return ["mount", "-t", "ext4", "-o", "ro,noload", device, str(where)]
    raise ValueError(f"no kernel mount for {kind!r}")


def available(kind: str) -> str:
    """Why the kernel baseline of ``kind`` cannot run here ('' when it can)."""
    if os.geteuid() != 0:
        return "needs root (losetup, mount)"
    tool = {"ntfs": "ntfs-3g", "xfs": "mount", "ext4": "mount"}[kind]
    if not shutil.which(tool) or not shutil.which("losetup"):
        return f"{tool} or losetup is missing"
    return ""


def ensure_ntfs3g() -> str:
    """Install Debian's ntfs-3g when it is missing; '' when it is there, else why not."""
    if shutil.which("ntfs-3g"):
        return ""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    got = subprocess.run(
        ["apt-get", "install", "-y", "-q", "ntfs-3g"], capture_output=True, text=True, env=env, timeout=300
    )
    return "" if shutil.which("ntfs-3g") else f"apt-get install ntfs-3g failed: {got.stderr.strip()[-200:]}"


@contextmanager
def loop_mount(image: Path, kind: str, offset: int = 0) -> Iterator[Path]:
    """The file system at ``offset`` of a raw ``image``, mounted read-only on a fresh read-only loop
    device; unmounted and detached on the way out, whatever happened."""
    where = Path(tempfile.mkdtemp(prefix="bench-kernel-"))
    device = ""
    try:
        device = subprocess.run(
            ["losetup", "-r", "-f", "--show", "-o", str(offset), str(image)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        subprocess.run(mount_command(kind, device, where), check=True, capture_output=True, timeout=120)
        try:
            yield where
        finally:
            subprocess.run(["umount", str(where)], check=True, capture_output=True, timeout=120)
    finally:
        if device:
            # A FUSE daemon may still hold the device a moment after umount: retry, then leave it
            # to the kernel's autoclear (losetup -d of a busy device sets it).
            for _ in range(20):
                if subprocess.run(["losetup", "-d", device], capture_output=True).returncode == 0:
                    break
                time.sleep(0.1)
        where.rmdir()


def walk(folder: Path) -> int:
    """Entries of ``folder``, each ``lstat``-ed (``DirEntry.stat(follow_symlinks=False)``)."""
    count = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            entry.stat(follow_symlinks=False)
            count += 1
    return count


def read(path: Path) -> int:
    """Bytes of ``path`` read in 1 MiB ``readinto`` calls."""
    buffer = bytearray(CHUNK)
    done = 0
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buffer):
            done += n
    return done


def timed_walk(image: Path, kind: str, folder: str, offset: int = 0) -> tuple[int, float, float]:
    """(entries, seconds, seconds again) of the kernel's walk of ``folder`` on a fresh mount, then
    once more on the same mount with its caches warm (the mount is not timed)."""
    with loop_mount(image, kind, offset) as root:
        start = time.perf_counter()
        count = walk(root / folder.lstrip("/"))
        cold = time.perf_counter() - start
        start = time.perf_counter()
        walk(root / folder.lstrip("/"))
        return count, cold, time.perf_counter() - start


def timed_read(image: Path, kind: str, path: str, offset: int = 0) -> tuple[int, float, float]:
    """(bytes, seconds, seconds again) of the kernel's read of ``path`` on a fresh mount, then once
    more from the page cache (the mount is not timed)."""
    with loop_mount(image, kind, offset) as root:
        start = time.perf_counter()
        size = read(root / path.lstrip("/"))
        cold = time.perf_counter() - start
        start = time.perf_counter()
        read(root / path.lstrip("/"))
        return size, cold, time.perf_counter() - start
