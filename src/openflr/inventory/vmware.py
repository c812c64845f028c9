"""VMware VM folders: ``.vmx`` for the name, ``.vmsd`` for the snapshots (= replica points)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path, PureWindowsPath

from openflr.inventory.model import DiskChain, ReplicaPoint, stable_id
from openflr.inventory.points import ScanContext, ScanError

_LINE_RE = re.compile(r'^\s*([A-Za-z0-9_.:\-]+)\s*=\s*"(.*)"\s*$')
_ESCAPE_RE = re.compile(r"\|([0-9A-Fa-f]{2})")
_SNAPSHOT_RE = re.compile(r"^snapshot(\d+)\.uid$")


def parse_dictionary(text: str) -> dict[str, str]:
    """VMware's ``key = "value"`` files (.vmx, .vmsd); keys lower-cased, ``|22``-style escapes decoded."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _LINE_RE.match(line)
        if m:
            out[m.group(1).lower()] = _ESCAPE_RE.sub(lambda e: chr(int(e.group(1), 16)), m.group(2))
    return out


def _read(path: Path) -> dict[str, str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ScanError(f"{path.name} not found") from None
    except OSError as exc:
        raise ScanError(f"{path.name}: {exc.strerror}") from None
    if len(data) > 4 * 1024 * 1024:
        raise ScanError(f"{path.name} is too large to be a VMware configuration file")
    return parse_dictionary(data.decode("utf-8", "replace"))


def _disk_file(folder: Path, name: str) -> Path:
    """A disk named by a .vmsd: relative to the VM folder, or an ESXi/Windows absolute path whose
    file now sits in the VM folder (replicas are read from a copy or an export of the datastore)."""
    if "\\" in name or re.match(r"^[A-Za-z]:", name):
        return folder / PureWindowsPath(name).name
    p = Path(name)
    if p.is_absolute():
        return p if p.exists() else folder / p.name
    return folder / p


def _int(snaps: dict[str, str], key: str, vmsd: Path) -> int:
    try:
        return int(snaps[key])
    except KeyError:
        raise ScanError(f"{vmsd.name}: {key} is missing") from None
    except ValueError:
        raise ScanError(f"{vmsd.name}: {key} is not a number ({snaps[key]!r})") from None


def scan(ctx: ScanContext, folder: Path, vmx: Path) -> tuple[str, list[ReplicaPoint]]:
    """Return the VM's name (``displayName``) and its points, one per snapshot in the .vmsd."""
    config = _read(vmx)
    vm_name = config.get("displayname", "").strip() or vmx.stem
    vmsd = folder / (vmx.stem + ".vmsd")
    if not vmsd.exists():
        candidates = sorted(folder.glob("*.vmsd"))
        if not candidates:
            return vm_name, []
        vmsd = candidates[0]
    snaps = _read(vmsd)
    replica_id = ctx.replica_id(folder, vmx.name)
    points = []
    for key in sorted(snaps):
        m = _SNAPSHOT_RE.match(key)
        if not m:
            continue
        p = f"snapshot{m.group(1)}."
        uid = snaps[key]
        high = _int(snaps, p + "createtimehigh", vmsd)
        low = _int(snaps, p + "createtimelow", vmsd) & 0xFFFFFFFF
        micros = (high << 32) | low
        try:
            created = datetime.fromtimestamp(micros / 1_000_000, UTC).replace(microsecond=micros % 1_000_000)
        except (OverflowError, ValueError, OSError):
            raise ScanError(f"{vmsd.name}: snapshot {uid} has an impossible creation time") from None
        disks = []
        for d in range(_int(snaps, p + "numdisks", vmsd)):
            name = snaps.get(f"{p}disk{d}.filename")
            if not name:
                raise ScanError(f"{vmsd.name}: snapshot {uid} lists no file for disk {d}")
            top = _disk_file(folder, name)
            chain = ctx.chain(top)
            disks.append(
                DiskChain(
                    snaps.get(f"{p}disk{d}.node", f"disk{d}"),
                    tuple(i.path for i in chain),
                    "vmdk",
                    chain[0].virtual_size,
                )
            )
        point_id = stable_id("point", replica_id, "vmware", uid, str(micros))
        points.append(
            ReplicaPoint(point_id, replica_id, created, tuple(disks), snaps.get(p + "displayname", ""))
        )
    return vm_name, sorted(points, key=lambda pt: pt.created)
