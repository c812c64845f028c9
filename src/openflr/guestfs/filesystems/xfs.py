"""XFS read by our own code: superblock, inodes, data forks (inline, extents, B+tree), folders in
every format (short form, block, leaf, node) and symbolic links, v4 and v5 (CRC) file systems.

Everything on disk is big-endian. Names are kept as the bytes the disk holds and times as the
nanoseconds it stores, past 2038 and 2262 included (``bigtime``). Nothing read is trusted: every
count and offset is checked against the structure that holds it, so a damaged inode or B+tree
raises ``ValueError`` for that item only, and a damaged folder block is logged and skipped.
Checksums are not verified; magic numbers, levels, owners and block addresses are.
"""

from __future__ import annotations

import logging
import stat as st
import struct
import uuid as uuidlib
from collections.abc import Iterator

from openflr.guestfs.blocks import BlockSource
from openflr.guestfs.errors import VolumeError
from openflr.guestfs.filesystems import extents
from openflr.guestfs.filesystems.inodefs import DataMap, Inode, InodeFileSystem, merge_runs

log = logging.getLogger(__name__)

_INODE_MAGIC = 0x494E  # "IN"
_LOCAL, _EXTENTS, _BTREE = 1, 2, 3  # data fork formats
_REALTIME = 0x1  # di_flags: the data lives on the realtime device
_BIGTIME, _NREXT64 = 1 << 3, 1 << 4  # di_flags2
_FTYPE_V4 = 0x200  # sb_features2
_FTYPE_V5 = 0x1  # sb_features_incompat
_LEAF_OFFSET = 32 << 30
"""Folder blocks at this logical byte offset and above are hash indexes, not entries."""
_FREE_OFFSET = 64 << 30
"""Folder blocks from here on index free space; below, from ``_LEAF_OFFSET``, the hash leaves."""
_LEAF_MAGICS = {0xD2F1, 0xD2FF}, {0x3DF1, 0x3DFF}
"""Hash leaf blocks (one leaf, or one of a node folder's), v4 and v5; node blocks are 0xFEBE, 0x3EBE."""
_SYMLINK_MAX = 1024
_SYMLINK_HEADER = 56
_BIGTIME_EPOCH_NS = (1 << 31) * 1_000_000_000
"""A big timestamp counts nanoseconds from 1901-12-13T20:45:52Z, 2**31 seconds before 1970."""

# magic, mode, version, format, onlink, uid, nlink, big nextents, mtime, size, nextents, forkoff, flags
_CORE = struct.Struct(">HHBBHI4xI4xQ8xQ8xq12xI2xBx6xH")
_CORE3 = struct.Struct(_CORE.format + "28xQ24xQ")  # v3 adds di_flags2 at 120, di_ino at 152
_V3_TAIL = struct.Struct(">Q24xQ")
_BAD_BLOCKS_LOGGED = 64
"""Damaged blocks of one folder logged one by one; past that, one line says how many there were."""
_CLUSTER_SHIFT = 14
_CLUSTERS_KEPT = 128
"""Inode clusters (16 KiB each) kept per file system."""
_EXTENT = struct.Struct(">QQ")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")

Extent = tuple[int, int, int, bool]
"""(logical block, file-system block, block count, unwritten)."""


class XfsFileSystem(InodeFileSystem):
    """An XFS volume, read-only."""

    block: int
    inode_size: int
    ag_blocks: int
    ag_count: int

    def __init__(self, source: BlockSource) -> None:
        super().__init__(source, "xfs")
        self._clusters: dict[int, bytes] = {}
        try:
            self._superblock(self.reader.read_at(0, 512))
            self.read_inode(self.root_number)
        except (ValueError, struct.error) as exc:
            raise VolumeError(f"xfs volume cannot be opened: {exc}") from None

    def _superblock(self, sb: bytes) -> None:
        if len(sb) < 264 or sb[:4] != b"XFSB":
            raise ValueError("no XFS superblock")
        self.block = _U32.unpack_from(sb, 4)[0]
        self.uuid = str(uuidlib.UUID(bytes=sb[32:48]))
        self.root_number = _U64.unpack_from(sb, 56)[0]
        self.ag_blocks, self.ag_count = struct.unpack_from(">II", sb, 84)
        version, inode_size = _U16.unpack_from(sb, 100)[0], _U16.unpack_from(sb, 104)[0]
        self.label = sb[108:120].split(b"\0", 1)[0].decode("utf-8", "replace")
        block_log, inode_log, self.inopb_log, self.ag_log = sb[120], sb[122], sb[123], sb[124]
        self.v5 = version & 0xF == 5
        if version & 0xF not in (4, 5):
            raise ValueError(f"XFS version {version & 0xF} is not supported")
        if version & 0xF == 4 and not version & 0x2000:
            raise ValueError("XFS version 1 folders are not supported")
        if not 9 <= block_log <= 16 or self.block != 1 << block_log:
            raise ValueError(f"bad block size {self.block}")
        if not 8 <= inode_log <= 11 or inode_size != 1 << inode_log or inode_log > block_log:
            raise ValueError(f"bad inode size {inode_size}")
        if self.inopb_log != block_log - inode_log or not 0 < self.ag_log <= 31:
            raise ValueError("bad allocation group geometry")
        if not 0 < self.ag_blocks <= 1 << self.ag_log or self.ag_count == 0:
            raise ValueError("bad allocation group geometry")
        self.inode_size = inode_size
        self.block_log = block_log
        dir_log = sb[192]
        if block_log + dir_log > 16:
            raise ValueError("bad folder block size")
        self.dir_log = dir_log
        if self.v5:
            self.ftype = bool(_U32.unpack_from(sb, 216)[0] & _FTYPE_V5)
        else:
            # Some old kernels wrote the second feature word 4 bytes late: the kernel reads both.
            features2 = _U32.unpack_from(sb, 200)[0] | _U32.unpack_from(sb, 204)[0]
            self.ftype = bool(version & 0x8000 and features2 & _FTYPE_V4)
        self.volume_blocks = self.reader.size >> block_log
        self._ag_shift = self.ag_log + self.inopb_log
        self._ag_mask = (1 << self._ag_shift) - 1
        self._inopb_mask = (1 << self.inopb_log) - 1

    # --- inodes -------------------------------------------------------------------------------

    def inode_offset(self, number: int) -> int:
        """The volume byte offset of inode ``number``."""
        agno = number >> self._ag_shift
        agbno = (number & self._ag_mask) >> self.inopb_log
        if agno >= self.ag_count or agbno >= self.ag_blocks or number <= 0:
            raise ValueError(f"inode number {number} is out of range")
        within = number & self._inopb_mask
        return (agno * self.ag_blocks + agbno) * self.block + within * self.inode_size

    def read_inode(self, number: int) -> Inode:
        at = self.inode_offset(number)
        # Inodes are read in aligned clusters: a folder's entries mostly live in a few of them.
        key = at >> _CLUSTER_SHIFT
        cluster = self._clusters.get(key)
        if cluster is None:
            cluster = self.reader.read_at(key << _CLUSTER_SHIFT, 1 << _CLUSTER_SHIFT)
            if len(self._clusters) >= _CLUSTERS_KEPT:
                del self._clusters[next(iter(self._clusters))]
            self._clusters[key] = cluster
        within = at & ((1 << _CLUSTER_SHIFT) - 1)
        raw = cluster[within : within + self.inode_size]
        if len(raw) != self.inode_size:
            raise ValueError(f"inode {number} lies past the end of the volume")
        flags2 = 0
        if self.v5:
            magic, mode, version, _f, onlink, uid, nlink, _b, mtime, size, _n, forkoff, _fl, flags2, ino = (
                _CORE3.unpack_from(raw)
            )
            if ino != number and magic == _INODE_MAGIC and version == 3:
                raise ValueError(f"inode {number} is damaged (it says it is inode {ino})")
        else:
            magic, mode, version, _f, onlink, uid, nlink, _b, mtime, size, _n, forkoff, _fl = (
                _CORE.unpack_from(raw)
            )
        if magic != _INODE_MAGIC:
            raise ValueError(f"inode {number} is damaged (bad magic)")
        if version not in ((3,) if self.v5 else (1, 2)):
            raise ValueError(f"inode {number} is damaged (version {version})")
        core = 176 if version == 3 else 100
        if size < 0 or (forkoff and core + forkoff * 8 >= self.inode_size):
            raise ValueError(f"inode {number} is damaged (size or fork offset)")
        if flags2 & _BIGTIME:
            mtime_ns = mtime - _BIGTIME_EPOCH_NS
        else:
            seconds = mtime >> 32
            mtime_ns = (seconds - (1 << 32) if seconds >= 1 << 31 else seconds) * 1_000_000_000 + (
                mtime & 0xFFFFFFFF
            )
        return Inode(number, mode, size, uid, onlink if version == 1 else nlink, mtime_ns, raw=raw)

    def _fork(self, inode: Inode) -> tuple[int, bytes, int]:
        """(format, bytes, extent count) of the inode's data fork."""
        raw = inode.raw
        _m, _mode, version, fmt, _o, _u, _l, big, _t, _s, nextents, forkoff, flags = _CORE.unpack_from(raw)
        core = 176 if version == 3 else 100
        if version == 3 and _V3_TAIL.unpack_from(raw, 120)[0] & _NREXT64:
            nextents = big
        if flags & _REALTIME and st.S_ISREG(inode.mode):
            raise ValueError("the file's data is on the realtime device, which is not read")
        return fmt, raw[core : core + forkoff * 8 if forkoff else len(raw)], nextents

    # --- data forks ---------------------------------------------------------------------------

    def extent_list(self, inode: Inode) -> list[Extent]:
        """The extents of a data fork in extents or B+tree format, in file order."""
        fmt, fork, count = self._fork(inode)
        if fmt == _EXTENTS:
            if count * 16 > len(fork):
                raise ValueError(f"inode {inode.number} claims {count} extents, more than fit in it")
            return [_extent(a, b) for a, b in _EXTENT.iter_unpack(fork[: count * 16])]
        if fmt == _BTREE:
            return self._btree(inode, fork, count)
        raise ValueError(f"inode {inode.number} has no extent map (format {fmt})")

    def _btree(self, inode: Inode, fork: bytes, count: int) -> list[Extent]:
        if len(fork) < 4:
            raise ValueError("the extent tree root is damaged")
        level, records = struct.unpack_from(">HH", fork)
        room = (len(fork) - 4) // 16
        if not 1 <= level <= 9 or not 1 <= records <= room:
            raise ValueError("the extent tree root is damaged")
        pointers = struct.unpack_from(f">{records}Q", fork, 4 + room * 8)
        found: list[Extent] = []
        seen: set[int] = set()
        limit = min(count, extents.MAX_EXTENTS)
        # Depth first, children in key order: the leaves come in file order.
        stack = [(p, level - 1) for p in reversed(pointers)]
        while stack:
            pointer, want = stack.pop()
            if pointer in seen:
                raise ValueError("the extent tree holds a loop")
            seen.add(pointer)
            if len(seen) > 2 * limit + level:  # every leaf holds a record, every node a child
                raise ValueError("the extent tree holds more blocks than its extents need")
            children, records_at = self._btree_block(inode.number, pointer, want)
            if want == 0:
                found.extend(_extent(a, b) for a, b in _EXTENT.iter_unpack(records_at))
                if len(found) > limit:
                    raise ValueError(f"the extent tree holds more than {limit} extents")
            else:
                stack.extend((p, want - 1) for p in reversed(children))
        return found

    def _btree_block(self, owner: int, pointer: int, level: int) -> tuple[tuple[int, ...], bytes]:
        """(child pointers, leaf records) of one B+tree block at ``level``."""
        at = self.block_offset(pointer, 1)
        data = self.reader.read_at(at, self.block)
        header = 72 if self.v5 else 24
        if len(data) != self.block or data[:4] != (b"BMA3" if self.v5 else b"BMAP"):
            raise ValueError(f"extent tree block {pointer} is damaged (bad magic)")
        got_level, records = struct.unpack_from(">HH", data, 4)
        if got_level != level:
            raise ValueError(f"extent tree block {pointer} is damaged (level {got_level}, not {level})")
        if self.v5 and (_U64.unpack_from(data, 24)[0] != at >> 9 or _U64.unpack_from(data, 56)[0] != owner):
            raise ValueError(f"extent tree block {pointer} is damaged (address or owner)")
        room = (self.block - header) // 16
        if not 1 <= records <= room:
            raise ValueError(f"extent tree block {pointer} is damaged ({records} records)")
        if level == 0:
            return (), data[header : header + records * 16]
        return struct.unpack_from(f">{records}Q", data, header + room * 8), b""

    def block_offset(self, number: int, count: int) -> int:
        """The volume byte offset of file-system block ``number`` (allocation group in its high
        bits), checked for a run of ``count`` blocks."""
        agno, agbno = number >> self.ag_log, number & ((1 << self.ag_log) - 1)
        if agno >= self.ag_count or agbno + count > self.ag_blocks or count <= 0:
            raise ValueError(f"block {number} (+{count}) is out of range")
        at = (agno * self.ag_blocks + agbno) * self.block
        if at + count * self.block > self.reader.size or at == 0:
            raise ValueError(f"block {number} (+{count}) lies outside the volume")
        return at

    def data_map(self, inode: Inode) -> DataMap:
        if st.S_ISLNK(inode.mode):
            return self._symlink(inode)
        fmt, fork, _count = self._fork(inode)
        if fmt == _LOCAL:
            if inode.size > len(fork):
                raise ValueError(f"inode {inode.number} holds fewer bytes than its size")
            return fork[: inode.size]
        if fmt not in (_EXTENTS, _BTREE):
            return b""
        shift = self.block_log
        return merge_runs(
            (
                (
                    logical << shift,
                    extents.HOLE if unwritten else self.block_offset(physical, length),
                    length << shift,
                )
                for logical, physical, length, unwritten in self.extent_list(inode)
            ),
            inode.size,
            self.reader.size,
        )

    def _symlink(self, inode: Inode) -> bytes:
        size = inode.size
        if not 0 < size <= _SYMLINK_MAX:
            raise ValueError(f"symbolic link {inode.number} is damaged (length {size})")
        fmt, fork, _count = self._fork(inode)
        if fmt == _LOCAL:
            if size > len(fork):
                raise ValueError(f"symbolic link {inode.number} is damaged (length {size})")
            return fork[:size]
        # Each extent is one buffer; on v5 it begins with a header (magic, offset, length, ...).
        pieces: list[bytes] = []
        done = 0
        for _logical, physical, length, _unwritten in self.extent_list(inode)[:_SYMLINK_MAX]:
            if done >= size:
                break
            length = min(length, -(-_SYMLINK_MAX // self.block) + 1)
            data = self.reader.read_at(self.block_offset(physical, length), length * self.block)
            if self.v5:
                offset, used = struct.unpack_from(">II", data, 4)
                if data[:4] != b"XSLM" or offset != done:
                    raise ValueError(f"symbolic link {inode.number} is damaged (bad header)")
                data = data[_SYMLINK_HEADER : _SYMLINK_HEADER + used]
            pieces.append(data)
            done += len(data)
        target = b"".join(pieces)[:size]
        if len(target) != size:
            raise ValueError(f"symbolic link {inode.number} is damaged (target too short)")
        return target

    # --- folders ------------------------------------------------------------------------------

    def dirents(self, folder: Inode) -> Iterator[tuple[bytes, int]]:
        if not st.S_ISDIR(folder.mode):
            raise ValueError(f"inode {folder.number} is not a folder")
        fmt, fork, _count = self._fork(folder)
        if fmt == _LOCAL:
            yield from self._short_form(folder, fork)
            return
        dir_block = self.block << self.dir_log
        good = bad = 0
        for logical, where, data in self._folder_blocks(folder):
            try:
                found = self._data_block(folder.number, data, where >> 9)
            except (ValueError, struct.error) as exc:
                bad += 1
                if bad <= _BAD_BLOCKS_LOGGED:
                    log.warning(
                        "xfs: block %d of folder inode %d is damaged, its entries are left out: %s",
                        logical * self.block // dir_block,
                        folder.number,
                        exc,
                    )
                continue
            good += 1
            yield from found
        if bad > _BAD_BLOCKS_LOGGED:
            log.warning("xfs: %d blocks of folder inode %d are damaged in all", bad, folder.number)
        if bad and not good:
            # Blocks are read whole or not at all: once one is read the folder lists, so a check
            # that reads up to its first entry knows whether the whole listing will fail.
            raise ValueError(f"no block of folder inode {folder.number} can be read")

    def dirent_count(self, folder: Inode) -> int | None:
        """From the hash leaves: each live entry has one (``.`` and ``..`` too), and each leaf block
        says how many it holds and how many of those are stale. Leaves are read, not the entries:
        a 100,000-entry folder has a few hundred small headers to read instead of 100,000 names.
        None (read the entries) for folders without leaf blocks or whose leaves do not look right."""
        if not st.S_ISDIR(folder.mode):
            return None
        fmt, _fork, _count = self._fork(folder)
        if fmt == _LOCAL:
            return None
        per = 1 << self.dir_log
        first, end = _LEAF_OFFSET >> self.block_log, _FREE_OFFSET >> self.block_log
        header = 56 if self.v5 else 12
        magics = _LEAF_MAGICS[self.v5]
        live = leaves = 0
        for logical, physical, length, unwritten in self.extent_list(folder):
            if logical + length <= first or logical >= end:
                continue
            if unwritten:
                return None
            for number in range(max(logical, first), min(logical + length, end)):
                if number & (per - 1):
                    continue  # a folder block's header is in its first file-system block
                at = self.block_offset(physical + number - logical, 1)
                head = self.reader.read_at(at, header + 4)
                magic = _U16.unpack_from(head, 8)[0]
                if magic not in magics:
                    if magic in (0xFEBE, 0x3EBE):
                        continue  # an interior node of the hash tree
                    return None
                if self.v5 and (
                    _U64.unpack_from(head, 16)[0] != at >> 9 or _U64.unpack_from(head, 48)[0] != folder.number
                ):
                    return None
                count, stale = struct.unpack_from(">HH", head, header)
                if stale > count or (header + 8 + count * 8) > self.block << self.dir_log:
                    return None
                live += count - stale
                leaves += 1
        return live - 2 if leaves and live >= 2 else None

    def _short_form(self, folder: Inode, fork: bytes) -> Iterator[tuple[bytes, int]]:
        """A folder stored in its inode: a count, the parent, then (name, offset, type, number)."""
        end = min(folder.size, len(fork))
        if end < 6:
            raise ValueError(f"folder inode {folder.number} is damaged (too short)")
        count, wide = fork[0], fork[1]
        width = 8 if wide else 4
        yield b"..", int.from_bytes(fork[2 : 2 + width], "big")
        at = 2 + width
        extra = 3 + (1 if self.ftype else 0) + width
        for _ in range(count):
            if at >= end:
                raise ValueError(f"folder inode {folder.number} is damaged (entries past its end)")
            length = fork[at]
            stop = at + length + extra
            if length == 0 or stop > end:
                raise ValueError(f"folder inode {folder.number} is damaged (entry at {at})")
            name = fork[at + 3 : at + 3 + length]
            if b"/" in name or b"\0" in name:
                raise ValueError(f"folder inode {folder.number} is damaged (name {name!r})")
            yield name, int.from_bytes(fork[stop - width : stop], "big")
            at = stop

    def _folder_blocks(self, folder: Inode) -> Iterator[tuple[int, int, bytes]]:
        """(first logical block, volume offset, bytes) of the folder's data blocks (those that
        hold entries; a folder block may span several file-system blocks). The map is checked
        whole before the first block is read: a damaged map fails the folder at its first entry."""
        for first, offsets in self._folder_map(folder):
            parts = [self.reader.read_at(at, self.block) for at in offsets]
            yield first, offsets[0], parts[0] if len(parts) == 1 else b"".join(parts)

    def _folder_map(self, folder: Inode) -> list[tuple[int, list[int]]]:
        """(first logical block, volume offsets of its file-system blocks) of each folder block
        whose blocks are all written, in logical order."""
        per = 1 << self.dir_log
        # Entries live below the hash index, and a folder's size is where its entry blocks end.
        end = min(_LEAF_OFFSET >> self.block_log, -(-folder.size >> self.block_log))
        budget = self.volume_blocks  # a folder cannot hold more blocks than the volume
        found: list[tuple[int, list[int]]] = []
        offsets: list[int] = []
        first = -1
        after = 0
        for logical, physical, length, unwritten in self.extent_list(folder):
            if logical < after:
                raise ValueError(f"folder inode {folder.number} maps block {logical} twice")
            if logical >= end:
                break
            after = logical + length
            length = min(length, end - logical)
            budget -= length
            if budget < 0:
                raise ValueError(f"folder inode {folder.number} maps more blocks than the volume holds")
            at = -1 if unwritten else self.block_offset(physical, length)
            for i in range(length):
                number = logical + i
                if number & (per - 1) == 0:
                    offsets, first = [], number
                elif number != first + len(offsets):
                    first = -1  # the folder block began in a hole
                if first < 0 or at < 0:
                    first = -1
                    continue
                offsets.append(at + i * self.block)
                if len(offsets) == per:
                    found.append((first, offsets))
                    first = -1
        return found

    def _data_block(self, owner: int, data: bytes, address: int) -> list[tuple[bytes, int]]:
        """The entries of one folder data block (block format or leaf/node data block)."""
        magic = data[:4]
        if self.v5:
            header, single, many = 64, b"XDB3", b"XDD3"
            if _U64.unpack_from(data, 8)[0] != address or _U64.unpack_from(data, 40)[0] != owner:
                raise ValueError("the block's address or owner is wrong")
        else:
            header, single, many = 16, b"XD2B", b"XD2D"
        if magic == single:
            leaves = _U32.unpack_from(data, len(data) - 8)[0]
            end = len(data) - 8 - leaves * 8
            if end < header:
                raise ValueError(f"{leaves} hash entries do not fit in the block")
        elif magic == many:
            end = len(data)
        else:
            raise ValueError(f"bad magic {magic!r}")
        found: list[tuple[bytes, int]] = []
        extra = 12 if self.ftype else 11  # number, name length, (type,) tag; then padding to 8
        unpack_u16, unpack_u64 = _U16.unpack_from, _U64.unpack_from
        at = header
        while at < end:
            if data[at] == 0xFF and data[at + 1] == 0xFF:  # unused space
                length = unpack_u16(data, at + 2)[0]
                if length < 8 or length & 7 or at + length > end:
                    raise ValueError(f"unused space at {at} is damaged")
                at += length
                continue
            length = data[at + 8]
            stop = at + ((length + extra + 7) & ~7)
            if length == 0 or stop > end:
                raise ValueError(f"entry at {at} is damaged")
            name = data[at + 9 : at + 9 + length]
            if b"/" in name or b"\0" in name:
                raise ValueError(f"entry at {at} has an impossible name {name!r}")
            found.append((name, unpack_u64(data, at)[0]))
            at = stop
        return found


def _extent(l0: int, l1: int) -> Extent:
    """An extent record: unwritten flag, 54-bit logical block, 52-bit block, 21-bit count."""
    return ((l0 >> 9) & ((1 << 54) - 1), ((l0 & 0x1FF) << 43) | (l1 >> 21), l1 & 0x1FFFFF, bool(l0 >> 63))
