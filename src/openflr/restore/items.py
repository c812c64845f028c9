"""Walking what a user restores: a file, or a folder and everything below it, in a guest view.

The walk is depth-first and yields each folder before its contents, so a writer can create folders
as it meets them; it reads folders one entry at a time, so its memory does not grow with a folder's
size. Engine calls are blocking: call ``walk`` from a worker thread (or one directory at a
time with ``children``).

A guest file system is not trusted: a folder may contain itself or an ancestor, or be linked from many
places. The items of one restore share a ``FolderGuard`` (``guestfs/loops.py``): a folder met again
(or nested absurdly deep) is still an item, but ``blocked`` says why, and ``children`` of it is empty.
So every walk over ``children`` ends, including the restore writer's own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from openflr.errors import OpenflrError
from openflr.guestfs.filesystems.base import Chunk, Entry
from openflr.guestfs.loops import FolderGuard
from openflr.guestfs.view import GuestView, Located

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
"""Bytes read from the engine per thread hop (at least 1 MiB: fewer hops, see docs/BENCHMARKS.md)."""


@dataclass(frozen=True)
class Item:
    rel: tuple[str, ...]
    """Names from the restored item down to this one; ``rel[0]`` is the restored item's own name."""
    where: Located
    entry: Entry
    guard: FolderGuard | None = field(default=None, compare=False, repr=False)
    """Shared by the items of one restore (made by ``item_of``)."""
    blocked: str | None = None
    """Why this folder is not walked into (met before: a loop or a second link), or None."""

    @property
    def is_dir(self) -> bool:
        return self.entry.is_dir


@dataclass(frozen=True)
class Problem:
    rel: tuple[str, ...]
    reason: str


def top_name(view: GuestView, where: Located) -> str:
    """The name a restored item goes by: its own, or its volume's (``C`` for ``C:``, ``root`` for ``/``)."""
    if where.parts:
        return where.parts[-1]
    if where.root is None:
        return "guest"
    if where.root.mount is not None:
        return where.root.mount[-1] if where.root.mount else "root"
    return where.root.name.rstrip(":") or "volume"


def item_of(view: GuestView, where: Located) -> Item:
    entry = where.entry
    if entry is None:
        ident = None
        fs = where.root.fs if where.root is not None else None
        if fs is not None and where.node is not None:  # a volume's root: its number guards the walk
            try:
                ident = fs.stat(where.node).ident
            except (OpenflrError, OSError):
                ident = None
        entry = Entry(top_name(view, where), True, 0, None, None, where.node, ident=ident)
    guard = FolderGuard()
    if entry.is_dir:
        guard.enter(where.root, entry, 0)
    return Item((top_name(view, where),), where, entry, guard)


def children(view: GuestView, item: Item) -> list[Item]:
    """The items directly inside a folder item (blocking); none inside a ``blocked`` one."""
    return list(iter_children(view, item))


def iter_children(view: GuestView, item: Item) -> Iterator[Item]:
    """``children``, one item at a time: only the item in hand holds its engine handle."""
    if item.blocked is not None:
        log.warning("not walking %s: %s", "/".join(item.rel), item.blocked)
        return
    for entry in view.scandir(item.where):
        parts = [*item.where.parts, entry.name]
        if entry.node is None and entry.is_dir:  # a mount point grafted into the Linux tree
            where = view.locate([view.path_of(item.where.root, parts)])  # "\\" stays in names
        else:
            where = Located(item.where.root, parts, entry.node, entry)
        rel = (*item.rel, entry.name)
        blocked = None
        if entry.is_dir and item.guard is not None:
            blocked = item.guard.enter(where.root, entry, len(rel) - 1)
        yield Item(rel, where, entry, item.guard, blocked)


def walk(view: GuestView, top: Item, problems: list[Problem]) -> Iterator[Item]:
    """``top`` and, for a folder, everything below it; folders that cannot be read go to ``problems``.

    Depth first, each folder yielded just before its contents. A folder is read one entry at a time
    and only the folders on the way down to the current item stay open, so what a walk holds does
    not grow with the size of a folder (an engine's handle of an entry costs several KiB: holding a
    folder of 10,000 files at once cost about 60 MiB per walk).

    Each folder is entered once (see ``guestfs/loops.py``): a folder that contains itself, an
    ancestor or a folder met before is yielded but not walked again, and reported in ``problems``."""
    yield top
    if not top.is_dir:
        return
    if top.guard is None:  # an item made by hand: give the walk its own guard
        guard = FolderGuard()
        guard.enter(top.where.root, top.entry, 0)
        top = Item(top.rel, top.where, top.entry, guard)
    stack: list[tuple[Item, Iterator[Item]]] = [(top, iter_children(view, top))]
    while stack:
        folder, inside = stack[-1]
        try:
            item = next(inside, None)
        except (OpenflrError, OSError) as exc:
            stack.pop()
            reason = exc.message if isinstance(exc, OpenflrError) else str(exc).splitlines()[0]
            log.warning("cannot list %s: %s", "/".join(folder.rel), reason)
            problems.append(Problem(folder.rel, f"the folder cannot be read: {reason}"))
            continue
        if item is None:
            stack.pop()
            continue
        yield item
        if item.is_dir:
            if item.blocked is not None:
                log.warning("not walking %s: %s", "/".join(item.rel), item.blocked)
                problems.append(Problem(item.rel, item.blocked))
                continue
            stack.append((item, iter_children(view, item)))


def read_chunks(view: GuestView, item: Item, start: int = 0, end: int | None = None) -> Iterator[Chunk]:
    """A file's bytes from ``start`` to ``end`` (exclusive), one engine read of ``CHUNK`` per step."""
    reader = view.open(item.where)
    stop = reader.size if end is None else min(end, reader.size)
    offset = start
    while offset < stop:
        data = reader.chunk(min(CHUNK, stop - offset), offset)
        if not data:
            raise OSError(f"{'/'.join(item.rel)}: the file ends early at byte {offset} of {stop}")
        offset += len(data)
        yield data
