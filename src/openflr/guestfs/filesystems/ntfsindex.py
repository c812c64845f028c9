"""A folder's names straight from its NTFS $I30 index, without libfsntfs.

libfsntfs reads a folder's whole index when it creates the folder's entry (150 ms for 100,000
names), before the first name can be had. Here the index is walked lazily, in the order libfsntfs
lists a folder in (an entry, then the subtree of the names that sort before it: positions, and so
pages, stay what they were), so the first page of a big folder needs only the index records on the
way to its first leaves; a count of names and folder flags alone (``tally``) reads no MFT record
but the folder's own. Also here: a folder's own facts (``facts``) and $Secure's security
descriptors (``SecurityDescriptors``), so that a folder can be found and shown without libfsntfs.

Everything read here comes from a replica's disk and is not trusted. Sizes and counts are bounded,
update sequences (fixups) are checked, an index record is visited at most once per walk (no
cycles), and the walk's depth is bounded. What cannot be used at all raises ``Unusable`` (the
caller then lists the folder through libfsntfs): a boot sector or $MFT that does not parse, a
folder record that is not a plain in-use folder, an $ATTRIBUTE_LIST naming records that are
not the folder's extensions, an index of another kind. A damaged index record below a
usable root is logged and its subtree left out; the walk goes on.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

log = logging.getLogger(__name__)

Read = Callable[[int, int], bytes]
"""``read(offset, length)`` of the volume."""
Buffer = bytes | bytearray

_U16, _U32, _U64 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<Q")
_RECORD_HEADER = struct.Struct("<4sHH8xHHHHII")
"""magic, usa offset, usa count, sequence, link count, first attribute, flags, used, allocated."""
_ATTR_HEADER = struct.Struct("<IIBBHH")
"""type, length, non-resident, name length, name offset, flags."""
_ENTRY_HEADER = struct.Struct("<QHHH")
"""file reference, entry length, key length, flags."""
_NODE_HEADER = struct.Struct("<III")
"""entries offset, index length, allocated size (from the node header)."""

STANDARD_INFORMATION, ATTRIBUTE_LIST, FILE_NAME, DATA = 0x10, 0x20, 0x30, 0x80
INDEX_ROOT, INDEX_ALLOCATION, BITMAP = 0x90, 0xA0, 0xB0
_END = 0xFFFFFFFF
_I30 = "$I30"
_SUBNODE, _LAST = 0x1, 0x2
_HAS_CHILDREN = 0x1  # node header flag: entries point to subnodes
_FILE_NAME_FIXED = 66  # a $FILE_NAME up to its name
_DOS = 2  # the DOS 8.3 name of a file that also has a long name
DIRECTORY = 0x10000000  # file attribute flag of a $FILE_NAME: the item is a folder
_DIRECTORY_BYTE = DIRECTORY >> 24  # that flag in the flags' last byte
ROOT = 5  # the MFT record of the root folder
REFERENCE = 0xFFFFFFFFFFFF  # the record number in a 48+16-bit file reference

MAX_RECORD = 64 * 1024
"""Largest MFT or index record accepted."""
MAX_DEPTH = 32
"""Deepest index B+tree walked (a real one of millions of names has fewer than 6 levels)."""
MAX_BITMAP = 16 * 1024 * 1024
"""Largest $BITMAP read whole (one bit per index record: 128 M records)."""
MAX_RUNS = 65536
"""Most runs in one attribute's runlist."""
_SECTOR = 512  # stride of an update sequence
_TALLY_READ = 1024 * 1024
"""Bytes of index records ``tally`` reads at once."""


class Unusable(ValueError):
    """The structure cannot be read here; the caller uses libfsntfs instead. A ``ValueError``: where
    it escapes, ``engine_errors`` turns it into a ``VolumeError`` like any engine fault."""


@dataclass(frozen=True, slots=True)
class Run:
    vcn: int
    clusters: int
    lcn: int | None
    """None for a sparse run."""


@dataclass(frozen=True, slots=True)
class Attribute:
    type: int
    name: str
    resident: bytes | None
    """The value of a resident attribute; None for a non-resident one."""
    runs: tuple[Run, ...] = ()
    size: int = 0
    """Data size of a non-resident attribute (in its first extent only)."""
    first_vcn: int = 0
    """Where this extent of a non-resident attribute starts (0 but in an attribute list's extensions)."""


def runlist(data: Buffer, start: int, end: int, first_vcn: int = 0) -> tuple[Run, ...]:
    """Decode the mapping pairs in ``data[start:end]``: lengths unsigned, LCNs as signed deltas,
    no offset for a sparse run; VCNs from ``first_vcn``."""
    runs: list[Run] = []
    vcn, lcn = first_vcn, 0
    pos = start
    while pos < end:
        header = data[pos]
        if header == 0:
            return tuple(runs)
        size_len, off_len = header & 0x0F, header >> 4
        pos += 1
        if size_len == 0 or size_len > 8 or off_len > 8 or pos + size_len + off_len > end:
            raise Unusable("bad runlist")
        clusters = int.from_bytes(data[pos : pos + size_len], "little")
        pos += size_len
        if clusters <= 0 or len(runs) >= MAX_RUNS:
            raise Unusable("bad runlist")
        if off_len:
            lcn += int.from_bytes(data[pos : pos + off_len], "little", signed=True)
            pos += off_len
            if lcn < 0:
                raise Unusable("runlist before the volume's start")
            runs.append(Run(vcn, clusters, lcn))
        else:
            runs.append(Run(vcn, clusters, None))
        vcn += clusters
    raise Unusable("runlist without its end")


def apply_fixups(buf: bytearray, what: str) -> None:
    """Check and undo the update sequence of a multi-sector record in place: the last two bytes
    of each 512-byte stride hold the sequence number, their real value is in the array."""
    usa_offset, usa_count = _U16.unpack_from(buf, 4)[0], _U16.unpack_from(buf, 6)[0]
    strides = usa_count - 1
    if (
        strides <= 0
        or strides * _SECTOR != len(buf)
        or usa_offset < 8
        or usa_offset + 2 * usa_count > len(buf)
    ):
        raise Unusable(f"{what}: bad update sequence")
    usa = bytes(buf[usa_offset : usa_offset + 2 * usa_count])
    # Every stride's end at once (C-level strided slices, not a loop per stride).
    if buf[_SECTOR - 2 :: _SECTOR] != usa[0:1] * strides or buf[_SECTOR - 1 :: _SECTOR] != usa[1:2] * strides:
        raise Unusable(f"{what}: update sequence mismatch (torn or damaged record)")
    buf[_SECTOR - 2 :: _SECTOR] = usa[2::2]
    buf[_SECTOR - 1 :: _SECTOR] = usa[3::2]


class NtfsVolume:
    """The geometry of an NTFS volume and its $MFT's map: MFT records by number."""

    def __init__(self, read: Read, size: int) -> None:
        self.read, self.size = read, size
        boot = read(0, 512)
        if len(boot) < 512 or boot[3:11] != b"NTFS    ":
            raise Unusable("not an NTFS boot sector")
        sector = _U16.unpack_from(boot, 0x0B)[0]
        per_cluster = boot[0x0D]
        if sector not in (256, 512, 1024, 2048, 4096):
            raise Unusable("bad bytes per sector")
        # 0x80 and above: a negative power of two (clusters of 64 KiB and more).
        spc = per_cluster if per_cluster <= 0x80 else 1 << (256 - per_cluster)
        self.cluster: int = sector * spc
        if not 0 < self.cluster <= 2 * 1024 * 1024:
            raise Unusable("bad cluster size")
        self.record_size = self._record_size(boot[0x40])
        self.index_record_size = self._record_size(boot[0x44])
        mft_lcn = _U64.unpack_from(boot, 0x30)[0]
        if mft_lcn * self.cluster >= size:
            raise Unusable("$MFT outside the volume")
        self._mft_runs: tuple[Run, ...] = (Run(0, -(-self.record_size // self.cluster), mft_lcn),)
        data = [a for a in self.attributes(self.record(0)) if a.type == DATA and not a.name]
        if not data or data[0].resident is not None:
            raise Unusable("$MFT without its data runs")
        self._mft_runs = data[0].runs
        self.records = data[0].size // self.record_size

    def _record_size(self, code: int) -> int:
        size = self.cluster * code if code < 0x80 else 1 << (256 - code)
        if not 512 <= size <= MAX_RECORD or size % _SECTOR:
            raise Unusable("bad record size")
        return size

    def read_runs(self, runs: tuple[Run, ...], offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` of a non-resident stream (zeros where sparse)."""
        cluster = self.cluster
        for run in runs:  # the common case: one run holds it all
            begin = run.vcn * cluster
            if run.lcn is not None and begin <= offset and offset + length <= begin + run.clusters * cluster:
                at = run.lcn * cluster + offset - begin
                piece = self.read(at, length) if at + length <= self.size else b""
                if len(piece) != length:
                    raise Unusable("a run beyond the volume's end")
                return piece
        out = bytearray()
        cluster = self.cluster
        for run in runs:
            if length <= 0:
                break
            begin, end = run.vcn * cluster, (run.vcn + run.clusters) * cluster
            if offset >= end or offset < begin:
                continue
            take = min(length, end - offset)
            if run.lcn is None:
                out += bytes(take)
            else:
                at = run.lcn * cluster + offset - begin
                if at + take > self.size:
                    raise Unusable("a run beyond the volume's end")
                piece = self.read(at, take)
                if len(piece) != take:
                    raise Unusable("short read")
                out += piece
            offset, length = offset + take, length - take
        if length > 0:
            raise Unusable("read past the mapped runs")
        return bytes(out)

    def record(self, number: int) -> bytearray:
        """MFT record ``number``, fixups applied; ``Unusable`` unless it is an in-use record."""
        if number < 0 or (number and number >= self.records):
            raise Unusable(f"MFT record {number} out of range")
        buf = bytearray(self.read_runs(self._mft_runs, number * self.record_size, self.record_size))
        if buf[:4] != b"FILE":
            raise Unusable(f"MFT record {number}: bad magic")
        apply_fixups(buf, f"MFT record {number}")
        if not _RECORD_HEADER.unpack_from(buf)[6] & 1:
            raise Unusable(f"MFT record {number} is not in use")
        return buf

    @staticmethod
    def sequence(record: bytearray) -> int:
        return int(_RECORD_HEADER.unpack_from(record)[3])

    def attributes(self, record: bytearray) -> list[Attribute]:
        """The attributes of one MFT record (this record only: not those an attribute list names)."""
        _m, _uo, _uc, _seq, _links, pos, _flags, used, _alloc = _RECORD_HEADER.unpack_from(record)
        end = min(used, len(record))
        found: list[Attribute] = []
        while pos + 8 <= end:
            kind = _U32.unpack_from(record, pos)[0]
            if kind == _END:
                return found
            if pos + 16 > end:
                break
            kind, length, nonresident, name_len, name_off, _aflags = _ATTR_HEADER.unpack_from(record, pos)
            if length < 16 or length % 8 or pos + length > end:
                raise Unusable("bad attribute length")
            if name_off + 2 * name_len > length:
                raise Unusable("bad attribute name")
            name = bytes(record[pos + name_off : pos + name_off + 2 * name_len]).decode(
                "utf-16-le", "replace"
            )
            if not nonresident:
                vlen, voff = _U32.unpack_from(record, pos + 16)[0], _U16.unpack_from(record, pos + 20)[0]
                if voff + vlen > length:
                    raise Unusable("bad resident value")
                found.append(Attribute(kind, name, bytes(record[pos + voff : pos + voff + vlen])))
            else:
                if length < 0x40:
                    raise Unusable("bad non-resident attribute")
                start_vcn = _U64.unpack_from(record, pos + 0x10)[0]
                runs_off = _U16.unpack_from(record, pos + 0x20)[0]
                size = _U64.unpack_from(record, pos + 0x30)[0]
                if runs_off >= length:
                    raise Unusable("bad runlist offset")
                runs = runlist(record, pos + runs_off, pos + length, start_vcn)
                found.append(Attribute(kind, name, None, runs, size, start_vcn))
            pos += length
        raise Unusable("attributes without their end marker")


Name = tuple[int, bytes, bool]
"""One listed entry of a folder's index: its file reference (48-bit record number, 16-bit sequence
number), its name (UTF-16LE), whether it is a folder. A tuple: a big folder has 100,000s."""


MAX_ATTRIBUTE_LIST = 256 * 1024
"""Largest $ATTRIBUTE_LIST read."""
MAX_EXTENSIONS = 1024
"""Most MFT records one item's attributes are spread over."""


def _with_extensions(
    volume: NtfsVolume, number: int, attrs: list[Attribute], listed: Attribute
) -> list[Attribute]:
    """The attributes of an item whose $ATTRIBUTE_LIST spreads them over several MFT records: those
    of the base record and of each extension record it names (each checked to belong to the
    base), a non-resident attribute's extents joined into one map in VCN order."""
    if listed.resident is not None:
        data = listed.resident
    elif listed.size <= MAX_ATTRIBUTE_LIST:
        data = volume.read_runs(listed.runs, 0, listed.size)
    else:
        raise Unusable("absurd attribute list")
    extensions: list[int] = []
    pos = 0
    while pos + 26 <= len(data):
        length = _U16.unpack_from(data, pos + 4)[0]
        if length < 26 or pos + length > len(data):
            raise Unusable("bad attribute list entry")
        other = _U64.unpack_from(data, pos + 16)[0] & REFERENCE
        if other != number and other not in extensions:
            extensions.append(other)
            if len(extensions) > MAX_EXTENSIONS:
                raise Unusable("absurd attribute list")
        pos += length
    found = [a for a in attrs if a.type != ATTRIBUTE_LIST]
    for other in extensions:
        record = volume.record(other)
        if _U64.unpack_from(record, 0x20)[0] & REFERENCE != number:
            raise Unusable(f"MFT record {other} is not an extension of record {number}")
        found += volume.attributes(record)
    joined: dict[tuple[int, str], list[Attribute]] = {}
    out: list[Attribute] = []
    for a in found:
        if a.resident is None:
            joined.setdefault((a.type, a.name), []).append(a)
        else:
            out.append(a)
    for parts in joined.values():
        parts.sort(key=lambda a: a.first_vcn)
        if parts[0].first_vcn != 0:
            raise Unusable("an attribute without its first extent")
        runs: list[Run] = []
        for part in parts:
            if runs and part.first_vcn != runs[-1].vcn + runs[-1].clusters:
                raise Unusable("attribute extents that do not meet")
            runs += part.runs
            if len(runs) > MAX_RUNS:
                raise Unusable("bad runlist")
        first = parts[0]
        out.append(Attribute(first.type, first.name, None, tuple(runs), first.size))
    return out


class FolderIndex:
    """The $I30 index of one folder (or another index: ``name``, ``indexed``, ``collation``).
    ``Unusable`` from the constructor: list it with libfsntfs."""

    def __init__(
        self, volume: NtfsVolume, number: int, name: str = _I30, indexed: int = FILE_NAME, collation: int = 1
    ) -> None:
        self.volume = volume
        self.number = number
        record = volume.record(number)
        self.sequence = volume.sequence(record)
        if _U64.unpack_from(record, 0x20)[0] & REFERENCE:
            raise Unusable("an extension record, not a folder's base record")
        attrs = volume.attributes(record)
        listed = next((a for a in attrs if a.type == ATTRIBUTE_LIST), None)
        if listed is not None:
            attrs = _with_extensions(volume, number, attrs, listed)
        elif any(a.first_vcn for a in attrs):
            raise Unusable("an attribute continued elsewhere without an attribute list")
        self.attributes = attrs
        root = next((a for a in attrs if a.type == INDEX_ROOT and a.name == name), None)
        if root is None or root.resident is None or len(root.resident) < 32:
            raise Unusable(f"no {name} index root")
        value = root.resident
        if struct.unpack_from("<II", value, 0) != (indexed, collation):
            raise Unusable("not the index expected")
        record_size = _U32.unpack_from(value, 8)[0]
        if not 512 <= record_size <= MAX_RECORD or record_size % _SECTOR:
            raise Unusable("bad index record size")
        self.record_size = record_size
        self.root = value
        alloc = next((a for a in attrs if a.type == INDEX_ALLOCATION and a.name == name), None)
        self.allocation = None if alloc is None or alloc.resident is not None else alloc
        self.bitmap = b""
        bitmap = next((a for a in attrs if a.type == BITMAP and a.name == name), None)
        if bitmap is not None:
            if bitmap.resident is not None:
                self.bitmap = bitmap.resident
            elif bitmap.size <= MAX_BITMAP:
                self.bitmap = volume.read_runs(bitmap.runs, 0, bitmap.size)
            else:
                raise Unusable("absurd $I30 bitmap")
        # Index records in the allocation; a VCN past them is damage.
        # Bounded by its size, its runs and its bitmap alike (a damaged size can claim anything).
        size = 0
        if self.allocation is not None:
            mapped = sum(r.clusters for r in self.allocation.runs) * volume.cluster
            size = min(self.allocation.size, mapped)
        self.nodes = min(size // record_size, 8 * len(self.bitmap))
        # A VCN counts clusters where index records span whole clusters, else 512-byte blocks.
        self.vcn_unit = volume.cluster if record_size >= volume.cluster else _SECTOR
        self._root()  # its header checked now, not in the middle of a listing

    def raw_entries(self) -> Iterator[tuple[bytes, int]]:
        """(node data, offset) of every entry that holds a key, in no useful order (for a lookup
        table such as $Secure's $SII)."""
        seen: set[int] = set()
        stack = [(self._root(), 1)]
        header = _ENTRY_HEADER.unpack_from
        while stack:
            node, depth = stack.pop()
            data, pos, leaf, end = node
            end = len(data) if end < 0 else end
            while pos + 16 <= end:
                _ref, length, key_len, flags = header(data, pos)
                if length < 16 or length & 7 or pos + length > end or 16 + key_len > length:
                    break
                if flags & _SUBNODE and not leaf and length >= 24:
                    child = self._descend(_U64.unpack_from(data, pos + length - 8)[0], seen, depth)
                    if child is not None:
                        stack.append((child, depth + 1))
                if flags & _LAST:
                    break
                yield data, pos
                pos += length

    def _node(self, vcn: int) -> Node | None:
        """The index record at ``vcn``, or None (logged) for one that is not in use or is damaged."""
        offset = vcn * self.vcn_unit
        n = offset // self.record_size
        if offset % self.record_size or not 0 <= n < self.nodes:
            log.warning("ntfs: folder %d: index record at VCN %d is out of range, left out", self.number, vcn)
            return None
        if not self.bitmap[n >> 3] & (1 << (n & 7)):
            return None  # not in use: its entries are stale
        assert self.allocation is not None  # nodes == 0 without it
        try:
            buf = bytearray(self.volume.read_runs(self.allocation.runs, offset, self.record_size))
        except Unusable as exc:
            log.warning(
                "ntfs: folder %d: index record at VCN %d cannot be read (%s), left out", self.number, vcn, exc
            )
            return None
        return self._parse_node(buf, vcn)

    def _parse_node(self, buf: bytearray, vcn: int) -> Node | None:
        try:
            if buf[:4] != b"INDX":
                raise Unusable("bad magic")
            apply_fixups(buf, "index record")
            if _U64.unpack_from(buf, 0x10)[0] != vcn:
                raise Unusable("its VCN field is another's")
            first, length, _alloc = _NODE_HEADER.unpack_from(buf, 0x18)
            end = 0x18 + length
            if first < 16 or end > len(buf) or 0x18 + first > end:
                raise Unusable("bad node header")
        except Unusable as exc:
            log.warning(
                "ntfs: folder %d: index record at VCN %d is damaged (%s), left out", self.number, vcn, exc
            )
            return None
        return Node(bytes(buf[:end]), 0x18 + first, not buf[0x24] & _HAS_CHILDREN)

    def _checked_node(self, chunk: bytes, at: int, size: int, vcn: int) -> Node | None:
        """The record at ``at`` of a chunk whose fixups ``_fix_all`` applied: its VCN and header
        checked, its entries left in place."""
        first, length, _alloc = _NODE_HEADER.unpack_from(chunk, at + 0x18)
        if (
            _U64.unpack_from(chunk, at + 0x10)[0] != vcn
            or first < 16
            or 0x18 + first > 0x18 + length
            or 0x18 + length > size
        ):
            log.warning("ntfs: folder %d: index record at VCN %d is damaged, left out", self.number, vcn)
            return None
        return Node(chunk, at + 0x18 + first, not chunk[at + 0x24] & _HAS_CHILDREN, at + 0x18 + length)

    def _root(self) -> Node:
        root = self.root
        first, length, _alloc = _NODE_HEADER.unpack_from(root, 16)
        end = 16 + length
        if end > len(root) or 16 + first > end:
            raise Unusable("bad index root header")
        return Node(root[:end], 16 + first, not root[28] & _HAS_CHILDREN)

    def _segments(self, node: Node) -> list[tuple[list[Name], int]]:
        """A node's entries in libfsntfs's order, as (names, subnode VCN or -1): the names come
        first, then the subtree at the VCN. Ends at the node's last entry or at a damaged one. A
        node whose header says it is a leaf has no subtrees, whatever its entries say."""
        data, pos, leaf, end = node
        out: list[tuple[list[Name], int]] = []
        names: list[Name] = []
        end = len(data) if end < 0 else end
        header, u64 = _ENTRY_HEADER.unpack_from, _U64.unpack_from
        while pos + 16 <= end:
            ref, length, key_len, flags = header(data, pos)
            if length < 16 or length & 7 or pos + length > end or 16 + key_len > length:
                log.warning("ntfs: folder %d: a damaged index entry ends its node", self.number)
                break
            if not flags & _LAST and key_len >= _FILE_NAME_FIXED:
                key = pos + 16
                name_len = data[key + 64]
                # DOS names are left out (the file is listed by its long name), and so is ".".
                if data[key + 65] != _DOS and _FILE_NAME_FIXED + 2 * name_len <= key_len:
                    units = data[key + _FILE_NAME_FIXED : key + _FILE_NAME_FIXED + 2 * name_len]
                    if units != b".\x00":
                        names.append((ref, units, data[key + 59] & _DIRECTORY_BYTE != 0))
            if flags & _SUBNODE and not leaf:
                if length < 24 or 16 + key_len > length - 8:
                    break
                out.append((names, u64(data, pos + length - 8)[0]))
                names = []
            if flags & _LAST:
                break
            pos += length
        if names:
            out.append((names, -1))
        return out

    def _descend(self, sub: int, seen: set[int], depth: int) -> Node | None:
        """The node at a subnode VCN the walk meets, unless met before (a cycle) or too deep."""
        if sub in seen or depth >= MAX_DEPTH:
            log.warning("ntfs: folder %d: index record at VCN %d met twice or too deep", self.number, sub)
            return None
        seen.add(sub)
        return self._node(sub)

    def chunks(self) -> Iterator[list[Name]]:
        """The folder's names in libfsntfs's order, in runs: an entry comes before the subtree of
        the entries that sort before it (libfsntfs lists an index that way); the last entry of a
        node holds no name, only the subtree of the entries after the others."""
        seen: set[int] = set()
        stack = [iter(self._segments(self._root()))]
        while stack:
            segment = next(stack[-1], None)
            if segment is None:
                stack.pop()
                continue
            names, sub = segment
            if names:
                yield names
            if sub >= 0:
                node = self._descend(sub, seen, len(stack))
                if node is not None:
                    stack.append(iter(self._segments(node)))

    def names(self) -> Iterator[Name]:
        """The folder's entries in libfsntfs's order, without ``.`` and without DOS 8.3 names
        (their file is listed under its long name)."""
        for chunk in self.chunks():
            yield from chunk

    def tally(self) -> tuple[int, int]:
        """(entries, folders) that ``names()`` yields, fast: the index records in use (by the
        $BITMAP) are read in allocation order in large reads rather than walked from the root, and
        the entries of a leaf are counted by a search for their keys (each starts with the
        folder's record number, and tells the namespace and the folder flag) rather than one by
        one. In a sound index this is what the walk yields; in a damaged one it may differ (a
        count is an estimate, see ``FileSystem.counts``). The root is walked: its "." entry refers
        to the root itself, which the search would take for a key."""
        if self.number == ROOT:
            entries = dirs = 0
            for chunk in self.chunks():
                entries += len(chunk)
                dirs += sum(n[2] for n in chunk)
            return entries, dirs
        record = _U64.pack(self.number)[:6]
        # The key's record number, 58 bytes, then (not the name ".") a namespace other than DOS.
        entry = re.compile(re.escape(record) + rb".{58}(?!\x01.\.\x00).[^\x02]", re.S)
        folder = re.compile(
            re.escape(record) + rb".{53}[" + _WITH_DIRECTORY_BIT + rb"].{4}(?!\x01.\.\x00).[^\x02]", re.S
        )
        entries = dirs = 0
        nodes = [self._root()]
        size, bitmap, allocation = self.record_size, self.bitmap, self.allocation
        per_read = max(1, _TALLY_READ // size)
        for first in range(0, self.nodes, per_read):
            assert allocation is not None  # nodes == 0 without it
            count = min(per_read, self.nodes - first)
            try:
                block = self.volume.read_runs(allocation.runs, first * size, count * size)
            except Unusable as exc:
                log.warning(
                    "ntfs: folder %d: index records cannot be read (%s), not counted", self.number, exc
                )
                continue
            patched = _fix_all(block, count, size)
            fixed = None if patched is None else bytes(patched)
            for k in range(count):
                n = first + k
                if bitmap[n >> 3] & (1 << (n & 7)):
                    vcn = n * size // self.vcn_unit
                    if fixed is None:
                        node = self._parse_node(bytearray(block[k * size : (k + 1) * size]), vcn)
                    else:
                        node = self._checked_node(fixed, k * size, size, vcn)
                    if node is not None:
                        nodes.append(node)
            for node in nodes:
                if node.leaf:
                    data, start, end = node.data, node.start, node.end
                    entries += len(entry.findall(data, start, end))
                    dirs += len(folder.findall(data, start, end))
                else:
                    for names, _sub in self._segments(node):
                        entries += len(names)
                        dirs += sum(n[2] for n in names)
            nodes = []
        for node in nodes:  # the root alone (no allocation)
            for names, _sub in self._segments(node):
                entries += len(names)
                dirs += sum(n[2] for n in names)
        return entries, dirs


def _fix_all(chunk: bytes, count: int, size: int) -> bytearray | None:
    """``count`` index records of ``size`` bytes with their fixups checked and undone all at once
    (strided slices: a few C-level operations per stride, not per record), or None when they are
    not all alike (an unused or damaged record among them: then each is read on its own)."""
    buf = bytearray(chunk)
    strides = size // _SECTOR
    usa_offset, usa_count = _U16.unpack_from(buf, 4)[0], _U16.unpack_from(buf, 6)[0]
    if usa_count != strides + 1 or usa_offset < 8 or usa_offset + 2 * usa_count > size:
        return None
    for i, want in enumerate(b"INDX"):
        if buf[i::size] != bytes([want]) * count:
            return None
    for i in range(4, 8):  # the same update sequence place in every record
        if buf[i::size] != bytes([buf[i]]) * count:
            return None
    lo, hi = buf[usa_offset::size], buf[usa_offset + 1 :: size]
    for i in range(1, strides + 1):
        at = i * _SECTOR - 2
        if buf[at::size] != lo or buf[at + 1 :: size] != hi:
            return None
        buf[at::size] = buf[usa_offset + 2 * i :: size]
        buf[at + 1 :: size] = buf[usa_offset + 2 * i + 1 :: size]
    return buf


class Node(NamedTuple):
    """One node of an index B+tree: its bytes, where its entries start, whether it is a leaf."""

    data: bytes
    start: int
    leaf: bool
    end: int = -1
    """Where its entries end in ``data`` (-1: at the end of ``data``)."""


_WITH_DIRECTORY_BIT = b"".join(re.escape(bytes([b])) for b in range(256) if b & _DIRECTORY_BYTE)


@dataclass(frozen=True, slots=True)
class Facts:
    """What a listing shows of a folder, from its own MFT record."""

    mtime: int | None
    """Modification time ($STANDARD_INFORMATION), FILETIME."""
    security_id: int | None
    descriptor: bytes | None
    """A security descriptor held in the record itself (NTFS 1.x), else None."""


SECURITY_DESCRIPTOR = 0x50
_SECURE = 9  # the MFT record of $Secure
MAX_SECURITY_IDS = 1_000_000
MAX_DESCRIPTOR = 64 * 1024


def facts(folder: FolderIndex) -> Facts:
    """The folder's time and security (an id in $Secure, or a descriptor of its own) from its record."""
    si = next((a.resident for a in folder.attributes if a.type == STANDARD_INFORMATION), None)
    if si is None or len(si) < 48:
        raise Unusable("no $STANDARD_INFORMATION")
    mtime = _U64.unpack_from(si, 8)[0]
    security_id = _U32.unpack_from(si, 0x34)[0] if len(si) >= 0x48 else None
    sd = next((a for a in folder.attributes if a.type == SECURITY_DESCRIPTOR), None)
    descriptor = None
    if sd is not None:
        if sd.resident is not None:
            descriptor = sd.resident
        elif sd.size <= MAX_DESCRIPTOR:
            descriptor = folder.volume.read_runs(sd.runs, 0, sd.size)
        else:
            raise Unusable("absurd security descriptor")
    return Facts(mtime, security_id, descriptor)


class SecurityDescriptors:
    """Security descriptors by id, from $Secure: its $SII index maps an id to a place in $SDS."""

    def __init__(self, volume: NtfsVolume) -> None:
        self.volume = volume
        index = FolderIndex(volume, _SECURE, "$SII", 0, 0x10)
        sds = next((a for a in index.attributes if a.type == DATA and a.name == "$SDS"), None)
        if sds is None or sds.resident is not None:
            raise Unusable("no $SDS stream")
        self.sds = sds
        self.places: dict[int, tuple[int, int]] = {}
        for data, pos in index.raw_entries():
            data_off, data_len = _U16.unpack_from(data, pos)[0], _U16.unpack_from(data, pos + 2)[0]
            key_len = _U16.unpack_from(data, pos + 10)[0]
            length = _U16.unpack_from(data, pos + 8)[0]
            if key_len < 4 or data_len < 20 or data_off + data_len > length:
                continue
            ident = _U32.unpack_from(data, pos + 16)[0]
            offset, size = (
                _U64.unpack_from(data, pos + data_off + 8)[0],
                _U32.unpack_from(data, pos + data_off + 16)[0],
            )
            self.places[ident] = (offset, size)
            if len(self.places) > MAX_SECURITY_IDS:
                raise Unusable("absurd $SII index")

    def descriptor(self, ident: int) -> bytes | None:
        """The self-relative descriptor of ``ident``, or None when $Secure does not hold it."""
        place = self.places.get(ident)
        if place is None:
            return None
        offset, size = place
        if not 20 < size <= MAX_DESCRIPTOR or offset + size > self.sds.size:
            return None
        data = self.volume.read_runs(self.sds.runs, offset, size)
        if _U32.unpack_from(data, 4)[0] != ident:
            return None
        return data[20:]
