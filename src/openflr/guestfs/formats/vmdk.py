"""VMDK: descriptors over extents, each flat, hosted sparse (incl. streamOptimized), ESXi vmfsSparse
(COWD, ``-delta.vmdk``) or ESXi seSparse (``-sesparse.vmdk``, the default for snapshots on VMFS 6).

libvmdk reads the first three but rejects seSparse ("unsupported extent type"), and a chain on an
ESXi datastore mixes them (a seSparse delta over a ``-flat.vmdk`` base), so all of them live here
behind one ``Layer``; the descriptor (text, or embedded in a sparse extent) is parsed here too.
Structure facts from VMware's open-vmdk headers and qemu's reader.
"""

from __future__ import annotations

import re
import struct
import zlib
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from openflr.guestfs.blocks import BYTES, DATA, PARENT, ZERO, Layer, OpenFile, Run, Table, progression
from openflr.guestfs.errors import CorruptImageError, UnsupportedImageError
from openflr.guestfs.formats.base import (
    MAX_VIRTUAL_SIZE,
    Extent,
    Head,
    ImageFormat,
    ImageInfo,
    real,
    resolve_parent,
)

SECTOR = 512
_TABLE_CACHE = 256
_GD_AT_END = 0xFFFFFFFFFFFFFFFF
_MAX_GRAIN_SECTORS = 0x1000
"""2 MiB grains (VMware writes 64 KiB): a grain is decompressed whole, so its size bounds memory."""
_MAX_GTES = 4096
"""Entries of one grain table (VMware writes 512): a table is read whole."""
_MAX_EXTENTS = 4096
MAX_DESCRIPTOR = 64 * 1024


class _Extent:
    """One extent's mapping of its own byte range [0, size)."""

    size: int

    def runs(self, offset: int, length: int) -> Iterator[Run]:
        raise NotImplementedError


class _FlatExtent(_Extent):
    def __init__(self, file: OpenFile, size: int, start: int) -> None:
        self.file, self.size, self.start = file, size, start

    def runs(self, offset: int, length: int) -> Iterator[Run]:
        have = max(0, min(length, self.file.size - self.start - offset))
        if have:
            yield (offset, have, DATA, (self.file.fd, self.start + offset))
        if have < length:
            yield (offset + have, length - have, ZERO, None)


class _ZeroExtent(_Extent):
    def __init__(self, size: int) -> None:
        self.size = size

    def runs(self, offset: int, length: int) -> Iterator[Run]:
        yield (offset, length, ZERO, None)


class _GrainTableExtent(_Extent):
    """Grain directory -> grain tables -> grains: the shape shared by the sparse variants."""

    file: OpenFile
    grain: int  # bytes per grain
    per_table: int  # entries per grain table
    directory: Table

    def __init__(self) -> None:
        self._tables: dict[int, array[int] | None] = {}

    def load_table(self, index: int) -> array[int] | None:
        raise NotImplementedError

    def span(self, table: array[int], i: int, stop: int) -> tuple[int, int, int, object]:
        """(grains, kind, host byte offset of the first, extra) of the run of grains ``table[i:stop]``
        starts with: grains that map alike (one after another in the file, or all zeros or all in the
        parent). A compressed grain is a run of one."""
        raise NotImplementedError

    def table(self, index: int) -> array[int] | None:
        if index in self._tables:
            return self._tables[index]
        table = self.load_table(index) if index < len(self.directory) else None
        if len(self._tables) >= _TABLE_CACHE:
            self._tables.pop(next(iter(self._tables)))
        self._tables[index] = table
        return table

    def runs(self, offset: int, length: int) -> Iterator[Run]:
        end = offset + length
        pos = offset
        grain, per = self.grain, self.per_table
        reach = grain * per  # bytes one grain table maps
        while pos < end:
            index = pos // grain
            number, i = divmod(index, per)
            table = self.table(number)
            if table is None:  # no grain table: everything it would map is in the parent
                count = min(reach - pos % reach, end - pos)
                yield (pos, count, PARENT, None)
                pos += count
                continue
            within = pos - index * grain
            stop = min(per, i + (end - 1) // grain - index + 1)
            grains, kind, host, extra = self.span(table, i, stop)
            count = min(grains * grain - within, end - pos)
            if kind == DATA:
                yield (pos, count, DATA, (self.file.fd, host + within))
            elif kind == BYTES:
                yield (pos, count, BYTES, (extra, within))
            else:
                yield (pos, count, kind, None)
            pos += count


class _HostedSparse(_GrainTableExtent):
    """``KDMV`` sparse extents (monolithicSparse, twoGbMaxExtentSparse, streamOptimized)."""

    def __init__(self, file: OpenFile) -> None:
        super().__init__()
        self.file = file
        path = str(file.path)
        head = file.pread(512, 0)
        if head[:4] != b"KDMV":
            raise CorruptImageError(path, "not a hosted sparse VMDK extent")
        hdr = head
        gd_offset = struct.unpack_from("<Q", hdr, 56)[0]
        if gd_offset == _GD_AT_END:  # streamOptimized written in one pass: the footer holds the header
            hdr = file.pread(512, file.size - 1024)
            if hdr[:4] != b"KDMV":
                raise CorruptImageError(path, "streamOptimized VMDK without a valid footer")
            gd_offset = struct.unpack_from("<Q", hdr, 56)[0]
        version, flags, capacity, grain_sectors = struct.unpack_from("<IIQQ", hdr, 4)
        per_table = struct.unpack_from("<I", hdr, 44)[0]
        compress = struct.unpack_from("<H", hdr, 77)[0]
        if version not in (1, 2, 3):
            raise UnsupportedImageError(path, f"VMDK sparse version {version}")
        if not grain_sectors or grain_sectors & (grain_sectors - 1) or grain_sectors > _MAX_GRAIN_SECTORS:
            raise CorruptImageError(
                path, f"VMDK sparse header has an impossible grain size ({grain_sectors})"
            )
        if not per_table or per_table > _MAX_GTES:
            raise CorruptImageError(
                path, f"VMDK sparse header has an impossible grain table size ({per_table})"
            )
        if capacity * SECTOR > MAX_VIRTUAL_SIZE:
            raise CorruptImageError(path, f"VMDK sparse extent capacity {capacity} sectors is absurd")
        self.size = capacity * SECTOR
        self.grain = grain_sectors * SECTOR
        self.per_table = per_table
        self.zero_grains = bool(flags & 4)
        self.compressed = bool(flags & 0x10000) and compress == 1
        self.markers = bool(flags & 0x20000)
        entries = -(-capacity // (grain_sectors * per_table))
        if gd_offset * SECTOR + entries * 4 > file.size:
            raise CorruptImageError(path, "VMDK grain directory lies outside the file")
        self.directory = Table(file, gd_offset * SECTOR, entries, 4)

    def load_table(self, index: int) -> array[int] | None:
        sector = self.directory[index]
        if sector == 0:
            return None
        if (sector * SECTOR) + self.per_table * 4 > self.file.size:
            raise CorruptImageError(str(self.file.path), f"VMDK grain table {index} lies outside the file")
        return array("I", self.file.pread(self.per_table * 4, sector * SECTOR))

    def span(self, table: array[int], i: int, stop: int) -> tuple[int, int, int, object]:
        gte = table[i]
        if gte == 0:
            return progression(table, i, stop, 0), PARENT, 0, None
        if gte == 1 and self.zero_grains:
            return progression(table, i, stop, 0), ZERO, 0, None
        if self.compressed:
            return 1, BYTES, 0, self._inflate(gte)
        return progression(table, i, stop, self.grain // SECTOR), DATA, gte * SECTOR, None

    def _inflate(self, sector: int) -> bytes:
        path = str(self.file.path)
        head = self.file.pread(12, sector * SECTOR)
        _lba, size = struct.unpack_from("<QI", head)
        start = sector * SECTOR + (12 if self.markers else 0)
        if size == 0 or start + size > self.file.size or size > 2 * self.grain + 4096:
            raise CorruptImageError(path, f"VMDK compressed grain at sector {sector} is damaged")
        try:  # never inflate past one grain: a small hostile grain could inflate to gigabytes
            data = zlib.decompressobj().decompress(self.file.pread(size, start), self.grain)
        except zlib.error as exc:
            raise CorruptImageError(path, f"VMDK compressed grain at sector {sector}: {exc}") from None
        return data.ljust(self.grain, b"\0")


class _Cowd(_GrainTableExtent):
    """ESXi ``vmfsSparse`` (``COWD``) delta extents."""

    def __init__(self, file: OpenFile) -> None:
        super().__init__()
        self.file = file
        path = str(file.path)
        hdr = file.pread(48, 0)
        if hdr[:4] != b"COWD":
            raise CorruptImageError(path, "not a vmfsSparse (COWD) extent")
        _version, _flags, sectors, grain_sectors, gd_sector, gd_entries = struct.unpack_from(
            "<IIIIII", hdr, 4
        )
        if not grain_sectors or grain_sectors > _MAX_GRAIN_SECTORS:
            raise CorruptImageError(path, f"COWD header has an impossible grain size ({grain_sectors})")
        self.size = sectors * SECTOR
        self.grain = grain_sectors * SECTOR
        self.per_table = 4096
        if gd_sector * SECTOR + gd_entries * 4 > file.size:
            raise CorruptImageError(path, "COWD grain directory lies outside the file")
        self.directory = Table(file, gd_sector * SECTOR, gd_entries, 4)

    def load_table(self, index: int) -> array[int] | None:
        sector = self.directory[index]
        if sector == 0:
            return None
        if sector * SECTOR + self.per_table * 4 > self.file.size:
            raise CorruptImageError(str(self.file.path), f"COWD grain table {index} lies outside the file")
        return array("I", self.file.pread(self.per_table * 4, sector * SECTOR))

    def span(self, table: array[int], i: int, stop: int) -> tuple[int, int, int, object]:
        gte = table[i]
        if gte == 0:
            return progression(table, i, stop, 0), PARENT, 0, None
        return progression(table, i, stop, self.grain // SECTOR), DATA, gte * SECTOR, None


_SE_CONST_MAGIC = 0xCAFEBABE
_SE_VOLATILE_MAGIC = 0xCAFECAFE
_SE_TYPE_MASK = 0xF000000000000000
_SE_UNALLOCATED, _SE_FALLTHROUGH, _SE_ZERO, _SE_ALLOCATED = (t << 60 for t in (0, 1, 2, 3))


class _SeSparse(_GrainTableExtent):
    """ESXi ``seSparse`` delta extents: 4 KiB grains, 64-bit typed table entries."""

    def __init__(self, file: OpenFile) -> None:
        super().__init__()
        self.file = file
        path = str(file.path)
        hdr = file.pread(512, 0)
        f = struct.unpack_from("<26Q", hdr)
        magic, version, capacity, grain_sectors, table_sectors, flags = f[:6]
        if magic != _SE_CONST_MAGIC:
            raise CorruptImageError(path, "not a seSparse extent (bad magic)")
        if version != 0x200000001 or grain_sectors != 8 or table_sectors != 64 or flags:
            raise UnsupportedImageError(path, "seSparse layout other than version 2.1, 4 KiB grains")
        volatile_off, _vsize, _jh_off, _jh_size, _j_off, _j_size, gd_off, gd_size, gt_off, _gt_size = f[10:20]
        grains_off = f[24]
        vol = file.pread(512, volatile_off * SECTOR)
        vmagic, _free, _seq, replay = struct.unpack_from("<4Q", vol)
        if vmagic != _SE_VOLATILE_MAGIC:
            raise CorruptImageError(path, "seSparse volatile header has a bad magic")
        if replay:
            raise UnsupportedImageError(
                path, "seSparse journal needs replaying (the snapshot was not closed cleanly)"
            )
        self.size = capacity * SECTOR
        self.grain = grain_sectors * SECTOR
        self.per_table = table_sectors * SECTOR // 8
        self.tables_offset = gt_off * SECTOR
        self.grains_offset = grains_off * SECTOR
        if capacity * SECTOR > MAX_VIRTUAL_SIZE:
            raise CorruptImageError(path, f"seSparse capacity {capacity} sectors is absurd")
        entries = gd_size * SECTOR // 8
        if gd_off * SECTOR + entries * 8 > file.size:
            raise CorruptImageError(path, "seSparse grain directory lies outside the file")
        self.directory = Table(file, gd_off * SECTOR, entries, 8)

    def load_table(self, index: int) -> array[int] | None:
        entry = self.directory[index]
        if entry == 0:
            return None
        if entry & 0xFFFFFFFF00000000 != 0x1000000000000000:
            raise CorruptImageError(str(self.file.path), f"seSparse grain directory entry {index} is invalid")
        offset = self.tables_offset + (entry & 0xFFFFFFFF) * self.per_table * 8
        if offset + self.per_table * 8 > self.file.size:
            raise CorruptImageError(
                str(self.file.path), f"seSparse grain table {index} lies outside the file"
            )
        return array("Q", self.file.pread(self.per_table * 8, offset))

    def span(self, table: array[int], i: int, stop: int) -> tuple[int, int, int, object]:
        gte = table[i]
        kind = gte & _SE_TYPE_MASK
        if kind in (_SE_UNALLOCATED, _SE_FALLTHROUGH):
            return progression(table, i, stop, 0), PARENT, 0, None
        if kind == _SE_ZERO:
            return progression(table, i, stop, 0), ZERO, 0, None
        if kind == _SE_ALLOCATED:
            # The grain number's low 12 bits sit in bits 48-59: the next grain in the file is the
            # entry plus 1 << 48 until those bits run out (past them the sum would change the type).
            low = (gte >> 48) & 0xFFF
            grains = progression(table, i, min(stop, i + 0x1000 - low), 1 << 48)
            cluster = low | ((gte & 0x0000FFFFFFFFFFFF) << 12)
            return grains, DATA, self.grains_offset + cluster * self.grain, None
        raise CorruptImageError(str(self.file.path), f"seSparse grain table entry {i} has an unknown type")


class VmdkLayer(Layer):
    """One VMDK (descriptor + extents) of a chain."""

    def __init__(self, info: ImageInfo, files: dict[Path, OpenFile]) -> None:
        self.name = info.path.name
        self.extents: list[tuple[int, int, _Extent]] = []
        if len(info.extents) > _MAX_EXTENTS:
            raise CorruptImageError(str(info.path), f"VMDK descriptor lists {len(info.extents)} extents")
        pos = 0
        for ext in info.extents:
            size = ext.sectors * SECTOR
            self.extents.append((pos, size, self._open(ext, files, info.path)))
            pos += size
        self.size = pos

    @staticmethod
    def _open(ext: Extent, files: dict[Path, OpenFile], owner: Path) -> _Extent:
        size = ext.sectors * SECTOR
        if ext.kind == "ZERO":
            return _ZeroExtent(size)
        if ext.path is None:
            raise CorruptImageError(str(owner), f"{ext.kind} extent without a file name")
        key = real(ext.path)
        if key not in files:
            files[key] = OpenFile(ext.path)
        file = files[key]
        if ext.kind in ("FLAT", "VMFS"):
            return _FlatExtent(file, size, ext.offset * SECTOR)
        if ext.kind in ("VMFSRAW", "VMFSRDM"):
            raise UnsupportedImageError(
                str(owner), "raw device mapping extents cannot be read from a datastore copy"
            )
        head = file.pread(8, 0)
        if ext.kind == "SPARSE" or head[:4] == b"KDMV":
            extent: _Extent = _HostedSparse(file)
        elif ext.kind == "VMFSSPARSE" or head[:4] == b"COWD":
            extent = _Cowd(file)
        elif ext.kind == "SESPARSE" or struct.unpack_from("<Q", head)[0] == _SE_CONST_MAGIC:
            extent = _SeSparse(file)
        else:
            raise UnsupportedImageError(str(owner), f"VMDK extent type {ext.kind}")
        if extent.size < size:
            raise CorruptImageError(str(ext.path), "extent is smaller than its descriptor says")
        return extent

    def runs(self, offset: int, length: int) -> Iterator[Run]:
        end = offset + length
        for start, size, extent in self.extents:
            stop = start + size
            if stop <= offset or start >= end:
                continue
            lo, hi = max(offset, start), min(end, stop)
            for pos, count, kind, arg in extent.runs(lo - start, hi - lo):
                yield (pos + start, count, kind, arg)


# --- header facts -----------------------------------------------------------------------------------

_EXTENT_RE = re.compile(r'^(RW|RDONLY|NOACCESS)\s+(\d+)\s+([A-Za-z]+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?\s*$')
_KV_RE = re.compile(r'^\s*([A-Za-z0-9_.]+)\s*=\s*"?([^"]*)"?\s*$')


def _sparse(path: Path, fh: BinaryIO, head: bytes, size: int) -> ImageInfo:
    version, _flags, capacity, grain, desc_off, desc_size = struct.unpack_from("<IIQQQQ", head, 4)
    if version not in (1, 2, 3):
        raise UnsupportedImageError(str(path), f"VMDK sparse version {version}")
    if capacity * 512 > MAX_VIRTUAL_SIZE or grain == 0 or grain & (grain - 1):
        raise CorruptImageError(str(path), "VMDK sparse header has an impossible capacity or grain size")
    if desc_off == 0 or desc_size == 0:
        raise UnsupportedImageError(str(path), "VMDK sparse extent without an embedded descriptor")
    if desc_size * 512 > MAX_DESCRIPTOR or (desc_off + desc_size) * 512 > size:
        raise CorruptImageError(str(path), "VMDK embedded descriptor out of bounds")
    fh.seek(desc_off * 512)
    text = fh.read(desc_size * 512).split(b"\0", 1)[0]
    return _descriptor(path, text, capacity * 512)


def _descriptor_file(path: Path, fh: BinaryIO, size: int) -> ImageInfo:
    if size > MAX_DESCRIPTOR:
        raise CorruptImageError(str(path), "not a VMDK descriptor (too large, and no sparse header)")
    fh.seek(0)
    text = fh.read(size)
    if b"\0" in text.rstrip(b"\0"):
        raise CorruptImageError(
            str(path), "not a VMDK descriptor or sparse extent (binary data, bad signature)"
        )
    return _descriptor(path, text, None)


def _descriptor(path: Path, raw: bytes, capacity: int | None) -> ImageInfo:
    text = raw.decode("utf-8", "replace")
    values: dict[str, str] = {}
    extents: list[Extent] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _EXTENT_RE.match(line)
        if m:
            access, sectors, kind, name, offset = m.groups()
            ext_path = None if name is None else resolve_parent(path, name) if name else None
            extents.append(Extent(access, int(sectors), kind.upper(), ext_path, int(offset or 0)))
            continue
        kv = _KV_RE.match(line)
        if kv:
            values[kv.group(1).lower()] = kv.group(2)
    create_type = values.get("createtype", "")
    if not create_type:
        raise CorruptImageError(str(path), "VMDK descriptor without createType")
    if not extents:
        raise CorruptImageError(str(path), "VMDK descriptor lists no extents")
    total = sum(e.sectors for e in extents) * 512
    if total > MAX_VIRTUAL_SIZE:
        raise CorruptImageError(str(path), "VMDK extents add up to an absurd size")
    parent = None
    parent_cid = values.get("parentcid", "ffffffff").lower()
    if parent_cid != "ffffffff":
        hint = values.get("parentfilenamehint", "")
        if not hint:
            raise CorruptImageError(str(path), "VMDK delta without parentFileNameHint")
        parent = resolve_parent(path, hint)
    return ImageInfo(
        path, "vmdk", capacity or total, parent, create_type, tuple(extents), values.get("cid", "")
    )


def _looks_like_descriptor(h: Head) -> bool:
    return h.path.suffix.lower() == ".vmdk" or b"createType" in h.head or b"Disk DescriptorFile" in h.head


def read_info(h: Head) -> ImageInfo:
    """Create type, extents, CID and parent of a VMDK: a text descriptor or a hosted sparse extent
    with its embedded descriptor."""
    if h.head.startswith(b"KDMV"):
        return _sparse(h.path, h.fh, h.head, h.size)
    if h.head.startswith(b"COWD"):
        raise UnsupportedImageError(
            str(h.path), "a vmfsSparse extent file; open its .vmdk descriptor instead"
        )
    return _descriptor_file(h.path, h.fh, h.size)


def open_layer(info: ImageInfo, _file: OpenFile, files: dict[Path, OpenFile]) -> Layer:
    """The reader of one VMDK: its descriptor's extents, each opened once per chain."""
    return VmdkLayer(info, files)


FORMAT = ImageFormat(
    name="vmdk",
    extensions=(".vmdk",),
    magic=(b"KDMV", b"COWD"),
    read_info=read_info,
    open_layer=open_layer,
    sniff=_looks_like_descriptor,
)
