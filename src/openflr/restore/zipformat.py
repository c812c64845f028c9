"""The records of a streamed STORED ZIP, as bytes: each one a single ``struct.pack``.

They are what the standard library's ``zipfile`` writes to an unseekable output (a local header with
the data-descriptor flag and zero sizes, the data, a data descriptor; ZIP64 fields where sizes or
offsets need them; the central directory and the end records), byte for byte:
``tests/restore/test_zipformat.py`` compares them with zipfile's own output for files, folders,
links, ZIP64 entries and offsets, UTF-8 names and archives of more than 65,535 entries. Writing them
here instead of through ``ZipFile.open`` takes a ``ZipInfo``, a write handle and several calls per
entry out of a folder ZIP's per-file work (docs/BENCHMARKS.md, "Findings"). Every entry has the
UTF-8 flag, version 2.0 (4.5 with ZIP64) made by Unix, and no comment.
"""

from __future__ import annotations

import struct

ZIP64_LIMIT = (1 << 31) - 1
"""zipfile's limit for 32-bit sizes and offsets."""
_COUNT_LIMIT = (1 << 16) - 1
_UTF8 = 0x800
_DESCRIPTOR = 0x8
_UNIX = 3
_V20, _V45 = 20, 45

_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_ZIP64_LOCAL = struct.Struct("<HHQQ")
_DESCRIPTOR32 = struct.Struct("<LLLL")
_DESCRIPTOR64 = struct.Struct("<LLQQ")
_END = struct.Struct("<4s4H2LH")
_END64 = struct.Struct("<4sQ2H2L4Q")
_LOCATOR64 = struct.Struct("<4sLQL")
_DD_SIGNATURE = 0x08074B50


def dos_date_time(year: int, month: int, day: int, hour: int, minute: int, second: int) -> tuple[int, int]:
    """(DOS time, DOS date) of a time in 1980-2107 (seconds in 2-second steps)."""
    return hour << 11 | minute << 5 | second // 2, (year - 1980) << 9 | month << 5 | day


def needs_zip64(size: int) -> bool:
    """Whether a file of ``size`` bytes gets ZIP64 fields in its local header and descriptor (what
    the writer asked zipfile for: ``force_zip64`` above half the limit)."""
    return size > ZIP64_LIMIT // 2


def local_header(name: bytes, extra: bytes, dos: tuple[int, int], *, folder: bool, zip64: bool) -> bytes:
    """An entry's local header: a file's with zero sizes and CRC (they follow in its descriptor), a
    folder's with no descriptor."""
    flags = _UTF8 if folder else _UTF8 | _DESCRIPTOR
    size = 0
    version = _V20
    if zip64:
        extra = extra + _ZIP64_LOCAL.pack(1, 16, 0, 0)
        size, version = 0xFFFFFFFF, _V45
    head = _LOCAL.pack(
        b"PK\x03\x04", version, 0, flags, 0, dos[0], dos[1], 0, size, size, len(name), len(extra)
    )
    return head + name + extra


def descriptor(crc: int, size: int, *, zip64: bool) -> bytes:
    """The data descriptor after a file's bytes."""
    if zip64:
        return _DESCRIPTOR64.pack(_DD_SIGNATURE, crc, size, size)
    if size > ZIP64_LIMIT:
        raise RuntimeError("File size too large, try using force_zip64")
    return _DESCRIPTOR32.pack(_DD_SIGNATURE, crc, size, size)


def central_record(
    name: bytes,
    extra: bytes,
    dos: tuple[int, int],
    external_attr: int,
    *,
    folder: bool,
    zip64: bool,
    crc: int,
    size: int,
    offset: int,
) -> bytes:
    """An entry's central-directory record; ``zip64`` as its local header had it."""
    wide: list[int] = []
    stored = size
    if size > ZIP64_LIMIT:
        wide += [size, size]
        stored = 0xFFFFFFFF
    at = offset
    if offset > ZIP64_LIMIT:
        wide.append(offset)
        at = 0xFFFFFFFF
    if wide:
        extra = struct.pack(f"<HH{len(wide)}Q", 1, 8 * len(wide), *wide) + extra
    version = _V45 if wide or zip64 else _V20
    flags = _UTF8 if folder else _UTF8 | _DESCRIPTOR
    head = _CENTRAL.pack(
        b"PK\x01\x02",
        version,
        _UNIX,
        version,
        0,
        flags,
        0,
        dos[0],
        dos[1],
        crc,
        stored,
        stored,
        len(name),
        len(extra),
        0,
        0,
        0,
        external_attr,
        at,
    )
    return head + name + extra


def end_records(count: int, offset: int, size: int, comment: bytes) -> bytes:
    """The end of the archive after a central directory of ``count`` records, ``size`` bytes at
    ``offset``: ZIP64 end records first where the count, offset or size need them."""
    records = b""
    if count > _COUNT_LIMIT or offset > ZIP64_LIMIT or size > ZIP64_LIMIT:
        records = _END64.pack(b"PK\x06\x06", 44, _V45, _V45, 0, 0, count, count, size, offset)
        records += _LOCATOR64.pack(b"PK\x06\x07", 0, offset + size, 1)
        count, size, offset = min(count, 0xFFFF), min(size, 0xFFFFFFFF), min(offset, 0xFFFFFFFF)
    return records + _END.pack(b"PK\x05\x06", 0, 0, count, count, size, offset, len(comment)) + comment
