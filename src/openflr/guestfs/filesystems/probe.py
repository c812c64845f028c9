"""Recognise a volume's file system by its signature and open it with the right engine."""

from __future__ import annotations

import struct

from openflr.guestfs.blocks import BlockSource
from openflr.guestfs.errors import VolumeError
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
        raise VolumeError("Linux swap space (holds no files)")
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
    raise VolumeError("unknown file system (or an empty volume)")


def open_filesystem(source: BlockSource) -> FileSystem:
    kind = identify(source)
    if kind == "ntfs":
        from openflr.guestfs.filesystems.libyal import NtfsFileSystem

        return NtfsFileSystem(source)
    if kind in ("ext", "xfs"):
        from openflr.guestfs.filesystems.libyal import ExtFileSystem

        return ExtFileSystem(source, kind)
    from openflr.guestfs.filesystems.tsk import TskFileSystem

    return TskFileSystem(source, kind)


def identity(source: BlockSource, kind: str) -> tuple[str | None, str]:
    """(UUID or serial as /etc/fstab writes it, label) read from the file system's own superblock."""
    import uuid as uuidlib

    try:
        if kind == "ext":
            sb = source.pread(1024, 1024)
            return str(uuidlib.UUID(bytes=sb[0x68:0x78])), sb[0x78:0x88].split(b"\0", 1)[0].decode(
                "utf-8", "replace"
            )
        if kind == "xfs":
            sb = source.pread(512, 0)
            return str(uuidlib.UUID(bytes=sb[32:48])), sb[108:120].split(b"\0", 1)[0].decode(
                "utf-8", "replace"
            )
        if kind == "fat":
            bs = source.pread(512, 0)
            at, label_at = (0x43, 0x47) if bs[82:87] == b"FAT32" else (0x27, 0x2B)
            serial = struct.unpack_from("<I", bs, at)[0]
            label = bs[label_at : label_at + 11].decode("ascii", "replace").strip()
            return f"{serial >> 16:04X}-{serial & 0xFFFF:04X}", "" if label == "NO NAME" else label
        if kind == "exfat":
            bs = source.pread(512, 0)
            serial = struct.unpack_from("<I", bs, 100)[0]
            return f"{serial >> 16:04X}-{serial & 0xFFFF:04X}", ""
        if kind == "ntfs":
            bs = source.pread(512, 0)
            return f"{struct.unpack_from('<Q', bs, 0x48)[0]:016X}", ""
    except (struct.error, ValueError):
        pass
    return None, ""
