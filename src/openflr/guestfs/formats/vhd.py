"""Legacy VHD (Virtual PC / Hyper-V gen 1): header facts and parent name; fixed, dynamic and
differencing disks."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from pathlib import Path

from openflr.guestfs.blocks import DATA, PARENT, ZERO, Layer, OpenFile, Run, Table
from openflr.guestfs.errors import CorruptImageError, UnsupportedImageError
from openflr.guestfs.formats.base import MAX_VIRTUAL_SIZE, Head, ImageFormat, ImageInfo, resolve_parent
from openflr.guestfs.formats.vhdx import HYPERV

SECTOR = 512
_UNUSED = 0xFFFFFFFF
_BITMAP_CACHE = 256
_MAX_SIZE = 2040 * 1024**3
"""VHD's own limit is 2040 GiB; anything larger is a damaged footer."""


class VhdLayer(Layer):
    def __init__(self, file: OpenFile) -> None:
        self.file = file
        self.name = file.path.name
        path = str(file.path)
        footer = _footer(path, file.pread, file.size)
        data_offset = struct.unpack_from(">Q", footer, 16)[0]
        self.size = struct.unpack_from(">Q", footer, 48)[0]
        self.disk_type = struct.unpack_from(">I", footer, 60)[0]
        if self.size > _MAX_SIZE:
            raise CorruptImageError(path, f"VHD virtual size {self.size} is absurd")
        if self.disk_type == 2:  # fixed: the data, then the footer
            if self.size > file.size - 512:
                raise CorruptImageError(path, "fixed VHD shorter than its size")
            return
        if self.disk_type not in (3, 4):
            raise UnsupportedImageError(path, f"VHD disk type {self.disk_type}")
        dyn = file.pread(1024, data_offset)
        if dyn[:8] != b"cxsparse":
            raise CorruptImageError(path, "VHD dynamic header has a bad signature")
        table_offset, _version, entries, block_size = struct.unpack_from(">QIII", dyn, 16)
        if not block_size or block_size % SECTOR or block_size > 256 * 1024 * 1024:
            raise CorruptImageError(path, f"VHD block size {block_size} is impossible")
        if entries * block_size < self.size or table_offset + entries * 4 > file.size:
            raise CorruptImageError(path, "VHD block table does not cover the disk or lies outside the file")
        self.block = block_size
        self.bitmap_bytes = -(-(block_size // SECTOR) // 8 // SECTOR) * SECTOR
        self.bat = Table(file, table_offset, entries, 4, big_endian=True)
        self._bitmaps: dict[int, bytes] = {}

    def _bitmap(self, block: int, sector: int) -> bytes:
        bm = self._bitmaps.get(block)
        if bm is None:
            bm = self.file.pread(self.bitmap_bytes, sector * SECTOR)
            if len(self._bitmaps) >= _BITMAP_CACHE:
                self._bitmaps.pop(next(iter(self._bitmaps)))
            self._bitmaps[block] = bm
        return bm

    def runs(self, offset: int, length: int) -> Iterator[Run]:
        if self.disk_type == 2:
            yield (offset, length, DATA, (self.file.fd, offset))
            return
        end = offset + length
        absent = PARENT if self.disk_type == 4 else ZERO
        pos = offset
        while pos < end:
            block = pos // self.block
            within = pos - block * self.block
            count = min(self.block - within, end - pos)
            if block >= len(self.bat):
                yield (pos, count, absent, None)
                pos += count
                continue
            sector = self.bat[block]
            if sector == _UNUSED:
                yield (pos, count, absent, None)
                pos += count
                continue
            data_start = sector * SECTOR + self.bitmap_bytes
            if self.disk_type == 3:
                yield (pos, count, DATA, (self.file.fd, data_start + within))
                pos += count
                continue
            bitmap = self._bitmap(block, sector)
            # Differencing: per-sector presence bits (MSB first), grouped into runs.
            stop = pos + count
            while pos < stop:
                s = (pos - block * self.block) // SECTOR
                present = bool(bitmap[s >> 3] & (0x80 >> (s & 7)))
                run_end = min(stop, block * self.block + (s + 1) * SECTOR)
                while run_end < stop:
                    t = (run_end - block * self.block) // SECTOR
                    if bool(bitmap[t >> 3] & (0x80 >> (t & 7))) != present:
                        break
                    run_end = min(stop, run_end + SECTOR)
                if present:
                    yield (pos, run_end - pos, DATA, (self.file.fd, data_start + pos - block * self.block))
                else:
                    yield (pos, run_end - pos, PARENT, None)
                pos = run_end


def _footer(path: str, pread: Callable[[int, int], bytes], size: int) -> bytes:
    """The footer: the last 512 bytes, or its copy at the start (dynamic disks keep both)."""
    for offset in (size - 512, 0):
        footer = pread(512, offset) if offset >= 0 else b""
        if footer[:8] == b"conectix":
            return footer
    raise CorruptImageError(path, "not a VHD image (no footer)")


def _has_footer(h: Head) -> bool:
    """The ``conectix`` footer in the last 512 bytes (a fixed VHD has it there only)."""
    return h.tail().startswith(b"conectix")


def read_info(h: Head) -> ImageInfo:
    """Virtual size and parent of a VHD image (the footer at the end, or its copy at the start)."""
    path, size = h.path, h.size
    footer = _footer(str(path), h.pread, size)
    data_offset = struct.unpack_from(">Q", footer, 16)[0]
    current_size = struct.unpack_from(">Q", footer, 48)[0]
    disk_type = struct.unpack_from(">I", footer, 60)[0]
    if current_size > MAX_VIRTUAL_SIZE:
        raise CorruptImageError(str(path), "VHD virtual size is absurd")
    if disk_type not in (2, 3, 4):
        raise UnsupportedImageError(str(path), f"VHD disk type {disk_type}")
    parent = None
    if disk_type == 4:
        if data_offset + 1024 > size:
            raise CorruptImageError(str(path), "VHD dynamic header out of bounds")
        dyn = h.pread(1024, data_offset)
        if dyn[:8] != b"cxsparse":
            raise CorruptImageError(str(path), "VHD dynamic header has a bad signature")
        name = dyn[64:576].decode("utf-16-be", "replace").split("\0", 1)[0]
        parent = resolve_parent(path, name)
    return ImageInfo(path, "vhd", current_size, parent)


def open_layer(_info: ImageInfo, file: OpenFile, _files: dict[Path, OpenFile]) -> Layer:
    """The reader of one VHD file."""
    return VhdLayer(file)


FORMAT = ImageFormat(
    name="vhd",
    extensions=(".vhd", ".avhd"),
    magic=(b"conectix",),
    read_info=read_info,
    open_layer=open_layer,
    sniff=_has_footer,
    folder=HYPERV,
)
