"""What a datastore scan finds: replicas (one per replicated VM), their points and disk chains."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from openflr.config import GuestAccess

# Every id openflr derives is a UUIDv5 under this namespace, so ids survive restarts and rescans.
ID_NAMESPACE = uuid.UUID("5b0e4f7a-6c1d-4e2f-9a3b-8c7d6e5f4a3b")


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, "\x1f".join(parts)))


@dataclass(frozen=True)
class DiskChain:
    """One VM disk as of one point: image files from the point's layer down to the base."""

    node: str
    """Where the disk hangs in the VM (``scsi0:0``, ``disk0``)."""
    files: tuple[Path, ...]
    format: str
    virtual_size: int | None


@dataclass(frozen=True)
class ReplicaPoint:
    id: str
    replica_id: str
    created: datetime
    """Creation time, UTC."""
    disks: tuple[DiskChain, ...]
    label: str = ""
    """The snapshot's or checkpoint's own name, where the platform has one."""


@dataclass(frozen=True)
class Replica:
    id: str
    datastore: str
    job_name: str
    vm_name: str
    """The replica VM's own name (``fs01_replica``)."""
    display_name: str
    """The source VM's name (``fs01``): what EM shows as ``VmDisplayName``."""
    platform: str
    """``VMware``, ``HyperV``, ``KVM`` or what a manifest declares."""
    folder: Path
    points: tuple[ReplicaPoint, ...]
    os_kind: str = ""
    """``Windows`` / ``Linux`` when the configuration says so; empty when unknown."""
    guest: GuestAccess | None = field(default=None, hash=False, compare=False)
    """Restore targets and credentials from the VM's manifest (the datastore config's win)."""


@dataclass(frozen=True)
class Problem:
    datastore: str
    folder: Path
    message: str


@dataclass(frozen=True)
class BackupServer:
    id: str
    name: str
    description: str
    version: str
    port: int


@dataclass
class Inventory:
    """One consistent scan result; replaced whole on every rescan (never mutated once published)."""

    server: BackupServer
    replicas: dict[str, Replica] = field(default_factory=dict)
    points: dict[str, ReplicaPoint] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    scanned_at: datetime | None = None

    def add(self, replica: Replica) -> None:
        self.replicas[replica.id] = replica
        for point in replica.points:
            self.points[point.id] = point
