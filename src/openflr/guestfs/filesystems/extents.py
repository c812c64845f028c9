"""Reading a file straight from its volume through its extent map.

The file-system libraries read a file by calling back into our block cache for every piece and then
copying the result into a new ``bytes``; for large files that costs more than the disk read. Their
extent lists (volume offset, length, flags per run, holes included, in file order) let a download
fill each 1 MiB chunk with one read of the block source instead, without the library's lock.

A map is only used when it can be trusted to give the same bytes as the library: every run is plain
data or a hole (no compressed runs, no flags we do not know), data lies inside the volume, and the
runs cover the whole file. Anything else (compressed or encrypted NTFS files, NTFS files whose valid
data length is short of their size, inline data) is read through the library as before.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

from openflr.guestfs.blocks import BlockSource
from openflr.guestfs.filesystems.base import Chunk, FileReader

HOLE = -1
"""Volume offset of a run that reads as zeros."""
SPARSE = 0x1
"""The libyal extent flag of a hole (and of ext4/XFS unwritten extents, which read as zeros)."""
MIN_SIZE = 256 * 1024
"""Smaller files are read through the library: a map would cost more than it saves."""
MAX_EXTENTS = 1_000_000
"""A file split into more runs than this is read through the library (bounded memory)."""

Run = tuple[int, int]
"""(volume offset or ``HOLE``, length)."""


def runs_of(extents: Iterable[tuple[int, int, int]], size: int, volume_size: int) -> list[Run] | None:
    """The merged runs of a libyal extent list, or None when it cannot be trusted (see above)."""
    runs: list[Run] = []
    covered = 0
    for offset, length, flags in extents:
        if length <= 0 or flags & ~SPARSE:
            return None
        at = HOLE if flags & SPARSE else offset
        # Volume offset 0 holds the boot sector or superblock, never file data: a map that says so is
        # not a real one (e.g. inline data reported as an extent).
        if at != HOLE and (at <= 0 or at + length > volume_size):
            return None
        if runs:
            last_at, last_length = runs[-1]
            if (at == HOLE and last_at == HOLE) or (
                at != HOLE and last_at != HOLE and last_at + last_length == at
            ):
                runs[-1] = (last_at, last_length + length)
                covered += length
                continue
        runs.append((at, length))
        covered += length
        if covered >= size:
            break
    return runs if runs and covered >= size else None


class ExtentReader(FileReader):
    """A file read through its runs on the volume ``source``."""

    def __init__(self, source: BlockSource, runs: list[Run], size: int) -> None:
        self.source = source
        self.size = size
        self._runs = runs
        self._starts: list[int] = []
        at = 0
        for _, length in runs:
            self._starts.append(at)
            at += length

    def pread(self, length: int, offset: int) -> bytes:
        return bytes(self.chunk(length, offset))

    def chunk(self, length: int, offset: int) -> Chunk:
        if offset < 0 or offset >= self.size or length <= 0:
            return b""
        length = min(length, self.size - offset)
        index = bisect_right(self._starts, offset) - 1
        at, run_length = self._runs[index]
        within = offset - self._starts[index]
        if at != HOLE and length <= run_length - within:
            whole = self.source.read_piece(length, at + within)  # the common case: one read
            if whole is not None:
                return whole
        buffer = bytearray(length)  # zeros: holes need no work
        view = memoryview(buffer)
        done = 0
        while done < length:
            at, run_length = self._runs[index]
            within = offset + done - self._starts[index]
            take = min(length - done, run_length - within)
            if at != HOLE:
                self.source.fill(view[done : done + take], at + within)
            done += take
            index += 1
        return view
