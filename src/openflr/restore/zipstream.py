"""A folder as a ZIP archive, produced while it is read (never staged in memory or on disk).

STORED (no compression: bytes are served as fast as they are read; docs/BENCHMARKS.md), ZIP64
where sizes or counts need it, the UTF-8 name flag on every entry, modification times as DOS
date-time (UTC; 2-second steps, 1980-2107), the Unix time in an extended-timestamp field (whole
seconds, 1901-2038) and the exact time in an NTFS field (100 ns steps, 1601-30828), empty
folders as entries of their own, symbolic links as Unix links.
Files a rule excludes or that cannot be read are left out and listed in ``openflr-skipped.txt``.
"""

from __future__ import annotations

import io
import logging
import stat
import struct
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from openflr.errors import OpenflrError
from openflr.guestfs.filesystems.base import Chunk
from openflr.guestfs.filesystems.names import shown
from openflr.guestfs.view import GuestView
from openflr.restore.items import CHUNK, Item, Problem, read_chunks, walk
from openflr.seams.zipfile_internals import CentralDirectoryZip, Utf8ZipInfo, central_record, use_fast_crc32

log = logging.getLogger(__name__)

SKIPPED_NAME = "openflr-skipped.txt"
_UT_EXTRA = 0x5455
_NTFS_EXTRA = 0x000A
_FILETIME_EPOCH = 116444736000000000
"""100 ns intervals from 1601 (the NTFS field's epoch) to 1970."""
PIECE = 256 * 1024
"""Small writes are gathered in buffers this large."""
_BY_REFERENCE = 64 * 1024
"""Writes at least this large are kept by the sink, not copied."""
_PACK = 64 * 1024
"""Central-directory records are compressed in batches of this many bytes (about 5:1)."""

# Every entry's CRC-32 with ISA-L (4x zlib's speed, the same values; process-wide, see the seam).
use_fast_crc32()


class _Sink(io.RawIOBase):
    """An unseekable output that zipfile writes to; the bytes are taken out by the generator.

    Small writes (headers, small files) are copied into buffers of ``size`` bytes, made as they are
    needed, not kept as an object each; a large one (a piece of a file read for the archive: nobody
    writes to it any more) is kept as it is. What is taken is a list of such pieces, so a server
    sending them one by one frees each once it is sent."""

    def __init__(self, size: int = PIECE) -> None:
        self.parts: list[Chunk] = []
        self.buffered = 0
        self.position = 0
        self._size = size
        self._buffer = bytearray()
        self._used = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Chunk | bytearray) -> int:  # type: ignore[override]
        n = len(data)
        if n >= _BY_REFERENCE:
            self._flush()
            self.parts.append(bytes(data) if isinstance(data, bytearray) else data)
        else:
            if self._used + n > len(self._buffer):
                self._flush()
                self._buffer = bytearray(max(self._size, n))
            self._buffer[self._used : self._used + n] = data
            self._used += n
        self.buffered += n
        self.position += n
        return n

    def tell(self) -> int:
        return self.position

    def _flush(self) -> None:
        if self._used:
            self.parts.append(memoryview(self._buffer)[: self._used])
        self._buffer = bytearray()
        self._used = 0

    def take_parts(self) -> list[Chunk]:
        self._flush()
        parts, self.parts = self.parts, []
        self.buffered = 0
        return parts

    def take(self) -> Chunk:
        parts = self.take_parts()
        return parts[0] if len(parts) == 1 else b"".join(parts)


class _CompactZip(CentralDirectoryZip):
    """A ZipFile that keeps each written entry's central-directory record as bytes (about 100 per
    entry, compressed in batches to about 20) instead of its ``ZipInfo`` (about 500 with its name):
    for a folder of 10,000 files, 0.2 MiB per stream instead of 5. Call ``compact`` after each entry,
    and ``central_directory`` before closing to write the records a batch at a time. Duplicate names
    (a damaged folder) are no longer warned about: a streamed archive cannot drop them anyway."""

    def __init__(self, sink: _Sink) -> None:
        super().__init__(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self._records = bytearray()
        self._packed: list[bytes] = []
        self._count = 0

    def compact(self) -> None:
        for info in self.take_written():
            self._records += central_record(info)
            self._count += 1
        if len(self._records) >= _PACK:
            self._packed.append(zlib.compress(self._records, 1))
            self._records = bytearray()

    def central_directory(self) -> Iterator[None]:
        """Write the records kept so far, one batch per step (the end record follows on close)."""
        self.compact()
        while self._packed:
            self.write_raw(zlib.decompress(self._packed.pop(0)))
            yield
        self.write_raw(bytes(self._records))
        self._records = bytearray()
        yield

    def write_central_directory(self) -> int:
        for _ in self.central_directory():
            pass
        return self._count


@dataclass
class ZipReport:
    files: int = 0
    folders: int = 0
    bytes: int = 0
    """File content bytes written (not counting ZIP headers)."""
    skipped: list[Problem] = field(default_factory=list)


def _clean(name: str) -> str:
    """The shown name (docs/STORAGE-NOTES.md, "Names"); a lone surrogate (a damaged NTFS name an
    engine gave as it is) cannot be UTF-8 and becomes U+FFFD."""
    name = shown(name)
    return name.encode("utf-8", "replace").decode("utf-8") if _lone(name) else name


def _lone(name: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in name)


def _info(name: str, mtime_ns: int | None, mode: int) -> zipfile.ZipInfo:
    seconds = (mtime_ns or 0) // 1_000_000_000
    t = time.gmtime(max(seconds, 315532800))  # DOS dates start in 1980
    year = min(t.tm_year, 2107)
    info = Utf8ZipInfo(_clean(name), (year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec))
    info.create_system = 3  # Unix: external attributes carry the mode
    info.external_attr = (mode & 0xFFFF) << 16
    if stat.S_ISDIR(mode):
        info.external_attr |= 0x10  # MS-DOS directory bit
        info.CRC = info.compress_size = info.file_size = 0
    info.extra = _time_fields(mtime_ns)
    info.compress_type = zipfile.ZIP_STORED
    return info


def _time_fields(mtime_ns: int | None) -> bytes:
    """The extra fields that carry a modification time beyond DOS's 2-second steps and range."""
    if mtime_ns is None:
        return b""
    fields = b""
    seconds = mtime_ns // 1_000_000_000
    if -(2**31) <= seconds < 2**31:
        fields += struct.pack("<HHBl", _UT_EXTRA, 5, 1, seconds)
    filetime = mtime_ns // 100 + _FILETIME_EPOCH
    if 0 <= filetime < 2**63:
        # Tag 1 holds modification, access and creation times; only the first is known here.
        fields += struct.pack("<HHIHHQQQ", _NTFS_EXTRA, 32, 0, 1, 24, filetime, filetime, filetime)
    return fields


def zip_chunks(
    view: GuestView,
    top: Item | Sequence[Item],
    report: ZipReport,
    allowed: Callable[[str], str | None] = lambda name: None,
    min_chunk: int = CHUNK,
) -> Iterator[Chunk]:
    """``zip_parts``, each chunk's parts joined."""
    for parts in zip_parts(view, top, report, allowed, min_chunk):
        yield parts[0] if len(parts) == 1 else b"".join(parts)


def zip_parts(
    view: GuestView,
    top: Item | Sequence[Item],
    report: ZipReport,
    allowed: Callable[[str], str | None] = lambda name: None,
    min_chunk: int = CHUNK,
) -> Iterator[list[Chunk]]:
    """The ZIP of ``top`` (a folder, or several items each stored under its ``rel``), as chunks of
    about ``min_chunk`` bytes, each a list of parts of up to ``PIECE`` bytes (or a piece of a large
    file as it was read). Blocking: each ``next`` does engine reads, so drive it from a worker
    thread. ``allowed(name)`` returns why a file must be left out, or None. A read error inside a
    file already begun ends the stream with the error (the archive would otherwise hold a wrong
    file)."""
    sink = _Sink()
    problems: list[Problem] = []
    tops = [top] if isinstance(top, Item) else list(top)
    with _CompactZip(sink) as archive:
        for item in (found for each in tops for found in walk(view, each, problems)):
            name = "/".join(item.rel)
            entry = item.entry
            if entry.is_dir:
                archive.mkdir(_info(name + "/", entry.mtime_ns, stat.S_IFDIR | 0o755))
                report.folders += 1
            else:
                why = allowed(entry.name)
                if why is not None:
                    report.skipped.append(Problem(item.rel, why))
                    continue
                mode = (stat.S_IFLNK | 0o777) if entry.is_link else (stat.S_IFREG | 0o644)
                info = _info(name, entry.mtime_ns, mode)
                info.file_size = entry.size
                try:
                    chunks = read_chunks(view, item)
                    first = next(chunks, b"")
                except (OpenflrError, OSError) as exc:
                    reason = exc.message if isinstance(exc, OpenflrError) else str(exc).splitlines()[0]
                    report.skipped.append(Problem(item.rel, f"cannot be read: {reason}"))
                    continue
                with archive.open(info, "w", force_zip64=entry.size > zipfile.ZIP64_LIMIT // 2) as out:
                    out.write(first)
                    for data in chunks:
                        if sink.buffered >= min_chunk:
                            yield sink.take_parts()
                        out.write(data)
                report.files += 1
                report.bytes += entry.size
            archive.compact()
            if problems:
                report.skipped.extend(problems)
                problems.clear()
            if sink.buffered >= min_chunk:
                yield sink.take_parts()
        report.skipped.extend(problems)
        if report.skipped:
            text = "".join(f"{_clean('/'.join(p.rel))}\t{p.reason}\r\n" for p in report.skipped)
            data = ("These items were left out of the archive:\r\n" + text).encode("utf-8")
            info = _info(SKIPPED_NAME, time.time_ns(), stat.S_IFREG | 0o644)
            info.file_size = len(data)
            with archive.open(info, "w") as out:
                out.write(data)
            archive.comment = f"openflr: {len(report.skipped)} item(s) left out, see {SKIPPED_NAME}".encode()
        for _ in archive.central_directory():
            if sink.buffered >= min_chunk:
                yield sink.take_parts()
    yield sink.take_parts()
