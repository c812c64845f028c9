"""Volume systems: GPT, MBR with extended partitions, LVM2 logical volumes, unpartitioned disks.

Partition streams are sized from the table's own numbers (GPT's last LBA is inclusive: a reader
that forgets it cuts off the partition's last sector, where NTFS keeps its backup boot sector).
"""

from __future__ import annotations

import struct
import threading
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

from openflr.errors import OpenflrError
from openflr.guestfs.blocks import BlockSource, CachedReader, Slice, check_cancelled
from openflr.guestfs.errors import CorruptImageError

SECTOR = 512
MAX_LOGICAL = 128
MAX_LOGICAL_VOLUMES = 256

GPT_SKIP = {
    "e3c9e316-0b5c-4db8-817d-f92df00215ae": "Microsoft reserved partition",
    "21686148-6449-6e6f-744e-656564454649": "BIOS boot partition",
}
GPT_LVM = "e6d6d379-f507-44c2-a23c-238f2a3df928"
GPT_SWAP = "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f"
GPT_ESP = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
MBR_EXTENDED = {0x05, 0x0F, 0x85}
MBR_LVM = 0x8E


@dataclass
class Volume:
    """A volume that may hold a file system."""

    disk: int
    source: BlockSource
    scheme: str
    """``gpt``, ``mbr``, ``lvm`` or ``disk`` (the whole, unpartitioned disk)."""
    number: int | None = None
    """Partition number (GPT entry index + 1, MBR 1-4 primary, 5+ logical)."""
    start: int = 0
    type_id: str = ""
    part_guid: str | None = None
    disk_signature: int | None = None
    name: str = ""
    index: int = 0
    """Position among all volumes of the VM (the N of ``Volume$N:``)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_esp(self) -> bool:
        return self.type_id == GPT_ESP or (self.scheme == "mbr" and self.type_id == "ef")


def _guid(raw: bytes) -> str:
    return str(uuid.UUID(bytes_le=raw))


def _looks_like_filesystem(head: bytes) -> bool:
    return (
        head[3:11] in (b"NTFS    ", b"EXFAT   ", b"-FVE-FS-")
        or head[:4] == b"XFSB"
        or (head[510:512] == b"\x55\xaa" and (head[54:57] == b"FAT" or head[82:87] == b"FAT32"))
    )


MAX_ENTRY_NOTES = 8
"""Notes about skipped entries of one disk's table; more are counted in one last note."""


def partitions(disk_index: int, disk: BlockSource, notes: list[str] | None = None) -> list[Volume]:
    """The volumes on one disk: its partitions, or the whole disk when it has no table.

    A damaged entry (beyond the disk, ending before it starts, overlapping another GPT partition, a
    cut extended chain) costs only itself: it is skipped and ``notes`` says so. A GPT whose primary
    header or entry table is damaged is read from its backup at the end of the disk (with a note). A
    table that cannot be read at all raises ``CorruptImageError``."""
    found: list[str] = []
    out = _partitions(disk_index, disk, found)
    if notes is not None:
        notes += found[:MAX_ENTRY_NOTES]
        if len(found) > MAX_ENTRY_NOTES:
            notes.append(
                f"disk {disk_index}: {len(found) - MAX_ENTRY_NOTES} more partition table entries are "
                "damaged and were skipped"
            )
    return out


def _partitions(disk_index: int, disk: BlockSource, notes: list[str]) -> list[Volume]:
    head = disk.pread(SECTOR * 2, 0)
    if len(head) < SECTOR:
        return []
    if _looks_like_filesystem(head):
        return [Volume(disk_index, disk, "disk")]
    if head[SECTOR : SECTOR + 8] == b"EFI PART":
        return _gpt(disk_index, disk, SECTOR, notes)
    if disk.size > 4096 * 2 and disk.pread(8, 4096) == b"EFI PART":
        return _gpt(disk_index, disk, 4096, notes)
    if head[510:512] == b"\x55\xaa":
        entries = [struct.unpack_from("<BBBBBBBBII", head, 446 + 16 * i) for i in range(4)]
        if any(e[4] == 0xEE for e in entries):
            return _gpt(
                disk_index, disk, SECTOR, notes
            )  # the primary header is gone: maybe the backup is not
        if any(e[4] for e in entries) and all(e[0] in (0, 0x80) for e in entries):
            return _mbr(disk_index, disk, head, entries, notes)
    if _lvm_label(disk) is not None:
        return [Volume(disk_index, disk, "disk", type_id="lvm")]
    return [Volume(disk_index, disk, "disk")]


def _gpt_table(disk_index: int, disk: BlockSource, sector: int, lba: int) -> tuple[bytes, int, int]:
    """(entry table, entry size, entry count) of the GPT header at ``lba``, checked."""
    hdr = disk.pread(sector, lba * sector)
    if len(hdr) < 92 or hdr[:8] != b"EFI PART":
        raise CorruptImageError("partition table", f"disk {disk_index}: no GPT header at sector {lba}")
    header_size, crc = struct.unpack_from("<II", hdr, 12)
    if not 92 <= header_size <= sector:
        raise CorruptImageError(
            "partition table", f"disk {disk_index}: GPT header size {header_size} is invalid"
        )
    check = bytearray(hdr[:header_size])
    check[16:20] = b"\0\0\0\0"
    if zlib.crc32(bytes(check)) != crc:
        raise CorruptImageError("partition table", f"disk {disk_index}: GPT header checksum mismatch")
    entries_lba, count, entry_size, entries_crc = struct.unpack_from("<QIII", hdr, 72)
    if count > 1024 or entry_size < 128 or entry_size > 4096:
        raise CorruptImageError("partition table", f"disk {disk_index}: GPT entry table is implausible")
    table = disk.pread(count * entry_size, entries_lba * sector)
    if len(table) < count * entry_size:
        raise CorruptImageError(
            "partition table", f"disk {disk_index}: GPT entry table lies beyond the end of the disk"
        )
    if zlib.crc32(table) != entries_crc:
        raise CorruptImageError("partition table", f"disk {disk_index}: GPT entry table checksum mismatch")
    return table, entry_size, count


def _gpt(disk_index: int, disk: BlockSource, sector: int, notes: list[str]) -> list[Volume]:
    try:
        table, entry_size, count = _gpt_table(disk_index, disk, sector, 1)
    except CorruptImageError as primary:
        try:
            table, entry_size, count = _gpt_table(disk_index, disk, sector, disk.size // sector - 1)
        except CorruptImageError:
            raise primary from None
        notes.append(
            f"disk {disk_index}: the primary GPT is damaged ({primary.problem.split(': ', 1)[-1]}); "
            "the backup GPT at the end of the disk was used"
        )
    sectors = disk.size // sector
    taken: list[tuple[int, int, int]] = []
    out = []
    for i in range(count):
        raw = table[i * entry_size : (i + 1) * entry_size]
        type_guid = _guid(raw[:16])
        if raw[:16] == b"\0" * 16:
            continue
        if type_guid in GPT_SKIP:
            notes.append(f"disk {disk_index}: GPT partition {i + 1} is not a root: {GPT_SKIP[type_guid]}")
            continue
        first, last = struct.unpack_from("<QQ", raw, 32)
        overlaps = next((n for f, e, n in taken if first <= e and f <= last), None)
        problem = (
            "ends before it starts"
            if last < first
            else "lies beyond the end of the disk"
            if last >= sectors
            else f"overlaps partition {overlaps}"
            if overlaps is not None
            else None
        )
        if problem is not None:
            notes.append(f"disk {disk_index}: GPT partition {i + 1} {problem}; it was skipped")
            continue
        taken.append((first, last, i + 1))
        start, size = first * sector, (last - first + 1) * sector
        name = raw[56:128].decode("utf-16-le", "replace").split("\0", 1)[0]
        out.append(
            Volume(
                disk_index,
                Slice(disk, start, size),
                "gpt",
                i + 1,
                start,
                type_guid,
                _guid(raw[16:32]),
                name=name,
            )
        )
    return out


def _mbr(
    disk_index: int, disk: BlockSource, head: bytes, entries: list[tuple[int, ...]], notes: list[str]
) -> list[Volume]:
    signature = struct.unpack_from("<I", head, 440)[0]
    sectors_on_disk = disk.size // SECTOR
    out = []
    for i, e in enumerate(entries):
        ptype, lba, sectors = e[4], e[8], e[9]
        if ptype == 0 or sectors == 0:
            continue
        if ptype in MBR_EXTENDED:
            if lba >= sectors_on_disk:
                notes.append(
                    f"disk {disk_index}: the extended partition lies beyond the end of the disk; "
                    "its logical partitions were skipped"
                )
                continue
            out += _logical(disk_index, disk, lba, signature, notes)
            continue
        if lba + sectors > sectors_on_disk:
            notes.append(
                f"disk {disk_index}: MBR partition {i + 1} lies beyond the end of the disk; it was skipped"
            )
            continue
        start = lba * SECTOR
        out.append(
            Volume(
                disk_index,
                Slice(disk, start, sectors * SECTOR),
                "mbr",
                i + 1,
                start,
                f"{ptype:02x}",
                disk_signature=signature,
            )
        )
    return out


def _logical(
    disk_index: int, disk: BlockSource, ext_lba: int, signature: int, notes: list[str]
) -> list[Volume]:
    out: list[Volume] = []
    seen: set[int] = set()
    ebr_lba = ext_lba
    number = 5
    sectors_on_disk = disk.size // SECTOR
    while ebr_lba and len(out) < MAX_LOGICAL:
        if ebr_lba in seen:
            notes.append(
                f"disk {disk_index}: the extended partition chain loops after logical partition "
                f"{number - 1}; the rest of the chain was skipped"
            )
            break
        seen.add(ebr_lba)
        ebr = disk.pread(SECTOR, ebr_lba * SECTOR)
        if len(ebr) < SECTOR or ebr[510:512] != b"\x55\xaa":
            notes.append(
                f"disk {disk_index}: the extended boot record of logical partition {number} is damaged; "
                "it and the rest of the chain were skipped"
            )
            break
        first = struct.unpack_from("<BBBBBBBBII", ebr, 446)
        nxt = struct.unpack_from("<BBBBBBBBII", ebr, 462)
        if first[4] and first[9]:
            if ebr_lba + first[8] + first[9] > sectors_on_disk:
                notes.append(
                    f"disk {disk_index}: logical partition {number} lies beyond the end of the disk; "
                    "it was skipped"
                )
            else:
                start = (ebr_lba + first[8]) * SECTOR
                out.append(
                    Volume(
                        disk_index,
                        Slice(disk, start, first[9] * SECTOR),
                        "mbr",
                        number,
                        start,
                        f"{first[4]:02x}",
                        disk_signature=signature,
                    )
                )
            number += 1
        ebr_lba = ext_lba + nxt[8] if nxt[4] in MBR_EXTENDED and nxt[8] else 0
    return out


def _lvm_error(pv: Volume, exc: OSError) -> CorruptImageError:
    return CorruptImageError("LVM", f"disk {pv.disk}: volume group cannot be read ({_libyal_cause(exc)})")


def _libyal_cause(exc: OSError) -> str:
    """The innermost useful sentence of a libyal error chain (``pyvslvm_x: unable to open handle.
    libvslvm_y: mismatch in checksum ( .. ). ...``): ``mismatch in checksum ( .. )``."""
    text = str(exc).strip().splitlines()
    steps = [s.strip() for s in (text[0] if text else "").split(". ") if s.strip()]
    if len(steps) > 1 and steps[0].startswith("py"):
        steps = steps[1:]
    if not steps:
        return type(exc).__name__
    return steps[0].split(": ", 1)[-1].rstrip(".")[:200]


def _lvm_label(source: BlockSource) -> int | None:
    head = source.pread(4 * SECTOR, 0)
    for i in range(4):
        if head[i * SECTOR : i * SECTOR + 8] == b"LABELONE":
            return i
    return None


def is_lvm(volume: Volume) -> bool:
    return volume.type_id in (GPT_LVM, f"{MBR_LVM:02x}", "lvm") or _lvm_label(volume.source) is not None


class _LogicalVolume(BlockSource):
    def __init__(self, lv: Any, lock: threading.Lock, name: str) -> None:
        self.lv, self.lock, self.name = lv, lock, name
        self.size = int(lv.size)

    def pread(self, length: int, offset: int) -> bytes:
        if offset >= self.size or length <= 0 or offset < 0:
            return b""
        check_cancelled()
        try:
            with self.lock:
                data: bytes = self.lv.read_buffer_at_offset(min(length, self.size - offset), offset)
        except OpenflrError:
            raise
        except OSError as exc:
            text = str(exc).strip().splitlines()
            raise CorruptImageError(
                "LVM", f"logical volume {self.name} cannot be read ({text[0] if text else 'I/O error'})"
            ) from None
        return data


def logical_volumes(pvs: list[Volume], notes: list[str] | None = None) -> list[Volume]:
    """The logical volumes of the volume groups on ``pvs`` (libvslvm). A physical volume whose LVM
    metadata cannot be read costs only its own logical volumes: with ``notes``, they are skipped and
    the note says why; without, ``CorruptImageError`` is raised."""
    out: list[Volume] = []
    for pv in pvs:
        try:
            out += _logical_volumes_of(pv)
        except CorruptImageError as exc:
            if notes is None:
                raise
            where = f"partition {pv.number}" if pv.number is not None else "the whole disk"
            notes.append(f"{exc.problem}: the logical volumes on {where} were skipped")
    return out


def _logical_volumes_of(pv: Volume) -> list[Volume]:
    import pyvslvm

    out: list[Volume] = []
    handle = pyvslvm.handle()
    reader = CachedReader(pv.source)
    try:
        handle.open_file_object(reader)
        handle.open_physical_volume_files_as_file_objects([reader])
        group = handle.get_volume_group()
        count = int(group.number_of_logical_volumes)
    except OSError as exc:
        raise _lvm_error(pv, exc) from None
    if count > MAX_LOGICAL_VOLUMES:
        raise CorruptImageError(
            "LVM",
            f"disk {pv.disk}: the volume group claims {count} logical volumes (at most "
            f"{MAX_LOGICAL_VOLUMES} are opened)",
        )
    lock = threading.Lock()
    for i in range(count):
        try:
            lv = group.get_logical_volume(i)
            name = f"{group.name}/{lv.name}"
            source = _LogicalVolume(lv, lock, name)
        except OSError as exc:
            raise _lvm_error(pv, exc) from None
        out.append(
            Volume(
                pv.disk,
                source,
                "lvm",
                None,
                0,
                "lvm",
                name=name,
                extra={"handle": handle, "reader": reader},
            )
        )
    return out
