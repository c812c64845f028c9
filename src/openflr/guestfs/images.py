"""Disk image metadata without reading the disk: format, virtual size, parent and extent files.

Used by the inventory scanner to discover and validate snapshot chains, and by the block sources
to wire chains together. Reads headers and descriptors only (a few KiB per file), so scanning is
O(number of files), never O(disk size).

Image files are not trusted: only regular files are opened (never blocking on a FIFO), every size
and count is checked before use, a chain may not loop or run deeper than ``MAX_CHAIN_DEPTH``, and
(given the datastore) no parent or extent may lie outside it: a hostile header cannot make openflr
serve ``/etc/shadow`` as the base of a disk.
"""

from __future__ import annotations

import os
import re
import struct
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import BinaryIO

from openflr.guestfs.blocks import open_regular
from openflr.guestfs.errors import CorruptImageError, ImageError, MissingImageError, UnsupportedImageError

KiB = 1024
MAX_CHAIN_DEPTH = 256
MAX_DESCRIPTOR = 64 * KiB
MAX_VIRTUAL_SIZE = 1 << 60  # 1 EiB: anything larger is a corrupt header


@dataclass(frozen=True)
class Extent:
    """One line of a VMDK descriptor's extent description."""

    access: str
    sectors: int
    kind: str
    """FLAT, SPARSE, ZERO, VMFS, VMFSSPARSE, SESPARSE, VMFSRAW, ..."""
    path: Path | None
    offset: int = 0


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    format: str
    """``raw``, ``qcow2``, ``vmdk``, ``vhdx`` or ``vhd``."""
    virtual_size: int | None
    parent: Path | None = None
    create_type: str = ""
    extents: tuple[Extent, ...] = field(default_factory=tuple)
    identity: str = ""
    """A format-level id where the format has one (VHDX DataWriteGuid, VMDK CID)."""


def probe(path: Path) -> ImageInfo:
    """Identify ``path`` and read its parent link. Raises ``MissingImageError``/``CorruptImageError``."""
    fd = open_regular(path)
    try:
        with os.fdopen(fd, "rb") as fh:
            head = fh.read(512)
            size = fh.seek(0, 2)
            if head.startswith(b"QFI\xfb"):
                return _qcow2(path, fh, size)
            if head.startswith(b"KDMV"):
                return _vmdk_sparse(path, fh, head, size)
            if head.startswith(b"vhdxfile"):
                return _vhdx(path, fh, size)
            if head.startswith(b"COWD"):
                raise UnsupportedImageError(
                    str(path), "a vmfsSparse extent file; open its .vmdk descriptor instead"
                )
            if head.startswith(b"conectix") or _vhd_footer(fh, size) is not None:
                return _vhd(path, fh, size)
            if path.suffix.lower() == ".vmdk" or b"createType" in head or b"Disk DescriptorFile" in head:
                return _vmdk_descriptor_file(path, fh, size)
            if path.suffix.lower() in (".qcow2", ".vhdx", ".avhdx", ".vhd", ".avhd"):
                raise CorruptImageError(str(path), f"not a {path.suffix[1:]} image (bad signature)")
            return ImageInfo(path, "raw", size)
    except ImageError:
        raise
    except struct.error as exc:
        raise CorruptImageError(str(path), f"truncated header ({exc})") from None
    except (ValueError, OverflowError, IndexError) as exc:
        raise CorruptImageError(str(path), f"damaged header ({exc})") from None
    except OSError as exc:
        raise ImageError(str(path), exc.strerror or str(exc)) from None


def real(path: Path) -> Path:
    """The file ``path`` names (symbolic links resolved; a link loop resolves to itself, never raises)."""
    return Path(os.path.realpath(path))


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` lies in ``root``, by the names alone (``..`` folded, links not followed)."""
    p = os.path.normpath(os.path.abspath(path))
    r = os.path.normpath(os.path.abspath(root))
    return p == r or p.startswith(r.rstrip(os.sep) + os.sep)


def chain(
    top: Path, cache: dict[Path, ImageInfo] | None = None, within: Path | None = None
) -> list[ImageInfo]:
    """The image chain from ``top`` down to its base; every file and extent must exist (and lie in
    ``within``, the datastore, when given)."""
    cache = {} if cache is None else cache
    out: list[ImageInfo] = []
    seen: set[Path] = set()
    current: Path | None = top
    child: Path | None = None
    while current is not None:
        if within is not None and not inside(current, within):
            shown = str(child) if child is not None else str(top)
            raise CorruptImageError(shown, f"its parent {current} lies outside the datastore")
        key = real(current)
        if key in seen:
            raise CorruptImageError(str(top), f"backing chain loops back to {current.name}")
        if len(out) >= MAX_CHAIN_DEPTH:
            raise CorruptImageError(str(top), f"backing chain deeper than {MAX_CHAIN_DEPTH} layers")
        seen.add(key)
        try:
            info = cache.get(key) or probe(current)
        except MissingImageError as exc:
            if child is not None:
                raise MissingImageError(str(child), f"parent {current.name} not found") from exc
            raise
        cache[key] = info
        check_extents(info, within)
        out.append(info)
        child, current = current, info.parent
    return out


def check_extents(info: ImageInfo, within: Path | None) -> None:
    """Every extent file of ``info`` exists (and lies in ``within``, when given)."""
    for extent in info.extents:
        if extent.path is None:
            continue
        if within is not None and not inside(extent.path, within):
            raise CorruptImageError(str(info.path), f"extent file {extent.path} lies outside the datastore")
        if not extent.path.exists():
            raise MissingImageError(str(info.path), f"extent file {extent.path.name} not found")


def resolve_parent(child: Path, hint: str) -> Path:
    """A parent named by a child image: relative to the child's folder, or an absolute path, or (for
    replicas copied from elsewhere) the same file name next to the child."""
    if not hint:
        raise CorruptImageError(str(child), "empty parent file name")
    if "\0" in hint or len(hint) > 4096:
        raise CorruptImageError(str(child), "impossible parent or extent file name")
    windows = "\\" in hint or re.match(r"^[A-Za-z]:", hint) is not None
    name = PureWindowsPath(hint).name if windows else Path(hint).name
    candidates = []
    if not windows:
        p = Path(hint)
        candidates.append(p if p.is_absolute() else child.parent / p)
    elif hint.startswith(".\\") or not re.match(r"^([A-Za-z]:|\\\\)", hint):
        candidates.append(child.parent / PureWindowsPath(hint).as_posix())
    candidates.append(child.parent / name)
    for c in candidates:
        if c.exists():
            return c
    return candidates[-1]


# --- qcow2 ---------------------------------------------------------------------------------------------


def _qcow2(path: Path, fh: BinaryIO, size: int) -> ImageInfo:
    fh.seek(0)
    hdr = fh.read(104)
    if len(hdr) < 72:
        raise CorruptImageError(str(path), "truncated qcow2 header")
    _magic, version, bf_off, bf_size, cluster_bits, vsize = struct.unpack_from(">4sIQIIQ", hdr)
    if version not in (2, 3):
        raise UnsupportedImageError(str(path), f"qcow2 version {version}")
    if not 9 <= cluster_bits <= 21:
        raise CorruptImageError(str(path), f"qcow2 cluster size 2^{cluster_bits} is impossible")
    if vsize > MAX_VIRTUAL_SIZE:
        raise CorruptImageError(str(path), f"qcow2 virtual size {vsize} is absurd")
    crypt, l1_size, l1_offset, rc_offset = struct.unpack_from(">IIQQ", hdr, 32)
    if crypt:
        raise UnsupportedImageError(str(path), "encrypted qcow2 image")
    if l1_offset + l1_size * 8 > size or rc_offset >= size:
        raise CorruptImageError(str(path), "qcow2 tables lie beyond the end of the file (truncated?)")
    parent = None
    if bf_off:
        if bf_size == 0 or bf_size > 1023 or bf_off + bf_size > size:
            raise CorruptImageError(str(path), "qcow2 backing file name out of bounds")
        fh.seek(bf_off)
        name = fh.read(bf_size).decode("utf-8", "replace")
        parent = resolve_parent(path, name)
    return ImageInfo(path, "qcow2", vsize, parent)


# --- VMDK ----------------------------------------------------------------------------------------------

_EXTENT_RE = re.compile(r'^(RW|RDONLY|NOACCESS)\s+(\d+)\s+([A-Za-z]+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?\s*$')
_KV_RE = re.compile(r'^\s*([A-Za-z0-9_.]+)\s*=\s*"?([^"]*)"?\s*$')


def _vmdk_sparse(path: Path, fh: BinaryIO, head: bytes, size: int) -> ImageInfo:
    version, _flags, capacity, grain, desc_off, desc_size = struct.unpack_from("<IIQQQQ", head, 4)
    if version not in (1, 2, 3):
        raise UnsupportedImageError(str(path), f"VMDK sparse version {version}")
    if capacity * 512 > MAX_VIRTUAL_SIZE or grain == 0 or grain & (grain - 1):
        raise CorruptImageError(str(path), "VMDK sparse header has an impossible capacity or grain size")
    if desc_off == 0 or desc_size == 0:
        raise UnsupportedImageError(str(path), "VMDK sparse extent without an embedded descriptor")
    if desc_size * 512 > MAX_DESCRIPTOR or (desc_off + desc_size) * 512 > size:
        raise CorruptImageError(str(path), "VMDK embedded descriptor out of bounds")
    fh.seek(desc_off * 512)
    text = fh.read(desc_size * 512).split(b"\0", 1)[0]
    return _vmdk_descriptor(path, text, capacity * 512)


def _vmdk_descriptor_file(path: Path, fh: BinaryIO, size: int) -> ImageInfo:
    if size > MAX_DESCRIPTOR:
        raise CorruptImageError(str(path), "not a VMDK descriptor (too large, and no sparse header)")
    fh.seek(0)
    text = fh.read(size)
    if b"\0" in text.rstrip(b"\0"):
        raise CorruptImageError(
            str(path), "not a VMDK descriptor or sparse extent (binary data, bad signature)"
        )
    return _vmdk_descriptor(path, text, None)


def _vmdk_descriptor(path: Path, raw: bytes, capacity: int | None) -> ImageInfo:
    text = raw.decode("utf-8", "replace")
    values: dict[str, str] = {}
    extents: list[Extent] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _EXTENT_RE.match(line)
        if m:
            access, sectors, kind, name, offset = m.groups()
            ext_path = None if name is None else resolve_parent(path, name) if name else None
            extents.append(Extent(access, int(sectors), kind.upper(), ext_path, int(offset or 0)))
            continue
        kv = _KV_RE.match(line)
        if kv:
            values[kv.group(1).lower()] = kv.group(2)
    create_type = values.get("createtype", "")
    if not create_type:
        raise CorruptImageError(str(path), "VMDK descriptor without createType")
    if not extents:
        raise CorruptImageError(str(path), "VMDK descriptor lists no extents")
    total = sum(e.sectors for e in extents) * 512
    if total > MAX_VIRTUAL_SIZE:
        raise CorruptImageError(str(path), "VMDK extents add up to an absurd size")
    parent = None
    parent_cid = values.get("parentcid", "ffffffff").lower()
    if parent_cid != "ffffffff":
        hint = values.get("parentfilenamehint", "")
        if not hint:
            raise CorruptImageError(str(path), "VMDK delta without parentFileNameHint")
        parent = resolve_parent(path, hint)
    return ImageInfo(
        path, "vmdk", capacity or total, parent, create_type, tuple(extents), values.get("cid", "")
    )


# --- VHDX ----------------------------------------------------------------------------------------------

_BAT = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
_METADATA = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
_FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
_VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
_PARENT_LOCATOR = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")


def _vhdx(path: Path, fh: BinaryIO, size: int) -> ImageInfo:
    if size < 1024 * KiB:
        raise CorruptImageError(str(path), "VHDX file shorter than its fixed 1 MiB header area")
    best: tuple[int, uuid.UUID] | None = None
    for off in (64 * KiB, 128 * KiB):
        fh.seek(off)
        h = fh.read(64)
        if h[:4] == b"head":
            seq = struct.unpack_from("<Q", h, 8)[0]
            if best is None or seq > best[0]:
                best = (seq, uuid.UUID(bytes_le=h[32:48]))
    if best is None:
        raise CorruptImageError(str(path), "VHDX has no valid header")
    regions: dict[uuid.UUID, tuple[int, int]] = {}
    for off in (192 * KiB, 256 * KiB):
        fh.seek(off)
        rt = fh.read(64 * KiB)
        if rt[:4] != b"regi":
            continue
        count = struct.unpack_from("<I", rt, 8)[0]
        if count > 2047:
            raise CorruptImageError(str(path), "VHDX region table entry count is absurd")
        for i in range(count):
            g, r_off, r_len, _req = struct.unpack_from("<16sQII", rt, 16 + 32 * i)
            regions[uuid.UUID(bytes_le=g)] = (r_off, r_len)
        break
    if _METADATA not in regions or _BAT not in regions:
        raise CorruptImageError(str(path), "VHDX region table lacks the BAT or metadata region")
    meta_off, meta_len = regions[_METADATA]
    if meta_off + meta_len > size or meta_len > 64 * 1024 * KiB:
        raise CorruptImageError(str(path), "VHDX metadata region out of bounds")
    fh.seek(meta_off)
    meta = fh.read(min(meta_len, 1024 * KiB))
    if meta[:8] != b"metadata":
        raise CorruptImageError(str(path), "VHDX metadata region has a bad signature")
    count = struct.unpack_from("<H", meta, 10)[0]
    items: dict[uuid.UUID, bytes] = {}
    for i in range(min(count, 2047)):
        g, i_off, i_len, _flags, _ = struct.unpack_from("<16sIIII", meta, 32 + 32 * i)
        if i_off + i_len > len(meta):
            raise CorruptImageError(str(path), "VHDX metadata item out of bounds")
        items[uuid.UUID(bytes_le=g)] = meta[i_off : i_off + i_len]
    if _FILE_PARAMETERS not in items or _VIRTUAL_DISK_SIZE not in items:
        raise CorruptImageError(str(path), "VHDX metadata lacks file parameters or the virtual size")
    _block_size, flags = struct.unpack_from("<II", items[_FILE_PARAMETERS])
    vsize = struct.unpack_from("<Q", items[_VIRTUAL_DISK_SIZE])[0]
    if vsize > MAX_VIRTUAL_SIZE:
        raise CorruptImageError(str(path), f"VHDX virtual size {vsize} is absurd")
    parent = None
    if flags & 2:
        locator = items.get(_PARENT_LOCATOR)
        if locator is None:
            raise CorruptImageError(str(path), "differencing VHDX without a parent locator")
        entries = _vhdx_locator(path, locator)
        hint = (
            entries.get("relative_path") or entries.get("absolute_win32_path") or entries.get("volume_path")
        )
        if not hint:
            raise CorruptImageError(str(path), "VHDX parent locator names no parent path")
        parent = resolve_parent(path, hint)
    return ImageInfo(path, "vhdx", vsize, parent, identity=str(best[1]))


def _vhdx_locator(path: Path, data: bytes) -> dict[str, str]:
    if len(data) < 20:
        raise CorruptImageError(str(path), "VHDX parent locator is truncated")
    count = struct.unpack_from("<H", data, 18)[0]
    out: dict[str, str] = {}
    for i in range(count):
        if 20 + 12 * (i + 1) > len(data):
            raise CorruptImageError(str(path), "VHDX parent locator is truncated")
        k_off, v_off, k_len, v_len = struct.unpack_from("<IIHH", data, 20 + 12 * i)
        if k_off + k_len > len(data) or v_off + v_len > len(data):
            raise CorruptImageError(str(path), "VHDX parent locator entry out of bounds")
        key = data[k_off : k_off + k_len].decode("utf-16-le", "replace")
        out[key] = data[v_off : v_off + v_len].decode("utf-16-le", "replace")
    return out


# --- VHD -----------------------------------------------------------------------------------------------


def _vhd_footer(fh: BinaryIO, size: int) -> bytes | None:
    if size < 512:
        return None
    fh.seek(size - 512)
    footer = fh.read(512)
    return footer if footer.startswith(b"conectix") else None


def _vhd(path: Path, fh: BinaryIO, size: int) -> ImageInfo:
    footer = _vhd_footer(fh, size)
    if footer is None:
        fh.seek(0)
        footer = fh.read(512)
    data_offset = struct.unpack_from(">Q", footer, 16)[0]
    current_size = struct.unpack_from(">Q", footer, 48)[0]
    disk_type = struct.unpack_from(">I", footer, 60)[0]
    if current_size > MAX_VIRTUAL_SIZE:
        raise CorruptImageError(str(path), "VHD virtual size is absurd")
    if disk_type not in (2, 3, 4):
        raise UnsupportedImageError(str(path), f"VHD disk type {disk_type}")
    parent = None
    if disk_type == 4:
        if data_offset + 1024 > size:
            raise CorruptImageError(str(path), "VHD dynamic header out of bounds")
        fh.seek(data_offset)
        dyn = fh.read(1024)
        if dyn[:8] != b"cxsparse":
            raise CorruptImageError(str(path), "VHD dynamic header has a bad signature")
        name = dyn[64:576].decode("utf-16-be", "replace").split("\0", 1)[0]
        parent = resolve_parent(path, name)
    return ImageInfo(path, "vhd", current_size, parent)
