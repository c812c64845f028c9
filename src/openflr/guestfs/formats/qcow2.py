"""qcow2 (versions 2 and 3): header facts and backing file, L1/L2 cluster tables, zero clusters,
zlib-compressed clusters.

Written in-house because libqcow 20260703 returns zeros for some zlib-compressed clusters of
images made by ``qemu-img convert -c`` (measured on the fixtures; docs/STORAGE-NOTES.md).
"""

from __future__ import annotations

import struct
import zlib
from array import array
from collections.abc import Iterator
from pathlib import Path

from openflr.guestfs.blocks import BYTES, DATA, PARENT, ZERO, Layer, OpenFile, Run, Table, progression
from openflr.guestfs.errors import CorruptImageError, UnsupportedImageError
from openflr.guestfs.formats.base import (
    MAX_VIRTUAL_SIZE,
    Folder,
    Head,
    ImageFormat,
    ImageInfo,
    resolve_parent,
)

_OFFSET_MASK = 0x00FFFFFFFFFFFE00
_COMPRESSED = 1 << 62
_ZERO_FLAG = 1
_MAX_L1 = 1 << 25
"""Entries of an L1 table (256 MiB of them: more than qemu writes; the table is read in pages)."""
_L2_CACHE = 512
_L2_CACHE_BYTES = 64 * 1024 * 1024
"""L2 tables kept per layer, by bytes: 512 tables of 64 KiB, or fewer of 2 MiB clusters."""


class Qcow2Layer(Layer):
    def __init__(self, file: OpenFile) -> None:
        self.file = file
        self.name = file.path.name
        path = str(file.path)
        hdr = file.pread(min(file.size, 112), 0)
        version, cluster_bits, self.size = _check(path, hdr)
        l1_size, l1_offset = struct.unpack_from(">IQ", hdr, 36)
        self.cluster_bits = cluster_bits
        self.cluster = 1 << cluster_bits
        self.l2_entries = self.cluster // 8
        if version == 3:
            incompatible = struct.unpack_from(">Q", hdr, 72)[0]
            header_length = struct.unpack_from(">I", hdr, 100)[0] if len(hdr) >= 104 else 104
            if incompatible & 2:
                raise CorruptImageError(path, "qcow2 image is marked corrupt")
            if incompatible & 4:
                raise UnsupportedImageError(path, "qcow2 image with an external data file")
            if incompatible & 16:
                raise UnsupportedImageError(path, "qcow2 image with extended L2 entries (subclusters)")
            if incompatible & 8 and header_length > 104 and len(hdr) > 104 and hdr[104] != 0:
                raise UnsupportedImageError(path, "qcow2 image compressed with zstd (only zlib is supported)")
            if incompatible & ~0x1F:
                raise UnsupportedImageError(path, f"qcow2 incompatible features 0x{incompatible:x}")
        needed = (self.size + self.cluster * self.l2_entries - 1) // (self.cluster * self.l2_entries)
        if l1_size < needed or l1_size > _MAX_L1:
            raise CorruptImageError(path, f"qcow2 L1 table has {l1_size} entries, {needed} needed")
        if l1_offset % self.cluster or l1_offset + l1_size * 8 > file.size:
            raise CorruptImageError(path, "qcow2 L1 table lies outside the file")
        self.l1 = Table(file, l1_offset, l1_size, 8, big_endian=True)
        self._l2: dict[int, array[int]] = {}
        self._l2_keep = max(4, min(_L2_CACHE, _L2_CACHE_BYTES // self.cluster))
        # Compressed-cluster descriptor layout depends on the cluster size.
        self._csize_shift = 62 - (cluster_bits - 8)
        self._csize_mask = (1 << (cluster_bits - 8)) - 1
        self._coffset_mask = (1 << self._csize_shift) - 1

    def _table(self, index: int) -> array[int] | None:
        table = self._l2.get(index)
        if table is not None:
            return table
        entry = self.l1[index] & _OFFSET_MASK
        if entry == 0:
            return None
        if entry % self.cluster or entry + self.cluster > self.file.size:
            raise CorruptImageError(str(self.file.path), f"qcow2 L2 table {index} lies outside the file")
        table = array("Q", self.file.pread(self.cluster, entry))
        table.byteswap()
        if len(self._l2) >= self._l2_keep:
            self._l2.pop(next(iter(self._l2)))
        self._l2[index] = table
        return table

    def runs(self, offset: int, length: int) -> Iterator[Run]:
        end = offset + length
        bits, cluster, per = self.cluster_bits, self.cluster, self.l2_entries
        pos = offset
        span = cluster * per
        while pos < end:
            index = pos >> bits
            table = self._table(index // per)
            if table is None:  # no L2 table: the whole region it would cover is in the parent
                count = min(span - pos % span, end - pos)
                yield (pos, count, PARENT, None)
                pos += count
                continue
            within = pos & (cluster - 1)
            i = index % per
            # The entries of this table the request needs, then the longest run of them that maps
            # alike (data clusters one after another in the file, or equal zero / parent entries).
            stop = min(per, i + ((end - 1) >> bits) - index + 1)
            entry = table[i]
            if entry & _COMPRESSED:
                count = min(cluster - within, end - pos)
                yield (pos, count, BYTES, (self._decompress(entry), within))
                pos += count
                continue
            if entry & _ZERO_FLAG:
                kind, clusters = ZERO, progression(table, i, stop, 0)
            elif entry & _OFFSET_MASK:
                # Within the offset field: past it the next "cluster" would carry into flag bits.
                room = (_OFFSET_MASK - (entry & _OFFSET_MASK)) // cluster + 1
                kind, clusters = DATA, progression(table, i, min(stop, i + room), cluster)
            else:
                kind, clusters = PARENT, progression(table, i, stop, 0)
            count = min(clusters * cluster - within, end - pos)
            if kind == DATA:
                yield (pos, count, DATA, (self.file.fd, (entry & _OFFSET_MASK) + within))
            else:
                yield (pos, count, kind, None)
            pos += count

    def _decompress(self, entry: int) -> bytes:
        host = entry & self._coffset_mask
        sectors = (entry >> self._csize_shift) & self._csize_mask
        size = (sectors + 1) * 512 - (host & 511)
        size = min(size, self.file.size - host)
        if host >= self.file.size or size <= 0:
            raise CorruptImageError(str(self.file.path), "qcow2 compressed cluster lies outside the file")
        raw = self.file.pread(size, host) if size else b""
        try:
            data = zlib.decompressobj(-12).decompress(raw, self.cluster)
        except zlib.error as exc:
            raise CorruptImageError(
                str(self.file.path), f"qcow2 compressed cluster is damaged ({exc})"
            ) from None
        if len(data) != self.cluster:
            raise CorruptImageError(str(self.file.path), "qcow2 compressed cluster decompresses short")
        return data


def read_info(h: Head) -> ImageInfo:
    """Virtual size and backing file of a qcow2 image."""
    path, size = h.path, h.size
    hdr = h.pread(104, 0)
    _version, _cluster_bits, vsize = _check(str(path), hdr)
    bf_off, bf_size = struct.unpack_from(">QI", hdr, 8)
    l1_size, l1_offset, rc_offset = struct.unpack_from(">IQQ", hdr, 36)
    if l1_offset + l1_size * 8 > size or rc_offset >= size:
        raise CorruptImageError(str(path), "qcow2 tables lie beyond the end of the file (truncated?)")
    parent = None
    if bf_off:
        if bf_size == 0 or bf_size > 1023 or bf_off + bf_size > size:
            raise CorruptImageError(str(path), "qcow2 backing file name out of bounds")
        name = h.pread(bf_size, bf_off).decode("utf-8", "replace")
        parent = resolve_parent(path, name)
    return ImageInfo(path, "qcow2", vsize, parent)


def _check(path: str, hdr: bytes) -> tuple[int, int, int]:
    """(version, cluster bits, virtual size) of a qcow2 header, with the checks the scan and the
    reader share: a known version, a possible cluster size, a sane size, no encryption."""
    if len(hdr) < 72 or hdr[:4] != b"QFI\xfb":
        raise CorruptImageError(path, "truncated qcow2 header")
    version, cluster_bits, vsize, crypt = struct.unpack_from(">I12xIQI", hdr, 4)
    if version not in (2, 3):
        raise UnsupportedImageError(path, f"qcow2 version {version}")
    if not 9 <= cluster_bits <= 21:
        raise CorruptImageError(path, f"qcow2 cluster size 2^{cluster_bits} is impossible")
    if vsize > MAX_VIRTUAL_SIZE:
        raise CorruptImageError(path, f"qcow2 virtual size {vsize} is absurd")
    if crypt:
        raise UnsupportedImageError(path, "encrypted qcow2 image")
    return version, cluster_bits, vsize


def open_layer(_info: ImageInfo, file: OpenFile, _files: dict[Path, OpenFile]) -> Layer:
    """The reader of one qcow2 file."""
    return Qcow2Layer(file)


FORMAT = ImageFormat(
    name="qcow2",
    extensions=(".qcow2",),
    magic=(b"QFI\xfb",),
    read_info=read_info,
    open_layer=open_layer,
    folder=Folder("qcow2", "KVM"),
)
