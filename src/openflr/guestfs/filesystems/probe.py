"""Recognise a volume's file system by its signature (``identify``) and open it with the engine its kind
maps to (``OPENERS``)."""

from __future__ import annotations

import struct
import uuid as uuidlib
from collections.abc import Callable
from importlib import import_module
from typing import cast

from openflr.guestfs.blocks import BlockSource
from openflr.guestfs.errors import HoldsNoFilesError, VolumeError
from openflr.guestfs.filesystems.base import FileSystem


def identify(source: BlockSource) -> str:
    """``ntfs``, ``fat``, ``exfat``, ``ext``, ``xfs``; raises ``VolumeError`` naming what it is otherwise."""
    head = source.pread(4096, 0)
    if len(head) < 512:
        raise VolumeError("volume too small to hold a file system")
    if head[3:11] == b"NTFS    ":
        return "ntfs"
    if head[3:11] == b"EXFAT   ":
        return "exfat"
    if head[3:11] == b"-FVE-FS-":
        raise VolumeError("BitLocker-encrypted volume (no key given)")
    if head[3:7] == b"ReFS":
        raise VolumeError("ReFS volumes are not supported")
    if head[:4] == b"XFSB":
        return "xfs"
    if head[:6] == b"LUKS\xba\xbe":
        raise VolumeError("LUKS-encrypted volume (no key given)")
    if len(head) >= 4096 and head[4086:4096] in (b"SWAPSPACE2", b"SWAP-SPACE"):
        raise HoldsNoFilesError("Linux swap space")
    if head[510:512] == b"\x55\xaa" and (
        head[54:59] == b"FAT12" or head[54:59] == b"FAT16" or head[82:87] == b"FAT32"
    ):
        return "fat"
    sb = source.pread(1024, 1024)
    if len(sb) >= 58 and struct.unpack_from("<H", sb, 56)[0] == 0xEF53:
        return "ext"
    btrfs = source.pread(8, 0x10040)
    if btrfs == b"_BHRfS_M":
        raise VolumeError("btrfs is not supported yet")
    if head[510:512] == b"\x55\xaa" and head[0] in (0xEB, 0xE9):
        return "fat"
    if not head.strip(b"\0") and not sb.strip(b"\0") and not btrfs.strip(b"\0"):
        raise HoldsNoFilesError("empty (zeros where a file system would begin)")
    raise VolumeError("unknown file system")


Opener = Callable[[BlockSource], FileSystem]


def _engine(module: str, name: str) -> Callable[..., FileSystem]:
    """The engine class ``filesystems.<module>.<name>``, imported on first use (each engine loads
    its own libraries, and a guest without that file system never pays for them)."""
    return cast("Callable[..., FileSystem]", getattr(import_module(f"{__package__}.{module}"), name))


OPENERS: dict[str, Opener] = {
    "ntfs": lambda source: _engine("ntfs", "NtfsFileSystem")(source),
    "ext": lambda source: _engine("ext4", "Ext4FileSystem")(source),
    "xfs": lambda source: _engine("xfs", "XfsFileSystem")(source),
    "fat": lambda source: _engine("fat", "FatFileSystem")(source),
    "exfat": lambda source: _engine("fat", "ExfatFileSystem")(source),
}
"""Kind (from ``identify``) -> the engine that opens it. A new file system: its engine module, one
line here, its signature in ``identify`` and (optionally) its ``IDENTITIES`` reader."""


def open_filesystem(source: BlockSource) -> FileSystem:
    """The file system on ``source``, opened by the engine of its kind."""
    return OPENERS[identify(source)](source)


def open_volume(source: BlockSource) -> FileSystem:
    """``open_filesystem`` with the UUID and label read from the superblock (``identity``)."""
    kind = identify(source)
    fs = OPENERS[kind](source)
    fs.uuid, label = identity(source, kind)
    fs.label = fs.label or label
    return fs


def _ext_identity(source: BlockSource) -> tuple[str | None, str]:
    sb = source.pread(1024, 1024)
    return str(uuidlib.UUID(bytes=sb[0x68:0x78])), sb[0x78:0x88].split(b"\0", 1)[0].decode("utf-8", "replace")


def _xfs_identity(source: BlockSource) -> tuple[str | None, str]:
    sb = source.pread(512, 0)
    return str(uuidlib.UUID(bytes=sb[32:48])), sb[108:120].split(b"\0", 1)[0].decode("utf-8", "replace")


def _fat_identity(source: BlockSource) -> tuple[str | None, str]:
    bs = source.pread(512, 0)
    at, label_at = (0x43, 0x47) if bs[82:87] == b"FAT32" else (0x27, 0x2B)
    serial = struct.unpack_from("<I", bs, at)[0]
    label = bs[label_at : label_at + 11].decode("ascii", "replace").strip()
    return f"{serial >> 16:04X}-{serial & 0xFFFF:04X}", "" if label == "NO NAME" else label


def _exfat_identity(source: BlockSource) -> tuple[str | None, str]:
    bs = source.pread(512, 0)
    serial = struct.unpack_from("<I", bs, 100)[0]
    return f"{serial >> 16:04X}-{serial & 0xFFFF:04X}", _exfat_label(source, bs)


def _ntfs_identity(source: BlockSource) -> tuple[str | None, str]:
    bs = source.pread(512, 0)
    return f"{struct.unpack_from('<Q', bs, 0x48)[0]:016X}", ""


IDENTITIES: dict[str, Callable[[BlockSource], tuple[str | None, str]]] = {
    "ext": _ext_identity,
    "xfs": _xfs_identity,
    "fat": _fat_identity,
    "exfat": _exfat_identity,
    "ntfs": _ntfs_identity,
}
"""Kind -> (UUID or serial as /etc/fstab writes it, label), from the file system's own superblock."""


def identity(source: BlockSource, kind: str) -> tuple[str | None, str]:
    """(UUID or serial as /etc/fstab writes it, label) read from the file system's own superblock."""
    reader = IDENTITIES.get(kind)
    if reader is None:
        return None, ""
    try:
        return reader(source)
    except (struct.error, ValueError):
        return None, ""


def _exfat_label(source: BlockSource, boot: bytes) -> str:
    """The volume label entry (type 0x83) in the first cluster of the exFAT root directory."""
    heap, _count, root = struct.unpack_from("<III", boot, 88)
    sector_shift, cluster_shift = boot[108], boot[109]
    if not (9 <= sector_shift <= 12 and cluster_shift <= 25 and root >= 2):
        return ""
    cluster = 1 << (sector_shift + cluster_shift)
    data = source.pread(min(cluster, 64 * 1024), (heap << sector_shift) + (root - 2) * cluster)
    for at in range(0, len(data) - 31, 32):
        kind = data[at]
        if kind == 0:
            break
        if kind == 0x83:
            length = min(data[at + 1], 11)
            return data[at + 2 : at + 2 + 2 * length].decode("utf-16-le", "replace")
    return ""
