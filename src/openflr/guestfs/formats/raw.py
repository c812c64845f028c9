"""Raw disk images: no header, every byte is the disk's. The format of any file no other format claims."""

from __future__ import annotations

from pathlib import Path

from openflr.guestfs.blocks import Layer, OpenFile, RawLayer
from openflr.guestfs.formats.base import Head, ImageFormat, ImageInfo


def read_info(h: Head) -> ImageInfo:
    """A raw image's virtual size is its file size."""
    return ImageInfo(h.path, "raw", h.size)


def open_layer(_info: ImageInfo, file: OpenFile, _files: dict[Path, OpenFile]) -> Layer:
    """The whole file, as it is."""
    return RawLayer(file)


FORMAT = ImageFormat(name="raw", extensions=(), magic=(), read_info=read_info, open_layer=open_layer)
