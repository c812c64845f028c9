"""Disk-usage figures of the datastores and replicas, for the monitoring reports: what the replica
folders occupy, the virtual size of the VMs as last replicated, a datastore's capacity and free space.
Walking folders is blocking: run ``replica_bytes`` in a worker thread."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from openflr.config import DatastoreSettings
from openflr.inventory.model import Inventory

UNKNOWN_SIZE = -1
"""EM's Capacity/FreeSpace for a repository whose size it cannot tell."""


def replica_bytes(folders: list[Path]) -> int:
    """Bytes of the regular files under the replica folders, each file counted once; a folder that
    holds another replica's folder does not count that one twice."""
    own = {f.resolve() for f in folders}
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder in own:
        for root, dirs, files in os.walk(folder, onerror=lambda _e: None):
            here = Path(root)
            dirs[:] = [d for d in dirs if (here / d).resolve() not in own]
            for name in files:
                try:
                    st = os.stat(here / name, follow_symlinks=False)
                except OSError:
                    continue
                key = (st.st_dev, st.st_ino)
                if stat.S_ISREG(st.st_mode) and key not in seen:
                    seen.add(key)
                    total += st.st_size
    return total


def source_bytes(inv: Inventory) -> int:
    """Virtual size of each replica's newest disks: the size of the VMs as last replicated."""
    total = 0
    for replica in inv.replicas.values():
        if replica.points:
            newest = max(replica.points, key=lambda p: p.created)
            total += sum(d.virtual_size or 0 for d in newest.disks)
    return total


def datastore_space(path: Path) -> tuple[int, int]:
    """(capacity, free bytes) of the file system holding ``path``; ``UNKNOWN_SIZE`` for both when it
    cannot be read."""
    try:
        st = os.statvfs(path)
    except OSError:
        return UNKNOWN_SIZE, UNKNOWN_SIZE
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


@dataclass(frozen=True)
class DatastoreUsage:
    name: str
    capacity: int
    free: int
    replica_bytes: int
    """Bytes of the replica folders in it (of the VMs in the inventory given)."""


def datastore_usage(stores: Sequence[DatastoreSettings], inv: Inventory) -> list[DatastoreUsage]:
    """Capacity, free space and replica bytes of each datastore (blocking: walks the folders)."""
    usage = []
    for store in stores:
        capacity, free = datastore_space(store.path)
        folders = [r.folder for r in inv.replicas.values() if r.datastore == store.name]
        usage.append(DatastoreUsage(store.name, capacity, free, replica_bytes(folders)))
    return usage
