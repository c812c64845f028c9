"""What every file-system engine offers the guest view: lookup, listing, stat, reading."""

from __future__ import annotations

import threading
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Node = Any
"""An engine's own handle of a file or directory."""


@dataclass(slots=True)
class Entry:
    name: str
    is_dir: bool
    size: int
    mtime_ns: int | None
    """Modification time, nanoseconds since the Unix epoch (UTC)."""
    owner: str | None
    node: Node = None
    """The engine's handle, when the engine can give it cheaply (for paging and opening)."""
    is_link: bool = False
    """A symbolic link: ``open`` reads its target text, ``size`` is that text's length."""


class FileReader(ABC):
    size: int

    @abstractmethod
    def pread(self, length: int, offset: int) -> bytes:
        """Up to ``length`` bytes at ``offset``."""


class FileSystem(ABC):
    """One mounted file system. Engine calls are serialised by ``lock`` (the C libraries are not
    re-entrant per handle); callers hold it only for the duration of one call or one chunk."""

    kind: str
    label: str
    uuid: str | None = None
    case_sensitive: bool = True

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.owner_names: dict[int, str] = {}
        """uid -> account name from the guest's /etc/passwd (Linux guests)."""

    @abstractmethod
    def root(self) -> Node: ...

    @abstractmethod
    def lookup(self, parts: list[str]) -> Node | None:
        """The node at ``parts`` below the root (case rules of the file system), or None."""

    @abstractmethod
    def stat(self, node: Node) -> Entry: ...

    @abstractmethod
    def scandir(self, node: Node) -> Iterator[Entry]:
        """The directory's entries in on-disk order, without ``.``/``..``, metafiles or deleted entries."""

    @abstractmethod
    def open(self, node: Node) -> FileReader: ...

    def counts(self, node: Node) -> tuple[int | None, int | None]:
        """(entries, subdirectories) of a directory when the file system knows them without reading
        every entry; None where it does not. Lets a paged listing answer before the folder is read."""
        return None, None

    def security_descriptor(self, node: Node) -> bytes | None:
        """The item's self-relative Windows security descriptor (NTFS), or None."""
        return None

    def stream(self, node: Node, name: str) -> tuple[Entry, FileReader] | None:
        """A named data stream of a file (NTFS alternate data streams), or None."""
        return None

    def read_text(self, parts: list[str], limit: int = 1024 * 1024) -> str | None:
        """A small text file's content (for /etc/fstab, /etc/passwd), or None."""
        with self.lock:
            node = self.lookup(parts)
            if node is None:
                return None
            entry = self.stat(node)
            if entry.is_dir or entry.size > limit:
                return None
            data = self.open(node).pread(entry.size, 0)
        return data.decode("utf-8", "replace")

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


def match_name(names: Iterator[tuple[str, Node]], wanted: str, case_sensitive: bool) -> Node | None:
    """Find ``wanted`` among ``names``: exact, then (where the file system allows) case-insensitive,
    then by Unicode normalisation (a URL may carry NFC where the disk holds NFD)."""
    folded = unicodedata.normalize("NFC", wanted)
    folded_ci = folded.casefold()
    fallback = None
    for name, node in names:
        if name == wanted:
            return node
        if fallback is None:
            norm = unicodedata.normalize("NFC", name)
            if norm == folded or (not case_sensitive and norm.casefold() == folded_ci):
                fallback = node
    return fallback
