"""Keep glibc from handing 1 MiB buffers back to the kernel after every use, and from keeping what a
burst of downloads freed.

Each downloaded MiB passes through a few 1 MiB buffers (the image read, the file system library's
copy, the bytes object sent). glibc serves blocks that large with ``mmap`` and, in worker-thread
arenas, trims freed memory back to the kernel, so every buffer costs 256 fresh page faults: measured
here, a download then runs at 0.4 GB/s instead of 1.3 GB/s. A fixed mmap threshold of 16 MiB and a
trim threshold of 8 MiB keep such buffers in the heap for reuse.

What a burst of downloads freed stays in those heaps: ``malloc_trim`` returns the free pages inside
every heap, but never the free top of a worker thread's heap, which is only trimmed once it passes
the trim threshold. glibc makes up to eight heaps per core (one per thread while there are fewer),
each keeping up to the threshold; measured after 16 concurrent folder ZIPs, a 32 MiB threshold kept
about 75 MiB that way. So the heaps are limited to two (the GIL runs one thread at a time: more do
not make allocation faster) and the threshold to 8 MiB. ``trim_soon``, called when the last download
ends, gives the rest back with ``malloc_trim(0)`` in a thread of its own. A download after it pays a
few page faults for its first buffers. Nothing happens where glibc's ``mallopt`` is not available.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 16 * 1024 * 1024
TRIM_THRESHOLD = 8 * 1024 * 1024
ARENA_MAX = 2
_trimming = threading.Lock()


def tune() -> bool:
    """Apply the thresholds and the heap limit; True when glibc took them."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    taken = [
        mallopt(option, value)
        for option, value in (
            (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            (M_ARENA_MAX, ARENA_MAX),
        )
    ]
    ok = all(taken)
    log.debug("malloc thresholds %s", "set" if ok else "not set")
    return ok


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def trim() -> bool:
    """Give the heaps' free memory back to the kernel (glibc's ``malloc_trim(0)``); False where
    there is no such call, or while another trim runs."""
    libc = _libc()
    malloc_trim = getattr(libc, "malloc_trim", None)
    if malloc_trim is None or not _trimming.acquire(blocking=False):
        return False
    try:
        malloc_trim.argtypes = [ctypes.c_size_t]
        malloc_trim.restype = ctypes.c_int
        malloc_trim(0)
        return True
    finally:
        _trimming.release()


def trim_soon() -> None:
    """``trim`` in a short-lived thread (it walks every heap: milliseconds, not for the event loop)."""
    threading.Thread(target=trim, name="malloc-trim", daemon=True).start()
