"""What the catalog should say, worked out from the chain's truth alone (never from the catalog)."""

from __future__ import annotations

from openflr.catalog.queries import Change
from openflr.catalog.store import Version
from tests.catalog.chain import USERS, Item

Row = tuple[str, int, int | None, str | None]
"""(type, size, mtime_ns, owner) as the catalog shows an item."""


def owner_of(uid: int | None) -> str | None:
    """The owner the engine shows: the /etc/passwd name, else the number; None on FAT."""
    return None if uid is None else USERS.get(uid, str(uid))


def expected_row(item: Item) -> Row:
    return (item.kind, item.size, item.mtime * 1_000_000_000, owner_of(item.uid))


def catalog_row(version: Version) -> Row:
    return (version.kind.label, version.size, version.mtime_ns, version.owner)


def truth_change(before: Item | None, after: Item | None, *, hashes: bool = False) -> Change:
    """How a path changed between two points, by the rules of docs/CATALOG.md: content (type, size,
    time; with ``hashes`` the sha256) first, then owner and file number (a new hard-link group is a
    new inode)."""
    if before is None:
        return Change.SAME if after is None else Change.ADDED
    if after is None:
        return Change.REMOVED
    if hashes and before.kind == after.kind == "File":
        if before.sha256 != after.sha256:
            return Change.MODIFIED
    elif (before.kind, before.size, before.mtime) != (after.kind, after.size, after.mtime):
        return Change.MODIFIED
    if (before.uid, before.group) != (after.uid, after.group):
        return Change.METADATA
    return Change.SAME


def truth_diff(a: dict[str, Item], b: dict[str, Item], under: str = "") -> list[tuple[str, Change]]:
    """(path, change) of everything that differs from ``a`` to ``b`` (below ``under``), by path."""
    out: list[tuple[str, Change]] = []
    for path in sorted(set(a) | set(b)):
        if under and not path.startswith(under.rstrip("/") + "/"):
            continue
        change = truth_change(a.get(path), b.get(path))
        if change is not Change.SAME:
            out.append((path, change))
    return out
