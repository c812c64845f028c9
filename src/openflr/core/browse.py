"""Browsing a mount, the use cases front ends call: ``locate`` a path, list a folder one ``page`` at a
time or ``entries`` streamed, ``count`` it; behind them a bounded page cache.

Paging order is: directories first, then files, each in the file system's own stable order. A
paged listing reads the directory once, in a background thread, and keeps its entries (not the
engine handles) in a cache bounded by total entries: walking 100 pages of a 100,000-entry folder
reads it once, not 100 times. A page is answered as soon as its entries are known, not when the
whole folder has been read: files are appended in on-disk order, and where the file system tells
how many subfolders a folder has (ext4, XFS: link count - 2) the folders are complete as soon as
that many have been seen. An unpaged listing streams straight from the engine and never holds the
whole directory.

A folder comes from a replica's file system, which is not trusted: one folder may claim (or, on a
damaged volume, really yield) hundreds of millions of entries. A paged listing holds at most
``max_folder_entries`` of one folder and fails cleanly past that; listings are one level deep, so a
folder that contains itself is just an entry here (recursive walks guard against loops:
``guestfs/loops.py``).
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread

from openflr.core.folderreaders import FolderRead, FolderReaders
from openflr.core.mounts import Mount
from openflr.core.names import shown
from openflr.core.sessions import LogonSession
from openflr.errors import BadRequestError, UnavailableError
from openflr.guestfs.errors import ImagesChangedError
from openflr.guestfs.filesystems.base import Entry
from openflr.guestfs.view import GuestPath, GuestView, Located

if TYPE_CHECKING:
    from openflr.core.service import Service

log = logging.getLogger(__name__)
T = TypeVar("T")


class ListingKind(StrEnum):
    """What a listing holds; the value is the EM ``action`` that asks for it."""

    ALL = "listAll"
    DIRS = "listDirs"
    FILES = "listFiles"

    @classmethod
    def of_action(cls, action: str) -> ListingKind | None:
        """The kind an ``action`` names (case-insensitive), or None when it names none."""
        return _KINDS.get(action.strip().lower())


_KINDS = {k.value.lower(): k for k in ListingKind}


class SortKey(StrEnum):
    """A column a paged listing can be sorted by (folders always come first)."""

    NAME = "name"
    SIZE = "size"
    MODIFIED = "modified"
    OWNER = "owner"


@dataclass(frozen=True)
class Arrangement:
    """How a paged listing is ordered and narrowed; the default is the file system's own order."""

    key: SortKey | None = None
    descending: bool = False
    name_contains: str = ""
    """Only entries whose name holds this text (case-insensitive)."""

    @property
    def is_default(self) -> bool:
        return self.key is None and not self.name_contains


ON_DISK = Arrangement()
ALL, DIRS, FILES = ListingKind.ALL, ListingKind.DIRS, ListingKind.FILES
_BATCH = 256
HEAD = 4096
"""Positions of a big folder read in the server while a reader process starts on the rest: the
first pages come without waiting for the reader to open the point."""


# --- use cases ------------------------------------------------------------------------------------


async def locate(service: Service, mount: Mount, path: str | Sequence[str] | GuestPath) -> Located:
    """The item ``path`` names in the mount; 400 for a path that climbs, 404 for one that is not there.

    The path is checked once; an item resolved before is answered without leaving the event loop,
    any other is looked up in a worker thread with the mount's files held open."""
    view = mount.view
    checked = view.parse(path)
    where = view.cached_location(checked)
    if where is None:
        where = await anyio.to_thread.run_sync(held, service, mount, lambda: view.locate(checked))
    return where


def require_folder(mount: Mount, where: Located) -> None:
    """400 unless ``where`` is a folder (or the guest's top): only folders are listed."""
    if where.entry is not None and not where.entry.is_dir:
        raise BadRequestError(
            f"{shown(mount.view.path_of(where.root, where.parts))!r} is a file, not a folder."
        )


async def page(
    service: Service,
    mount: Mount,
    where: Located,
    kind: ListingKind,
    size: int,
    number: int,
    arrangement: Arrangement = ON_DISK,
) -> Page:
    """Page ``number`` (from 1) of ``size`` entries of a folder, folders first; the folder is read
    once into the listing cache for all its pages. In the file system's order a page is answered as
    soon as its entries are known; sorted or filtered, once the whole folder is read."""
    require_folder(mount, where)
    return await anyio.to_thread.run_sync(
        read_page, service.listings, mount, where, kind, size, number, arrangement
    )


async def count(service: Service, mount: Mount, where: Located, kind: ListingKind) -> int:
    """How many entries of ``kind`` the folder holds (while it is being read, the file system's own
    count where it keeps one)."""
    return (await page(service, mount, where, kind, 1, 1)).total


def entries(
    service: Service, session: LogonSession, mount: Mount, where: Located, kind: ListingKind
) -> Iterator[Entry]:
    """The whole folder in on-disk order, straight from the engine, never held in memory: the session
    stays alive and the mount's files open while it is read (blocking: iterate in a worker thread).
    A file is refused here, before anything streams (a 400 cannot follow a response begun)."""
    require_folder(mount, where)
    return _held_stream(service, session, mount, where, kind)


def _held_stream(
    service: Service, session: LogonSession, mount: Mount, where: Located, kind: ListingKind
) -> Iterator[Entry]:
    with session.streaming(), service.mounts.hold(mount):
        yield from stream(mount, where, kind)


async def folders(service: Service, mount: Mount, where: Located) -> list[Entry]:
    """The subfolders of a folder, read in a worker thread."""
    require_folder(mount, where)
    return await anyio.to_thread.run_sync(held, service, mount, lambda: list(stream(mount, where, DIRS)))


def held(service: Service, mount: Mount, read: Callable[[], T]) -> T:
    """``read()`` with the mount's files held open: an unmount meanwhile cannot close them under the
    engine (blocking: run it in a worker thread)."""
    with service.mounts.hold(mount):
        return read()


# --- reading folders -------------------------------------------------------------------------------


def wanted(entry: Entry, kind: ListingKind) -> bool:
    return kind is ALL or (entry.is_dir if kind is DIRS else not entry.is_dir)


def stream(mount: Mount, where: Located, kind: ListingKind) -> Iterator[Entry]:
    """Entries in on-disk order (blocking engine calls: iterate off the event loop)."""
    for entry in mount.view.scandir(where):
        if wanted(entry, kind):
            yield entry


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    total: int
    """Entries in the whole listing (from the file system's own count while it is being read)."""


@dataclass
class Scan:
    """One folder being read (or read) into the cache."""

    expected_entries: int | None
    """What the file system says the folder holds (an estimate: special files are left out)."""
    expected_dirs: int | None
    dirs: list[Entry] = field(default_factory=list)
    files: list[Entry] = field(default_factory=list)
    done: bool = False
    error: BaseException | None = None
    ready: threading.Condition = field(default_factory=threading.Condition)
    _arranged: dict[tuple[ListingKind, Arrangement], list[Entry]] = field(default_factory=dict)

    def size(self) -> int:
        return len(self.dirs) + len(self.files)

    def _have(self, kind: ListingKind, end: int) -> bool:
        if self.done:
            return True
        if self.expected_entries is None:
            return False  # the page count is not known until the folder is read
        if kind == FILES:
            return self.expected_dirs is not None and len(self.files) >= end
        dirs_known = self.expected_dirs is not None and len(self.dirs) >= self.expected_dirs
        if kind == DIRS:
            return len(self.dirs) >= end or dirs_known
        return dirs_known and len(self.dirs) + len(self.files) >= end

    def wait(self, kind: ListingKind, end: int, timeout: float) -> None:
        with self.ready:
            self.ready.wait_for(lambda: self._have(kind, end) or self.error is not None, timeout)
        if self.error is not None:
            raise self.error

    def arranged(self, kind: ListingKind, arrangement: Arrangement) -> list[Entry]:
        """The folder's entries of ``kind`` sorted and filtered (folders first); kept for the next
        pages (the last few arrangements of the folder). Call once the folder is read."""
        key = (kind, arrangement)
        with self.ready:
            found = self._arranged.get(key)
            if found is not None:
                return found
            dirs, files = list(self.dirs), list(self.files)
        entries = []
        if kind is not FILES:
            entries += _arrange(dirs, arrangement)
        if kind is not DIRS:
            entries += _arrange(files, arrangement)
        with self.ready:
            if len(self._arranged) >= 4:
                self._arranged.pop(next(iter(self._arranged)))
            self._arranged[key] = entries
        return entries

    def slice(self, kind: ListingKind, start: int, end: int) -> Page:
        with self.ready:
            if kind == FILES:
                part = self.files[start:end]
            elif kind == DIRS:
                part = self.dirs[start:end]
            else:
                dirs = self.dirs
                part = dirs[start:end]
                if len(part) < end - start:
                    part += self.files[max(0, start - len(dirs)) : end - len(dirs)]
            return Page(part, self._total(kind))

    def _total(self, kind: ListingKind) -> int:
        done = self.done
        dirs = len(self.dirs) if done or self.expected_dirs is None else self.expected_dirs
        if kind == DIRS:
            return dirs
        entries = len(self.dirs) + len(self.files)
        if not done and self.expected_entries is not None:
            entries = max(entries, self.expected_entries)
        return entries if kind == ALL else max(0, entries - dirs)


Batches = Generator[list[Entry], None, None]
Hold = Callable[[Mount], AbstractContextManager[Any]]
"""Keeps a mount's files open while the engine reads them (``MountManager.hold``)."""


class ListingCache:
    """Folder contents by (view, root, path); least recently used first out, bounded by entries.

    Folders are read in background threads that may outlive the request that started them: each
    holds the mount that started it (``hold``), so an unmount cannot close the files under it; the
    files close once the read ends. A folder known to hold ``reader_min_entries`` or more is read by
    a reader process where one is free (``readers``, see ``folderreaders``)."""

    def __init__(
        self,
        hold: Hold,
        max_entries: int = 2_000_000,
        wait_seconds: float = 300.0,
        max_folder_entries: int = 1_000_000,
        readers: FolderReaders | None = None,
        reader_min_entries: int = 5000,
        reader_head: int = HEAD,
    ) -> None:
        self.max_entries = max_entries
        self.max_folder_entries = max_folder_entries
        self.wait_seconds = wait_seconds
        self.hold = hold
        self.readers = readers
        self.reader_min_entries = reader_min_entries
        self.reader_head = reader_head
        self._data: OrderedDict[tuple[int, int, tuple[str, ...]], Scan] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(mount: Mount, where: Located) -> tuple[int, int, tuple[str, ...]]:
        return (mount.view.serial, id(where.root), tuple(where.parts))

    def peek(self, mount: Mount, where: Located) -> Scan | None:
        """The scan of a folder that is fully read, or None (never reads the directory)."""
        with self._lock:
            scan = self._data.get(self._key(mount, where))
            if scan is not None and scan.done and scan.error is None:
                self._data.move_to_end(self._key(mount, where))
                return scan
        return None

    def scan(self, mount: Mount, where: Located) -> Scan:
        key = self._key(mount, where)
        with self._lock:
            scan = self._data.get(key)
            if scan is not None and scan.error is None:
                self._data.move_to_end(key)
                return scan
        # The hold taken here passes to the background read and ends with it: no moment when the
        # read runs without it, and an unmount meanwhile does not fail the read that other mounts of
        # the same point may share. It is released outside the cache's lock, because releasing it
        # may close a view, which calls back into forget_view.
        held = ExitStack()
        held.enter_context(self.hold(mount))
        try:
            counts = mount.view.counts(where)
            with self._lock:
                scan = self._data.get(key)
                if scan is None or scan.error is not None:
                    scan = Scan(*counts)
                    self._data[key] = scan
                    self._evict()
                    reader: threading.Thread | None = threading.Thread(
                        target=self._read,
                        args=(mount, where, scan, held),
                        name="openflr-listing",
                        daemon=True,
                    )
                else:
                    reader = None  # another request started it meanwhile
            if reader is None:
                held.close()
            else:
                reader.start()
        except BaseException:
            held.close()
            raise
        return scan

    def _batches(self, mount: Mount, where: Located, expected: int | None) -> Batches:
        """The folder's entries in batches. A big folder's first ``reader_head`` positions are read
        here while reader processes (those free) open the point and read the rest between them."""
        view = mount.view
        size, head = expected or 0, self.reader_head
        if self.readers is not None and view.opened_from is not None and size >= self.reader_min_entries:
            # One component split at "/" only: a "\\" in a name stays part of it.
            path = [view.path_of(where.root, where.parts)]
            tails = self.readers.read(view.opened_from, path, head, size, most=self.readers.size)
            if tails:
                return _head_then_tails(view, where, head, tails)
        return _in_batches(view.scandir(where))

    def _read(self, mount: Mount, where: Located, scan: Scan, held: ExitStack) -> None:
        count = 0
        try:
            with held:
                batches = self._batches(mount, where, scan.expected_entries)
                try:
                    for batch in batches:
                        count += len(batch)
                        if count > self.max_folder_entries:
                            raise BadRequestError(
                                f"The folder holds more than {self.max_folder_entries} entries, too many "
                                "to page through; list it without pageSize (the listing then streams)."
                            )
                        dirs = [e for e in batch if e.is_dir]
                        with scan.ready:
                            if dirs:
                                scan.dirs += dirs
                                scan.files += [e for e in batch if not e.is_dir]
                            else:
                                scan.files += batch
                            scan.ready.notify_all()
                finally:
                    batches.close()
        except BaseException as exc:
            log.warning("listing %s failed: %s", where.parts, exc)
            with scan.ready:
                scan.error = exc
                scan.dirs, scan.files = [], []  # a failed folder holds no memory
                scan.ready.notify_all()
            return
        with scan.ready:
            scan.done = True
            scan.ready.notify_all()
        with self._lock:
            self._evict()

    def _evict(self) -> None:
        total = sum(s.size() for s in self._data.values())
        for key in list(self._data):
            if total <= self.max_entries:
                break
            if self._data[key].done:
                total -= self._data.pop(key).size()

    def forget_view(self, serial: int) -> None:
        with self._lock:
            for key in [k for k in self._data if k[0] == serial]:
                self._data.pop(key)


def _in_batches(entries: Iterator[Entry]) -> Batches:
    while True:
        batch = list(itertools.islice(entries, _BATCH))
        if not batch:
            return
        for e in batch:
            e.node = None  # keep the facts, not the engine's handle
        yield batch


def _head_then_tails(view: GuestView, where: Located, head: int, tails: list[FolderRead]) -> Batches:
    try:
        yield from _in_batches(view.scandir(where, 0, head))
        for tail in tails:
            try:
                yield from tail
            except ImagesChangedError:
                # Sent before any entry: the point's files were replaced since the mount (a replica
                # job merged a snapshot, say). This view still reads the files it opened; so here.
                log.info("%s; reading its folder in the server", view.path_of(where.root, where.parts))
                yield from _in_batches(view.scandir(where, tail.start, tail.stop))
    finally:
        for tail in tails:
            tail.close()


def read_page(
    cache: ListingCache,
    mount: Mount,
    where: Located,
    kind: ListingKind,
    size: int,
    number: int,
    arrangement: Arrangement = ON_DISK,
) -> Page:
    """One page, as soon as its entries are known (blocking: call off the event loop when the
    folder is not fully read yet)."""
    scan = cache.scan(mount, where)
    start = (number - 1) * size
    if arrangement.is_default:
        scan.wait(kind, start + size, cache.wait_seconds)
        return scan.slice(kind, start, start + size)
    scan.wait(kind, sys.maxsize, cache.wait_seconds)
    if not scan.done:
        raise UnavailableError(
            "The folder is still being read; sorting or filtering it needs all of it. Try again shortly."
        )
    entries = scan.arranged(kind, arrangement)
    return Page(entries[start : start + size], len(entries))


_NO_TIME = -(2**63)


def _arrange(entries: list[Entry], arrangement: Arrangement) -> list[Entry]:
    wanted = arrangement.name_contains.casefold()
    if wanted:
        entries = [e for e in entries if wanted in e.name.casefold()]
    key = arrangement.key
    if key is None:
        return entries
    entries.sort(key=lambda e: e.name.casefold())  # ties in the other columns go by name
    reverse = arrangement.descending
    if key is SortKey.NAME:
        if reverse:
            entries.reverse()
    elif key is SortKey.SIZE:
        entries.sort(key=lambda e: e.size, reverse=reverse)
    elif key is SortKey.MODIFIED:
        entries.sort(key=lambda e: _NO_TIME if e.mtime_ns is None else e.mtime_ns, reverse=reverse)
    else:
        entries.sort(key=lambda e: (e.owner or "").casefold(), reverse=reverse)
    return entries
