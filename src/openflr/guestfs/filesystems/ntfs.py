"""NTFS through libfsntfs's Python binding (ext and XFS are read by our own code: ``ext4.py``,
``xfs.py``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from openflr.errors import OpenflrError
from openflr.guestfs.blocks import BlockSource, CachedReader, check_cancelled
from openflr.guestfs.errors import VolumeError
from openflr.guestfs.filesystems import extents, ntfsindex
from openflr.guestfs.filesystems.base import (
    ENGINE_FAULTS,
    BytesReader,
    Entry,
    FileReader,
    FileSystem,
    Node,
    engine_errors,
    engine_fault,
    first_line,
    match_name,
)
from openflr.guestfs.filesystems.names import name_from_text, name_from_utf16, name_to_utf16
from openflr.guestfs.filesystems.ntfsindex import (
    REFERENCE,
    FolderIndex,
    NtfsVolume,
    SecurityDescriptors,
    Unusable,
)
from openflr.guestfs.filesystems.sids import owner_name

_FILETIME_EPOCH = 116444736000000000  # 100 ns intervals from 1601 to 1970
_NTFS_METAFILES = 24  # MFT records below this are file-system metadata ($MFT, $Secure, $Extend, ...)
_ROOT = 5  # the root folder's MFT record
_DATA_ATTRIBUTE = 0x80
_SYSTEM, _REPARSE_POINT, _COMPRESSED, _ENCRYPTED = 0x4, 0x400, 0x800, 0x4000  # NTFS file attribute flags
_INTERIX_LINK = b"IntxLNK\x01"
_INTERIX_MIN, _INTERIX_MAX = len(_INTERIX_LINK), len(_INTERIX_LINK) + 2 * 4096
"""Sizes an Interix link can have: its tag and a target of up to 4,096 UTF-16 units."""
MAX_BAD_ENTRIES = 256
"""Unreadable entries a folder listing leaves out before it gives up on the folder."""
log = logging.getLogger(__name__)
T = TypeVar("T")


class _EntryReader(FileReader):
    def __init__(self, fs: FileSystem, entry: Any, size: int) -> None:
        self.fs, self.entry, self.size = fs, entry, size

    def pread(self, length: int, offset: int) -> bytes:
        if offset >= self.size or length <= 0:
            return b""
        length = min(length, self.size - offset)
        with self.fs.lock, engine_errors(self.fs.kind):
            data: bytes = self.entry.read_buffer_at_offset(length, offset)
        return data


def _readable_names(folder: Any) -> Iterator[tuple[str, Any]]:
    """(name, entry) of a folder's entries, without those whose name or record cannot be read."""
    for i in range(int(folder.number_of_sub_file_entries)):
        try:
            entry = folder.get_sub_file_entry(i)
            name = entry.name
        except OSError:
            continue
        if name is not None:
            yield name_from_text(name), entry


class _LibyalFileSystem(FileSystem):
    module: Any
    sep: str

    def __init__(self, source: BlockSource, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.reader = CachedReader(source)
        self.volume = self.module.volume()
        try:
            self.volume.open_file_object(self.reader)
        except OSError as exc:
            check_cancelled()
            raise VolumeError(f"{kind} volume cannot be opened: {first_line(exc)}") from None
        self.label = self._label()

    def _label(self) -> str:
        try:
            return str(self.volume.name or "")
        except (AttributeError, OSError):
            return ""

    def root(self) -> Node:
        with self.lock, engine_errors(self.kind):
            return self.volume.get_root_directory()

    def lookup(self, parts: list[str]) -> Node | None:
        with self.lock, engine_errors(self.kind):
            if not parts:
                return self.volume.get_root_directory()
            node, engine_failed = None, True
            if not any(self.sep in p for p in parts):  # the engine would split a name holding it
                try:
                    node = self.volume.get_file_entry_by_path(self.sep + self.sep.join(parts))
                    engine_failed = False
                except OSError:
                    pass
            if node is not None and not self._exact(parts, node):
                node, engine_failed = None, True  # a case twin (POSIX namespace): find the exact one
            if node is not None or (not engine_failed and all(p.isascii() for p in parts)):
                return node
            # Slow path: walk, matching names by Unicode normalisation (NFC in the URL, NFD on disk).
            # Also taken when the engine's own lookup failed: it stops at a sibling whose name it
            # cannot decode (not UTF-8 on ext4), which must not hide the rest of the folder; and for
            # a name that holds the engine's separator (``\`` is a character of an NTFS name here).
            node = self.volume.get_root_directory()
            for part in parts:
                if not self._is_dir(node):
                    return None
                node = match_name(_readable_names(node), part, self.case_sensitive)
                if node is None:
                    return None
            return node

    def _is_dir(self, node: Node) -> bool:
        raise NotImplementedError

    def _exact(self, parts: list[str], node: Node) -> bool:
        """Whether the engine's own lookup of ``parts`` found ``node`` by their exact names, not by a
        name that differs only in case on the way (it answers the first case-insensitive match,
        while NTFS may hold both). Called with the lock held."""
        return True

    def _child(self, node: Node, index: int) -> Entry | None:
        """Entry ``index`` of a folder, or None for one that listings leave out."""
        raise NotImplementedError

    def check_dir(self, node: Node) -> None:
        with self.lock, engine_errors(self.kind):
            int(node.number_of_sub_file_entries)

    def scandir(self, node: Node, start: int = 0, stop: int | None = None) -> Iterator[Entry]:
        """Entries in on-disk order; an entry the engine cannot read (a damaged record) is skipped
        and logged, so the rest of a damaged folder can still be restored."""
        with self.lock, engine_errors(self.kind):
            count = int(node.number_of_sub_file_entries)
        bad = 0
        for i in range(start, count if stop is None else min(stop, count)):
            try:
                entry = self._read_entry(lambda: self._child(node, i))  # noqa: B023 - called at once
            except VolumeError as exc:
                bad = self._left_out(bad, i, exc)
                continue
            if entry is not None:
                yield entry

    def _read_entry(self, read: Callable[[], T]) -> T:
        """``read()`` under the lock, an engine fault as a ``VolumeError`` (try/except, not
        ``engine_errors()``: this runs once per entry)."""
        with self.lock:
            try:
                return read()
            except OpenflrError:
                raise
            except ENGINE_FAULTS as exc:
                raise engine_fault(exc, self.kind) from None

    def _left_out(self, bad: int, position: int, exc: VolumeError) -> int:
        """One more unreadable entry of a folder, logged; re-raised past ``MAX_BAD_ENTRIES``."""
        if bad + 1 > MAX_BAD_ENTRIES:
            raise exc
        log.warning("%s: entry %d of a folder cannot be read, left out: %s", self.kind, position, exc)
        return bad + 1

    def open(self, node: Node) -> FileReader:
        with self.lock, engine_errors(self.kind):
            size = int(node.size)
            runs = self._runs(node, size)
        if runs is not None:
            return extents.ExtentReader(self.reader.source, runs, size)
        return _EntryReader(self, node, size)

    def _runs(self, node: Node, size: int) -> list[extents.Run] | None:
        """The file's runs on the volume when they can be read without the library (see
        ``extents``), else None. Called with the lock held."""
        if size < extents.MIN_SIZE:
            return None
        count = int(node.number_of_extents)
        if not 0 < count <= extents.MAX_EXTENTS:
            return None
        at = self._volume_offset
        return extents.runs_of(
            (
                (o if flags & extents.SPARSE else at(o), n, flags)
                for o, n, flags in (node.get_extent(i) for i in range(count))
            ),
            size,
            self.reader.size,
        )

    def _volume_offset(self, offset: int) -> int:
        """Where an extent the library reports at ``offset`` lies on the volume (a negative result
        makes the map untrusted, so the library reads the file)."""
        return offset

    def close(self) -> None:
        with self.lock:
            with contextlib.suppress(OSError):
                self.volume.close()
            self.reader.close()  # give its cached blocks back to the process-wide budget


@dataclass(eq=False)
class _Found:
    """An item our own lookup found through the folders' indexes. Its libfsntfs entry is made only
    when needed (``NtfsFileSystem._real``): for a folder, libfsntfs reads the whole index to make
    it, and listing a folder page by page never needs it (``ntfsindex``)."""

    reference: int
    """The 48+16-bit file reference the index holds."""
    name: str
    """The name it was found by (a hard link's own name, never the DOS one)."""
    is_dir: bool
    entry: Any = None

    def __getattr__(self, name: str) -> Any:
        # Stands for the libfsntfs entry once made (a file's is made by the lookup: it is cheap).
        if self.entry is None:
            raise AttributeError(name)
        return getattr(self.entry, name)


class NtfsFileSystem(_LibyalFileSystem):
    sep = "\\"
    case_sensitive = False

    def __init__(self, source: BlockSource) -> None:
        import pyfsntfs

        self.module = pyfsntfs
        self._owners: dict[bytes, str | None] = {}
        super().__init__(source, "ntfs")
        self.uuid = f"{self.volume.serial_number:016X}" if self.volume.serial_number else None
        self.index: NtfsVolume | None = None
        """Our own reader of folder indexes (see ``ntfsindex``); None where it cannot read this
        volume: then libfsntfs lists every folder."""
        self._descriptors: SecurityDescriptors | bool | None = False
        """$Secure's descriptors once read (None: they cannot be; False: not read yet)."""
        try:
            with self.lock:
                self.index = NtfsVolume(self.reader.read_at, self.reader.size)
        except (Unusable, OSError) as exc:
            log.info("ntfs: folders are listed through libfsntfs: %s", exc)

    def _real(self, node: Node) -> Any:
        """The libfsntfs entry of a node (made now for one our lookup found). Called with the lock held."""
        if not isinstance(node, _Found):
            return node
        if node.entry is None:
            e = self.volume.get_file_entry(node.reference & REFERENCE)
            if e is None or e.file_reference != node.reference:
                raise VolumeError(
                    f"The ntfs file system is damaged or cannot be read: the MFT record of {node.name!r} "
                    "was reused or is damaged"
                )
            node.entry = e
        return node.entry

    def _folder(self, node: Node) -> FolderIndex | None:
        """The folder's own index reader, or None: list it through libfsntfs. Called with the lock held."""
        if self.index is None:
            return None
        if isinstance(node, _Found):
            number = node.reference & REFERENCE
        elif isinstance(node, self.module.file_entry):
            number = node.file_reference & REFERENCE
        else:
            return None
        try:
            return FolderIndex(self.index, number)
        except Unusable as exc:
            log.info("ntfs: folder %d is listed through libfsntfs: %s", number, exc)
            return None

    def check_dir(self, node: Node) -> None:
        with self.lock, engine_errors(self.kind):
            if self._folder(node) is None:
                int(self._real(node).number_of_sub_file_entries)

    def scandir(self, node: Node, start: int = 0, stop: int | None = None) -> Iterator[Entry]:
        """As the base, but positions and names come from the folder's index (``ntfsindex``), and
        an entry's MFT record is read only for the positions asked for."""
        with self.lock, engine_errors(self.kind):
            folder = self._folder(node)
            if folder is None:
                node = self._real(node)
        if folder is None:
            yield from super().scandir(node, start, stop)
            return
        at_root = folder.number == _ROOT
        position, bad = 0, 0
        chunks = folder.chunks()
        while stop is None or position < stop:
            with self.lock, engine_errors(self.kind):
                chunk = next(chunks, None)
            if chunk is None:
                return
            if position + len(chunk) <= start:
                position += len(chunk)
                continue
            for reference, units, _is_dir in chunk:
                here, position = position, position + 1
                if here < start:
                    continue
                if stop is not None and here >= stop:
                    return
                if at_root and _is_metaname(reference, units):
                    continue
                try:
                    entry = self._read_entry(lambda: self._indexed_entry(reference, units))  # noqa: B023
                except VolumeError as exc:
                    bad = self._left_out(bad, here, exc)
                    continue
                yield entry

    def _indexed_entry(self, reference: int, units: bytes) -> Entry:
        """The entry a folder's index names: its record's facts (through libfsntfs) under the
        index's name (a hard link's own name, never the DOS one)."""
        e = self.volume.get_file_entry(reference & REFERENCE)
        if e is None or e.file_reference != reference:
            raise VolumeError(
                f"The ntfs file system is damaged or cannot be read: the MFT record {reference & REFERENCE} "
                "was reused or is damaged"
            )
        return self._entry(e, name_from_utf16(units))

    def _is_dir(self, node: Node) -> bool:
        return bool(node.has_directory_entries_index())

    def lookup(self, parts: list[str]) -> Node | None:
        """Through the folders' own indexes (``_index_lookup``) where they can be read, else
        through libfsntfs: then as the base, but the metadata files at the root ($MFT, $LogFile,
        $Extend, ...: they hold deleted data) are never found, as they are never listed; a user's
        file of the same name in another case is."""
        if parts and self.index is not None:
            with self.lock, engine_errors(self.kind):
                try:
                    return self._index_lookup(parts)
                except Unusable as exc:
                    log.info("ntfs: %s is looked up through libfsntfs: %s", self.sep.join(parts), exc)
        node = super().lookup(parts)
        if node is None or not parts:
            return node
        first = node if len(parts) == 1 else super().lookup(parts[:1])
        with self.lock:
            if first is None or _is_metafile(first):
                return None
        return node

    def _index_lookup(self, parts: list[str]) -> _Found | None:
        """Each name in its folder's index (no DOS names): the exact name first, then as
        ``match_name`` allows; as in libfsntfs's lookup, a metafile at the root that matches is
        never found (it is never listed either). ``Unusable`` when an index on the way cannot be
        read here. Called with the lock held."""
        assert self.index is not None
        number, found = _ROOT, None
        for depth, part in enumerate(parts):
            if found is not None and not found.is_dir:
                return None
            folder = FolderIndex(self.index, number)
            try:
                wanted: bytes | None = name_to_utf16(part)
            except UnicodeError:  # bytes no UTF-16 name can hold (overlong UTF-8, ...): none is equal
                wanted = None
            hit = next(((r, u, d) for r, u, d in folder.names() if u == wanted), None) if wanted else None
            if hit is None:
                names = ((name_from_utf16(u), (r, u, d)) for r, u, d in folder.names())
                hit = match_name(names, part, False)
                if hit is None:
                    return None
            reference, units, is_dir = hit
            if number == _ROOT and _is_metaname(reference, units):
                return None
            found = _Found(reference, name_from_utf16(units), is_dir)
            number = reference & REFERENCE
            if depth < len(parts) - 1 and number == folder.number:
                return None  # a folder that holds itself
        if found is not None and not found.is_dir:
            self._real(found)
        return found

    def _exact(self, parts: list[str], node: Node) -> bool:
        if name_from_text(node.name or "") != parts[-1]:
            return False
        for depth in range(1, len(parts)):  # each folder on the way, by the engine's own lookup
            folder = self.volume.get_file_entry_by_path(self.sep + self.sep.join(parts[:depth]))
            if folder is None or name_from_text(folder.name or "") != parts[depth - 1]:
                return False
        return True

    def _link_target(self, e: Any) -> bytes | None:
        """The target of a symbolic link: a reparse point of the symbolic-link kind (Windows), or an
        Interix link (a system file holding ``IntxLNK\1`` and the UTF-16 target: what ntfs-3g makes
        for a Linux guest). None for anything else."""
        flags = e.file_attribute_flags
        if flags & _REPARSE_POINT:
            try:
                target = e.symbolic_link_target
            except OSError:
                return None
            return target.encode("utf-8", "surrogatepass") if target else None
        if flags & _SYSTEM and not e.has_directory_entries_index() and _INTERIX_MIN < e.size <= _INTERIX_MAX:
            data = bytes(e.read_buffer_at_offset(int(e.size), 0))
            if data.startswith(_INTERIX_LINK) and len(data) % 2 == 0:
                units = data[len(_INTERIX_LINK) :]
                return units.decode("utf-16-le", "surrogatepass").encode("utf-8", "surrogatepass")
        return None

    def open(self, node: Node) -> FileReader:
        with self.lock, engine_errors(self.kind):
            node = self._real(node)
            # An alternate data stream (a download of ``file:stream``) is never a link.
            target = self._link_target(node) if isinstance(node, self.module.file_entry) else None
        return super().open(node) if target is None else BytesReader(target)

    def _runs(self, node: Node, size: int) -> list[extents.Run] | None:
        # Compressed and encrypted files need the library; so do files whose valid data length is
        # short of their size (the clusters past it hold stale bytes, the file reads zeros there).
        if size < extents.MIN_SIZE or node.file_attribute_flags & (_COMPRESSED | _ENCRYPTED):
            return None
        data = [
            a
            for a in (node.get_attribute(i) for i in range(int(node.number_of_attributes)))
            if a.attribute_type == _DATA_ATTRIBUTE and not a.attribute_name
        ]
        if not data or int(data[0].valid_data_size) < size or int(data[0].data_size) != size:
            return None
        return super()._runs(node, size)

    def counts(self, node: Node) -> tuple[int | None, int | None]:
        """From the folder's index: (entries, subfolders) by a pass over its names alone."""
        with self.lock, engine_errors(self.kind):
            folder = self._folder(node)
            if folder is not None:
                if folder.number != _ROOT:
                    return folder.tally()
                listed = [n for n in folder.names() if not _is_metaname(n[0], n[1])]
                return len(listed), sum(n[2] for n in listed)
            node = self._real(node)
            if node.file_reference & 0xFFFFFFFFFFFF == 5:
                return None, None  # the root also holds metafiles that listings leave out
            return int(node.number_of_sub_file_entries), None

    def _entry(self, e: Any, name: str | None = None) -> Entry:
        ft = e.get_modification_time_as_integer()
        mtime = None if ft is None else (ft - _FILETIME_EPOCH) * 100  # 0 is 1601-01-01, a time
        is_dir = bool(e.has_directory_entries_index())
        try:
            descriptor = e.security_descriptor_data
        except OSError:
            descriptor = None
        ident = e.file_reference & 0xFFFFFFFFFFFF
        if name is None:
            name = name_from_text(e.name or "")
        if ident < _NTFS_METAFILES and ident != 5 and not name.startswith("$"):
            # libfsntfs answers a folder entry whose MFT record is damaged with record 0: never serve
            # $MFT (which holds deleted data) under the name of a user's file.
            raise VolumeError(
                f"The ntfs file system is damaged or cannot be read: the MFT record of {name!r} is damaged"
            )
        target = None if is_dir else self._link_target(e)
        return Entry(
            name,
            is_dir,
            0 if is_dir else int(e.size) if target is None else len(target),
            mtime,
            owner_name(descriptor, self._owners),
            e,
            target is not None,
            ident,
        )

    def stat(self, node: Node) -> Entry:
        with self.lock, engine_errors(self.kind):
            if isinstance(node, _Found):
                if node.is_dir and node.entry is None:
                    entry = self._folder_entry(node)
                    if entry is not None:
                        return entry
                return self._entry(self._real(node), node.name)
            return self._entry(node)

    def _folder_entry(self, node: _Found) -> Entry | None:
        """A folder's entry from its own MFT record and $Secure, without libfsntfs (which would
        read the folder's whole index); None where they cannot be read here. Called with the lock held."""
        folder = self._folder(node)
        if folder is None or folder.sequence != node.reference >> 48:
            return None
        try:
            facts = ntfsindex.facts(folder)
            descriptor = facts.descriptor
            if descriptor is None and facts.security_id is not None:
                descriptors = self._secure()
                if descriptors is None:
                    return None
                descriptor = descriptors.descriptor(facts.security_id)
        except Unusable:
            return None
        mtime = None if facts.mtime is None else (facts.mtime - _FILETIME_EPOCH) * 100
        owner = owner_name(descriptor, self._owners)
        return Entry(node.name, True, 0, mtime, owner, node, False, folder.number)

    def _secure(self) -> SecurityDescriptors | None:
        if self._descriptors is False:
            assert self.index is not None
            try:
                self._descriptors = SecurityDescriptors(self.index)
            except Unusable as exc:
                log.info("ntfs: $Secure is read through libfsntfs: %s", exc)
                self._descriptors = None
        return self._descriptors if isinstance(self._descriptors, SecurityDescriptors) else None

    def security_descriptor(self, node: Node) -> bytes | None:
        with self.lock:
            try:
                data = self._real(node).security_descriptor_data
            except (OSError, VolumeError):
                return None
        return bytes(data) if data else None

    def stream(self, node: Node, name: str) -> tuple[Entry, FileReader] | None:
        with self.lock, engine_errors(self.kind):
            shown = node.name if isinstance(node, _Found) else None
            node = self._real(node)
            try:
                found = node.get_alternate_data_stream_by_name(name)
            except OSError:
                found = None
            if found is None:
                return None
            base = self._entry(node, shown)
            size = int(found.size)
            name = f"{base.name}:{name_from_text(found.name or '')}"
            entry = Entry(name, False, size, base.mtime_ns, base.owner, found)
            return entry, _EntryReader(self, found, size)

    def _child(self, node: Node, index: int) -> Entry | None:
        e = node.get_sub_file_entry(index)
        if node.file_reference & 0xFFFFFFFFFFFF == 5 and _is_metafile(e):
            return None
        return self._entry(e)


def _is_metaname(reference: int, units: bytes) -> bool:
    """``_is_metafile`` for an entry of the root's index."""
    record = reference & REFERENCE
    return record < _NTFS_METAFILES and record != _ROOT and units.startswith(b"$\x00")


def _is_metafile(e: Any) -> bool:
    """An NTFS metadata file at the root: a reserved MFT record (not the root's own) under a ``$`` name."""
    record = e.file_reference & 0xFFFFFFFFFFFF
    return record < _NTFS_METAFILES and record != 5 and str(e.name or "").startswith("$")
