"""Server-wide budgets for heavy work (mounts being opened, downloads streaming).

Over budget a request is refused at once with 503 and ``Retry-After`` rather than queued: a client
that waits on a queue it cannot see looks hung, and a restore script can retry.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from openflr.errors import UnavailableError


class Budget:
    """A counter of work in flight with a fixed limit; thread-safe."""

    def __init__(self, what: str, limit: int, retry_after: int = 2) -> None:
        self.what = what
        self.limit = limit
        self.retry_after = retry_after
        self._in_use = 0
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        return self._in_use

    def acquire(self) -> None:
        """Take one unit or raise 503 (``UnavailableError``) when all are taken."""
        with self._lock:
            if self._in_use >= self.limit:
                raise UnavailableError(
                    f"The server is busy: {self._in_use} {self.what} are in progress (the limit is "
                    f"{self.limit}). Try again in a few seconds.",
                    self.retry_after,
                )
            self._in_use += 1

    def release(self) -> None:
        with self._lock:
            self._in_use = max(0, self._in_use - 1)

    @contextmanager
    def taken(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()
