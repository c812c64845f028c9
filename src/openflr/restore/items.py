"""Walking what a user restores: a file, or a folder and everything below it, in a guest view.

The walk is depth-first and yields each folder before its contents, so a writer can create folders
as it meets them. Engine calls are blocking: call ``walk`` from a worker thread (or one directory at a
time with ``children``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from openflr.errors import OpenflrError
from openflr.guestfs.filesystems.base import Entry
from openflr.guestfs.view import GuestView, Located

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
"""Bytes read from the engine per thread hop (DESIGN.md §4: at least 1 MiB)."""


@dataclass(frozen=True)
class Item:
    rel: tuple[str, ...]
    """Names from the restored item down to this one; ``rel[0]`` is the restored item's own name."""
    where: Located
    entry: Entry

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
    entry = where.entry or Entry(top_name(view, where), True, 0, None, None, where.node)
    return Item((top_name(view, where),), where, entry)


def children(view: GuestView, item: Item) -> list[Item]:
    """The items directly inside a folder item (blocking)."""
    out = []
    for entry in view.scandir(item.where):
        parts = [*item.where.parts, entry.name]
        if entry.node is None and entry.is_dir:  # a mount point grafted into the Linux tree
            where = view.locate(view.path_of(item.where.root, parts))
        else:
            where = Located(item.where.root, parts, entry.node, entry)
        out.append(Item((*item.rel, entry.name), where, entry))
    return out


def walk(view: GuestView, top: Item, problems: list[Problem]) -> Iterator[Item]:
    """``top`` and, for a folder, everything below it; folders that cannot be read go to ``problems``."""
    yield top
    if not top.is_dir:
        return
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            inside = children(view, folder)
        except (OpenflrError, OSError) as exc:
            reason = exc.message if isinstance(exc, OpenflrError) else str(exc).splitlines()[0]
            log.warning("cannot list %s: %s", "/".join(folder.rel), reason)
            problems.append(Problem(folder.rel, f"the folder cannot be read: {reason}"))
            continue
        subfolders = []
        for item in inside:
            yield item
            if item.is_dir:
                subfolders.append(item)
        stack.extend(reversed(subfolders))


def read_chunks(view: GuestView, item: Item, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """A file's bytes from ``start`` to ``end`` (exclusive), one engine read of ``CHUNK`` per step."""
    reader = view.open(item.where)
    stop = reader.size if end is None else min(end, reader.size)
    offset = start
    while offset < stop:
        data = reader.pread(min(CHUNK, stop - offset), offset)
        if not data:
            raise OSError(f"{'/'.join(item.rel)}: the file ends early at byte {offset} of {stop}")
        offset += len(data)
        yield data
