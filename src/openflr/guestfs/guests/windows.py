"""Windows guests: drive-style roots, the letters the guest's own registry assigns
(``SYSTEM\\MountedDevices`` on the system volume), ``C:`` for the system volume at least,
``Volume$N:`` for volumes without a letter."""

from __future__ import annotations

import logging
import re
import struct
import uuid

from openflr.guestfs.errors import VolumeError
from openflr.guestfs.filesystems.base import FileReader, FileSystem
from openflr.guestfs.guests.base import Opened, Root, volume_label
from openflr.guestfs.volumes import Volume

log = logging.getLogger(__name__)

_DRIVE_RE = re.compile(r"^[A-Za-z]:$")


def roots(opened: Opened, os_hint: str, notes: list[str]) -> tuple[list[Root], bool] | None:
    """Drive-style roots when a volume holds ``Windows/System32`` (or the hint says Windows)."""
    system = _system_volume(opened)
    if system is None and os_hint.lower() != "windows":
        return None
    return _windows_roots(opened, system, notes), False


def _system_volume(opened: Opened) -> Volume | None:
    for v, fs, _ in opened:
        if fs is not None and fs.kind == "ntfs":
            try:
                node = fs.lookup(["Windows", "System32"])
                if node is not None and fs.stat(node).is_dir:
                    return v
            except VolumeError as exc:
                log.warning("volume %d: %s", v.index, exc)
    return None


def _windows_roots(opened: Opened, system: Volume | None, notes: list[str]) -> list[Root]:
    letters: dict[int, str] = {}
    if system is not None:
        fs = next(f for v, f, _ in opened if v is system)
        assert fs is not None
        letters = _registry_letters(fs, [v for v, _, _ in opened], notes)
        if system.index not in letters and "C:" not in letters.values():
            letters[system.index] = "C:"
    roots = []
    for v, fs, problem in opened:
        name = letters.get(v.index) or volume_label(v.index)
        roots.append(Root(name, v, fs, problem))
    return sorted(
        roots,
        key=lambda r: (
            not _DRIVE_RE.match(r.name),
            r.name.upper() if _DRIVE_RE.match(r.name) else f"{r.volume.index:05d}",
        ),
    )


def _registry_letters(fs: FileSystem, volumes: list[Volume], notes: list[str]) -> dict[int, str]:
    """Volume index -> drive letter from ``SYSTEM\\MountedDevices`` of the system volume."""
    try:
        import pyregf
    except ImportError:  # pragma: no cover - a declared dependency
        return {}
    try:
        with fs.lock:
            node = fs.lookup(["Windows", "System32", "config", "SYSTEM"])
            if node is None:
                return {}
            reader = fs.open(node)
    except VolumeError as exc:
        notes.append(f"drive letters could not be read from the guest registry: {exc}")
        return {}
    hive = pyregf.file()
    try:
        hive.open_file_object(_ReaderFile(reader))
    except OSError as exc:
        # A damaged or encrypted hive costs the drive letters only, never the mount.
        notes.append(f"drive letters could not be read from the guest registry: {str(exc).splitlines()[0]}")
        return {}
    try:
        key = hive.get_key_by_path("MountedDevices")
        if key is None:
            return {}
        out: dict[int, str] = {}
        for i in range(key.number_of_values):
            value = key.get_value(i)
            name = value.name or ""
            if not name.upper().startswith("\\DOSDEVICES\\") or not _DRIVE_RE.match(name[12:]):
                continue
            data = value.data or b""
            match = _volume_for(data, volumes)
            if match is not None:
                out.setdefault(match.index, name[12:].upper())
        return out
    except OSError as exc:
        notes.append(f"drive letters could not be read from the guest registry: {str(exc).splitlines()[0]}")
        return {}
    finally:
        hive.close()


def _volume_for(data: bytes, volumes: list[Volume]) -> Volume | None:
    if data.startswith(b"DMIO:ID:") and len(data) >= 24:
        guid = str(uuid.UUID(bytes_le=data[8:24]))
        return next((v for v in volumes if v.part_guid == guid), None)
    if len(data) == 12:
        signature, offset = struct.unpack("<IQ", data)
        return next((v for v in volumes if v.disk_signature == signature and v.start == offset), None)
    return None


class _ReaderFile:
    """File-object view of a guest file (for libregf)."""

    def __init__(self, reader: FileReader) -> None:
        self.reader = reader
        self.pos = 0
        self.size: int = reader.size

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self.size - self.pos
        data = self.reader.pread(size, self.pos)
        self.pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else self.pos + offset if whence == 1 else self.size + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def get_size(self) -> int:
        return self.size
