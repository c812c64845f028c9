"""VHDX ([MS-VHDX]): header facts and parent locator, dynamic and differencing disks (Hyper-V
``.avhdx`` checkpoints).

Written in-house: libvhdi 20260901 returns zeros for a not-present block of a differencing disk
when its chunk has no sector bitmap, instead of reading the parent (measured; a Hyper-V writer
need not allocate bitmaps for untouched chunks).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from openflr.guestfs.blocks import DATA, PARENT, ZERO, Layer, OpenFile, Run, Table
from openflr.guestfs.errors import CorruptImageError, UnsupportedImageError
from openflr.guestfs.formats.base import (
    MAX_VIRTUAL_SIZE,
    Folder,
    Head,
    ImageFormat,
    ImageInfo,
    resolve_parent,
)

KiB, MiB = 1024, 1024 * 1024
_BAT = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
_METADATA = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
_FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
_VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
_LOGICAL_SECTOR = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
_PARENT_LOCATOR = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
_NOT_PRESENT, _UNDEFINED, _ZERO, _UNMAPPED, _FULL, _PARTIAL = 0, 1, 2, 3, 6, 7
_BITMAP_CACHE = 8
"""Sector bitmaps (1 MiB each) kept per layer."""


class VhdxLayer(Layer):
    def __init__(self, file: OpenFile) -> None:
        self.file = file
        self.name = file.path.name
        path = str(file.path)
        if file.pread(8, 0) != b"vhdxfile":
            raise CorruptImageError(path, "not a VHDX image")
        header, regions, items = _structure(path, file.pread, file.size)
        if header[48:64] != b"\0" * 16:  # the log GUID
            raise UnsupportedImageError(
                path, "VHDX log not replayed (the disk was not closed cleanly); open it once in Hyper-V"
            )
        try:
            self.block, flags = struct.unpack_from("<II", items[_FILE_PARAMETERS])
            self.size = struct.unpack_from("<Q", items[_VIRTUAL_DISK_SIZE])[0]
            self.sector = struct.unpack_from("<I", items[_LOGICAL_SECTOR])[0]
        except (KeyError, struct.error):
            raise CorruptImageError(path, "VHDX metadata lacks required items") from None
        if self.block < MiB or self.block > 256 * MiB or self.block & (self.block - 1):
            raise CorruptImageError(path, f"VHDX block size {self.block} is impossible")
        if self.sector not in (512, 4096):
            raise CorruptImageError(path, f"VHDX logical sector size {self.sector} is impossible")
        if self.size > 64 << 40:
            raise CorruptImageError(
                path, f"VHDX virtual size {self.size} is larger than VHDX allows (64 TiB)"
            )
        self.differencing = bool(flags & 2)
        self.chunk_ratio = (1 << 23) * self.sector // self.block
        blocks = -(-self.size // self.block)
        if self.differencing:
            entries = -(-blocks // self.chunk_ratio) * (self.chunk_ratio + 1)
        else:
            entries = blocks + (blocks - 1) // self.chunk_ratio
        bat_off, bat_len = regions[_BAT]
        if entries * 8 > bat_len or bat_off + entries * 8 > file.size:
            raise CorruptImageError(path, "VHDX block allocation table is too small or outside the file")
        self.bat = Table(file, bat_off, entries, 8)
        self._bitmaps: dict[int, bytes] = {}

    def _bitmap(self, chunk: int) -> bytes:
        bm = self._bitmaps.get(chunk)
        if bm is None:
            entry = self.bat[(chunk + 1) * self.chunk_ratio + chunk]
            if entry & 7 != _FULL:
                raise CorruptImageError(
                    str(self.file.path),
                    f"VHDX partially present block without a sector bitmap (chunk {chunk})",
                )
            bm = self.file.pread(MiB, (entry >> 20) * MiB)
            if len(self._bitmaps) >= _BITMAP_CACHE:
                self._bitmaps.pop(next(iter(self._bitmaps)))
            self._bitmaps[chunk] = bm
        return bm

    def runs(self, offset: int, length: int) -> Iterator[Run]:
        end = offset + length
        absent = PARENT if self.differencing else ZERO
        size, ratio = self.block, self.chunk_ratio
        pos = offset
        while pos < end:
            block = pos // size
            within = pos - block * size
            index = block + block // ratio
            entry = self.bat[index]
            state = entry & 7
            host = (entry >> 20) * MiB
            # The blocks this request needs up to the end of the chunk (a sector bitmap entry follows
            # each chunk's blocks in the BAT), then how many of them map alike: one BAT compare.
            stop = index + min((end - 1) // size, (block // ratio + 1) * ratio - 1) - block + 1
            if state == _FULL:
                blocks = self.bat.run_of(index, stop, (size // MiB) << 20)  # one after another in the file
                if host + blocks * size > self.file.size:
                    bad = block + max(0, self.file.size - host) // size
                    raise CorruptImageError(str(self.file.path), f"VHDX block {bad} lies outside the file")
                kind, arg = DATA, (self.file.fd, host + within)
            elif state in (_ZERO, _NOT_PRESENT, _UNDEFINED, _UNMAPPED):
                blocks = self.bat.run_of(index, stop, 0)
                kind, arg = (ZERO if state == _ZERO else absent), None
            elif state == _PARTIAL and self.differencing:
                count = min(size - within, end - pos)
                yield from self._partial(pos, count, block, host)
                pos += count
                continue
            else:
                raise CorruptImageError(str(self.file.path), f"VHDX block {block} has invalid state {state}")
            count = min(blocks * size - within, end - pos)
            yield (pos, count, kind, arg)
            pos += count

    def _partial(self, pos: int, count: int, block: int, host: int) -> Iterator[Run]:
        chunk = block // self.chunk_ratio
        bitmap = self._bitmap(chunk)
        sectors_per_block = self.block // self.sector
        first_sector = (block % self.chunk_ratio) * sectors_per_block
        block_start = block * self.block
        stop = pos + count
        while pos < stop:
            s = first_sector + (pos - block_start) // self.sector
            present = bool(bitmap[s >> 3] & (1 << (s & 7)))
            run_end = min(stop, block_start + (s - first_sector + 1) * self.sector)
            while run_end < stop:
                t = first_sector + (run_end - block_start) // self.sector
                if bool(bitmap[t >> 3] & (1 << (t & 7))) != present:
                    break
                run_end = min(stop, run_end + self.sector)
            if present:
                yield (pos, run_end - pos, DATA, (self.file.fd, host + pos - block_start))
            else:
                yield (pos, run_end - pos, PARENT, None)
            pos = run_end


def read_info(image: Head) -> ImageInfo:
    """Virtual size, DataWriteGuid and parent of a VHDX image."""
    path = image.path
    header, _regions, items = _structure(str(path), image.pread, image.size)
    if _FILE_PARAMETERS not in items or _VIRTUAL_DISK_SIZE not in items:
        raise CorruptImageError(str(path), "VHDX metadata lacks file parameters or the virtual size")
    _block_size, flags = struct.unpack_from("<II", items[_FILE_PARAMETERS])
    vsize = struct.unpack_from("<Q", items[_VIRTUAL_DISK_SIZE])[0]
    if vsize > MAX_VIRTUAL_SIZE:
        raise CorruptImageError(str(path), f"VHDX virtual size {vsize} is absurd")
    parent = None
    if flags & 2:
        locator = items.get(_PARENT_LOCATOR)
        if locator is None:
            raise CorruptImageError(str(path), "differencing VHDX without a parent locator")
        entries = _locator(path, locator)
        hint = (
            entries.get("relative_path") or entries.get("absolute_win32_path") or entries.get("volume_path")
        )
        if not hint:
            raise CorruptImageError(str(path), "VHDX parent locator names no parent path")
        parent = resolve_parent(path, hint)
    return ImageInfo(path, "vhdx", vsize, parent, identity=str(uuid.UUID(bytes_le=header[32:48])))


def _structure(
    path: str, pread: Callable[[int, int], bytes], size: int
) -> tuple[bytes, dict[uuid.UUID, tuple[int, int]], dict[uuid.UUID, bytes]]:
    """(the current header, the region table, the metadata items) of a VHDX file, checked; read
    by the scan through the file's name and by the reader again through its own handle."""
    if size < MiB:
        raise CorruptImageError(path, "VHDX file shorter than its fixed 1 MiB header area")
    best: tuple[int, bytes] | None = None
    for off in (64 * KiB, 128 * KiB):
        h = pread(64, off)
        if h[:4] == b"head":
            seq = struct.unpack_from("<Q", h, 8)[0]
            if best is None or seq > best[0]:
                best = (seq, h)
    if best is None:
        raise CorruptImageError(path, "VHDX has no valid header")
    regions: dict[uuid.UUID, tuple[int, int]] = {}
    for off in (192 * KiB, 256 * KiB):
        rt = pread(64 * KiB, off)
        if rt[:4] != b"regi":
            continue
        count = struct.unpack_from("<I", rt, 8)[0]
        if count > 2047:
            raise CorruptImageError(path, "VHDX region table entry count is absurd")
        for i in range(count):
            g, r_off, r_len, _req = struct.unpack_from("<16sQII", rt, 16 + 32 * i)
            regions[uuid.UUID(bytes_le=g)] = (r_off, r_len)
        break
    if _METADATA not in regions or _BAT not in regions:
        raise CorruptImageError(path, "VHDX region table lacks the BAT or metadata region")
    meta_off, meta_len = regions[_METADATA]
    if meta_off + meta_len > size or meta_len > 64 * MiB:
        raise CorruptImageError(path, "VHDX metadata region out of bounds")
    meta = pread(min(meta_len, MiB), meta_off)
    if meta[:8] != b"metadata":
        raise CorruptImageError(path, "VHDX metadata region has a bad signature")
    count = struct.unpack_from("<H", meta, 10)[0]
    items: dict[uuid.UUID, bytes] = {}
    for i in range(min(count, 2047)):
        g, i_off, i_len, _flags, _ = struct.unpack_from("<16sIIII", meta, 32 + 32 * i)
        if i_off + i_len > len(meta):
            raise CorruptImageError(path, "VHDX metadata item out of bounds")
        items[uuid.UUID(bytes_le=g)] = meta[i_off : i_off + i_len]
    return best[1], regions, items


def _locator(path: Path, data: bytes) -> dict[str, str]:
    if len(data) < 20:
        raise CorruptImageError(str(path), "VHDX parent locator is truncated")
    count = struct.unpack_from("<H", data, 18)[0]
    out: dict[str, str] = {}
    for i in range(count):
        if 20 + 12 * (i + 1) > len(data):
            raise CorruptImageError(str(path), "VHDX parent locator is truncated")
        k_off, v_off, k_len, v_len = struct.unpack_from("<IIHH", data, 20 + 12 * i)
        if k_off + k_len > len(data) or v_off + v_len > len(data):
            raise CorruptImageError(str(path), "VHDX parent locator entry out of bounds")
        key = data[k_off : k_off + k_len].decode("utf-16-le", "replace")
        out[key] = data[v_off : v_off + v_len].decode("utf-16-le", "replace")
    return out


def open_layer(_info: ImageInfo, file: OpenFile, _files: dict[Path, OpenFile]) -> Layer:
    """The reader of one VHDX file."""
    return VhdxLayer(file)


HYPERV = Folder("hyperv", "HyperV", "Virtual Hard Disks")
"""Hyper-V VM folders: the VM's name, its disks and checkpoints in ``Virtual Hard Disks`` or beside it."""

FORMAT = ImageFormat(
    name="vhdx",
    extensions=(".vhdx", ".avhdx"),
    magic=(b"vhdxfile",),
    read_info=read_info,
    open_layer=open_layer,
    folder=HYPERV,
)
