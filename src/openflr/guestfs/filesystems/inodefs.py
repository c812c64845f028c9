"""What ext4 and XFS share once their on-disk structures are read by our own code.

Both keep a file's facts in an inode found by number and a folder as a list of (name bytes, inode
number). A subclass reads those two things and a file's data map; this base turns them into the
``FileSystem`` the guest view uses: names shown losslessly (``names``), times exact to the
nanosecond over the whole range the format stores, and one damaged inode or folder block costing
only itself.
"""

from __future__ import annotations

import itertools
import logging
import stat as st
import threading
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from openflr.errors import OpenflrError
from openflr.guestfs.blocks import BlockSource, CachedReader
from openflr.guestfs.errors import VolumeError
from openflr.guestfs.filesystems import extents
from openflr.guestfs.filesystems.base import (
    ENGINE_FAULTS,
    BytesReader,
    Entry,
    FileReader,
    FileSystem,
    Node,
    engine_fault,
    match_name,
)
from openflr.guestfs.filesystems.names import name_from_bytes, name_to_bytes

log = logging.getLogger(__name__)

MAX_BAD_ENTRIES = 256
"""Unreadable entries a folder listing leaves out before it gives up on the folder."""
_LISTINGS_KEPT = 200_000
"""Folder entries (name, inode number) kept across calls, for lookups and ranged reads of big folders."""
T = TypeVar("T")


@dataclass(slots=True)
class Inode:
    """The facts of one inode, and what its engine needs to find its data."""

    number: int
    mode: int
    size: int
    uid: int
    links: int
    mtime_ns: int | None
    name: str = ""
    """The name it was reached by (the root's is empty)."""
    raw: bytes = b""
    """The engine's own copy of the on-disk inode."""


DataMap = list[extents.Run] | bytes
"""Where a file's bytes are: runs on the volume, or the bytes themselves (inline data)."""


class InodeFileSystem(FileSystem):
    """A file system read through ``read_inode``, ``dirents`` and ``data_map``."""

    root_number: int

    def __init__(self, source: BlockSource, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.reader = CachedReader(source)
        self._listings: OrderedDict[int, list[tuple[bytes, int]]] = OrderedDict()
        self._listings_lock = threading.Lock()

    # --- what a subclass provides -------------------------------------------------------------

    @abstractmethod
    def read_inode(self, number: int) -> Inode:
        """The inode ``number``; ``VolumeError`` when it is out of range or damaged."""

    @abstractmethod
    def dirents(self, folder: Inode) -> Iterator[tuple[bytes, int]]:
        """(name bytes, inode number) of the folder's live entries in on-disk order, ``.`` and
        ``..`` included where the format stores them. A damaged block is logged and skipped. Parsed
        lazily: taking the first entries parses only the blocks that hold them (a format may read
        the folder's bytes in one go)."""

    def check_folder(self, folder: Inode) -> None:
        """Raise now if reading the whole folder would fail, reading as little of it as that takes.
        This default reads up to its first entry, which is enough where a folder fails only when
        none of its blocks can be read and a block is read whole or not at all."""
        next(iter(self.dirents(folder)), None)

    def dirent_count(self, folder: Inode) -> int | None:
        """How many entries other than ``.`` and ``..`` the folder holds, found without building
        their names, or None where the format has no quicker way than the listing itself."""
        return None

    @abstractmethod
    def data_map(self, inode: Inode) -> DataMap:
        """Where the bytes of a file, folder or symbolic link are."""

    # --- FileSystem ---------------------------------------------------------------------------

    def root(self) -> Node:
        with self.lock:
            return self._inode(self.root_number, "")

    def _inode(self, number: int, name: str) -> Inode:
        inode = self._guarded(lambda: self.read_inode(number))
        inode.name = name
        return inode

    def _guarded(self, read: Callable[[], T]) -> T:
        """``read()`` with the engine's faults as openflr errors that name this file system."""
        try:
            return read()
        except OpenflrError:
            raise
        except ENGINE_FAULTS as exc:
            raise engine_fault(exc, self.kind) from None

    def _kept(self, folder: Inode) -> list[tuple[bytes, int]] | None:
        with self._listings_lock:
            kept = self._listings.get(folder.number)
            if kept is not None:
                self._listings.move_to_end(folder.number)
            return kept

    def listing(self, folder: Inode) -> list[tuple[bytes, int]]:
        """The folder's entries, read once and kept while there is room (most recently used)."""
        kept = self._kept(folder)
        if kept is not None:
            return kept
        found = self._guarded(lambda: list(self.dirents(folder)))
        with self._listings_lock:
            self._listings[folder.number] = found
            total = sum(len(v) for v in self._listings.values())
            while total > _LISTINGS_KEPT and len(self._listings) > 1:
                total -= len(self._listings.popitem(last=False)[1])
        return found

    def lookup(self, parts: list[str]) -> Node | None:
        with self.lock:
            node = self._inode(self.root_number, "")
            for part in parts:
                if not st.S_ISDIR(node.mode):
                    return None
                names = self.listing(node)
                wanted = name_to_bytes(part)
                number = next((n for raw, n in names if raw == wanted), None)
                if number is None:
                    shown = ((name_from_bytes(raw), n) for raw, n in names if raw not in (b".", b".."))
                    number = match_name(shown, part, self.case_sensitive)
                    if number is None:
                        return None
                node = self._inode(number, part)
            return node

    def stat(self, node: Node) -> Entry:
        return self._entry(node)

    def _entry(self, inode: Inode) -> Entry:
        mode = inode.mode
        is_dir = st.S_ISDIR(mode)
        owner = self.owner_names.get(inode.uid, str(inode.uid))
        return Entry(
            inode.name,
            is_dir,
            0 if is_dir else inode.size,
            inode.mtime_ns,
            owner,
            inode,
            st.S_ISLNK(mode),
            inode.number,
        )

    def check_dir(self, node: Node) -> None:
        """The folder's first entries can be read (its blocks are read as its pages are asked for:
        a big folder's first page does not wait for all of them)."""
        with self.lock:
            if self._kept(node) is None:
                self._guarded(lambda: self.check_folder(node))

    def counts(self, node: Node) -> tuple[int | None, int | None]:
        with self.lock:
            # A kept listing is counted; otherwise the format's quick count, else the listing.
            entries = None if self._kept(node) is not None else self._guarded(lambda: self.dirent_count(node))
            names = self.listing(node) if entries is None else []
        if entries is None:
            entries = sum(1 for raw, _ in names if raw not in (b".", b".."))
        # A folder's link count is 2 + its subfolders (1 when ext4 stopped counting past 64,999).
        return entries, (node.links - 2 if node.links >= 2 else None)

    def scandir(self, node: Node, start: int = 0, stop: int | None = None) -> Iterator[Entry]:
        """Entries in on-disk order; an inode that cannot be read is logged and left out, so the
        rest of a damaged folder can still be restored. Positions count every stored entry. A part
        of a folder not read before reads only the blocks up to its end."""
        with self.lock:
            names = self._kept(node)
            if names is None and stop is not None:
                names = self._guarded(lambda: list(itertools.islice(self.dirents(node), stop)))
            elif names is None:
                names = self.listing(node)
        bad = 0
        for raw, number in names[start:stop]:
            if raw in (b".", b".."):
                continue
            try:
                with self.lock:
                    inode = self._inode(number, name_from_bytes(raw))
            except VolumeError as exc:
                bad += 1
                if bad > MAX_BAD_ENTRIES:
                    raise
                log.warning("%s: entry %r of a folder cannot be read, left out: %s", self.kind, raw, exc)
                continue
            mode = inode.mode
            if st.S_ISDIR(mode) or st.S_ISREG(mode) or st.S_ISLNK(mode):
                yield self._entry(inode)  # fifos, sockets, devices: nothing to restore

    def open(self, node: Node) -> FileReader:
        with self.lock:
            found = self._guarded(lambda: self.data_map(node))
        if isinstance(found, bytes):
            return BytesReader(found[: node.size])
        return extents.ExtentReader(self.reader.source, found, node.size) if found else BytesReader(b"")

    def close(self) -> None:
        with self.lock:
            self.reader.close()  # give its cached blocks back to the process-wide budget


def merge_runs(pieces: Iterator[tuple[int, int, int]], size: int, volume_size: int) -> list[extents.Run]:
    """Runs of a file from ``(file offset, volume offset or HOLE, length)`` pieces in file order:
    gaps and the tail past the last piece read as zeros, contiguous pieces merge, and a piece that
    lies outside the volume or goes back in the file is damage (``ValueError``)."""
    runs: list[extents.Run] = []
    at = 0
    for offset, where, length in pieces:
        if offset >= size:
            break
        if offset < at or length <= 0:
            raise ValueError(f"the data map goes back to offset {offset} (already at {at})")
        if offset > at:
            _append(runs, extents.HOLE, offset - at)
        length = min(length, size - offset)
        if where != extents.HOLE and (where <= 0 or where + length > volume_size):
            raise ValueError(f"the data map points outside the volume (byte {where})")
        _append(runs, where, length)
        at = offset + length
    if at < size:
        _append(runs, extents.HOLE, size - at)
    return runs


def _append(runs: list[extents.Run], where: int, length: int) -> None:
    if runs:
        last, last_length = runs[-1]
        if (where == extents.HOLE and last == extents.HOLE) or (
            where != extents.HOLE and last != extents.HOLE and last + last_length == where
        ):
            runs[-1] = (last, last_length + length)
            return
    runs.append((where, length))


def read_mapped(source: BlockSource, found: DataMap, size: int) -> bytes:
    """All ``size`` bytes a data map describes (for folders and symbolic links, which are small)."""
    if isinstance(found, bytes):
        return found[:size]
    return bytes(extents.ExtentReader(source, found, size).chunk(size, 0)) if found and size else b""
