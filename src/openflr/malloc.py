"""Keep glibc from handing 1 MiB buffers back to the kernel after every use.

Each downloaded MiB passes through a few 1 MiB buffers (the image read, the file system library's
copy, the bytes object sent). glibc serves blocks that large with ``mmap`` and, in worker-thread
arenas, trims freed memory back to the kernel, so every buffer costs 256 fresh page faults: measured
here, a download then runs at 0.4 GB/s instead of 1.3 GB/s. A fixed mmap threshold of 16 MiB and a
trim threshold of 32 MiB keep such buffers in the heap for reuse; memory held per thread stays a few
MiB. Nothing happens where glibc's ``mallopt`` is not available.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 16 * 1024 * 1024
TRIM_THRESHOLD = 32 * 1024 * 1024


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
