"""What an image format plug-in is: the header facts it reports (``ImageInfo``) and the
``ImageFormat`` record each ``formats/<name>.py`` exports as ``FORMAT``.

A plug-in answers three questions about one file: is it mine (``magic`` at offset 0, else the
weaker ``sniff``), what does its header say (``read_info``: virtual size, parent, extents; headers
only, never the data), and how are its bytes read (``open_layer``: a ``Layer`` for ``blocks.Chain``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import BinaryIO

from openflr.guestfs.blocks import Layer, OpenFile
from openflr.guestfs.errors import CorruptImageError

KiB = 1024
MAX_VIRTUAL_SIZE = 1 << 60  # 1 EiB: anything larger is a corrupt header
HEAD_SIZE = 512
"""Bytes of a file's start (and end) that ``magic`` and ``sniff`` see."""


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
    """The ``ImageFormat.name`` that read it: ``raw``, ``qcow2``, ``vmdk``, ``vhdx`` or ``vhd``."""
    virtual_size: int | None
    parent: Path | None = None
    create_type: str = ""
    extents: tuple[Extent, ...] = field(default_factory=tuple)
    identity: str = ""
    """A format-level id where the format has one (VHDX DataWriteGuid, VMDK CID)."""


@dataclass
class Head:
    """An image file being identified: its name, open handle, size and first ``HEAD_SIZE`` bytes."""

    path: Path
    fh: BinaryIO
    size: int
    head: bytes

    def pread(self, length: int, offset: int) -> bytes:
        """Up to ``length`` bytes at ``offset`` (as ``OpenFile.pread``, so a format can read its
        header the same way from a file being identified and from a file being read)."""
        self.fh.seek(offset)
        return self.fh.read(length)

    def tail(self) -> bytes:
        """The last ``HEAD_SIZE`` bytes (empty when the file is shorter)."""
        if self.size < HEAD_SIZE:
            return b""
        self.fh.seek(self.size - HEAD_SIZE)
        return self.fh.read(HEAD_SIZE)


@dataclass(frozen=True)
class Folder:
    """How a hypervisor keeps a VM whose snapshots are plain backing chains of this format's files
    (one folder per VM, the images in it or in ``subfolder``), for the inventory scanner."""

    kind: str
    """The folder kind (``hyperv``, ``qcow2``); part of the ids of the VM's points: never renamed."""
    platform: str
    """The platform shown for the VM (``HyperV``, ``KVM``)."""
    subfolder: str = ""
    """Where the hypervisor puts the disks below the VM folder (compared without case), if anywhere."""


@dataclass(frozen=True)
class ImageFormat:
    """One image format: how to recognise it, read its header and read its data."""

    name: str
    extensions: tuple[str, ...]
    """File name endings (lower case, with the dot) that must carry this format's signature."""
    magic: tuple[bytes, ...]
    """Signatures at offset 0; tried for every format before any ``sniff``."""
    read_info: Callable[[Head], ImageInfo]
    """The header facts; raises ``ImageError`` (``struct.error``/``ValueError`` become corrupt)."""
    open_layer: Callable[[ImageInfo, OpenFile, dict[Path, OpenFile]], Layer]
    """The reader of one opened file (``files``: every file of the chain opened so far, by real path,
    for formats whose data lives in other files too)."""
    sniff: Callable[[Head], bool] | None = None
    """A weaker test (a footer, a text descriptor), tried in registry order when no magic matched."""
    folder: Folder | None = None


def real(path: Path) -> Path:
    """The file ``path`` names (symbolic links resolved; a link loop resolves to itself, never raises)."""
    return Path(os.path.realpath(path))


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
