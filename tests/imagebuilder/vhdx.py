"""Write a VHDX *differencing* disk (Hyper-V .avhdx) in pure Python.

qemu-img can create plain VHDX files but not differencing ones ("Backing file not
supported for file format 'vhdx'"), so test fixtures for Hyper-V checkpoints need
this.  Layout follows [MS-VHDX] v1: file-type identifier, 2 headers, 2 region
tables, an empty 1 MiB log, a metadata region (file parameters with HasParent,
virtual size, disk id, sector sizes, parent locator) and a BAT with interleaved
sector-bitmap entries.

Changed 2 MiB blocks are stored PAYLOAD_BLOCK_FULLY_PRESENT when every sector
changed, otherwise PAYLOAD_BLOCK_PARTIALLY_PRESENT with a sector bitmap. With
garbage=True the unchanged sectors of a partially present block are filled with
0xEE, so a reader that ignores the sector bitmap returns visibly wrong data.

Adapted for openflr's fixture builder from the shared storage recipe (vhdx_diff.py).
"""

from __future__ import annotations

import os
import struct
import uuid
from typing import Any

KB = 1024
MB = 1024 * KB

BAT_GUID = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
META_GUID = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
FILE_PARAMS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
VDISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
VDISK_ID = uuid.UUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
LOGICAL_SS = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
PHYS_SS = uuid.UUID("CDA348C7-445D-4471-9CC9-E9885251C556")
PARENT_LOC = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
VHDX_PARENT_LOC_TYPE = uuid.UUID("B04AEFB7-D19E-4A81-B789-25B8E9445913")

NOT_PRESENT, FULLY_PRESENT, PARTIALLY_PRESENT, SB_PRESENT = 0, 6, 7, 6


def _crc32c_table() -> list[int]:
    t: list[int] = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_T = _crc32c_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _T[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def read_parent_info(path: str) -> dict[str, Any]:
    """Current header's DataWriteGuid + virtual size/sector size of an existing VHDX."""
    with open(path, "rb") as fh:
        best: tuple[int, uuid.UUID] | None = None
        for off in (64 * KB, 128 * KB):
            fh.seek(off)
            h = fh.read(4096)
            if h[:4] != b"head":
                continue
            seq = struct.unpack_from("<Q", h, 8)[0]
            if best is None or seq > best[0]:
                best = (seq, uuid.UUID(bytes_le=h[32:48]))
        assert best is not None, f"{path}: no VHDX header"
        fh.seek(192 * KB)
        rt = fh.read(64 * KB)
        assert rt[:4] == b"regi"
        n = struct.unpack_from("<I", rt, 8)[0]
        meta_off: int | None = None
        for i in range(n):
            g, off, ln, _req = struct.unpack_from("<16sQII", rt, 16 + 32 * i)
            if uuid.UUID(bytes_le=g) == META_GUID:
                meta_off = off
        assert meta_off is not None, f"{path}: no metadata region"
        fh.seek(meta_off)
        mt = fh.read(64 * KB)
        cnt = struct.unpack_from("<H", mt, 10)[0]
        items = {}
        for i in range(cnt):
            g, off, ln, _flags, _ = struct.unpack_from("<16sIIII", mt, 32 + 32 * i)
            fh.seek(meta_off + off)
            items[uuid.UUID(bytes_le=g)] = fh.read(ln)
        return {
            "data_write_guid": best[1],
            "size": struct.unpack("<Q", items[VDISK_SIZE])[0],
            "logical_sector_size": struct.unpack("<I", items[LOGICAL_SS])[0],
        }


def _header(seq: int, file_guid: uuid.UUID, data_guid: uuid.UUID) -> bytes:
    h = bytearray(4096)
    struct.pack_into(
        "<4sIQ16s16s16sHHIQ",
        h,
        0,
        b"head",
        0,
        seq,
        file_guid.bytes_le,
        data_guid.bytes_le,
        b"\0" * 16,
        0,
        1,
        1 * MB,
        1 * MB,
    )
    struct.pack_into("<I", h, 4, crc32c(bytes(h)))
    return bytes(h)


def _region_table(bat_off: int, bat_len: int, meta_off: int, meta_len: int) -> bytes:
    r = bytearray(64 * KB)
    struct.pack_into("<4sIII", r, 0, b"regi", 0, 2, 0)
    struct.pack_into("<16sQII", r, 16, BAT_GUID.bytes_le, bat_off, bat_len, 1)
    struct.pack_into("<16sQII", r, 48, META_GUID.bytes_le, meta_off, meta_len, 1)
    struct.pack_into("<I", r, 4, crc32c(bytes(r)))
    return bytes(r)


def _parent_locator(entries: dict[str, str]) -> bytes:
    keys = list(entries.items())
    hdr_len = 20 + 12 * len(keys)
    blob = bytearray()
    table = []
    for k, v in keys:
        kb, vb = k.encode("utf-16-le"), v.encode("utf-16-le")
        ko = hdr_len + len(blob)
        blob += kb
        vo = hdr_len + len(blob)
        blob += vb
        table.append(struct.pack("<IIHH", ko, vo, len(kb), len(vb)))
    return struct.pack("<16sHH", VHDX_PARENT_LOC_TYPE.bytes_le, 0, len(keys)) + b"".join(table) + bytes(blob)


def _metadata(block_size: int, size: int, lss: int, pss: int, disk_id: uuid.UUID, locator: bytes) -> bytes:
    m = bytearray(1 * MB)
    items = [
        (FILE_PARAMS, struct.pack("<II", block_size, 0b10), 0b100),  # HasParent
        (VDISK_SIZE, struct.pack("<Q", size), 0b110),
        (VDISK_ID, disk_id.bytes_le, 0b110),
        (LOGICAL_SS, struct.pack("<I", lss), 0b110),
        (PHYS_SS, struct.pack("<I", pss), 0b110),
        (PARENT_LOC, locator, 0b110),
    ]
    struct.pack_into("<8sHH20s", m, 0, b"metadata", 0, len(items), b"\0" * 20)
    off = 64 * KB
    for i, (g, data, flags) in enumerate(items):
        struct.pack_into("<16sIIII", m, 32 + 32 * i, g.bytes_le, off, len(data), flags, 0)
        m[off : off + len(data)] = data
        off += (len(data) + 7) // 8 * 8
    return bytes(m)


def write_diff(
    parent: str,
    p1_raw: str,
    p2_raw: str,
    child: str,
    block_size: int = 2 * MB,
    garbage: bool = True,
    relative_name: str | None = None,
    bitmap_every_chunk: bool = True,
) -> dict[str, int]:
    """Write CHILD as a differencing disk of PARENT holding exactly the sectors where P2 differs from P1.

    ``bitmap_every_chunk`` allocates a (possibly all-zero) sector bitmap for every chunk; without it a
    chunk with no partially present block has none, which libvhdi 20260901 reads as zeros instead of
    falling through to the parent (see docs/STORAGE-NOTES.md).
    """
    info = read_parent_info(parent)
    size, lss = info["size"], info["logical_sector_size"]
    assert os.path.getsize(p1_raw) == size == os.path.getsize(p2_raw), "raw sizes must equal virtual size"
    chunk_ratio = (2**23 * lss) // block_size
    pb_count = (size + block_size - 1) // block_size
    sb_count = (pb_count + chunk_ratio - 1) // chunk_ratio
    bat_entries = sb_count * (chunk_ratio + 1)
    bat_len = (bat_entries * 8 + MB - 1) // MB * MB
    meta_off, bat_off = 2 * MB, 3 * MB
    data_off = bat_off + bat_len
    bat = [0] * bat_entries
    spb = block_size // lss
    stats = {"full": 0, "partial": 0, "sectors_changed": 0}
    sb_bitmaps: dict[int, bytearray] = {}
    payload: list[tuple[int, bytes]] = []
    next_off = data_off
    with open(p1_raw, "rb") as f1, open(p2_raw, "rb") as f2:
        for b in range(pb_count):
            a, c = f1.read(block_size), f2.read(block_size)
            if a == c:
                continue
            changed = [i for i in range(spb) if a[i * lss : (i + 1) * lss] != c[i * lss : (i + 1) * lss]]
            stats["sectors_changed"] += len(changed)
            data = bytearray(c)
            if len(changed) == spb:
                state = FULLY_PRESENT
                stats["full"] += 1
            else:
                state = PARTIALLY_PRESENT
                stats["partial"] += 1
                chunk = b // chunk_ratio
                bm = sb_bitmaps.setdefault(chunk, bytearray(1 * MB))
                base_sector = (b % chunk_ratio) * spb
                cs = set(changed)
                for i in range(spb):
                    if i in cs:
                        s = base_sector + i
                        bm[s // 8] |= 1 << (s % 8)
                    elif garbage:
                        data[i * lss : (i + 1) * lss] = b"\xee" * lss
            bat[b + b // chunk_ratio] = state | ((next_off // MB) << 20)
            payload.append((next_off, bytes(data)))
            next_off += block_size
    if bitmap_every_chunk:
        for chunk in range(sb_count):
            sb_bitmaps.setdefault(chunk, bytearray(1 * MB))
    for chunk, bm in sorted(sb_bitmaps.items()):
        bat[(chunk + 1) * chunk_ratio + chunk] = SB_PRESENT | ((next_off // MB) << 20)
        payload.append((next_off, bytes(bm)))
        next_off += MB

    rel = relative_name or os.path.basename(parent)
    locator = _parent_locator(
        {
            "parent_linkage": "{{{}}}".format(str(info["data_write_guid"])),
            "relative_path": ".\\" + rel,
            "volume_path": "\\\\?\\Volume{00000000-0000-0000-0000-000000000000}\\Hyper-V\\" + rel,
            "absolute_win32_path": "C:\\Hyper-V\\" + rel,
        }
    )
    fg, dg = uuid.uuid4(), uuid.uuid4()
    with open(child, "wb") as out:
        out.truncate(next_off)
        fid = bytearray(64 * KB)
        fid[:8] = b"vhdxfile"
        cr = "openflr fixture builder".encode("utf-16-le")
        fid[8 : 8 + len(cr)] = cr
        out.seek(0)
        out.write(fid)
        out.seek(64 * KB)
        out.write(_header(1, fg, dg))
        out.seek(128 * KB)
        out.write(_header(2, fg, dg))
        rt = _region_table(bat_off, bat_len, meta_off, 1 * MB)
        out.seek(192 * KB)
        out.write(rt)
        out.seek(256 * KB)
        out.write(rt)
        out.seek(meta_off)
        out.write(_metadata(block_size, size, lss, 4096, uuid.uuid4(), locator))
        out.seek(bat_off)
        out.write(struct.pack(f"<{bat_entries}Q", *bat))
        for off, written in payload:
            out.seek(off)
            out.write(written)
    stats.update(size=size, block_size=block_size, chunk_ratio=chunk_ratio, file_size=next_off)
    return stats
