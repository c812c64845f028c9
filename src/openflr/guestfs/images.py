"""Disk image metadata without reading the disk: format, virtual size, parent and extent files.

Which format a file is comes from the plug-ins in ``guestfs/formats/`` (``FORMATS``): each one
recognises its own files and reads its own header; this module only asks them, and follows chains.

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
import struct
from pathlib import Path

from openflr.guestfs.blocks import open_regular
from openflr.guestfs.errors import CorruptImageError, ImageError, MissingImageError
from openflr.guestfs.formats import FORMATS, RAW
from openflr.guestfs.formats.base import (
    HEAD_SIZE,
    MAX_VIRTUAL_SIZE,
    Extent,
    Head,
    ImageFormat,
    ImageInfo,
    real,
    resolve_parent,
)

__all__ = [
    "MAX_CHAIN_DEPTH",
    "MAX_VIRTUAL_SIZE",
    "Extent",
    "ImageInfo",
    "chain",
    "check_extents",
    "identify",
    "inside",
    "probe",
    "real",
    "resolve_parent",
]

MAX_CHAIN_DEPTH = 256


def probe(path: Path) -> ImageInfo:
    """Identify ``path`` and read its parent link. Raises ``MissingImageError``/``CorruptImageError``."""
    fd = open_regular(path)
    try:
        with os.fdopen(fd, "rb") as fh:
            head = fh.read(HEAD_SIZE)
            h = Head(path, fh, fh.seek(0, 2), head)
            return identify(h).read_info(h)
    except ImageError:
        raise
    except struct.error as exc:
        raise CorruptImageError(str(path), f"truncated header ({exc})") from None
    except (ValueError, OverflowError, IndexError) as exc:
        raise CorruptImageError(str(path), f"damaged header ({exc})") from None
    except OSError as exc:
        raise ImageError(str(path), exc.strerror or str(exc)) from None


def identify(h: Head) -> ImageFormat:
    """The format of an image: the first whose signature starts it, else the first whose ``sniff``
    claims it; a file named like a format without its signature is corrupt; anything else is raw."""
    for fmt in FORMATS:
        if h.head.startswith(fmt.magic):
            return fmt
    for fmt in FORMATS:
        if fmt.sniff is not None and fmt.sniff(h):
            return fmt
    suffix = h.path.suffix.lower()
    if any(suffix in fmt.extensions for fmt in FORMATS):
        raise CorruptImageError(str(h.path), f"not a {h.path.suffix[1:]} image (bad signature)")
    return RAW


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
