"""What every file-system engine offers the guest view: lookup, listing, stat, reading."""

from __future__ import annotations

import contextlib
import struct
import threading
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from openflr.errors import OpenflrError
from openflr.guestfs.blocks import check_cancelled
from openflr.guestfs.errors import VolumeError

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
    ident: int | None = None
    """The file system's own number of the item (inode, MFT record), where it has one: two entries
    with the same number are the same item (a hard link, or a damaged folder that holds itself)."""


Chunk = bytes | memoryview
"""A piece of a file as streamed: bytes, or a view of a buffer nobody writes to any more."""


class FileReader(ABC):
    size: int

    @abstractmethod
    def pread(self, length: int, offset: int) -> bytes:
        """Up to ``length`` bytes at ``offset``."""

    def chunk(self, length: int, offset: int) -> Chunk:
        """Like ``pread``, for streaming: readers that fill a buffer of their own return a view of it
        rather than copying it into ``bytes``."""
        return self.pread(length, offset)


class BytesReader(FileReader):
    """A file whose bytes are already in memory (inline data, a symbolic link's target)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.size = data, len(data)

    def pread(self, length: int, offset: int) -> bytes:
        return self.data[offset : offset + max(0, length)]

    def chunk(self, length: int, offset: int) -> Chunk:
        return self.pread(length, offset)


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

    def check_dir(self, node: Node) -> None:  # noqa: B027 - optional hook
        """Raise ``VolumeError`` now if the folder ``node`` cannot be listed (so that a listing that
        streams fails before its first byte, not in the middle)."""

    @abstractmethod
    def scandir(self, node: Node, start: int = 0, stop: int | None = None) -> Iterator[Entry]:
        """The directory's entries in on-disk order, without ``.``/``..``, metafiles or deleted entries.

        ``start``/``stop`` read only the positions ``[start, stop)`` of the directory, counted the
        file system's own way (entries left out still take their position): ranges that meet split
        one listing between readers without a gap or an overlap."""

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

    def read_text(self, parts: list[str], limit: int = 1024 * 1024) -> GuestText:
        """A small guest text file such as /etc/fstab or /etc/passwd; a file that exists but cannot
        be used (a folder, a link, over ``limit``, not UTF-8 text, unreadable) is a ``problem``
        sentence, never an exception."""
        shown = "/" + "/".join(parts)
        try:
            with self.lock:
                node = self.lookup(parts)
                if node is None:
                    return GuestText(False)
                entry = self.stat(node)
                if entry.is_dir:
                    return GuestText(True, problem=f"{shown} is a folder, not a file")
                if entry.is_link:
                    return GuestText(True, problem=f"{shown} is a symbolic link, which is not followed")
                if entry.size > limit:
                    return GuestText(True, problem=f"{shown} is larger than {limit // 1024} KiB")
                data = self.open(node).pread(entry.size, 0)
        except VolumeError as exc:
            return GuestText(True, problem=f"{shown} could not be read ({exc})")
        if b"\0" in data:
            return GuestText(True, problem=f"{shown} is not a text file")
        try:
            return GuestText(True, data.decode("utf-8"))
        except UnicodeDecodeError:
            return GuestText(True, problem=f"{shown} is not a text file (not UTF-8)")

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


@dataclass(frozen=True)
class GuestText:
    """What ``FileSystem.read_text`` found."""

    exists: bool
    text: str | None = None
    problem: str | None = None
    """Why a file that exists cannot be used; None when ``text`` holds it (or it does not exist)."""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


ENGINE_FAULTS = (OSError, ValueError, OverflowError, IndexError, KeyError, struct.error, UnicodeError)
"""What a C engine raises on damaged structures."""


def engine_fault(exc: BaseException, kind: str, what: str = "file system") -> VolumeError:
    """The ``VolumeError`` for an engine fault, naming the file system. A read that failed because
    the opening was cancelled raises the cancellation instead."""
    check_cancelled()
    return VolumeError(f"The {kind} {what} is damaged or cannot be read: {first_line(exc)}")


@contextlib.contextmanager
def engine_errors(kind: str, what: str = "file system") -> Iterator[None]:
    """Turn engine faults into a ``VolumeError`` (see ``engine_fault``); openflr's own errors pass
    through. Per-entry loops use ``try``/``except ENGINE_FAULTS`` instead: cheaper on a hot path."""
    try:
        yield
    except OpenflrError:
        raise
    except ENGINE_FAULTS as exc:
        raise engine_fault(exc, kind, what) from None


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
