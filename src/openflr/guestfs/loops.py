"""Guarding recursive walks of guest folders against damaged or hostile file systems.

A file system is data from the replica, not a tree we can trust: a folder entry can point at the
folder itself or at an ancestor (a loop: the walk never ends), or many entries can point at the same
folder (a diamond: 2 entries per level for 40 levels is 2^40 paths). Walks therefore enter each folder
once, known by its file-system number (inode, MFT record) on its volume, and never deeper than
``MAX_DEPTH`` (for engines that give no number).
"""

from __future__ import annotations

from openflr.guestfs.filesystems.base import Entry

MAX_DEPTH = 512
"""Folder levels below the top of a walk (Windows paths end near 32,767 characters, ~250 levels of
the shortest names that still make sense; Linux PATH_MAX is 4096)."""

LOOP = (
    "the folder is one already visited (a loop or a folder linked twice in a damaged file system); "
    "not followed"
)
DEEP = f"the folder is nested more than {MAX_DEPTH} levels deep (a damaged file system?); not followed"


class FolderGuard:
    """Remembers which folders a walk has entered, per volume."""

    def __init__(self) -> None:
        self._seen: set[tuple[int, int]] = set()

    def enter(self, volume: object, entry: Entry, depth: int) -> str | None:
        """None when the walk may go into the folder ``entry`` at ``depth`` below its top; else why not."""
        if depth > MAX_DEPTH:
            return DEEP
        if entry.ident is None:
            return None
        key = (id(volume), entry.ident)
        if key in self._seen:
            return LOOP
        self._seen.add(key)
        return None
