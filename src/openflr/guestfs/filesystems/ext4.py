"""ext2, ext3 and ext4, read by our own code: superblock, group descriptors, inodes, folders and
data maps (extent trees, block maps, inline data).

Names are kept as the bytes on disk and times with their extra epoch bits (to the year 2446), which
the libraries we used before could not do. Journal replay is not done: an image whose journal still
holds changes (the guest was not shut down cleanly) shows the file system as its last checkpoint
left it, which is what any reader that does not write to the image sees.
"""

from __future__ import annotations

import logging
import stat as st
import struct
from collections.abc import Iterator

from openflr.guestfs.blocks import BlockSource
from openflr.guestfs.errors import VolumeError
from openflr.guestfs.filesystems import extents
from openflr.guestfs.filesystems.inodefs import DataMap, Inode, InodeFileSystem, merge_runs, read_mapped

log = logging.getLogger(__name__)

_MAGIC = 0xEF53
_INCOMPAT_FILETYPE = 0x2
_INCOMPAT_META_BG = 0x10
_INCOMPAT_64BIT = 0x80
_INCOMPAT_INLINE_DATA = 0x8000
_RO_COMPAT_SPARSE_SUPER = 0x1
_FLAG_EXTENTS = 0x80000
_FLAG_INLINE_DATA = 0x10000000
_EXTENT_MAGIC = 0xF30A
_MAX_DEPTH = 5
"""An extent tree is at most 5 levels deep (the kernel's own limit)."""
_INLINE_SIZE = 60
"""Bytes of ``i_block``: a fast symbolic link's target, or the first inline data."""
_XATTR_MAGIC = 0xEA020000
_ROOT = 2
_MAX_FOLDER_BYTES = 1 << 31
"""A folder larger than this is taken as damage."""
_DIRENT = struct.Struct("<IHH")
"""A folder entry's inode number, record length and name length (its low byte with file types)."""


class Ext4FileSystem(InodeFileSystem):
    """One ext2/3/4 volume."""

    root_number = _ROOT

    def __init__(self, source: BlockSource, kind: str = "ext") -> None:
        super().__init__(source, kind)
        sb = self.reader.read_at(1024, 1024)
        if len(sb) < 1024 or struct.unpack_from("<H", sb, 0x38)[0] != _MAGIC:
            raise VolumeError("ext volume cannot be opened: no ext superblock")
        log_block = struct.unpack_from("<I", sb, 0x18)[0]
        if log_block > 6:
            raise VolumeError(f"ext volume cannot be opened: block size 1 KiB << {log_block}")
        self.block = 1024 << log_block
        self.inodes_count: int = struct.unpack_from("<I", sb, 0x0)[0]
        self.first_data_block: int = struct.unpack_from("<I", sb, 0x14)[0]
        self.blocks_per_group: int = struct.unpack_from("<I", sb, 0x20)[0]
        self.inodes_per_group: int = struct.unpack_from("<I", sb, 0x28)[0]
        rev = struct.unpack_from("<I", sb, 0x4C)[0]
        self.inode_size: int = struct.unpack_from("<H", sb, 0x58)[0] if rev >= 1 else 128
        self.incompat: int = struct.unpack_from("<I", sb, 0x60)[0]
        self.ro_compat: int = struct.unpack_from("<I", sb, 0x64)[0]
        wide = bool(self.incompat & _INCOMPAT_64BIT)
        self.desc_size = max(32, struct.unpack_from("<H", sb, 0xFE)[0]) if wide else 32
        self.first_meta_bg: int = struct.unpack_from("<I", sb, 0x104)[0]
        if (
            not 128 <= self.inode_size <= self.block
            or self.inode_size & (self.inode_size - 1)
            or not 0 < self.inodes_per_group <= 8 * self.block
            or not 0 < self.blocks_per_group <= 8 * self.block
            or self.desc_size > self.block
            or self.desc_size & (self.desc_size - 1)
        ):
            raise VolumeError("ext volume cannot be opened: the superblock is damaged")
        self.groups = -(-self.inodes_count // self.inodes_per_group)
        self.label = sb[0x78:0x88].split(b"\0", 1)[0].decode("utf-8", "replace")
        self._tables: dict[int, int] = {}

    # --- inodes -------------------------------------------------------------------------------

    def _inode_table(self, group: int) -> int:
        """The block where the inode table of ``group`` begins (from its group descriptor)."""
        found = self._tables.get(group)
        if found is not None:
            return found
        per_block = self.block // self.desc_size
        if self.incompat & _INCOMPAT_META_BG and group // per_block >= self.first_meta_bg:
            meta_group = group // per_block
            first = meta_group * per_block
            block = self._group_start(first) + (1 if self._has_super(first) else 0)
        else:
            block = self.first_data_block + 1 + group // per_block
        at = block * self.block + (group % per_block) * self.desc_size
        desc = self.reader.read_at(at, self.desc_size)
        if len(desc) < 32:
            raise ValueError(f"group descriptor {group} lies past the end of the volume")
        table: int = struct.unpack_from("<I", desc, 0x8)[0]
        if self.desc_size >= 64:
            table |= struct.unpack_from("<I", desc, 0x28)[0] << 32
        if table == 0 or table * self.block >= self.reader.size:
            raise ValueError(f"group descriptor {group} is damaged (inode table at block {table})")
        self._tables[group] = table
        return table

    def _group_start(self, group: int) -> int:
        return self.first_data_block + group * self.blocks_per_group

    def _has_super(self, group: int) -> bool:
        if group <= 1 or not self.ro_compat & _RO_COMPAT_SPARSE_SUPER:
            return True
        for base in (3, 5, 7):
            n = base
            while n < group:
                n *= base
            if n == group:
                return True
        return False

    def read_inode(self, number: int) -> Inode:
        if not 0 < number <= self.inodes_count:
            raise VolumeError(f"The ext file system is damaged: inode number {number} is out of range")
        group, index = divmod(number - 1, self.inodes_per_group)
        at = self._inode_table(group) * self.block + index * self.inode_size
        raw = self.reader.read_at(at, self.inode_size)
        if len(raw) < 128:
            raise VolumeError(f"The ext file system is damaged: inode {number} lies past the volume's end")
        mode, uid_lo, size_lo, _atime, _ctime, mtime, _dtime, _gid, links = struct.unpack_from(
            "<HHIIIiIHH", raw, 0
        )
        size_hi, uid_hi = struct.unpack_from("<I", raw, 0x6C)[0], struct.unpack_from("<H", raw, 0x78)[0]
        seconds, nanos = mtime, 0
        if len(raw) >= 0x8C and 0x80 + struct.unpack_from("<H", raw, 0x80)[0] >= 0x8C:
            extra = struct.unpack_from("<I", raw, 0x88)[0]
            seconds += (extra & 3) << 32
            nanos = extra >> 2
            if nanos > 999_999_999:
                nanos = 0  # damaged: the kernel reads it as is, but it is not a time; keep the seconds
        return Inode(
            number,
            mode,
            size_lo | size_hi << 32,
            uid_lo | uid_hi << 16,
            links,
            seconds * 1_000_000_000 + nanos,
            raw=raw,
        )

    # --- data maps ----------------------------------------------------------------------------

    def data_map(self, inode: Inode) -> DataMap:
        raw = inode.raw
        flags = struct.unpack_from("<I", raw, 0x20)[0]
        if flags & _FLAG_INLINE_DATA:
            return self._inline_data(inode)
        if st.S_ISLNK(inode.mode) and inode.size < _INLINE_SIZE and self._fast_symlink(raw):
            return raw[0x28 : 0x28 + inode.size]
        if flags & _FLAG_EXTENTS:
            return merge_runs(self._extents(raw[0x28 : 0x28 + _INLINE_SIZE], 0), inode.size, self.reader.size)
        return merge_runs(self._block_map(raw, inode.size), inode.size, self.reader.size)

    def _fast_symlink(self, raw: bytes) -> bool:
        blocks = struct.unpack_from("<I", raw, 0x1C)[0]
        if struct.unpack_from("<I", raw, 0x68)[0]:  # an extended-attribute block counts in i_blocks
            blocks -= self.block // 512
        return blocks <= 0 and not struct.unpack_from("<I", raw, 0x20)[0] & _FLAG_EXTENTS

    def _inline_data(self, inode: Inode) -> bytes:
        """``i_block`` then the value of the ``system.data`` attribute in the inode's extra space."""
        data = inode.raw[0x28 : 0x28 + _INLINE_SIZE]
        if inode.size <= _INLINE_SIZE:
            return data
        return data + self._inode_xattr(inode.raw, b"data", 7)

    def _inode_xattr(self, raw: bytes, name: bytes, index: int) -> bytes:
        """The value of the in-inode extended attribute ``index``/``name`` (7 = ``system.``), or b""."""
        if len(raw) <= 0x84:
            return b""
        start = 0x80 + struct.unpack_from("<H", raw, 0x80)[0]
        if start + 4 > len(raw) or struct.unpack_from("<I", raw, start)[0] != _XATTR_MAGIC:
            return b""
        first = start + 4
        at = first
        while at + 16 <= len(raw):
            name_len, name_index, value_offs, value_inum, value_size = struct.unpack_from("<BBHIi", raw, at)
            if name_len == 0 and name_index == 0 and value_offs == 0 and value_inum == 0:
                break
            if raw[at + 16 : at + 16 + name_len] == name and name_index == index and not value_inum:
                value_at = first + value_offs
                if value_size < 0 or value_at + value_size > len(raw):
                    raise ValueError("an inline data attribute lies past its inode")
                return raw[value_at : value_at + value_size]
            at += (16 + name_len + 3) & ~3
        return b""

    def _extents(self, node: bytes, depth_seen: int) -> Iterator[tuple[int, int, int]]:
        """(file offset, volume offset or HOLE, length) of an extent tree node, in file order."""
        magic, count, limit, depth = struct.unpack_from("<HHHH", node, 0)
        if magic != _EXTENT_MAGIC or count > limit or 12 + 12 * count > len(node) or depth > _MAX_DEPTH:
            raise ValueError("an extent tree node is damaged")
        if depth_seen > _MAX_DEPTH:
            raise ValueError("an extent tree is deeper than ext4 allows")
        block = self.block
        for i in range(count):
            at = 12 + 12 * i
            if depth == 0:
                first, length, start_hi, start_lo = struct.unpack_from("<IHHI", node, at)
                unwritten = length > 32768
                if unwritten:
                    length -= 32768
                where = extents.HOLE if unwritten else (start_hi << 32 | start_lo) * block
                yield first * block, where, length * block
            else:
                _first, leaf_lo, leaf_hi = struct.unpack_from("<IIH", node, at)
                child = self.reader.read_at((leaf_hi << 32 | leaf_lo) * block, block)
                if len(child) < block:
                    raise ValueError("an extent tree block lies past the end of the volume")
                yield from self._extents(child, depth_seen + 1)

    def _block_map(self, raw: bytes, size: int) -> Iterator[tuple[int, int, int]]:
        """(file offset, volume offset, length) of a file mapped by direct and indirect blocks."""
        block = self.block
        per = block // 4
        total = -(-size // block)
        pointers = struct.unpack_from("<15I", raw, 0x28)
        logical = 0
        for pointer in pointers[:12]:
            if logical >= total:
                return
            if pointer:
                yield logical * block, pointer * block, block
            logical += 1
        for level, pointer in enumerate(pointers[12:], start=1):
            span = per**level
            if logical >= total:
                return
            if pointer:
                yield from self._indirect(pointer, level, logical, total)
            logical += span

    def _indirect(self, pointer: int, level: int, logical: int, total: int) -> Iterator[tuple[int, int, int]]:
        block = self.block
        data = self.reader.read_at(pointer * block, block)
        if len(data) < block:
            raise ValueError("an indirect block lies past the end of the volume")
        per = block // 4
        span = per ** (level - 1)
        for i, child in enumerate(struct.unpack_from(f"<{per}I", data)):
            at = logical + i * span
            if at >= total:
                return
            if not child:
                continue
            if level == 1:
                yield at * block, child * block, block
            else:
                yield from self._indirect(child, level - 1, at, total)

    # --- folders ------------------------------------------------------------------------------

    def dirents(self, folder: Inode) -> Iterator[tuple[bytes, int]]:
        data, blocks, parent = self._folder_data(folder)
        if parent is not None:
            yield b"..", parent
        good = bad = 0
        for start, end in blocks:
            found: list[tuple[bytes, int]] = []
            if self._walk(data, start, end, folder.number, found)[1]:
                good += 1
            else:
                bad += 1
            yield from found
        if bad and not good:
            self._unreadable(folder)

    def check_folder(self, folder: Inode) -> None:
        # A damaged block still gives the entries before the damage, so the first entry proves
        # nothing: the listing fails when no block is whole, and one whole block is enough.
        data, blocks, _parent = self._folder_data(folder)
        if blocks and not any(self._walk(data, start, end, folder.number, [])[1] for start, end in blocks):
            self._unreadable(folder)

    def dirent_count(self, folder: Inode) -> int | None:
        data, blocks, _parent = self._folder_data(folder)
        count = good = 0
        for start, end in blocks:
            live, whole = self._walk(data, start, end, folder.number, None)
            count += live
            good += whole
        if blocks and not good:
            self._unreadable(folder)
        return count

    def _folder_data(self, folder: Inode) -> tuple[bytes, list[tuple[int, int]], int | None]:
        """The folder's bytes, the (start, end) of each of its entry blocks in them, and the parent's
        inode number where it is stored apart from the entries (inline folders)."""
        if not st.S_ISDIR(folder.mode):
            raise VolumeError(f"The ext file system is damaged: inode {folder.number} is not a folder")
        if folder.size > _MAX_FOLDER_BYTES:
            raise VolumeError(f"The ext file system is damaged: folder inode {folder.number} is too large")
        flags = struct.unpack_from("<I", folder.raw, 0x20)[0]
        if flags & _FLAG_INLINE_DATA:
            # Inline folders store ".." as a bare inode number, then entries packed to the end of
            # i_block, then more in the attribute's value; there is no ".".
            data = self._inline_data(folder)
            spans = [(4, _INLINE_SIZE), (_INLINE_SIZE, len(data))]
            parent: int | None = struct.unpack_from("<I", data, 0)[0]
        else:
            data = read_mapped(self.reader.source, self.data_map(folder), folder.size)
            spans = [(at, min(at + self.block, len(data))) for at in range(0, len(data), self.block)]
            parent = None
        blocks = [(start, min(end, len(data))) for start, end in spans]
        return data, [(start, end) for start, end in blocks if end > start], parent

    def _unreadable(self, folder: Inode) -> None:
        raise VolumeError(
            f"The ext file system is damaged or cannot be read: no block of folder inode "
            f"{folder.number} can be read"
        )

    def _walk(
        self, data: bytes, at: int, end: int, folder: int, found: list[tuple[bytes, int]] | None
    ) -> tuple[int, bool]:
        """Walk the entries of one folder block (``data[at:end]``): add the live ones to ``found``,
        or only count them when it is None. Damage ends the block, not the folder (logged).
        Returns (the live entries other than ``.`` and ``..`` counted, whether the block was whole)."""
        name_mask = 0xFF if self.incompat & _INCOMPAT_FILETYPE else 0xFFFF
        whole_block = end - at
        inodes, unpack = self.inodes_count, _DIRENT.unpack_from
        live = 0
        while at + 8 <= end:
            number, length, name_len = unpack(data, at)
            name_len &= name_mask
            if length < 8 or length & 3 or at + length > end or 8 + name_len > length:
                if length in (0, 65535) and whole_block >= 65536 and 8 + name_len <= end - at:
                    length = end - at  # 64 KiB blocks store their full length as 0 or 65535
                else:
                    log.warning("ext folder inode %d: a damaged entry at byte %d ends its block", folder, at)
                    return live, False
            if not number or not name_len:
                pass
            elif number > inodes:
                log.warning("ext folder inode %d: an entry names inode %d, out of range", folder, number)
            elif found is not None:
                found.append((data[at + 8 : at + 8 + name_len], number))
            elif name_len > 2 or data[at + 8 : at + 8 + name_len] not in (b".", b".."):
                live += 1
            at += length
        return live, True
