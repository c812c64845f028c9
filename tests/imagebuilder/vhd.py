"""A legacy VHD differencing-disk writer (qemu-img creates dynamic VHDs but not differencing ones)."""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

SECTOR = 512
BLOCK = 2 * 1024 * 1024


def _checksum(data: bytes) -> int:
    return ~sum(data) & 0xFFFFFFFF


def _footer(size: int, disk_type: int, data_offset: int) -> bytes:
    cylinders, heads, sectors = min(65535, size // (SECTOR * 16 * 63)), 16, 63
    f = bytearray(SECTOR)
    struct.pack_into(
        ">8sIIQI4sI4sQQHBBI",
        f,
        0,
        b"conectix",
        2,
        0x00010000,
        data_offset,
        0,
        b"ofl ",
        0x00010000,
        b"Wi2k",
        size,
        size,
        cylinders,
        heads,
        sectors,
        disk_type,
    )
    f[68:84] = uuid.uuid4().bytes
    struct.pack_into(">I", f, 64, _checksum(bytes(f)))
    return bytes(f)


def write_diff(parent: Path, before: Path, after: Path, child: Path) -> None:
    size = after.stat().st_size
    entries = -(-size // BLOCK)
    bitmap_bytes = BLOCK // SECTOR // 8
    bat_offset = 3 * SECTOR
    bat_bytes = -(-entries * 4 // SECTOR) * SECTOR
    dyn = bytearray(1024)
    struct.pack_into(
        ">8sQQIII", dyn, 0, b"cxsparse", 0xFFFFFFFFFFFFFFFF, bat_offset, 0x00010000, entries, BLOCK
    )
    name = parent.name.encode("utf-16-be")[:510]
    dyn[64 : 64 + len(name)] = name
    struct.pack_into(">I", dyn, 36, _checksum(bytes(dyn)))
    bat = [0xFFFFFFFF] * entries
    blocks: list[bytes] = []
    next_sector = (bat_offset + bat_bytes) // SECTOR
    with open(before, "rb") as fa, open(after, "rb") as fb:
        for b in range(entries):
            x, y = fa.read(BLOCK), fb.read(BLOCK)
            if x == y:
                continue
            bitmap = bytearray(bitmap_bytes)
            for s in range(len(y) // SECTOR):
                if x[s * SECTOR : (s + 1) * SECTOR] != y[s * SECTOR : (s + 1) * SECTOR]:
                    bitmap[s >> 3] |= 0x80 >> (s & 7)
            data = bytearray(y.ljust(BLOCK, b"\0"))
            for s in range(BLOCK // SECTOR):  # sectors not marked come from the parent: fill with garbage
                if not bitmap[s >> 3] & (0x80 >> (s & 7)):
                    data[s * SECTOR : (s + 1) * SECTOR] = b"\xee" * SECTOR
            bat[b] = next_sector
            blocks.append(bytes(bitmap) + bytes(data))
            next_sector += (bitmap_bytes + BLOCK) // SECTOR
    footer = _footer(size, 4, SECTOR)
    with open(child, "wb") as fh:
        fh.write(footer)
        fh.write(bytes(dyn))
        fh.write(struct.pack(f">{entries}I", *bat).ljust(bat_bytes, b"\0"))
        for block in blocks:
            fh.write(block)
        fh.write(footer)
