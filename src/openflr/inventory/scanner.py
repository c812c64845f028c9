"""Walk the configured datastores, recognise VM folders by layout, and build an ``Inventory``.

A folder is a VM folder when it holds (first match wins) an ``openflr-vm.toml`` manifest, a ``.vmx``
(VMware), or the images of a format whose plug-in names a VM folder kind (``ImageFormat.folder``), in
the plug-ins' order: ``.vhdx``/``.avhdx``/``.vhd``/``.avhd`` disks directly or under ``Virtual Hard
Disks`` (Hyper-V), then ``.qcow2`` images (KVM). A VM folder that cannot be used is reported with the
reason and skipped; the scan itself never aborts.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from openflr import __version__
from openflr.config import DatastoreSettings, Settings
from openflr.guestfs.errors import ImageError
from openflr.guestfs.formats import FORMATS
from openflr.guestfs.formats.base import Folder
from openflr.inventory import manifest, vmware
from openflr.inventory.model import BackupServer, Inventory, Problem, Replica, ReplicaPoint, stable_id
from openflr.inventory.points import ScanContext, ScanError, layered_points

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""``progress(folder, done, total)`` during a scan."""


def backup_server(settings: Settings) -> BackupServer:
    name = settings.inventory.server_name or socket.getfqdn() or "openflr"
    return BackupServer(
        id=stable_id("backupserver", name),
        name=name,
        description=f"openflr {__version__}",
        version=__version__,
        port=settings.server.port,
    )


def _layered_kinds() -> dict[str, tuple[Folder, tuple[str, ...]]]:
    """Folder kind -> (its layout, the file name endings of its images), in the format plug-ins' order."""
    out: dict[str, tuple[Folder, tuple[str, ...]]] = {}
    for fmt in FORMATS:
        if fmt.folder is not None:
            layout, exts = out.get(fmt.folder.kind, (fmt.folder, ()))
            out[fmt.folder.kind] = (layout, exts + fmt.extensions)
    return out


LAYERED = _layered_kinds()
"""VM folders whose snapshots are plain backing chains: ``hyperv`` and ``qcow2``."""


def _files(folder: Path, exts: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in exts and p.is_file())


def classify(folder: Path) -> tuple[str, Path | None] | None:
    """What kind of VM folder ``folder`` is, with the file that says so."""
    try:
        names = {p.name: p for p in folder.iterdir()}
    except OSError:
        return None
    if manifest.FILE_NAME in names:
        return "manifest", names[manifest.FILE_NAME]
    vmx = sorted(p for n, p in names.items() if n.lower().endswith(".vmx") and p.is_file())
    if vmx:
        return "vmware", vmx[0]
    for kind, (layout, exts) in LAYERED.items():
        sub = layout.subfolder.lower()
        disks = next((p for n, p in names.items() if sub and n.lower() == sub and p.is_dir()), None)
        if disks is not None and _files(disks, exts):
            return kind, disks
        if any(n.lower().endswith(exts) for n in names):
            return kind, folder
    return None


def vm_folders(root: Path, max_depth: int) -> Iterator[tuple[Path, str, Path | None]]:
    """Breadth-first walk below ``root``; VM folders are not descended into."""
    level = [root]
    seen: set[tuple[int, int]] = set()
    for depth in range(max_depth + 1):
        nxt: list[Path] = []
        for folder in level:
            try:
                st = folder.stat()
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            kind = classify(folder) if folder != root else None
            if kind is not None:
                yield folder, kind[0], kind[1]
                continue
            if depth == max_depth:
                continue
            try:
                nxt += sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError as exc:
                log.warning("cannot list %s: %s", folder, exc)
        level = nxt


def scan_folder(ctx: ScanContext, folder: Path, kind: str, marker: Path | None) -> Replica:
    store = ctx.datastore
    os_kind = ""
    points: list[ReplicaPoint]
    access = None
    if kind == "manifest":
        meta, points, access = manifest.scan(ctx, folder)
        vm_name, display, platform, os_kind = meta["replica_name"], meta["name"], meta["platform"], meta["os"]
        replica_id = ctx.replica_id(folder)
    elif kind == "vmware":
        assert marker is not None
        vm_name, points = vmware.scan(ctx, folder, marker)
        display, platform = _source_name(vm_name, store), "VMware"
        replica_id = ctx.replica_id(folder, marker.name)
    else:
        assert marker is not None
        layout, exts = LAYERED[kind]
        points = layered_points(ctx, folder, _files(marker, exts), kind)
        vm_name = folder.name
        display, platform = _source_name(vm_name, store), layout.platform
        replica_id = ctx.replica_id(folder)
    return Replica(
        id=replica_id,
        datastore=store.name,
        job_name=store.job or store.name,
        vm_name=vm_name,
        display_name=display,
        platform=platform,
        folder=folder,
        points=tuple(points),
        os_kind=os_kind,
        guest=access,
    )


def _source_name(vm_name: str, store: DatastoreSettings) -> str:
    suffix = store.replica_suffix
    if suffix and vm_name.endswith(suffix) and len(vm_name) > len(suffix):
        return vm_name[: -len(suffix)]
    return vm_name


def scan(settings: Settings, progress: Progress | None = None) -> Inventory:
    """Scan every configured datastore. Never raises for a bad datastore or VM folder."""
    inventory = Inventory(server=backup_server(settings))
    work: list[tuple[DatastoreSettings, Path, str, Path | None]] = []
    for store in settings.datastores:
        if not store.path.is_dir():
            inventory.problems.append(
                Problem(store.name, store.path, "datastore folder not found or not a folder")
            )
            continue
        if not os.access(store.path, os.R_OK | os.X_OK):
            inventory.problems.append(Problem(store.name, store.path, "datastore folder is not readable"))
            continue
        work += [(store, f, k, m) for f, k, m in vm_folders(store.path, settings.inventory.max_depth)]
    contexts: dict[str, ScanContext] = {}
    for done, (store, folder, kind, marker) in enumerate(work):
        if progress is not None:
            progress(str(folder), done, len(work))
        ctx = contexts.setdefault(store.name, ScanContext(store))
        try:
            replica = scan_folder(ctx, folder, kind, marker)
        except (ScanError, ImageError) as exc:
            inventory.problems.append(Problem(store.name, folder, str(exc)))
            log.warning("skipped VM folder %s: %s", folder, exc)
            continue
        except OSError as exc:
            inventory.problems.append(
                Problem(store.name, folder, f"{exc.filename or folder}: {exc.strerror}")
            )
            log.warning("skipped VM folder %s: %s", folder, exc)
            continue
        except Exception as exc:  # a hostile folder must not stop the scan of the others
            inventory.problems.append(Problem(store.name, folder, f"cannot be read ({type(exc).__name__})"))
            log.exception("skipped VM folder %s", folder)
            continue
        if replica.id in inventory.replicas:
            inventory.problems.append(Problem(store.name, folder, "duplicate VM folder identity; skipped"))
            continue
        inventory.add(replica)
    if progress is not None:
        progress("", len(work), len(work))
    inventory.scanned_at = datetime.now(UTC)
    return inventory
