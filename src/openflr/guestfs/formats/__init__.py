"""Image format plug-ins, one module each (see ``formats/base.py`` for what a plug-in is).

To add a format: write ``formats/<name>.py`` exporting ``FORMAT`` and list it in ``FORMATS``.
"""

from __future__ import annotations

from openflr.guestfs.formats import qcow2, raw, vhd, vhdx, vmdk
from openflr.guestfs.formats.base import ImageFormat

FORMATS: tuple[ImageFormat, ...] = (vhdx.FORMAT, vhd.FORMAT, qcow2.FORMAT, vmdk.FORMAT)
"""Every format but raw. The order matters twice: ``sniff`` tests run in it (the VHD footer before
the VMDK descriptor text), and the inventory scanner tries VM folder kinds in it (Hyper-V before KVM)."""

RAW = raw.FORMAT
"""What a file no format in ``FORMATS`` claims is read as."""

_BY_NAME = {f.name: f for f in (*FORMATS, RAW)}


def by_name(name: str) -> ImageFormat:
    """The format called ``name`` (``ImageInfo.format``); raw for a name no format has."""
    return _BY_NAME.get(name, RAW)
