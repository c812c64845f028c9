"""Browsing a mount: resolve paths, list directories (streamed or paged), with a bounded page cache.

Paging order is: directories first, then files, each in the file system's own stable order. A
paged listing reads the directory once and keeps its entries (not the engine handles) in a cache
bounded by total entries, so walking 100 pages of a 100,000-entry folder reads it once, not 100
times. An unpaged listing streams straight from the engine and never holds the whole directory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from openflr.core.mounts import Mount
from openflr.guestfs.filesystems.base import Entry
from openflr.guestfs.view import Located

ALL, DIRS, FILES = "listAll", "listDirs", "listFiles"
ACTIONS = {a.lower(): a for a in (ALL, DIRS, FILES)}


def wanted(entry: Entry, which: str) -> bool:
    return which == ALL or (entry.is_dir if which == DIRS else not entry.is_dir)


def locate(mount: Mount, path: str) -> Located:
    return mount.view.locate(path)


def stream(mount: Mount, where: Located, which: str) -> Iterator[Entry]:
    """Entries in on-disk order (blocking engine calls: iterate off the event loop)."""
    for entry in mount.view.scandir(where):
        if wanted(entry, which):
            yield entry


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    total: int


class ListingCache:
    """Directory contents by (view, root, path), least recently used first out, bounded by entries."""

    def __init__(self, max_entries: int = 2_000_000) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[tuple[int, int, tuple[str, ...]], list[Entry]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, mount: Mount, where: Located) -> list[Entry]:
        key = (mount.view.serial, id(where.root), tuple(where.parts))
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
                return hit
        dirs: list[Entry] = []
        files: list[Entry] = []
        for e in mount.view.scandir(where):
            (dirs if e.is_dir else files).append(Entry(e.name, e.is_dir, e.size, e.mtime_ns, e.owner, None))
        entries = dirs + files
        with self._lock:
            if len(entries) <= self.max_entries and key not in self._data:
                self._data[key] = entries
                self._size += len(entries)
                while self._size > self.max_entries:
                    _, old = self._data.popitem(last=False)
                    self._size -= len(old)
        return entries

    def forget_view(self, serial: int) -> None:
        with self._lock:
            for key in [k for k in self._data if k[0] == serial]:
                self._size -= len(self._data.pop(key))


def page(cache: ListingCache, mount: Mount, where: Located, which: str, size: int, number: int) -> Page:
    entries = cache.get(mount, where)
    if which != ALL:
        entries = [e for e in entries if wanted(e, which)]
    start = (number - 1) * size
    return Page(entries[start : start + size], len(entries))
