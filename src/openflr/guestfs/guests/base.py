"""What every guest plug-in works with: the opened volumes of a point and the roots it names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from openflr.guestfs.filesystems.base import FileSystem
from openflr.guestfs.volumes import Volume

Opened = list[tuple[Volume, FileSystem | None, str | None]]
"""Each volume of a point with its file system (None when it cannot be read, with the reason)."""


@dataclass
class Root:
    name: str
    """``C:``, ``Volume$2:``, ``data:``, ``/`` or ``/srv``."""
    volume: Volume
    fs: FileSystem | None
    problem: str | None = None
    mount: tuple[str, ...] | None = None
    """Mount point parts in the Linux tree (``()`` for ``/``), None for a drive-style root."""

    @property
    def drive_style(self) -> bool:
        return self.mount is None


Guest = Callable[[Opened, str, list[str]], tuple[list[Root], bool] | None]
"""``guest(opened, os_hint, notes)``: the roots (and whether they form one Linux-style tree), or
None when the volumes are not this guest's; things left out are told in ``notes``."""


def volume_label(index: int) -> str:
    """The root name of a volume that has no better one: ``Volume$N:``."""
    return f"Volume${index}:"
