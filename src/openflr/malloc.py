"""Keep glibc from handing 1 MiB buffers back to the kernel after every use.

Each downloaded MiB passes through a few 1 MiB buffers (the image read, the file system library's
copy, the bytes object sent). glibc serves blocks that large with ``mmap`` and, in worker-thread
arenas, trims freed memory back to the kernel, so every buffer costs 256 fresh page faults: measured
here, a download then runs at 0.4 GB/s instead of 1.3 GB/s. A fixed mmap threshold of 16 MiB and a
trim threshold of 32 MiB keep such buffers in the heap for reuse; memory held per thread stays a few
MiB. Nothing happens where glibc's ``mallopt`` is not available.

What a burst of downloads freed stays in those heaps (each worker thread's arena keeps up to the trim
threshold, and free pages below the top of a heap are not returned). ``trim_soon``, called when the
last download ends, hands them back with ``malloc_trim(0)`` in a thread of its own: measured after 16
concurrent folder ZIPs, the server stayed 156-184 MiB above its start instead of 214-258 MiB. A
download after it pays a few page faults for its first buffers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 16 * 1024 * 1024
TRIM_THRESHOLD = 32 * 1024 * 1024
_trimming = threading.Lock()


def tune() -> bool:
    """Apply the thresholds; True when glibc took them."""
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
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
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
