"""Open a VM disk (an image chain) as one ``BlockSource``."""

from __future__ import annotations

import itertools
import os
import struct
from collections.abc import Sequence
from pathlib import Path

from openflr.guestfs import images
from openflr.guestfs.blocks import Chain, Layer, OpenFile
from openflr.guestfs.errors import CorruptImageError, ImageError
from openflr.guestfs.formats import by_name


def open_layer(info: images.ImageInfo, files: dict[Path, OpenFile], key: Path | None = None) -> Layer:
    """The reader of one probed image file, by its format's plug-in (``files``: the chain's open files,
    by real path; the image's own file is added)."""
    key = images.real(info.path) if key is None else key
    if key not in files:
        files[key] = OpenFile(info.path)
    file = files[key]
    try:
        return by_name(info.format).open_layer(info, file, files)
    except ImageError:
        raise
    except struct.error as exc:
        raise CorruptImageError(str(info.path), f"truncated or damaged header ({exc})") from None
    except (ValueError, OverflowError, IndexError) as exc:
        raise CorruptImageError(str(info.path), f"damaged header ({exc})") from None


def open_chain(files: Sequence[Path]) -> Chain:
    """Open the images ``files`` (top layer first, base last) as one disk.

    The list comes from a scan that checked it; the files may have changed since, so every parent
    link is checked again, and extents must lie in the folder(s) of the chain's own files."""
    if not files:
        raise ValueError("a disk needs at least one image file")
    if len(files) > images.MAX_CHAIN_DEPTH:
        raise CorruptImageError(str(files[0]), f"backing chain deeper than {images.MAX_CHAIN_DEPTH} layers")
    opened: dict[Path, OpenFile] = {}
    layers: list[Layer] = []
    within = Path(os.path.commonpath([os.path.abspath(Path(f).parent) for f in files]))
    try:
        infos = [images.probe(p) for p in files]
        reals = [images.real(i.path) for i in infos]
        for (upper, lower), lower_real in zip(itertools.pairwise(infos), reals[1:], strict=True):
            if upper.parent is None or (
                upper.parent != lower.path and images.real(upper.parent) != lower_real
            ):
                raise CorruptImageError(str(upper.path), f"its parent is no longer {lower.path.name}")
        if infos[-1].parent is not None:
            raise CorruptImageError(str(infos[-1].path), "the chain's base now names a parent")
        for info, key in zip(infos, reals, strict=True):
            images.check_extents(info, within)
            layers.append(open_layer(info, opened, key))
        return Chain(layers, list(opened.values()))
    except BaseException:
        for layer in layers:
            layer.close()
        for f in opened.values():
            f.close()
        raise


def open_top(top: Path) -> Chain:
    """Open ``top`` and every image below it (following parent links)."""
    return open_chain([i.path for i in images.chain(top)])
