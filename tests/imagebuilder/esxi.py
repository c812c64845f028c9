"""Writers for ESXi snapshot deltas, which qemu-img reads but cannot create.

- ``vmfsSparse`` (``COWD`` magic, ``-delta.vmdk``): grain directory -> 4096-entry grain tables of
  32-bit sector offsets.
- ``seSparse`` (``-sesparse.vmdk``, VMFS 6): const header (magic 0xcafebabe, version 2.1),
  volatile header (0xcafecafe), grain directory of typed 64-bit entries pointing at 4096-entry
  grain tables of typed 64-bit grain entries, 4 KiB grains.

Each delta holds every grain where the new point differs from the previous one, and a descriptor
file names it. Written images are checked with ``qemu-img compare`` by the builder.
"""

from __future__ import annotations

import struct
from pathlib import Path

SECTOR = 512


def _changed_grains(before: Path, after: Path, grain: int) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    with open(before, "rb") as fa, open(after, "rb") as fb:
        index = 0
        while True:
            a, b = fa.read(grain), fb.read(grain)
            if not b:
                return out
            if a != b:
                out.append((index, b.ljust(grain, b"\0")))
            index += 1


def write_cowd(before: Path, after: Path, out: Path, grain_sectors: int = 8) -> None:
    size = after.stat().st_size
    sectors = size // SECTOR
    grain = grain_sectors * SECTOR
    per_table = 4096
    grains = -(-sectors // grain_sectors)
    gd_entries = -(-grains // per_table)
    gd_sector = 4
    gd_sectors = -(-gd_entries * 4 // SECTOR)
    changed = _changed_grains(before, after, grain)
    tables: dict[int, list[int]] = {}
    next_sector = gd_sector + gd_sectors
    table_sectors = per_table * 4 // SECTOR
    table_at: dict[int, int] = {}
    for index, _ in changed:
        t = index // per_table
        if t not in table_at:
            table_at[t] = next_sector
            tables[t] = [0] * per_table
            next_sector += table_sectors
    body = bytearray()
    for index, data in changed:
        tables[index // per_table][index % per_table] = next_sector
        body += data
        next_sector += grain_sectors
    header = struct.pack(
        "<4sIIIIIIIIII",
        b"COWD",
        1,
        3,
        sectors,
        grain_sectors,
        gd_sector,
        gd_entries,
        next_sector,
        sectors // (16 * 63) or 1,
        16,
        63,
    )
    gd = [table_at.get(t, 0) for t in range(gd_entries)]
    with open(out, "wb") as fh:
        fh.write(header.ljust(gd_sector * SECTOR, b"\0"))
        fh.write(struct.pack(f"<{gd_entries}I", *gd).ljust(gd_sectors * SECTOR, b"\0"))
        for t in sorted(table_at):
            fh.seek(table_at[t] * SECTOR)
            fh.write(struct.pack(f"<{per_table}I", *tables[t]))
        fh.seek((gd_sector + gd_sectors + len(table_at) * table_sectors) * SECTOR)
        fh.write(body)


SE_MAGIC, SE_VOLATILE_MAGIC = 0xCAFEBABE, 0xCAFECAFE
SE_TABLE, SE_ALLOCATED = 0x1000000000000000, 0x3000000000000000


def write_sesparse(before: Path, after: Path, out: Path) -> None:
    size = after.stat().st_size
    capacity = size // SECTOR
    grain_sectors, table_sectors = 8, 64
    grain = grain_sectors * SECTOR
    per_table = table_sectors * SECTOR // 8
    grains_total = -(-capacity // grain_sectors)
    gd_entries = -(-grains_total // per_table)
    gd_offset = 8
    gd_sectors = -(-gd_entries * 8 // SECTOR)
    changed = _changed_grains(before, after, grain)
    table_index: dict[int, int] = {}
    for index, _ in changed:
        table_index.setdefault(index // per_table, len(table_index))
    tables_offset = gd_offset + gd_sectors
    tables_sectors = len(table_index) * table_sectors
    grains_offset = tables_offset + tables_sectors
    tables = {t: [0] * per_table for t in table_index}
    for cluster, (index, _) in enumerate(changed):
        entry = SE_ALLOCATED | ((cluster & 0xFFF) << 48) | (cluster >> 12)
        tables[index // per_table][index % per_table] = entry
    const = struct.pack(
        "<26Q",
        SE_MAGIC,
        0x200000001,
        capacity,
        grain_sectors,
        table_sectors,
        0,
        0,
        0,
        0,
        0,
        1,
        1,  # volatile header
        2,
        1,
        3,
        4,  # journal header, journal
        gd_offset,
        gd_sectors,
        tables_offset,
        tables_sectors,
        grains_offset + len(changed) * grain_sectors,
        0,  # free bitmap
        grains_offset + len(changed) * grain_sectors,
        0,  # back map
        grains_offset,
        len(changed) * grain_sectors,
    ).ljust(SECTOR, b"\0")
    volatile = struct.pack("<4Q", SE_VOLATILE_MAGIC, 0, 1, 0).ljust(SECTOR, b"\0")
    gd = [0] * gd_entries
    for t, i in table_index.items():
        gd[t] = SE_TABLE | i
    with open(out, "wb") as fh:
        fh.write(const + volatile)
        fh.seek(gd_offset * SECTOR)
        fh.write(struct.pack(f"<{gd_entries}Q", *gd).ljust(gd_sectors * SECTOR, b"\0"))
        for t, i in table_index.items():
            fh.seek((tables_offset + i * table_sectors) * SECTOR)
            fh.write(struct.pack(f"<{per_table}Q", *tables[t]))
        fh.seek(grains_offset * SECTOR)
        for _, data in changed:
            fh.write(data)
        fh.truncate(max(fh.tell(), (grains_offset + len(changed) * grain_sectors) * SECTOR))


def descriptor(
    create_type: str,
    sectors: int,
    extent_kind: str,
    extent_file: str,
    parent: str | None,
    cid: int,
    parent_cid: int | None,
) -> str:
    lines = [
        "# Disk DescriptorFile",
        "version=1",
        'encoding="UTF-8"',
        f"CID={cid:08x}",
        f"parentCID={'ffffffff' if parent_cid is None else f'{parent_cid:08x}'}",
        f'createType="{create_type}"',
    ]
    if parent:
        lines.append(f'parentFileNameHint="{parent}"')
    lines += [
        "",
        "# Extent description",
        f'RW {sectors} {extent_kind} "{extent_file}"',
        "",
        "# The Disk Data Base",
        "#DDB",
        "",
        'ddb.adapterType = "lsilogic"',
        f'ddb.geometry.cylinders = "{max(1, sectors // (255 * 63))}"',
        'ddb.geometry.heads = "255"',
        'ddb.geometry.sectors = "63"',
        'ddb.virtualHWVersion = "19"',
    ]
    return "\n".join(lines) + "\n"
