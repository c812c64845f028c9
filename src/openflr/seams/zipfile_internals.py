"""The standard library's ``zipfile`` internals the streaming ZIP writer (``restore/zipstream.py``) uses.

What is touched, and why:

- ``zipfile.crc32``: the module-level function ``_ZipWriteFile.write`` (and ``ZipExtFile`` when
  reading) computes every entry's CRC-32 with. zlib's runs at about 1.2 GB/s, the bottleneck of a
  STORED ZIP; ISA-L's ``isal_zlib.crc32`` gives the same values about 4x faster. ``use_fast_crc32``
  replaces it for the whole process: zipfile offers no per-archive hook, and a patch scoped to our
  archives would be a race between download threads. It is safe because the replacement is
  value-identical (same signature ``crc32(data, value=0)``, same results for every buffer and start
  value, checked by ``tests/seams/test_zipfile_internals.py``): every zipfile user in the process
  gets identical checksums, only sooner.
- ``ZipInfo._encodeFilenameFlags``: the hook both the local header (``ZipInfo.FileHeader``) and
  the central directory take an entry's encoded name and flag bits from. ``Utf8ZipInfo`` overrides
  it so the UTF-8 flag (bit 11) is set on every entry, ASCII or not (zipfile sets it for
  non-ASCII names only).
- ``ZipFile._write_end_record``, ``structCentralDir``,
  ``stringCentralDir`` and the ``filelist``/``NameToInfo``/``fp`` attributes: ``CentralDirectoryZip``
  lets a subclass write the central directory itself (from records kept as bytes instead of one
  ``ZipInfo`` per entry) and then has zipfile write only the end records, counting entries by
  ``len(filelist)``. ``central_record`` builds one entry's record exactly as ``_write_end_record``
  does (``tests/restore/test_zipstream.py`` compares the bytes).

What openflr needs from upstream: a public way to pass a CRC function (or a precomputed CRC) to
``ZipFile.open(..., "w")``, a ZipInfo option to always set the UTF-8 flag, and a public way to write
the central directory of a streamed archive without keeping every ``ZipInfo``.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterator
from typing import IO

from isal import isal_zlib

__all__ = ["CentralDirectoryZip", "Utf8ZipInfo", "central_record", "fast_crc32", "use_fast_crc32"]

UTF8_FLAG = 0x800
"""General-purpose flag bit 11: the name (and comment) are UTF-8."""

fast_crc32 = isal_zlib.crc32
"""ISA-L's CRC-32: ``fast_crc32(data, value=0)``, the same values as ``zlib.crc32``."""


def use_fast_crc32() -> None:
    """Have zipfile compute CRC-32s with ISA-L's function (process-wide; see the module docstring for
    why that is safe). Idempotent."""
    zipfile.crc32 = fast_crc32  # type: ignore[attr-defined]


class Utf8ZipInfo(zipfile.ZipInfo):
    """Sets the UTF-8 flag (bit 11) in the local and central headers of every entry, ASCII or not."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # zipfile's own hook
        return self.filename.encode("utf-8"), self.flag_bits | UTF8_FLAG


class _Entries:
    """What zipfile's end record needs of a central directory already written: its length."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[zipfile.ZipInfo]:
        return iter(())


class CentralDirectoryZip(zipfile.ZipFile):
    """A ZipFile whose subclass writes the central directory itself.

    ``take_written`` hands over (and forgets) the entries written so far; ``write_raw`` writes bytes
    to the archive; on close, ``write_central_directory`` is called and must write the records of
    every entry and return how many there are; zipfile then writes only the end records. Duplicate
    names are not warned about once their entries were taken."""

    def take_written(self) -> list[zipfile.ZipInfo]:
        """The entries written since the last call, no longer kept by zipfile."""
        taken = list(self.filelist)
        self.filelist.clear()
        self.NameToInfo.clear()
        return taken

    def write_raw(self, data: bytes | bytearray) -> None:
        """Write ``data`` to the archive as it is (between entries only)."""
        fp: IO[bytes] | None = self.fp
        if fp is None:
            raise ValueError("the archive is closed")
        fp.write(data)

    def write_central_directory(self) -> int:
        """Write every entry's central-directory record with ``write_raw``; return their count."""
        raise NotImplementedError

    def _write_end_record(self) -> None:
        count = self.write_central_directory()
        self.filelist = _Entries(count)  # type: ignore[assignment]
        super()._write_end_record()  # type: ignore[misc]


def central_record(info: zipfile.ZipInfo) -> bytes:
    """The central-directory record of a written STORED entry, as zipfile's own end record writes it."""
    dt = info.date_time
    dosdate = (dt[0] - 1980) << 9 | dt[1] << 5 | dt[2]
    dostime = dt[3] << 11 | dt[4] << 5 | (dt[5] // 2)
    extra: list[int] = []
    if info.file_size > zipfile.ZIP64_LIMIT or info.compress_size > zipfile.ZIP64_LIMIT:
        extra += [info.file_size, info.compress_size]
        file_size = compress_size = 0xFFFFFFFF
    else:
        file_size, compress_size = info.file_size, info.compress_size
    if info.header_offset > zipfile.ZIP64_LIMIT:
        extra.append(info.header_offset)
        header_offset = 0xFFFFFFFF
    else:
        header_offset = info.header_offset
    extra_data = info.extra
    min_version = 0
    if extra:
        extra_data = strip_extra(extra_data, (1,))
        extra_data = struct.pack("<HH" + "Q" * len(extra), 1, 8 * len(extra), *extra) + extra_data
        min_version = zipfile.ZIP64_VERSION
    extract_version = max(min_version, info.extract_version)
    create_version = max(min_version, info.create_version)
    filename, flag_bits = encoded_name(info)
    head = struct.pack(
        zipfile.structCentralDir,  # type: ignore[attr-defined]
        zipfile.stringCentralDir,  # type: ignore[attr-defined]
        create_version,
        info.create_system,
        extract_version,
        info.reserved,
        flag_bits,
        info.compress_type,
        dostime,
        dosdate,
        info.CRC,
        compress_size,
        file_size,
        len(filename),
        len(extra_data),
        len(info.comment),
        0,
        info.internal_attr,
        info.external_attr,
        header_offset,
    )
    return bytes(head + filename + extra_data + info.comment)


def encoded_name(info: zipfile.ZipInfo) -> tuple[bytes, int]:
    """The entry's name as its headers hold it and its flag bits (zipfile's ``_encodeFilenameFlags``)."""
    name, flags = info._encodeFilenameFlags()  # type: ignore[attr-defined]
    return bytes(name), int(flags)


def strip_extra(extra: bytes, ids: tuple[int, ...]) -> bytes:
    """``extra`` without the extra fields whose ids are ``ids``, what zipfile's private
    ``_strip_extra`` does. Our own: before Python 3.11.4 that one also dropped every field after the
    last one it removed (Debian 12's 3.11.2 has it so)."""
    kept = []
    at = 0
    while at + 4 <= len(extra):
        xid, size = struct.unpack_from("<HH", extra, at)
        end = at + 4 + size
        if xid not in ids:
            kept.append(extra[at:end])
        at = end
    kept.append(extra[at:])  # a truncated tail, kept as it was
    return b"".join(kept)
