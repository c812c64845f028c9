"""Block sources: read-only byte ranges of virtual disks, built from image layers.

Every image format is a ``Layer`` that maps a virtual byte range to runs: data at an offset of one
of its files, zeros, bytes it produced itself (decompressed grains), or "ask the parent". A
``Chain`` stacks layers (snapshot on top, base at the bottom) and answers ``pread`` by resolving
each run down the stack, reading file data straight into the result buffer (``os.preadv``), with
adjacent runs coalesced so a contiguous 1 MiB read is one system call.

Layers hold only their own metadata (tables are read lazily, in pages, and cached), so opening a
2 TiB disk or a 32-deep chain costs the same handful of header reads, and an image whose header
claims a table of billions of entries costs no more memory than a real one.

Images are not trusted: only regular files are opened (a FIFO would block ``open`` forever, a device
is not an image), every count read from a header is checked before anything is allocated from it, and
an opening that takes too long can be cancelled (``cancel_scope``): every read checks the flag.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import threading
from abc import ABC, abstractmethod
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from openflr.guestfs.errors import CorruptImageError, ImageError, OpenCancelledError

MiB = 1024 * 1024

# Run kinds
DATA = 0
"""``arg`` = (fd, host offset): the bytes are in a file."""
ZERO = 1
"""The bytes read as zeros."""
PARENT = 2
"""Not in this layer: read the parent (zeros below the base)."""
BYTES = 3
"""``arg`` = (bytes, offset into them): the layer produced the bytes (e.g. decompressed)."""

Run = tuple[int, int, int, Any]
"""(virtual offset, length, kind, arg)."""


# --- cancelling an opening that takes too long ------------------------------------------------------


class CancelToken:
    """Set by whoever waits for an opening; checked by every read of the thread doing the opening."""

    def __init__(self, reason: str = "the operation was cancelled") -> None:
        self.reason = reason
        self.cancelled = False

    def cancel(self, reason: str | None = None) -> None:
        if reason:
            self.reason = reason
        self.cancelled = True


class _Local(threading.local):
    token: CancelToken | None = None


_local = _Local()


@contextlib.contextmanager
def cancel_scope(token: CancelToken) -> Iterator[CancelToken]:
    """Reads made by this thread inside the block raise ``OpenCancelledError`` once ``token`` is set."""
    previous = _local.token
    _local.token = token
    try:
        yield token
    finally:
        _local.token = previous


def check_cancelled() -> None:
    token = _local.token
    if token is not None and token.cancelled:
        raise OpenCancelledError(token.reason)


def open_regular(path: Path | str) -> int:
    """A read-only descriptor of a regular file; anything else (FIFO, device, directory) is refused
    without blocking: ``O_NONBLOCK`` keeps a FIFO swapped in after the check from hanging ``open``."""
    from openflr.guestfs.errors import MissingImageError

    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise MissingImageError(name, "file not found") from None
    except IsADirectoryError:
        raise CorruptImageError(name, "is a directory, not an image file") from None
    except OSError as exc:
        raise ImageError(name, exc.strerror or str(exc)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise CorruptImageError(name, f"is {_file_kind(mode)}, not an image file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


class OpenFile:
    """A read-only file descriptor shared by the layers that use one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = open_regular(path)
        self.size = os.fstat(self.fd).st_size
        self._closed = False

    def pread(self, length: int, offset: int) -> bytes:
        """Exactly ``length`` bytes at ``offset``; a short read means the file is truncated."""
        check_cancelled()
        if length < 0 or offset < 0 or offset + length > self.size:
            raise CorruptImageError(str(self.path), f"truncated: {length} bytes wanted at offset {offset}")
        data = os.pread(self.fd, length, offset)
        if len(data) != length:
            raise CorruptImageError(str(self.path), f"truncated: {length} bytes wanted at offset {offset}")
        return data

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self.fd)


class Table:
    """A table of unsigned integers in an image file (qcow2 L1, VMDK grain directory, VHDX BAT),
    read in pages on first use and kept in a small LRU: a header that claims billions of entries
    costs only the pages actually used."""

    PAGE = 64 * 1024
    PAGES = 64

    def __init__(self, file: OpenFile, offset: int, count: int, width: int, big_endian: bool = False) -> None:
        if count < 0 or offset < 0 or offset + count * width > file.size:
            raise CorruptImageError(str(file.path), "a table lies beyond the end of the file (truncated?)")
        self.file, self.offset, self.count, self.width = file, offset, count, width
        self._per_page = self.PAGE // width
        self._typecode = "Q" if width == 8 else "I"
        self._swap = big_endian != (sys.byteorder == "big")
        self._pages: OrderedDict[int, array[int]] = OrderedDict()

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < self.count:
            raise IndexError(index)
        page, within = self._page(index)
        return page[within]

    def _page(self, index: int) -> tuple[array[int], int]:
        """The cached page holding entry ``index``, and the entry's place in it."""
        number, within = divmod(index, self._per_page)
        page = self._pages.get(number)
        if page is None:
            page = self._load(number)
        else:
            self._pages.move_to_end(number)
        return page, within

    def run_of(self, index: int, stop: int, step: int) -> int:
        """``progression`` of the entries from ``index`` (before ``stop``), within one page: how many
        go on from ``self[index]`` by ``step`` each."""
        if not 0 <= index < stop <= self.count:
            raise IndexError(index)
        page, within = self._page(index)
        return progression(page, within, min(len(page), within + stop - index), step)

    def _load(self, number: int) -> array[int]:
        first = number * self._per_page
        n = min(self._per_page, self.count - first)
        page = array(self._typecode, self.file.pread(n * self.width, self.offset + first * self.width))
        if self._swap:
            page.byteswap()
        self._pages[number] = page
        if len(self._pages) > self.PAGES:
            self._pages.popitem(last=False)
        return page


def progression(entries: array[int], start: int, stop: int, step: int) -> int:
    """How many entries from ``start`` (at least one, at most ``stop - start``) go on from
    ``entries[start]`` by ``step`` each: clusters that lie one after another in the file, or with
    ``step`` 0 a run of equal entries (holes, zeros). Found by comparing slices with the expected
    sequence (C loops), doubling the length tried, then halving back to the first entry that differs:
    a run of ``k`` entries costs O(k log k) machine steps, not ``k`` turns of a Python loop."""
    n = stop - start
    first = entries[start]
    if step:
        # No sequence past the largest value the table's width holds (the expected array would overflow).
        n = min(n, ((1 << (8 * entries.itemsize)) - 1 - first) // step + 1)
    if n <= 1:
        return 1
    typecode = entries.typecode

    def expected(count: int) -> array[int]:
        if step:
            return array(typecode, range(first, first + count * step, step))
        return array(typecode, (first,)) * count

    good, size = 1, 2
    while True:
        if entries[start : start + size] != expected(size):
            break
        good = size
        if size == n:
            return n
        size = min(2 * size, n)
    bad = size  # entries[start + bad - 1] breaks the sequence; [start, start + good) follows it
    want = expected(bad)
    while bad - good > 1:
        mid = (good + bad) // 2
        if entries[start : start + mid] == want[:mid]:
            good = mid
        else:
            bad = mid
    return good


class Layer(ABC):
    """One image file (or extent set) of a chain."""

    size: int
    name: str

    @abstractmethod
    def runs(self, offset: int, length: int) -> Iterator[Run]:
        """Runs covering exactly [offset, offset + length), in order; offset + length <= size."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class RawLayer(Layer):
    """A flat file: every byte is data (bytes past the end of a file already short when opened read
    as zeros; a file that shrinks later fails the read)."""

    def __init__(self, file: OpenFile, size: int | None = None, start: int = 0) -> None:
        self.file = file
        self.start = start
        self.size = file.size - start if size is None else size
        self.name = file.path.name

    def runs(self, offset: int, length: int) -> Iterator[Run]:
        have = max(0, min(length, self.file.size - self.start - offset))
        if have:
            yield (offset, have, DATA, (self.file.fd, self.start + offset))
        if have < length:
            yield (offset + have, length - have, ZERO, None)


class BlockSource(ABC):
    """A readable virtual disk or partition: ``size`` and ``pread``."""

    size: int

    @abstractmethod
    def pread(self, length: int, offset: int) -> bytes:
        """Up to ``length`` bytes at ``offset`` (short only at the end)."""

    def fill(self, view: memoryview, offset: int) -> None:
        """Read ``len(view)`` bytes at ``offset`` into ``view``, which holds zeros (a fresh
        ``bytearray``): bytes past the end and holes are left as they are."""
        data = self.pread(len(view), offset)
        view[: len(data)] = data

    def read_piece(self, length: int, offset: int) -> bytes | None:
        """The ``length`` bytes at ``offset`` read with one ``os.pread`` where they lie in one piece
        of one image file: no buffer to zero and fill, as a plain file is read. None where they do
        not (or the source cannot tell): read them with ``fill``."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class Chain(BlockSource):
    """Layers from the top (newest) to the base; reads fall through ``PARENT`` runs.

    Large reads (a file's content, ``fill`` of ``MAPPED_READ`` or more) go through a map of the
    chain resolved a ``WINDOW`` at a time: where each byte of the window comes from after falling
    through every layer (file data, zeros), kept for the next reads of the window. A 1 MiB read of a
    deep chain then costs a lookup in a short list instead of a walk of every layer's tables, and the
    images of a mounted point do not change (a point whose files changed is opened again: a new
    chain). A window with bytes the layers produce themselves (decompressed grains), with more than
    ``WINDOW_RUNS`` runs, or whose resolving fails (a damaged table outside the bytes asked for) is
    not kept, and is read as before: so errors stay where they were, memory stays bounded.
    """

    WINDOW = 32 * MiB
    """Resolving a window walks every layer once, whatever its size: a 32-layer chain whose upper
    layers hold little costs 32 table lookups per window, so larger windows cost less per byte."""
    WINDOWS = 32
    """Windows kept per chain (their runs: a few hundred bytes each for a file stored in one piece;
    at most ``WINDOW_RUNS`` each, about 80 KiB)."""
    WINDOW_RUNS = 512
    MAPPED_READ = 256 * 1024

    def __init__(self, layers: list[Layer], files: list[OpenFile]) -> None:
        if not layers:
            raise ValueError("a chain needs at least one layer")
        self.layers = layers
        self.size = layers[0].size
        self._files = files
        # The layers' table caches and the window maps are not thread-safe, and the volumes of one
        # disk (and the file readers that bypass the file-system library) read it from different threads.
        self._lock = threading.Lock()
        self._windows: OrderedDict[int, _Window | None] = OrderedDict()

    def pread(self, length: int, offset: int) -> bytes:
        check_cancelled()
        if offset >= self.size or length <= 0 or offset < 0:
            return b""
        length = min(length, self.size - offset)
        out = bytearray(length)
        with self._lock:
            self._fill(memoryview(out), offset, length, 0, offset)
        return bytes(out)

    def read_piece(self, length: int, offset: int) -> bytes | None:
        if length < self.MAPPED_READ or offset < 0 or offset + length > self.size:
            return None
        check_cancelled()
        first = offset - offset % self.WINDOW
        if offset + length > first + self.WINDOW:
            return None
        with self._lock:
            window = self._window(first)
            if window is None:
                return None
            starts, runs = window
            start, count, kind, arg = runs[bisect_right(starts, offset) - 1]
            if kind != DATA or offset + length > start + count:
                return None
            fd, host = arg
            data = os.pread(fd, length, host + offset - start)
        if len(data) != length:
            end = host + offset - start + len(data)
            raise CorruptImageError(_fd_path(fd), f"ends at byte {end}, before data the image says it holds")
        return data

    def fill(self, view: memoryview, offset: int) -> None:
        check_cancelled()
        if offset < 0:
            raise ValueError("negative offset")
        length = min(len(view), self.size - offset)
        if length <= 0:
            return
        with self._lock:
            if length >= self.MAPPED_READ:
                self._fill_mapped(view, offset, length)
            else:
                self._fill(view, offset, length, 0, offset)

    def _fill_mapped(self, view: memoryview, offset: int, length: int) -> None:
        """``_fill`` through the window maps; reads adjacent in a file stay one ``preadv`` across
        windows."""
        end = offset + length
        pos = offset
        pending = _Pending(view, offset)
        while pos < end:
            first = pos - pos % self.WINDOW
            stop = min(end, first + self.WINDOW)
            window = self._window(first)
            if window is None:
                pending.flush()
                self._fill(view, pos, stop - pos, 0, offset)
            else:
                starts, runs = window
                index = bisect_right(starts, pos) - 1
                while pos < stop:
                    start, count, kind, arg = runs[index]
                    take = min(start + count, stop) - pos
                    if kind == DATA:
                        fd, host = arg
                        pending.add(fd, host + pos - start, pos, take)
                    pos += take
                    index += 1
            pos = stop
        pending.flush()

    def _window(self, first: int) -> _Window | None:
        windows = self._windows
        if first in windows:
            windows.move_to_end(first)
            return windows[first]
        runs: list[Run] = []
        try:
            self._resolve(first, min(self.WINDOW, self.size - first), 0, runs)
            window: _Window | None = ([r[0] for r in runs], runs)
        except _NotKept:
            window = None
        except OpenCancelledError:
            raise
        except Exception:
            # Damage anywhere in the window: read exactly what is asked, as before, so that a read
            # fails only when its own bytes need the damaged part.
            window = None
        if len(windows) >= self.WINDOWS:
            windows.popitem(last=False)
        windows[first] = window
        return window

    def _resolve(self, offset: int, length: int, depth: int, out: list[Run]) -> None:
        """Append to ``out`` the runs of [offset, offset + length) after falling through the layers
        from ``depth`` down: only ``DATA`` and ``ZERO``, in order, adjacent ones merged."""
        layer = self.layers[depth] if depth < len(self.layers) else None
        if layer is None or offset >= layer.size:
            _append(out, offset, length, ZERO, None)
            return
        if offset + length > layer.size:  # a parent smaller than its child reads zeros beyond its end
            self._resolve(offset, layer.size - offset, depth, out)
            _append(out, layer.size, offset + length - layer.size, ZERO, None)
            return
        parent_at = parent_len = 0
        for start, count, kind, arg in layer.runs(offset, length):
            if kind == PARENT:
                if parent_len and parent_at + parent_len == start:
                    parent_len += count
                else:
                    if parent_len:
                        self._resolve(parent_at, parent_len, depth + 1, out)
                    parent_at, parent_len = start, count
                continue
            if parent_len:
                self._resolve(parent_at, parent_len, depth + 1, out)
                parent_len = 0
            if kind == BYTES:
                raise _NotKept
            _append(out, start, count, kind, arg)
        if parent_len:
            self._resolve(parent_at, parent_len, depth + 1, out)
        if len(out) > self.WINDOW_RUNS:
            raise _NotKept

    def _fill(self, view: memoryview, offset: int, length: int, depth: int, base: int) -> None:
        if depth >= len(self.layers):
            return  # below the base: zeros (already in the buffer)
        layer = self.layers[depth]
        if offset >= layer.size:
            return
        if offset + length > layer.size:
            length = layer.size - offset  # a parent smaller than its child reads zeros beyond its end
        pending = _Pending(view, base)
        parent_at = parent_len = 0
        for start, count, kind, arg in layer.runs(offset, length):
            if kind == PARENT:  # adjacent "ask the parent" runs become one request to the parent
                if parent_len and parent_at + parent_len == start:
                    parent_len += count
                else:
                    if parent_len:
                        self._fill(view, parent_at, parent_len, depth + 1, base)
                    parent_at, parent_len = start, count
                continue
            if kind == DATA:
                fd, host = arg
                pending.add(fd, host, start, count)
            elif kind == BYTES:
                data, skip = arg
                view[start - base : start - base + count] = data[skip : skip + count]
            # ZERO: nothing to do
        pending.flush()
        if parent_len:
            self._fill(view, parent_at, parent_len, depth + 1, base)

    def close(self) -> None:
        for layer in self.layers:
            layer.close()
        for f in self._files:
            f.close()


_Window = tuple[list[int], list[Run]]
"""A window's run starts (for bisect) and its runs."""


class _NotKept(Exception):
    """A window map that is not kept (bytes made by a layer, or too many runs)."""


def _append(out: list[Run], start: int, count: int, kind: int, arg: Any) -> None:
    if out:
        last_start, last_count, last_kind, last_arg = out[-1]
        if last_kind == kind and last_start + last_count == start:
            if kind == ZERO:
                out[-1] = (last_start, last_count + count, ZERO, None)
                return
            if kind == DATA and last_arg[0] == arg[0] and last_arg[1] + last_count == arg[1]:
                out[-1] = (last_start, last_count + count, DATA, last_arg)
                return
    out.append((start, count, kind, arg))


class _Pending:
    """File reads into ``view`` (whose first byte is virtual offset ``base``), adjacent ones joined
    into one ``preadv``."""

    __slots__ = ("at", "base", "fd", "host", "length", "view")

    def __init__(self, view: memoryview, base: int) -> None:
        self.view, self.base = view, base
        self.fd = -1
        self.host = self.at = self.length = 0

    def add(self, fd: int, host: int, virtual: int, count: int) -> None:
        at = virtual - self.base
        if fd == self.fd and host == self.host + self.length and at == self.at + self.length:
            self.length += count
            return
        self.flush()
        self.fd, self.host, self.at, self.length = fd, host, at, count

    def flush(self) -> None:
        if self.fd >= 0:
            _read_into(self.fd, self.view[self.at : self.at + self.length], self.host)
            self.fd = -1


def _read_into(fd: int, target: memoryview, host: int) -> None:
    done = 0
    while done < len(target):
        n = os.preadv(fd, [target[done:]], host + done)
        if n <= 0:
            # The image's own metadata (or the file's size when it was opened) says these bytes exist:
            # the file was truncated or replaced while in use. Zeros here would be silent corruption.
            raise CorruptImageError(
                _fd_path(fd), f"ends at byte {host + done}, before data the image says it holds"
            )
        done += n


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "an image file"


class Slice(BlockSource):
    """A window [start, start + size) of another source: a partition or logical volume."""

    def __init__(self, parent: BlockSource, start: int, size: int) -> None:
        if start < 0 or size < 0 or start + size > parent.size:
            raise CorruptImageError(
                "partition table", f"volume at {start} of {size} bytes lies outside the disk"
            )
        self.parent = parent
        self.start = start
        self.size = size

    def pread(self, length: int, offset: int) -> bytes:
        if offset >= self.size or length <= 0 or offset < 0:
            return b""
        return self.parent.pread(min(length, self.size - offset), self.start + offset)

    def fill(self, view: memoryview, offset: int) -> None:
        length = min(len(view), self.size - offset)
        if length > 0 and offset >= 0:
            self.parent.fill(view[:length], self.start + offset)

    def read_piece(self, length: int, offset: int) -> bytes | None:
        if offset < 0 or length <= 0 or offset + length > self.size:
            return None
        return self.parent.read_piece(length, self.start + offset)


class CachedReader:
    """File-object view of a source for the C file-system libraries.

    They read metadata in many small pieces (a 1 KiB MFT record per directory entry, 4 KiB
    blocks); an LRU of aligned 64 KiB blocks turns those into few reads of the chain, and the
    common case (a read inside one cached block) is a dict lookup and a slice. One reader belongs
    to one file system, whose lock serialises access, so the reader itself takes no lock.
    """

    SHIFT = 16
    BLOCK = 1 << SHIFT
    BLOCKS = 512
    """Blocks one reader keeps (32 MiB)."""
    BUDGET = 8192
    """Blocks all readers of the process keep together (512 MiB): a point with hundreds of volumes
    cannot make the caches grow without bound; past the budget each reader keeps at most ``FLOOR``."""
    FLOOR = 16
    _total = 0
    _total_lock = threading.Lock()

    def __init__(self, source: BlockSource) -> None:
        self.source = source
        self.size = source.size
        self.pos = 0
        self._cache: dict[int, bytes] = {}

    # io-like protocol used by libyal (read/seek/tell/get_size)
    def read(self, size: int = -1) -> bytes:
        pos = self.pos
        if size is None or size < 0:
            size = self.size - pos
        within = pos & (self.BLOCK - 1)
        if size > 0 and within + size <= self.BLOCK and pos + size <= self.size:
            block = self._cache.get(pos >> self.SHIFT)
            if block is None:
                block = self._load(pos >> self.SHIFT)
            self.pos = pos + size
            return block[within : within + size]
        data = self.read_at(pos, size)
        self.pos = pos + len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            offset += self.pos
        elif whence == os.SEEK_END:
            offset += self.size
        if offset < 0:
            raise OSError("negative seek position")
        self.pos = offset
        return offset

    def tell(self) -> int:
        return self.pos

    def get_size(self) -> int:
        return self.size

    def close(self) -> None:
        self._drop_all()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._drop_all()

    def _drop_all(self) -> None:
        n = len(self._cache)
        if n:
            self._cache.clear()
            with CachedReader._total_lock:
                CachedReader._total -= n

    def read_at(self, offset: int, size: int) -> bytes:
        if offset >= self.size or size <= 0:
            return b""
        size = min(size, self.size - offset)
        if size >= self.BLOCK:
            return self.source.pread(size, offset)
        first, last = offset >> self.SHIFT, (offset + size - 1) >> self.SHIFT
        parts = [self._cache.get(b) or self._load(b) for b in range(first, last + 1)]
        joined = parts[0] if len(parts) == 1 else b"".join(parts)
        skip = offset - (first << self.SHIFT)
        return joined[skip : skip + size]

    def _load(self, index: int) -> bytes:
        data = self.source.pread(self.BLOCK, index << self.SHIFT)
        cache = self._cache
        with CachedReader._total_lock:
            over = CachedReader._total >= self.BUDGET and len(cache) >= self.FLOOR
            if cache and (len(cache) >= self.BLOCKS or over):
                del cache[next(iter(cache))]
            else:
                CachedReader._total += 1
            cache[index] = data
        return data
