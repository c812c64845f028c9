"""A folder as a ZIP archive, produced while it is read (never staged in memory or on disk).

STORED (no compression: bytes are served as fast as they are read; docs/BENCHMARKS.md), ZIP64
where sizes or counts need it, the UTF-8 name flag on every entry, modification times as DOS
date-time (UTC; 2-second steps, 1980-2107), the Unix time in an extended-timestamp field (whole
seconds, 1901-2038) and the exact time in an NTFS field (100 ns steps, 1601-30828), empty
folders as entries of their own, symbolic links as Unix links.
Files a rule excludes or that cannot be read are left out and listed in ``openflr-skipped.txt``.
The records are packed here (``restore/zipformat.py``: zipfile's bytes, without its per-entry
objects); each file is read with one engine read per MiB and its CRC-32 taken with ISA-L.
"""

from __future__ import annotations

import functools
import logging
import stat
import struct
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from openflr.errors import OpenflrError
from openflr.guestfs.filesystems.base import Chunk
from openflr.guestfs.filesystems.names import shown
from openflr.guestfs.view import GuestView
from openflr.restore.items import CHUNK, Item, Problem, read_chunks, walk
from openflr.restore.zipformat import (
    central_record,
    descriptor,
    dos_date_time,
    end_records,
    local_header,
    needs_zip64,
)
from openflr.seams.zipfile_internals import fast_crc32

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


class _Sink:
    """The archive's output; the bytes are taken out by the generator.

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

    def write(self, data: Chunk | bytearray) -> int:
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


class _Central:
    """The central directory's records, kept as bytes (about 100 per entry, compressed in batches to
    about 20) until the end: for a folder of 10,000 files, 0.2 MiB per stream."""

    def __init__(self) -> None:
        self.count = 0
        self._records = bytearray()
        self._packed: list[bytes] = []

    def add(self, record: bytes) -> None:
        self._records += record
        self.count += 1
        if len(self._records) >= _PACK:
            self._packed.append(zlib.compress(self._records, 1))
            self._records = bytearray()

    def batches(self) -> Iterator[bytes]:
        """The records in order, a batch at a time."""
        while self._packed:
            yield zlib.decompress(self._packed.pop(0))
        yield bytes(self._records)
        self._records = bytearray()


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
    if name.isascii():
        return name
    return name.encode("utf-8", "replace").decode("utf-8") if _lone(name) else name


def _lone(name: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in name)


def _encoded(name: str) -> bytes:
    """The name as the headers hold it: shown, UTF-8, cut at a NUL (as zipfile's ``ZipInfo`` does)."""
    name = _clean(name)
    if "\0" in name:
        name = name[: name.index("\0")]
    return name.encode("utf-8")


@functools.lru_cache(maxsize=4096)
def _dos(seconds: int) -> tuple[int, int]:
    """The DOS time and date of a Unix time (UTC; clamped to 1980-2107): the files of a folder often
    share a second."""
    t = time.gmtime(max(seconds, 315532800))  # DOS dates start in 1980
    return dos_date_time(min(t.tm_year, 2107), t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


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


class _Writer:
    """Entries written to a sink, their central-directory records kept for the end."""

    def __init__(self, sink: _Sink) -> None:
        self.sink = sink
        self.central = _Central()

    def folder(self, name: str, mtime_ns: int | None) -> None:
        encoded, extra, dos = _encoded(name + "/"), _time_fields(mtime_ns), _dos((mtime_ns or 0) // 10**9)
        offset = self.sink.position
        self.sink.write(local_header(encoded, extra, dos, folder=True, zip64=False))
        attr = (stat.S_IFDIR | 0o755) << 16 | 0x10  # Unix mode and the MS-DOS directory bit
        self.central.add(
            central_record(encoded, extra, dos, attr, folder=True, zip64=False, crc=0, size=0, offset=offset)
        )

    def file(self, name: str, mtime_ns: int | None, mode: int, size: int, first: Chunk) -> _Open:
        """Begin a file of (about) ``size`` bytes whose first bytes are ``first``; write the rest to
        what is returned, then close it."""
        return _Open(
            self, _encoded(name), _time_fields(mtime_ns), _dos((mtime_ns or 0) // 10**9), mode, size, first
        )

    def end(self, comment: bytes) -> Iterator[None]:
        """Write the central directory a batch at a time (one step each), then the end records."""
        start = self.sink.position
        for batch in self.central.batches():
            self.sink.write(batch)
            yield
        self.sink.write(end_records(self.central.count, start, self.sink.position - start, comment))


class _Open:
    """A file being written: its local header is out; ``write`` adds bytes, ``close`` its descriptor."""

    def __init__(
        self,
        writer: _Writer,
        name: bytes,
        extra: bytes,
        dos: tuple[int, int],
        mode: int,
        size: int,
        first: Chunk,
    ) -> None:
        self._writer = writer
        self._head = (name, extra, dos, (mode & 0xFFFF) << 16)
        self._zip64 = needs_zip64(size)
        self._offset = writer.sink.position
        writer.sink.write(local_header(name, extra, dos, folder=False, zip64=self._zip64))
        self._crc = fast_crc32(first)
        self._size = len(first)
        writer.sink.write(first)

    def write(self, data: Chunk) -> None:
        self._crc = fast_crc32(data, self._crc)
        self._size += len(data)
        self._writer.sink.write(data)

    def close(self) -> None:
        crc, size, zip64 = self._crc, self._size, self._zip64
        self._writer.sink.write(descriptor(crc, size, zip64=zip64))
        name, extra, dos, attr = self._head
        self._writer.central.add(
            central_record(
                name, extra, dos, attr, folder=False, zip64=zip64, crc=crc, size=size, offset=self._offset
            )
        )


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
    writer = _Writer(sink)
    problems: list[Problem] = []
    tops = [top] if isinstance(top, Item) else list(top)
    for item in (found for each in tops for found in walk(view, each, problems)):
        name = "/".join(item.rel)
        entry = item.entry
        if entry.is_dir:
            writer.folder(name, entry.mtime_ns)
            report.folders += 1
        else:
            why = allowed(entry.name)
            if why is not None:
                report.skipped.append(Problem(item.rel, why))
                continue
            try:
                chunks = read_chunks(view, item)
                first = next(chunks, b"")
            except (OpenflrError, OSError) as exc:
                reason = exc.message if isinstance(exc, OpenflrError) else str(exc).splitlines()[0]
                report.skipped.append(Problem(item.rel, f"cannot be read: {reason}"))
                continue
            mode = (stat.S_IFLNK | 0o777) if entry.is_link else (stat.S_IFREG | 0o644)
            out = writer.file(name, entry.mtime_ns, mode, entry.size, first)
            for data in chunks:
                if sink.buffered >= min_chunk:
                    yield sink.take_parts()
                out.write(data)
            out.close()
            report.files += 1
            report.bytes += entry.size
        if problems:
            report.skipped.extend(problems)
            problems.clear()
        if sink.buffered >= min_chunk:
            yield sink.take_parts()
    report.skipped.extend(problems)
    comment = b""
    if report.skipped:
        text = "".join(f"{_clean('/'.join(p.rel))}\t{p.reason}\r\n" for p in report.skipped)
        data = ("These items were left out of the archive:\r\n" + text).encode("utf-8")
        writer.file(SKIPPED_NAME, time.time_ns(), stat.S_IFREG | 0o644, len(data), data).close()
        comment = f"openflr: {len(report.skipped)} item(s) left out, see {SKIPPED_NAME}".encode()
    for _ in writer.end(comment):
        if sink.buffered >= min_chunk:
            yield sink.take_parts()
    yield sink.take_parts()
