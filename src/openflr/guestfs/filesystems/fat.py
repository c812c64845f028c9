"""FAT12/16/32 and exFAT read by our own code: boot sector, FAT, folders, long names, file data.

Nothing read is trusted: every count and cluster number is checked against the volume, a cluster
chain that loops, leaves the cluster range, meets a free or bad cluster or is longer or shorter than
its file needs makes that file (or folder) fail with ``VolumeError``, and a damaged directory entry
(set) is logged and skipped while its siblings are still listed. The FAT is read on demand through
the block cache, so opening a volume costs a boot sector and the root folder's first cluster.

Names: VFAT long names and exFAT names are UTF-16 (unpaired surrogates kept, see ``names``); short
8.3 names are in the OEM code page of the writer, read here as code page 437, with the NT lower-case
flags applied. Times: FAT stores the local wall-clock time; it is reported as if it were UTC (the
guest's own clock reading). exFAT times with a valid UTC offset are converted to UTC; without one
they are reported like FAT's. exFAT set checksums, the up-case table and the allocation bitmap are
not read (names are matched case-insensitively with ``str.casefold``).
"""

from __future__ import annotations

import calendar
import logging
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from openflr.errors import OpenflrError
from openflr.guestfs.blocks import BlockSource, CachedReader
from openflr.guestfs.errors import VolumeError
from openflr.guestfs.filesystems import extents
from openflr.guestfs.filesystems.base import (
    ENGINE_FAULTS,
    Entry,
    FileReader,
    FileSystem,
    Node,
    engine_fault,
    match_name,
)
from openflr.guestfs.filesystems.names import name_from_utf16

log = logging.getLogger(__name__)

S = 1_000_000_000
FAT_DIR_MAX = 65536 * 32
"""A FAT folder holds at most 65,536 entries."""
EXFAT_DIR_MAX = 256 * 1024 * 1024
"""An exFAT folder is at most 256 MiB."""
MAX_BAD_ENTRIES = 256
"""Damaged entries a folder listing leaves out before it gives up on the folder."""
_LISTINGS_KEPT = 200_000
"""Folder entries kept across calls (for lookups and ranged reads of big folders)."""
ROOT_IDENT = 0
"""The root folder's ``ident`` (the boot sector's offset: no directory entry is there)."""
_FAT_PAGE = 4096
_PAGES_KEPT = 256

# FAT directory entry attributes
_VOLUME_LABEL, _DIRECTORY, _LONG_NAME = 0x08, 0x10, 0x0F
_LOWER_BASE, _LOWER_EXT = 0x08, 0x10
# exFAT entry types
_EX_END, _EX_FILE, _EX_STREAM, _EX_NAME = 0x00, 0x85, 0xC0, 0xC1
_EX_NO_FAT_CHAIN = 0x02

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


@dataclass(slots=True)
class FatNode:
    """A file or folder: where its data starts and what its entry says."""

    name: str
    is_dir: bool
    size: int
    mtime_ns: int | None
    ident: int
    cluster: int
    contiguous: bool = False
    """exFAT NoFatChain: the data is ``size`` bytes of consecutive clusters."""
    valid: int = -1
    """exFAT valid data length (bytes past it read as zeros); -1: all of ``size``."""
    region: tuple[int, int] | None = None
    """FAT12/16 root folder: (volume offset, length) of its fixed region."""


def dos_time(date: int, time_: int, centis: int = 0) -> int | None:
    """Nanoseconds of a DOS date/time (wall clock taken as UTC); None for a zero or impossible date.
    Leap years are the Gregorian calendar's (2100 is not one)."""
    if date == 0:
        return None
    year, month, day = 1980 + (date >> 9), (date >> 5) & 0xF, date & 0x1F
    hour, minute, second = time_ >> 11, (time_ >> 5) & 0x3F, (time_ & 0x1F) * 2
    # A day past the month's end (Linux tools write 2100-02-29 for 2100-03-01) counts on into the
    # next month; a zero day or month, or a clock past 23:59:58, is no time at all.
    if not (1 <= month <= 12 and day >= 1) or hour > 23 or minute > 59 or second > 59:
        return None
    seconds = calendar.timegm((year, month, day, hour, minute, second))
    return seconds * S + min(centis, 199) * 10_000_000


def short_name(raw: bytes, flags: int) -> str:
    """The 8.3 name of a directory entry (code page 437), NT lower-case flags applied."""
    # A NUL ends a part (as mtools reads it): no shown name holds one.
    base = bytearray(raw[:8].split(b"\0", 1)[0].rstrip(b" "))
    if base[:1] == b"\x05":
        base[0] = 0xE5
    ext = raw[8:11].split(b"\0", 1)[0].rstrip(b" ")
    text = bytes(base).decode("cp437")
    if flags & _LOWER_BASE:
        text = _ascii_lower(text)
    if ext:
        ext_text = ext.decode("cp437")
        text += "." + (_ascii_lower(ext_text) if flags & _LOWER_EXT else ext_text)
    return name_from_utf16(text.encode("utf-16-le", "surrogatepass"))


def _ascii_lower(text: str) -> str:
    """The NT lower-case flags lower A-Z only, as mtools reads and writes them: a writer sets the
    flag when a part's ASCII letters are all lower case, whatever other letters it holds."""
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in text)


def lfn_checksum(raw: bytes) -> int:
    """The checksum of an 11-byte short name that its long-name entries carry."""
    total = 0
    for b in raw[:11]:
        total = (((total & 1) << 7) + (total >> 1) + b) & 0xFF
    return total


class ClusterFileSystem(FileSystem):
    """What FAT and exFAT share: a FAT of cluster links, a cluster heap, folders of 32-byte entries."""

    case_sensitive = False
    cluster_size: int
    heap: int
    """Volume offset of cluster 2."""
    clusters: int
    """Number of clusters in the heap (2 .. clusters + 1 are valid)."""
    fat_at: int
    eoc: int
    """FAT values at or above this end a chain."""
    bad: int
    dir_max: int

    def __init__(self, source: BlockSource, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.label = ""
        self.reader = CachedReader(source)
        self.volume_size = source.size
        self._pages: OrderedDict[int, bytes] = OrderedDict()
        self._listings: OrderedDict[int, list[FatNode]] = OrderedDict()
        self._listings_lock = threading.Lock()

    # --- reading ----------------------------------------------------------------------------------

    def read(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset`` of the volume (``ValueError`` past its end)."""
        data = self.reader.read_at(offset, length)
        if len(data) != length:
            raise ValueError(f"{length} bytes at volume offset {offset} are past the end of the volume")
        return data

    def _fat_bytes(self, offset: int, length: int) -> bytes:
        """Bytes of the FAT at ``offset`` from its start, through a small page cache."""
        page, within = divmod(offset, _FAT_PAGE)
        if within + length <= _FAT_PAGE:
            data = self._pages.get(page)
            if data is None:
                data = self.reader.read_at(self.fat_at + page * _FAT_PAGE, _FAT_PAGE)
                self._pages[page] = data
                if len(self._pages) > _PAGES_KEPT:
                    self._pages.popitem(last=False)
            got = data[within : within + length]
        else:
            got = self.reader.read_at(self.fat_at + offset, length)
        if len(got) != length:
            raise ValueError(f"FAT entry at byte {offset} lies past the end of the volume")
        return got

    def fat_entry(self, cluster: int) -> int:
        """The FAT's value for ``cluster``."""
        return int(_U32.unpack(self._fat_bytes(cluster * 4, 4))[0])

    def cluster_offset(self, cluster: int) -> int:
        if not 2 <= cluster < self.clusters + 2:
            raise ValueError(f"cluster {cluster} is outside the volume's {self.clusters} clusters")
        return self.heap + (cluster - 2) * self.cluster_size

    def chain(self, first: int, count: int | None) -> Iterator[int]:
        """The clusters of the chain from ``first``: exactly ``count`` of them, ending the chain
        (``ValueError`` when it is longer, shorter, loops, or meets a free or bad cluster); with
        ``count`` None, up to the chain's end, at most ``dir_max`` bytes' worth (loops checked)."""
        if count is not None and count > self.clusters:
            raise ValueError(f"{count} clusters wanted of a volume of {self.clusters}")
        limit = count if count is not None else -(-self.dir_max // self.cluster_size)
        seen: set[int] | None = set() if count is None else None
        cluster = first
        for n in range(limit):
            self.cluster_offset(cluster)
            if seen is not None:
                if cluster in seen:
                    raise ValueError(f"the cluster chain from {first} loops at cluster {cluster}")
                seen.add(cluster)
            yield cluster
            value = self.fat_entry(cluster)
            if value >= self.eoc:
                if count is not None and n + 1 < count:
                    raise ValueError(f"the cluster chain from {first} ends after {n + 1} of {count} clusters")
                return
            if value == self.bad or value == 0 or value == 1:
                what = "a bad" if value == self.bad else "a free"
                raise ValueError(f"the cluster chain from {first} runs into {what} cluster after {cluster}")
            cluster = value
        if count is not None and count > 0:
            raise ValueError(f"the cluster chain from {first} is longer than its {count} clusters")
        if count is None:
            log.warning("%s: a folder's chain from cluster %d goes past the largest folder", self.kind, first)

    def runs(self, node: FatNode, length: int) -> list[extents.Run]:
        """Volume runs of the first ``length`` bytes of the node's data (contiguous clusters merged)."""
        size = node.size
        needed = -(-size // self.cluster_size)
        if needed == 0 or length == 0:
            return []
        if node.cluster == 0:
            raise ValueError(f"a non-empty item of {size} bytes has no first cluster")
        out: list[extents.Run] = []
        if node.contiguous:
            start = self.cluster_offset(node.cluster)
            self.cluster_offset(node.cluster + needed - 1)
            return [(start, length)]
        take = -(-length // self.cluster_size)
        for n, cluster in enumerate(self.chain(node.cluster, needed)):
            if n >= take:
                continue  # the whole chain is still checked (a loop or a bad cluster fails the file)
            at = self.cluster_offset(cluster)
            if out and out[-1][0] + out[-1][1] == at:
                out[-1] = (out[-1][0], out[-1][1] + self.cluster_size)
            else:
                out.append((at, self.cluster_size))
        excess = sum(n for _, n in out) - length
        if excess > 0:
            out[-1] = (out[-1][0], out[-1][1] - excess)
        return out

    def dir_data(self, node: FatNode) -> tuple[bytes, list[extents.Run]]:
        """(the folder's bytes up to its end marker, their volume runs)."""
        if node.region is not None:
            at, length = node.region
            return self.read(at, length), [node.region]
        if node.size > 0 or node.contiguous:
            runs = self.runs(node, min(node.size, self.dir_max))
        else:
            if node.cluster == 0:
                raise ValueError("a folder has no first cluster")
            runs = [(self.cluster_offset(c), self.cluster_size) for c in self.chain(node.cluster, None)]
        pieces = []
        for at, length in runs:
            piece = self.read(at, length)
            pieces.append(piece)
            if b"\0" in piece[::32]:  # the end marker: nothing after it is read
                break
        return b"".join(pieces), runs

    # --- listing ----------------------------------------------------------------------------------

    def parse(self, data: bytes, runs: list[extents.Run]) -> Iterator[FatNode]:
        """The live entries of a folder's bytes, in on-disk order."""
        raise NotImplementedError

    def listing(self, node: FatNode) -> list[FatNode]:
        """The folder's entries, read once and kept while there is room (most recently used)."""
        with self._listings_lock:
            kept = self._listings.get(node.ident)
            if kept is not None:
                self._listings.move_to_end(node.ident)
                return kept
        if not node.is_dir:
            raise VolumeError(f"{node.name} is not a folder")
        try:
            data, runs = self.dir_data(node)
            found = list(self.parse(data, runs))
        except OpenflrError:
            raise
        except ENGINE_FAULTS as exc:
            raise engine_fault(exc, self.kind) from None
        with self._listings_lock:
            self._listings[node.ident] = found
            total = sum(len(v) for v in self._listings.values())
            while total > _LISTINGS_KEPT and len(self._listings) > 1:
                total -= len(self._listings.popitem(last=False)[1])
        return found

    def bad_entry(self, bad: int, what: str) -> int:
        """Count one damaged entry (logged); past ``MAX_BAD_ENTRIES`` the folder fails."""
        bad += 1
        if bad > MAX_BAD_ENTRIES:
            raise ValueError(f"more than {MAX_BAD_ENTRIES} damaged entries in one folder")
        log.warning("%s: %s, left out", self.kind, what)
        return bad

    # --- FileSystem -------------------------------------------------------------------------------

    root_node: FatNode

    def root(self) -> Node:
        return self.root_node

    def lookup(self, parts: list[str]) -> Node | None:
        with self.lock:
            node = self.root_node
            for part in parts:
                if not node.is_dir:
                    return None
                found = match_name(((n.name, n) for n in self.listing(node)), part, False)
                if found is None:
                    return None
                node = found
            return node

    def stat(self, node: Node) -> Entry:
        return _entry(node)

    def check_dir(self, node: Node) -> None:
        with self.lock:
            self.listing(node)

    def scandir(self, node: Node, start: int = 0, stop: int | None = None) -> Iterator[Entry]:
        """Entries in on-disk order; positions count the entries listed."""
        with self.lock:
            found = self.listing(node)
        for child in found[start:stop]:
            yield _entry(child)

    def open(self, node: Node) -> FileReader:
        if node.is_dir:
            raise VolumeError(f"{node.name} is a folder")
        with self.lock:
            valid = node.size if node.valid < 0 else min(node.valid, node.size)
            try:
                found = self.runs(node, valid)
            except OpenflrError:
                raise
            except ENGINE_FAULTS as exc:
                raise engine_fault(exc, self.kind, "file") from None
        if valid < node.size:
            found = [*found, (extents.HOLE, node.size - valid)]
        return extents.ExtentReader(self.reader.source, found, node.size)

    def close(self) -> None:
        with self.lock:
            self.reader.close()
            self._pages.clear()
            self._listings.clear()

    def find_label(self) -> str:
        """The volume label entry of the root folder (empty when there is none or it is damaged)."""
        return ""


def _entry(node: FatNode) -> Entry:
    return Entry(node.name, node.is_dir, 0 if node.is_dir else node.size, node.mtime_ns, None, node,
                 ident=node.ident)  # fmt: skip


def volume_offset(runs: list[extents.Run], offset: int) -> int:
    """The volume offset of byte ``offset`` of data laid out in ``runs``."""
    for at, length in runs:
        if offset < length:
            return at + offset
        offset -= length
    raise ValueError(f"offset {offset} is past the folder's data")


# --- FAT12/16/32 ----------------------------------------------------------------------------------


class FatFileSystem(ClusterFileSystem):
    """A FAT12, FAT16 or FAT32 volume, read-only."""

    def __init__(self, source: BlockSource) -> None:
        super().__init__(source, "fat")
        try:
            self._read_boot(self.read(0, 512))
        except OpenflrError:
            raise
        except ENGINE_FAULTS as exc:
            raise VolumeError(f"The fat file system is damaged or cannot be read: {exc}") from None
        self.dir_max = FAT_DIR_MAX
        try:
            self.label = self.find_label()
        except (VolumeError, *ENGINE_FAULTS):
            self.label = ""

    def _read_boot(self, boot: bytes) -> None:
        sector, per_cluster, reserved, fats, root_entries, total16 = struct.unpack_from("<HBHBHH", boot, 11)
        fat16_size, total32, fat32_size, root_cluster = (
            _U16.unpack_from(boot, 22)[0],
            _U32.unpack_from(boot, 32)[0],
            _U32.unpack_from(boot, 36)[0],
            _U32.unpack_from(boot, 44)[0],
        )
        if sector not in (512, 1024, 2048, 4096):
            raise ValueError(f"{sector} bytes per sector")
        if per_cluster == 0 or per_cluster & (per_cluster - 1):
            raise ValueError(f"{per_cluster} sectors per cluster")
        if reserved == 0 or fats == 0:
            raise ValueError(f"{reserved} reserved sectors, {fats} FATs")
        fat_size = fat16_size or fat32_size
        total = total16 or total32
        fat32 = fat16_size == 0
        root_bytes = 0 if fat32 else root_entries * 32
        root_sectors = -(-root_bytes // sector)
        data_start = reserved + fats * fat_size + root_sectors
        if fat_size == 0 or data_start >= total:
            raise ValueError(f"the FATs and root folder ({data_start} sectors) do not fit in {total} sectors")
        self.cluster_size = sector * per_cluster
        self.fat_at = reserved * sector
        self.heap = data_start * sector
        clusters = (total - data_start) // per_cluster
        bits = 32 if fat32 else 12 if clusters < 4085 else 16
        fat_capacity = fat_size * sector * 8 // bits - 2
        self.clusters = min(clusters, fat_capacity, 0x0FFFFFF5)
        if self.clusters < 1:
            raise ValueError("no clusters")
        if self.fat_at + fat_size * sector > self.volume_size:
            raise ValueError("the FAT lies past the end of the volume")
        self.bits = bits
        self.eoc, self.bad = {12: (0xFF8, 0xFF7), 16: (0xFFF8, 0xFFF7), 32: (0x0FFFFFF8, 0x0FFFFFF7)}[bits]
        if fat32:
            self.cluster_offset(root_cluster)
            self.root_node = FatNode("", True, 0, None, ROOT_IDENT, root_cluster)
        else:
            at = (reserved + fats * fat_size) * sector
            if at + root_bytes > self.volume_size:
                raise ValueError("the root folder lies past the end of the volume")
            self.root_node = FatNode("", True, 0, None, ROOT_IDENT, 0, region=(at, root_bytes))

    def fat_entry(self, cluster: int) -> int:
        if self.bits == 32:
            return int(_U32.unpack(self._fat_bytes(cluster * 4, 4))[0]) & 0x0FFFFFFF
        if self.bits == 16:
            return int(_U16.unpack(self._fat_bytes(cluster * 2, 2))[0])
        pair = int(_U16.unpack(self._fat_bytes(cluster * 3 // 2, 2))[0])
        return pair >> 4 if cluster & 1 else pair & 0xFFF

    def find_label(self) -> str:
        data, _ = self.dir_data(self.root_node)
        for at in range(0, len(data) - 31, 32):
            first, attr = data[at], data[at + 11]
            if first == 0:
                break
            if first != 0xE5 and attr != _LONG_NAME and attr & _VOLUME_LABEL and not attr & _DIRECTORY:
                return data[at : at + 11].decode("cp437").rstrip(" ")
        return ""

    def parse(self, data: bytes, runs: list[extents.Run]) -> Iterator[FatNode]:
        units: list[bytes] = []
        expect, checksum = 0, -1
        bad = 0
        for at in range(0, len(data) - 31, 32):
            raw = data[at : at + 32]
            first, attr = raw[0], raw[11]
            if first == 0:
                return
            if first == 0xE5:
                expect = 0
                continue
            if attr == _LONG_NAME:
                expect, checksum = _long_part(raw, units, expect, checksum)
                continue
            long_units = b"".join(reversed(units)) if expect == 1 and checksum == lfn_checksum(raw) else None
            expect, units = 0, []
            if attr & _VOLUME_LABEL or raw[:2] == b". " or raw[:3] == b".. ":
                continue
            try:
                yield self._node(raw, long_units, volume_offset(runs, at))
            except ENGINE_FAULTS as exc:
                bad = self.bad_entry(bad, f"entry at byte {at} of a folder is damaged ({exc})")

    def _node(self, raw: bytes, long_units: bytes | None, ident: int) -> FatNode:
        if long_units is not None:
            end = next((i for i in range(0, len(long_units), 2) if long_units[i : i + 2] == b"\0\0"), None)
            name = name_from_utf16(long_units[:end] if end is not None else long_units)
        else:
            name = short_name(raw[:11], raw[12])
        if not name:
            raise ValueError("an empty name")
        time_, date = struct.unpack_from("<HH", raw, 22)
        high = _U16.unpack_from(raw, 20)[0] if self.bits == 32 else 0
        cluster = high << 16 | _U16.unpack_from(raw, 26)[0]
        is_dir = bool(raw[11] & _DIRECTORY)
        size = 0 if is_dir else _U32.unpack_from(raw, 28)[0]
        return FatNode(name, is_dir, size, dos_time(date, time_), ident, cluster)


def _long_part(raw: bytes, units: list[bytes], expect: int, checksum: int) -> tuple[int, int]:
    """Take one long-name entry into ``units`` (kept last part first); returns (the order number
    expected next, the sequence's checksum); 0 when the sequence is broken."""
    order = raw[0] & 0x1F
    if raw[0] & 0x40:
        if not 1 <= order <= 20:
            units.clear()
            return 0, -1
        units.clear()
        checksum = raw[13]
    elif expect < 2 or order != expect - 1 or raw[13] != checksum:
        units.clear()
        return 0, -1
    units.append(raw[1:11] + raw[14:26] + raw[28:32])
    return order, checksum


# --- exFAT ----------------------------------------------------------------------------------------


class ExfatFileSystem(ClusterFileSystem):
    """An exFAT volume, read-only."""

    eoc, bad = 0xFFFFFFF8, 0xFFFFFFF7

    def __init__(self, source: BlockSource) -> None:
        super().__init__(source, "exfat")
        try:
            self._read_boot(self.read(0, 512))
        except OpenflrError:
            raise
        except ENGINE_FAULTS as exc:
            raise VolumeError(f"The exfat file system is damaged or cannot be read: {exc}") from None
        self.dir_max = EXFAT_DIR_MAX
        try:
            self.label = self.find_label()
        except (VolumeError, *ENGINE_FAULTS):
            self.label = ""

    def _read_boot(self, boot: bytes) -> None:
        if boot[3:11] != b"EXFAT   " or boot[11:64].strip(b"\0"):
            raise ValueError("not an exFAT boot sector")
        fat_offset, fat_length, heap, clusters, root = struct.unpack_from("<IIIII", boot, 80)
        sector_shift, cluster_shift, fats = boot[108], boot[109], boot[110]
        if not 9 <= sector_shift <= 12 or sector_shift + cluster_shift > 25 or fats not in (1, 2):
            raise ValueError(f"sector shift {sector_shift}, cluster shift {cluster_shift}, {fats} FATs")
        sector = 1 << sector_shift
        if fat_offset < 24 or heap < fat_offset + fat_length * fats:
            raise ValueError("the FAT and the cluster heap overlap")
        if clusters < 1 or clusters > fat_length * sector // 4 - 2:
            raise ValueError(f"{clusters} clusters do not fit in a FAT of {fat_length} sectors")
        self.cluster_size = 1 << (sector_shift + cluster_shift)
        self.fat_at = fat_offset * sector
        self.heap = heap * sector
        self.clusters = clusters
        if self.fat_at + fat_length * sector > self.volume_size:
            raise ValueError("the FAT lies past the end of the volume")
        self.cluster_offset(root)
        self.root_node = FatNode("", True, 0, None, ROOT_IDENT, root)

    def find_label(self) -> str:
        data, _ = self.dir_data(self.root_node)
        for at in range(0, len(data) - 31, 32):
            if data[at] == _EX_END:
                break
            if data[at] == 0x83:
                length = min(data[at + 1], 11)
                return name_from_utf16(data[at + 2 : at + 2 + 2 * length])
        return ""

    def parse(self, data: bytes, runs: list[extents.Run]) -> Iterator[FatNode]:
        at, end = 0, len(data) - 31
        bad = 0
        while at < end:
            kind = data[at]
            if kind == _EX_END:
                return
            if kind != _EX_FILE:
                at += 32  # in-use bit clear, label, bitmap, up-case, GUID, padding, orphans
                continue
            count = data[at + 1]
            try:
                node = self._entry_set(data, at, count, volume_offset(runs, at))
            except ENGINE_FAULTS as exc:
                bad = self.bad_entry(bad, f"entry set at byte {at} of a folder is damaged ({exc})")
                at += 32
                continue
            yield node
            at += 32 * (count + 1)

    def _entry_set(self, data: bytes, at: int, count: int, ident: int) -> FatNode:
        if not 2 <= count <= 18 or at + 32 * (count + 1) > len(data):
            raise ValueError(f"secondary count {count}")
        stream = data[at + 32 : at + 64]
        if stream[0] != _EX_STREAM:
            raise ValueError(f"entry type {stream[0]:#x} where the stream extension belongs")
        flags, name_length = stream[1], stream[3]
        valid, cluster, length = struct.unpack_from("<Q4xIQ", stream, 8)
        parts = -(-name_length // 15)
        if name_length == 0 or parts > count - 1:
            raise ValueError(f"a name of {name_length} units in {count - 1} secondary entries")
        units = b""
        for n in range(parts):
            piece = data[at + 64 + 32 * n : at + 96 + 32 * n]
            if piece[0] != _EX_NAME:
                raise ValueError(f"entry type {piece[0]:#x} where a file name part belongs")
            units += piece[2:32]
        attributes = _U16.unpack_from(data, at + 4)[0]
        is_dir = bool(attributes & _DIRECTORY)
        if valid > length:
            raise ValueError(f"valid data length {valid} beyond the data length {length}")
        return FatNode(
            name_from_utf16(units[: 2 * name_length]),
            is_dir,
            length,
            exfat_time(data, at),
            ident,
            cluster,
            contiguous=bool(flags & _EX_NO_FAT_CHAIN),
            valid=valid,
        )


def exfat_time(data: bytes, at: int) -> int | None:
    """The modification time of the file entry at ``at``: UTC when its offset byte is valid,
    else the wall-clock time taken as UTC."""
    time_, date = struct.unpack_from("<HH", data, at + 12)
    ns = dos_time(date, time_, data[at + 21])
    offset = data[at + 23]
    if ns is None or not offset & 0x80:
        return ns
    quarters = offset & 0x7F
    if quarters >= 0x40:
        quarters -= 0x80
    return ns - quarters * 15 * 60 * S
