"""Big folders read in worker processes, for paged listings.

A paged listing reads its folder in the background while pages are cut from what has been read.
In one process both share one interpreter lock, so reading 100,000 entries and rendering their
pages take turns on one core. A reader process opens the point again from its image files (as a
mount does: milliseconds), reads its part of the folder with the same engine and sends the entries
back in batches, so the reading runs on other cores; a big folder is split between the free readers.
It also keeps the server up when an engine crashes on a hostile image: the reader dies, the listing
fails with a clear error, a new reader starts on demand.

Readers start on first use (or with ``start``), at most ``size`` at a time; a listing that finds
none free reads in the server process, as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from openflr.errors import BadRequestError, GuestPathNotFoundError, NotFoundError, OpenflrError
from openflr.guestfs.errors import ImagesChangedError, OpenCancelledError, VolumeError
from openflr.guestfs.filesystems.base import Entry
from openflr.guestfs.view import Opening

log = logging.getLogger(__name__)

BATCH = 512
"""Entries per message from a reader."""

NICENESS = 5
"""How much lower than the server a reader runs."""

Row = tuple[str, bool, int, int | None, str | None, bool, int | None]
"""An entry as it travels: name, is_dir, size, mtime_ns, owner, is_link, ident."""

Request = tuple[Opening, str | list[str], int, int | None]
"""What a reader is asked: the point, the folder's path (``GuestView.locate`` components), positions
``[start, stop)``."""

_KINDS: tuple[tuple[str, type[OpenflrError], type[OpenflrError]], ...] = (
    ("changed", ImagesChangedError, ImagesChangedError),
    ("bad-request", BadRequestError, BadRequestError),
    ("not-found", NotFoundError, GuestPathNotFoundError),
    ("cancelled", OpenCancelledError, OpenCancelledError),
    ("volume", OpenflrError, VolumeError),
)
"""How a reader's error travels: its kind, what the reader catches as that kind (first match), what
the server raises for it. Anything else is an internal error."""
_RAISED = {kind: raised for kind, _caught, raised in _KINDS}


def _error_kind(exc: BaseException) -> str:
    return next((kind for kind, caught, _raised in _KINDS if isinstance(exc, caught)), "internal")


# --- the reader process ------------------------------------------------------------------------------


def _serve(conn: Connection) -> None:
    """A reader process: read the folders asked for until the server closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the server ends us
    with contextlib.suppress(OSError):
        os.nice(NICENESS)  # where cores are short, the server's own requests come first
    while True:
        try:
            request: Request | None = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        try:
            _read(conn, *request)
        except (BrokenPipeError, EOFError):
            return
        except Exception as exc:
            if isinstance(exc, OpenflrError):
                message = exc.message
            else:
                log.exception("reading %r failed", request[1])
                message = f"The folder cannot be read: internal error ({type(exc).__name__})."
            conn.send(("error", (_error_kind(exc), message)))


def _read(conn: Connection, opening: Opening, path: str | list[str], start: int, stop: int | None) -> None:
    view = opening.open()
    try:
        batch: list[Row] = []
        for e in view.scandir(view.locate(path), start, stop):
            batch.append((e.name, e.is_dir, e.size, e.mtime_ns, e.owner, e.is_link, e.ident))
            if len(batch) >= BATCH:
                conn.send(("entries", batch))
                batch = []
        conn.send(("done", batch))
    finally:
        view.close()


# --- the server's side ---------------------------------------------------------------------------------


@dataclass(eq=False)
class _Reader:
    process: subprocess.Popen[bytes]
    conn: Connection


class FolderReaders:
    """At most ``size`` reader processes; each reads one part of one folder at a time."""

    def __init__(self, size: int, stall_seconds: float = 300.0) -> None:
        self.size = size
        self.stall_seconds = stall_seconds
        """A reader that sends nothing for this long is stopped (an engine looping on a damaged folder)."""
        self._lock = threading.Lock()
        self._idle: list[_Reader] = []
        self._count = 0
        self._closed = False

    def start(self) -> None:
        """Start every reader now, in the background, rather than at the first big listing."""

        def run() -> None:
            with self._lock:
                wanted = self.size - self._count
                self._count += wanted
            for _ in range(wanted):
                reader = self._spawn_counted()
                if reader is not None:
                    self._give_back(reader, True)

        threading.Thread(target=run, name="openflr-reader-start", daemon=True).start()

    def _spawn_counted(self) -> _Reader | None:
        """A new reader for a place already counted in ``_count`` (given back on failure)."""
        try:
            return self._spawn()
        except OSError as exc:
            log.warning("a folder reader process cannot be started: %s", exc)
            with self._lock:
                self._count -= 1
            return None

    @staticmethod
    def _spawn() -> _Reader:
        # A fresh interpreter (not a fork of this threaded one, not multiprocessing's spawn, which
        # would import the server's __main__ again), talking over one socket pair.
        ours, theirs = socket.socketpair()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return _Reader(process, Connection(ours.detach()))

    def _take(self, most: int) -> list[_Reader]:
        with self._lock:
            if self._closed:
                return []
            taken = [self._idle.pop() for _ in range(min(most, len(self._idle)))]
            new = min(most - len(taken), self.size - self._count)
            self._count += new
        for _ in range(new):
            reader = self._spawn_counted()
            if reader is not None:
                taken.append(reader)
        return taken

    def _give_back(self, reader: _Reader, healthy: bool) -> None:
        if healthy:
            with self._lock:
                if not self._closed:
                    self._idle.append(reader)
                    return
        self._stop(reader)

    def _stop(self, reader: _Reader) -> None:
        with contextlib.suppress(OSError):
            reader.conn.close()
        reader.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            reader.process.wait(5)
        with self._lock:
            self._count -= 1

    def read(
        self, opening: Opening, path: str | list[str], start: int, end: int, most: int
    ) -> list[FolderRead]:
        """Start reading positions ``start``.. of the folder at ``path`` of the point ``opening``
        opens (``end``: where the file system says the folder ends), split in equal parts between
        up to ``most`` free readers; the last part reads to the real end. [] when none is free."""
        readers = self._take(most)
        reads: list[FolderRead] = []
        step = max(1, (end - start) // max(1, len(readers)))
        for n, reader in enumerate(readers):
            first = start + n * step
            stop = None if n == len(readers) - 1 else first + step
            reads.append(FolderRead(self, reader, (opening, path, first, stop)))
        return reads

    def close(self) -> None:
        """Stop every idle reader and refuse new reads (at server shutdown); busy ones stop when
        their read ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for reader in idle:
            with contextlib.suppress(OSError):
                reader.conn.send(None)
            self._stop(reader)


_END = object()


class FolderRead:
    """One part of a folder being read by a reader process. A thread of its own takes the entries
    in as they come (so several parts are read at once); iterate for them in batches (blocking: off
    the event loop), then ``close``. Errors of the read are raised as the server's own would be
    (``VolumeError``, ...)."""

    def __init__(self, pool: FolderReaders, reader: _Reader, request: Request) -> None:
        self.start, self.stop = request[2], request[3]
        """The positions this read covers."""
        self._pool = pool
        self._reader = reader
        self._items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._owned = True
        """The reader is still ours to give back or stop (not yet by the taker or by ``close``)."""
        threading.Thread(
            target=self._take_in, args=(request,), name="openflr-folder-read", daemon=True
        ).start()

    def _release(self, healthy: bool) -> None:
        with self._lock:
            owned, self._owned = self._owned, False
        if owned:
            self._pool._give_back(self._reader, healthy)

    def _take_in(self, request: Request) -> None:
        conn = self._reader.conn
        stall = self._pool.stall_seconds
        try:
            conn.send(request)
            while True:
                if not conn.poll(stall):
                    self._release(False)
                    self._items.put(
                        OpenCancelledError(
                            f"Reading the folder stalled: nothing was read for {stall:g} s; stopped."
                        )
                    )
                    return
                kind, payload = conn.recv()
                if kind == "error":
                    self._release(True)  # the reader reported it and waits for the next folder
                    error, message = payload
                    self._items.put(_RAISED.get(error, OpenflrError)(message))
                    return
                self._items.put([Entry(n, d, s, m, o, None, link, i) for n, d, s, m, o, link, i in payload])
                if kind == "done":
                    self._release(True)
                    self._items.put(_END)
                    return
        except (EOFError, OSError):
            code = self._reader.process.poll()
            self._release(False)
            self._items.put(
                VolumeError(
                    "The folder cannot be read: the process reading it stopped"
                    + (f" (exit code {code})." if code is not None else ".")
                )
            )

    def __iter__(self) -> FolderRead:
        return self

    def __next__(self) -> list[Entry]:
        item = self._items.get()
        if item is _END:
            self._items.put(_END)
            raise StopIteration
        if isinstance(item, BaseException):
            self._items.put(item)
            raise item
        batch: list[Entry] = item
        return batch

    def close(self) -> None:
        """Done with the read. A reader left before the end of its part still has entries on the
        way: it is stopped rather than reused (its thread then ends)."""
        self._release(False)


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
