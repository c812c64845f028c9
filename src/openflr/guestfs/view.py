"""A guest view: one restore point's disks opened and its volumes named as a user expects them.

How the roots are named is the guest's business (``guestfs/guests/``): Windows guests get drive
letters from their registry, Linux guests one tree from ``/`` built from their ``/etc/fstab``; file
systems outside those get drive-style roots (``data:``, ``Volume$N:``). Volumes that cannot be read
stay in the view with the reason.

EM paths: ``C:/Users/x`` (drive style) or ``/etc/hostname`` (the Linux tree); in a text path ``\\``
and ``/`` both separate, while a path given as its components (the API reads them from the raw
request path) keeps a ``\\`` inside a name; ``..`` and NUL are refused.
"""

from __future__ import annotations

import itertools
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from openflr.errors import BadRequestError, GuestPathNotFoundError
from openflr.guestfs.blocks import Chain, check_cancelled
from openflr.guestfs.disks import open_chain
from openflr.guestfs.errors import (
    CorruptImageError,
    HoldsNoFilesError,
    ImageError,
    ImagesChangedError,
    VolumeError,
)
from openflr.guestfs.filesystems.base import Entry, FileReader, FileSystem, Node
from openflr.guestfs.filesystems.probe import open_volume
from openflr.guestfs.guests import guest_roots
from openflr.guestfs.guests.base import Root
from openflr.guestfs.volumes import Volume, is_lvm, logical_volumes, partitions

__all__ = [
    "MAX_DISKS",
    "MAX_VOLUMES",
    "GuestPath",
    "GuestView",
    "Located",
    "Opening",
    "Root",
    "open_view",
    "require_fs",
]

MAX_DISKS = 256
"""Disks of one point (vSphere and Hyper-V allow about 256); more is a hostile or broken description."""
MAX_VOLUMES = 256
"""Volumes of one point, all disks and volume groups together: each costs file handles and caches."""


@dataclass(frozen=True)
class GuestPath:
    """An EM path below a mount, checked (``GuestView.parse``): nothing in it climbs or escapes."""

    parts: tuple[str, ...]
    text: str
    """The path as given, for messages."""

    @property
    def key(self) -> str:
        return "/".join(self.parts)


@dataclass
class Located:
    """A resolved EM path: the item a ``GuestPath`` names in this guest."""

    root: Root | None
    """None for the view's top (the list of drive-style roots)."""
    parts: list[str]
    node: Node = None
    entry: Entry | None = None

    @property
    def is_dir(self) -> bool:
        return self.entry is None or self.entry.is_dir


_serials = itertools.count(1)


@dataclass(frozen=True)
class Opening:
    """What ``open_view`` was given (each disk's image files, top first, and the OS hint), and the
    identity of those files when it opened them."""

    disks: tuple[tuple[str, ...], ...]
    os_hint: str = ""
    stamps: tuple[FileStamp | None, ...] = ()

    @staticmethod
    def of(disks: Sequence[Sequence[Path]], os_hint: str) -> Opening:
        names = tuple(tuple(str(f) for f in files) for files in disks)
        return Opening(names, os_hint, _stamps(names))

    def unchanged(self) -> bool:
        """The paths still name the files that were opened (a replica job may since have merged or
        replaced a snapshot file; the first opening still reads the old one through its handles)."""
        return _stamps(self.disks) == self.stamps

    def open(self) -> GuestView:
        """The same view, opened again; ``ImagesChangedError`` when the files are no longer the ones
        first opened."""
        if self.unchanged():
            view = open_view([[Path(f) for f in files] for files in self.disks], self.os_hint)
            if self.unchanged():  # not replaced while this opening read them
                return view
            view.close()
        raise ImagesChangedError("The point's image files changed since it was mounted.")


FileStamp = tuple[int, int, int, int]
"""Device, inode, size and modification time of a file."""


def _stamps(disks: tuple[tuple[str, ...], ...]) -> tuple[FileStamp | None, ...]:
    out: list[FileStamp | None] = []
    for files in disks:
        for name in files:
            try:
                st = os.stat(name)
            except OSError:
                out.append(None)
            else:
                out.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


@dataclass
class GuestView:
    disks: list[Chain]
    volumes: list[Volume]
    roots: list[Root]
    linux_tree: bool
    notes: list[str] = field(default_factory=list)
    serial: int = field(default_factory=lambda: next(_serials))
    """Unique for the process lifetime (unlike ``id()``), to key caches."""
    opened_from: Opening | None = None
    """How to open this view again (in another process), when ``open_view`` made it."""
    _located: OrderedDict[str, Located] = field(default_factory=OrderedDict)
    _located_lock: threading.Lock = field(default_factory=threading.Lock)

    # --- naming -----------------------------------------------------------------------------------

    def path_of(self, root: Root | None, parts: Sequence[str]) -> str:
        """The EM ``Path`` of an item: ``C:/a/b``, ``C:`` for a drive root, ``/srv/www`` in the Linux tree."""
        if root is None:
            return ""
        if root.mount is None:
            return root.name + ("/" + "/".join(parts) if parts else "")
        return "/" + "/".join([*root.mount, *parts])

    # --- resolution -------------------------------------------------------------------------------

    @staticmethod
    def parse(path: str | Sequence[str] | GuestPath) -> GuestPath:
        """An EM path below the mount (already percent-decoded), checked, or 400.

        In a text path ``/`` and ``\\`` both separate. A sequence is the path's components already
        split (from a URL, where an encoded ``%5C`` is a character of a name): only ``/`` separates
        inside them. Empty and ``.`` components are dropped; ``..``, NUL and the Win32 device and UNC
        prefixes (``\\\\?\\``, ``\\\\.\\``, ``\\\\server\\share``) are refused. The result never
        climbs: every component names something below a root of this guest."""
        if isinstance(path, GuestPath):
            return path
        shown = path if isinstance(path, str) else "/".join(path)
        if "\0" in shown:
            raise BadRequestError("The path contains a NUL character.")
        slashed = path.replace("\\", "/") if isinstance(path, str) else shown
        if slashed.startswith("//"):
            raise BadRequestError(
                f"The path {shown!r} is a Win32 device or UNC path; give a path from the volume root "
                "(C:/...)."
            )
        parts = tuple(p for p in slashed.split("/") if p not in ("", "."))
        if any(p == ".." for p in parts):
            raise BadRequestError(f"The path {shown!r} contains '..'; give a path from the volume root.")
        return GuestPath(parts, shown)

    def locate(self, path: str | Sequence[str] | GuestPath) -> Located:
        """Resolve an EM path to a root and the item in it (reads the file system: blocking); 404
        when it does not exist.

        Resolved items are kept in a small LRU: libfsntfs reads a folder's whole index when it
        creates the folder's entry (120 ms for 100,000 names), and paging asks for the same folder
        again and again. The cache is keyed by the checked components, so a refused path never
        reaches it."""
        checked = self.parse(path)
        hit = self.cached_location(checked)
        if hit is not None:
            return hit
        found = self._locate(checked)
        with self._located_lock:
            self._located[checked.key] = found
            if len(self._located) > 256:
                self._located.popitem(last=False)
        return found

    def cached_location(self, path: GuestPath) -> Located | None:
        """The item of a path resolved before, or None: never reads the file system."""
        with self._located_lock:
            hit = self._located.get(path.key)
            if hit is not None:
                self._located.move_to_end(path.key)
            return hit

    def _locate(self, path: GuestPath) -> Located:
        parts, text = list(path.parts), path.text
        if not parts:
            if self.linux_tree:
                root = self._root_for_mount(())
                return self._in_root(root, [], text)
            return Located(None, [])
        for root in self.roots:
            if root.mount is None and root.name.lower() == parts[0].lower():
                return self._in_root(root, parts[1:], text)
        if self.linux_tree:
            best = max(
                (r for r in self.roots if r.mount is not None and tuple(parts[: len(r.mount)]) == r.mount),
                key=lambda r: len(r.mount or ()),
                default=None,
            )
            if best is not None:
                return self._in_root(best, parts[len(best.mount or ()) :], text)
        raise GuestPathNotFoundError(f"The path {text!r} does not exist: there is no volume {parts[0]!r}.")

    def _root_for_mount(self, mount: tuple[str, ...]) -> Root:
        for root in self.roots:
            if root.mount == mount:
                return root
        raise GuestPathNotFoundError("This guest has no root file system.")

    def _in_root(self, root: Root, parts: list[str], shown: str) -> Located:
        fs = require_fs(root)
        if not parts:
            top = fs.root()
            fs.check_dir(top)  # a folder that cannot be listed fails here, before a listing streams
            return Located(root, [], top, None)
        node = fs.lookup(parts)
        if node is None and ":" in parts[-1]:
            found = self._stream(root, fs, parts)
            if found is not None:
                return found
        if node is None:
            synthetic = self._mount_dir(root, parts)
            if synthetic is not None:
                return synthetic
            raise GuestPathNotFoundError(f"The path {shown!r} does not exist in this restore point.")
        entry = fs.stat(node)
        if entry.is_dir:
            fs.check_dir(node)
        if not fs.case_sensitive:
            parts = self._canonical(fs, parts, entry)
        return Located(root, parts, node, entry)

    def _stream(self, root: Root, fs: FileSystem, parts: list[str]) -> Located | None:
        """``file.txt:stream``: a named data stream of a file (NTFS), never listed, reachable by name."""
        base, _, name = parts[-1].partition(":")
        if not base or not name:
            return None
        node = fs.lookup([*parts[:-1], base])
        if node is None or fs.stat(node).is_dir:
            return None
        found = fs.stream(node, name)
        if found is None:
            return None
        entry, _reader = found
        canonical = (
            self._canonical(fs, [*parts[:-1], base], fs.stat(node)) if not fs.case_sensitive else parts
        )
        return Located(root, [*canonical[:-1], entry.name], entry.node, entry)

    def open(self, where: Located) -> FileReader:
        """A reader of a located file (or link target text, or named stream)."""
        if where.root is None or where.entry is None or where.entry.is_dir:
            from openflr.guestfs.errors import IsADirectoryGuestError

            raise IsADirectoryGuestError(
                f"{self.path_of(where.root, where.parts)!r} is a folder, not a file."
            )
        fs = require_fs(where.root)
        return fs.open(where.node)

    @staticmethod
    def _canonical(fs: FileSystem, parts: list[str], entry: Entry) -> list[str]:
        """The names as the file system spells them (the lookup ignored case)."""
        out = []
        for i in range(1, len(parts)):
            node = fs.lookup(parts[:i])
            out.append(fs.stat(node).name if node is not None else parts[i - 1])
        out.append(entry.name or parts[-1])
        return out

    def _mount_dir(self, root: Root, parts: list[str]) -> Located | None:
        """A directory that exists only because something is mounted below it (``/srv`` missing in /)."""
        if root.mount is None:
            return None
        full = (*root.mount, *parts)
        for other in self.roots:
            if other.mount is not None and len(other.mount) > len(full) and other.mount[: len(full)] == full:
                return Located(root, parts, None, Entry(parts[-1], True, 0, None, None, None))
        return None

    # --- listing ----------------------------------------------------------------------------------

    def scandir(self, where: Located, start: int = 0, stop: int | None = None) -> Iterator[Entry]:
        """Entries of a directory, including mount points grafted below it in the Linux tree.
        ``start``/``stop``: a part of the directory (see ``FileSystem.scandir``), for folders without
        grafts (where ``counts`` is known)."""
        if where.root is None:
            for root in self.roots:
                if root.mount is None:
                    yield Entry(root.name, True, 0, None, None, None)
            return
        if where.entry is not None and not where.entry.is_dir:
            from openflr.guestfs.errors import NotADirectoryGuestError

            raise NotADirectoryGuestError(
                f"{self.path_of(where.root, where.parts)!r} is a file, not a folder."
            )
        fs = require_fs(where.root)
        seen: set[str] = set()
        grafts = self._grafts(where)
        if (start or stop is not None) and grafts:
            raise ValueError("a folder with grafted mount points is read whole")
        if where.node is not None:
            for entry in fs.scandir(where.node, start, stop):
                if grafts:
                    seen.add(entry.name)
                    if entry.name in grafts:
                        entry = Entry(entry.name, True, 0, entry.mtime_ns, entry.owner, None)
                yield entry
        for name in grafts:
            if name not in seen:
                yield Entry(name, True, 0, None, None, None)

    def counts(self, where: Located) -> tuple[int | None, int | None]:
        """(entries, subfolders) of a folder if known without reading it (see FileSystem.counts)."""
        if where.root is None or where.node is None or where.root.fs is None or self._grafts(where):
            return None, None
        return where.root.fs.counts(where.node)

    def _grafts(self, where: Located) -> list[str]:
        if where.root is None or where.root.mount is None:
            return []
        full = (*where.root.mount, *where.parts)
        return sorted(
            {
                r.mount[len(full)]
                for r in self.roots
                if r.mount is not None and len(r.mount) > len(full) and r.mount[: len(full)] == full
            }
        )

    def close(self) -> None:
        self._located.clear()
        for volume in self.volumes:
            volume.extra.clear()
        for root in self.roots:
            if root.fs is not None:
                root.fs.close()
        for disk in self.disks:
            disk.close()


def require_fs(root: Root) -> FileSystem:
    if root.fs is None:
        raise VolumeError(f"{root.name} cannot be read: {root.problem}")
    return root.fs


# --- opening -------------------------------------------------------------------------------------------


def open_view(disks: Sequence[Sequence[Path]], os_hint: str = "") -> GuestView:
    """Open every disk of a point (each a chain of image files, top first) and build its view."""
    if len(disks) > MAX_DISKS:
        first = next(iter(disks[0]), "disk") if disks else "disk"
        raise CorruptImageError(
            str(first), f"the point has {len(disks)} disks; at most {MAX_DISKS} are opened"
        )
    chains: list[Chain] = []
    try:
        for files in disks:
            check_cancelled()
            chains.append(open_chain(files))
        view = _build(chains, os_hint)
    except BaseException:
        for c in chains:
            c.close()
        raise
    view.opened_from = Opening.of(disks, os_hint)
    return view


def _build(chains: list[Chain], os_hint: str) -> GuestView:
    volumes: list[Volume] = []
    pvs: list[Volume] = []
    notes: list[str] = []
    unreadable: list[CorruptImageError] = []
    for i, chain in enumerate(chains):
        try:
            found = partitions(i, chain, notes)
        except (struct.error, ValueError, IndexError, OverflowError) as exc:
            if isinstance(exc, ImageError) and exc.path != "partition table":
                raise
            damaged = (
                exc
                if isinstance(exc, CorruptImageError)
                else CorruptImageError("partition table", f"disk {i}: damaged ({exc})")
            )
            # A disk whose table cannot be read costs only itself (the point fails if it was all).
            unreadable.append(damaged)
            notes.append(f"{damaged.problem}: the disk's volumes were skipped")
            continue
        for v in found:
            (pvs if is_lvm(v) else volumes).append(v)
        if len(volumes) + len(pvs) > MAX_VOLUMES:
            raise CorruptImageError(
                "partition table", f"disk {i}: more than {MAX_VOLUMES} volumes in the point; not opened"
            )
    if pvs:
        lvm_notes: list[str] = []
        volumes += logical_volumes(pvs, lvm_notes)
        notes += lvm_notes
        unreadable += [CorruptImageError("LVM", note) for note in lvm_notes]
        if len(volumes) > MAX_VOLUMES:
            raise CorruptImageError("LVM", f"more than {MAX_VOLUMES} volumes in the point; not opened")
    if unreadable and not volumes:
        raise unreadable[0]  # nothing left to offer: the point fails with the first reason
    for n, v in enumerate(volumes):
        v.index = n
    opened: list[tuple[Volume, FileSystem | None, str | None]] = []
    for v in volumes:
        check_cancelled()
        try:
            opened.append((v, open_volume(v.source), None))
        except HoldsNoFilesError as exc:
            notes.append(f"volume {v.index} is not a root: {exc.message}")
        except (VolumeError, ImageError) as exc:
            opened.append((v, None, exc.message if hasattr(exc, "message") else str(exc)))
    roots, linux_tree = guest_roots(opened, os_hint, notes)
    for root in roots:
        if root.problem:
            notes.append(f"{root.name} cannot be read: {root.problem}")
    return GuestView(chains, volumes, roots, linux_tree, notes)
