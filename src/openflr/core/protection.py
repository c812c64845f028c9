"""What protects the replicas, in EM's terms: replication jobs, their backups and restore points,
and the platforms (hierarchy roots) the VMs live on.

openflr reads datastores, not a backup server's database, so all of this is derived from the
configuration and the scanned inventory (docs/COMPATIBILITY.md, "Jobs, backups and restore points"):

- a **job** is a datastore's configured replication job (``[[datastores]] job``; a datastore without
  one is its own job, as the replicas' ``JobName`` already shows). Datastores naming the same job
  make one job. A job is listed when it protects a visible replica, or, for users without a
  restore scope, whenever it is configured explicitly;
- each job keeps its replica metadata in one **backup** (as a Veeam server does for replication
  jobs), named after the job;
- each replica point is one **restore point** of that backup holding exactly one VM restore point:
  the replica point itself, under the same id as in ``/vmRestorePoints``;
- each platform the visible replicas run on (``VMware``, ``HyperV``, ``KVM``, ...) is one
  **hierarchy root**, and each replica's source VM is one ``Vm`` object under it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from openflr.config import DatastoreSettings
from openflr.errors import NotFoundError
from openflr.inventory.model import Inventory, Replica, ReplicaPoint, stable_id

HOST_TYPES = {"VMware": "VC", "HyperV": "HvServer"}
"""EM ``HostType`` of a platform's hierarchy root; other platforms use their own name."""


def bare(ident: str) -> str:
    """``urn:veeam:Job:<guid>`` or ``<GUID>`` -> ``<guid>``."""
    return ident.strip().rsplit(":", 1)[-1].lower()


@dataclass(frozen=True)
class Job:
    name: str
    datastores: tuple[str, ...]
    replicas: tuple[Replica, ...]
    explicit: bool
    """Configured with ``job =`` (not just named after its datastore)."""

    @property
    def id(self) -> str:
        return job_id(self.name)

    @property
    def backup_id(self) -> str:
        return stable_id("backup", self.name)

    @property
    def platform(self) -> str:
        """The platform of most of its replicas (EM jobs have one); empty without replicas."""
        counts: dict[str, int] = {}
        for r in self.replicas:
            counts[r.platform] = counts.get(r.platform, 0) + 1
        return max(sorted(counts), key=lambda p: counts[p]) if counts else ""

    def points(self) -> list[tuple[Replica, ReplicaPoint]]:
        """Every point of the job's replicas, oldest first."""
        pairs = [(r, p) for r in self.replicas for p in r.points]
        return sorted(pairs, key=lambda rp: (rp[1].created, rp[1].id))


def restore_point_id(point: ReplicaPoint) -> str:
    return stable_id("restorePoint", point.id)


@dataclass(frozen=True)
class HierarchyRoot:
    platform: str

    @property
    def id(self) -> str:
        return stable_id("hierarchyRoot", self.platform)

    @property
    def host_type(self) -> str:
        return HOST_TYPES.get(self.platform, self.platform)


def vm_ref(replica: Replica) -> str:
    """The ``HierarchyObjRef`` of a replica's source VM: ``urn:<platform>:Vm:<root>.<vm>``."""
    return f"urn:{replica.platform}:Vm:{HierarchyRoot(replica.platform).id}.{replica.id}"


def _by_name(item: tuple[str, object]) -> str:
    return item[0].casefold()


@dataclass(frozen=True)
class Protection:
    """The jobs, backups, restore points and hierarchy roots one caller may see."""

    inventory: Inventory
    jobs: tuple[Job, ...]

    @classmethod
    def of(cls, stores: Sequence[DatastoreSettings], inv: Inventory, limited: bool) -> Protection:
        by_name: dict[str, tuple[list[str], list[Replica], bool]] = {}
        for store in stores:
            name = store.job or store.name
            entry = by_name.setdefault(name, ([], [], False))
            by_name[name] = (entry[0] + [store.name], entry[1], entry[2] or bool(store.job))
        for replica in sorted(inv.replicas.values(), key=lambda r: (r.vm_name.casefold(), r.id)):
            entry = by_name.setdefault(replica.job_name, ([replica.datastore], [], False))
            entry[1].append(replica)
        if limited:  # name only the datastores that hold a VM the caller may see
            by_name = {
                n: ([s for s in st if any(r.datastore == s for r in rs)], rs, ex)
                for n, (st, rs, ex) in by_name.items()
            }
        jobs = tuple(
            Job(name, tuple(stores_), tuple(replicas), explicit)
            for name, (stores_, replicas, explicit) in sorted(by_name.items(), key=_by_name)
            if replicas or (explicit and not limited)
        )
        return cls(inv, jobs)

    def job(self, ident: str) -> Job:
        wanted = bare(ident)
        for job in self.jobs:
            if job.id == wanted:
                return job
        raise NotFoundError(f"Job {ident!r} does not exist.")

    def backup(self, ident: str) -> Job:
        wanted = bare(ident)
        for job in self.jobs:
            if job.backup_id == wanted:
                return job
        raise NotFoundError(f"Backup {ident!r} does not exist.")

    @cached_property
    def _points(self) -> dict[str, tuple[Job, Replica, ReplicaPoint]]:
        return {restore_point_id(p): (j, r, p) for j in self.jobs for r, p in j.points()}

    def restore_points(self) -> list[tuple[Job, Replica, ReplicaPoint]]:
        return sorted(self._points.values(), key=lambda jrp: (jrp[2].created, jrp[2].id))

    def restore_point(self, ident: str) -> tuple[Job, Replica, ReplicaPoint]:
        found = self._points.get(bare(ident))
        if found is None:
            raise NotFoundError(f"Restore point {ident!r} does not exist.")
        return found

    # --- hierarchy ---------------------------------------------------------------------------------

    def roots(self) -> list[HierarchyRoot]:
        return [HierarchyRoot(p) for p in sorted({r.platform for r in self.inventory.replicas.values()})]

    def root(self, ident: str) -> HierarchyRoot:
        wanted = bare(ident)
        for root in self.roots():
            if root.id == wanted:
                return root
        raise NotFoundError(f"Hierarchy root {ident!r} does not exist.")

    def vms(self, root: HierarchyRoot, name: str = "*") -> list[Replica]:
        """The source VMs under ``root`` whose name matches ``name`` (``*``/``?`` wildcards, any case)."""
        pattern = (name or "*").casefold()
        found = [
            r
            for r in self.inventory.replicas.values()
            if r.platform == root.platform and fnmatch.fnmatchcase(r.display_name.casefold(), pattern)
        ]
        return sorted(found, key=lambda r: (r.display_name.casefold(), r.id))

    def vm(self, ref: str) -> Replica:
        """The replica whose source VM has the ``HierarchyObjRef`` ``ref``."""
        for replica in self.inventory.replicas.values():
            if vm_ref(replica).lower() == ref.strip().lower():
                return replica
        raise NotFoundError(f"Hierarchy object {ref!r} does not exist.")


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def restore_point_name(point: ReplicaPoint) -> str:
    """EM's restore point name, its server's short date (UTC here): ``Oct  6 2025  1:06PM``."""
    t = point.created
    hour = t.hour % 12 or 12
    half = "AM" if t.hour < 12 else "PM"
    return f"{_MONTHS[t.month - 1]} {t.day:>2} {t.year} {hour:>2}:{t.minute:02d}{half}"


def job_id(name: str) -> str:
    return stable_id("job", name)
