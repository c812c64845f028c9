"""Open a VM disk (an image chain) as one ``BlockSource``."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from openflr.guestfs import images
from openflr.guestfs.blocks import Chain, Layer, OpenFile, RawLayer
from openflr.guestfs.errors import CorruptImageError, ImageError
from openflr.guestfs.formats.qcow2 import Qcow2Layer
from openflr.guestfs.formats.vhd import VhdLayer
from openflr.guestfs.formats.vhdx import VhdxLayer
from openflr.guestfs.formats.vmdk import VmdkLayer


def open_layer(info: images.ImageInfo, files: dict[Path, OpenFile]) -> Layer:
    key = info.path.resolve()
    if key not in files:
        files[key] = OpenFile(info.path)
    file = files[key]
    if info.format == "qcow2":
        return Qcow2Layer(file)
    if info.format == "vmdk":
        return VmdkLayer(info, files)
    if info.format == "vhdx":
        return VhdxLayer(file)
    if info.format == "vhd":
        return VhdLayer(file)
    return RawLayer(file)


def open_chain(files: Sequence[Path]) -> Chain:
    """Open the images ``files`` (top layer first, base last) as one disk."""
    opened: dict[Path, OpenFile] = {}
    layers: list[Layer] = []
    try:
        infos = [images.probe(p) for p in files]
        for upper, lower in itertools.pairwise(infos):
            if upper.parent is None or upper.parent.resolve() != lower.path.resolve():
                raise CorruptImageError(str(upper.path), f"its parent is no longer {lower.path.name}")
        if infos[-1].parent is not None:
            raise CorruptImageError(str(infos[-1].path), "the chain's base now names a parent")
        for info in infos:
            layers.append(open_layer(info, opened))
        return Chain(layers, list(opened.values()))
    except (ImageError, OSError):
        for f in opened.values():
            f.close()
        raise


def open_top(top: Path) -> Chain:
    """Open ``top`` and every image below it (following parent links)."""
    return open_chain([i.path for i in images.chain(top)])
