"""core/protection.py: jobs from the datastore configuration and the inventory, their backups,
restore points and hierarchy roots, and what a scoped caller sees of them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from openflr.config import DatastoreSettings
from openflr.core.protection import Protection, restore_point_id, restore_point_name, vm_ref
from openflr.errors import NotFoundError
from openflr.inventory.model import BackupServer, Inventory, Replica, ReplicaPoint

SERVER = BackupServer("s", "server", "", "1", 9392)


def replica(rid: str, datastore: str, job: str, platform: str = "VMware", points: int = 2) -> Replica:
    pts = tuple(
        ReplicaPoint(f"{rid}-p{n}", rid, datetime(2026, 11, 1 + n, 21, tzinfo=UTC), ()) for n in range(points)
    )
    return Replica(rid, datastore, job, f"{rid}_replica", rid, platform, Path("/x") / rid, pts)


STORES = [
    DatastoreSettings("a", Path("/a"), job="Nightly"),
    DatastoreSettings("b", Path("/b"), job="Nightly"),
    DatastoreSettings("c", Path("/c")),
    DatastoreSettings("d", Path("/d"), job="Spare"),
]


def inventory(*replicas: Replica) -> Inventory:
    inv = Inventory(SERVER)
    for r in replicas:
        inv.add(r)
    return inv


def test_jobs_group_datastores_by_job_name() -> None:
    inv = inventory(
        replica("fs01", "a", "Nightly"), replica("web", "b", "Nightly", "HyperV"), replica("db", "c", "c")
    )
    prot = Protection.of(STORES, inv, limited=False)
    assert [(j.name, j.datastores, [r.id for r in j.replicas]) for j in prot.jobs] == [
        ("c", ("c",), ["db"]),
        ("Nightly", ("a", "b"), ["fs01", "web"]),
        ("Spare", ("d",), []),  # configured explicitly, nothing replicated yet
    ]
    nightly = prot.job(f"urn:veeam:Job:{prot.jobs[1].id.upper()}")
    assert nightly.platform in ("HyperV", "VMware") and prot.backup(nightly.backup_id) is nightly
    assert len(prot.restore_points()) == 6
    with pytest.raises(NotFoundError):
        prot.job(nightly.backup_id)


def test_a_limited_caller_sees_jobs_of_its_vms_only() -> None:
    inv = inventory(replica("fs01", "a", "Nightly"))  # already cut to the caller's scope
    prot = Protection.of(STORES, inv, limited=True)
    assert [(j.name, j.datastores) for j in prot.jobs] == [("Nightly", ("a",))]


def test_restore_points_stand_for_replica_points() -> None:
    r = replica("fs01", "a", "Nightly", points=3)
    prot = Protection.of(STORES, inventory(r), limited=False)
    job, found, point = prot.restore_point(restore_point_id(r.points[1]))
    assert (job.name, found, point) == ("Nightly", r, r.points[1])
    with pytest.raises(NotFoundError):
        prot.restore_point(r.points[1].id)  # a VM point's own id is not a restore point's


@pytest.mark.parametrize(
    ("when", "name"),
    [
        (datetime(2026, 11, 1, 21, 0, tzinfo=UTC), "Nov  1 2026  9:00PM"),
        (datetime(2026, 1, 15, 0, 5, tzinfo=UTC), "Jan 15 2026 12:05AM"),
        (datetime(2026, 12, 31, 12, 59, tzinfo=UTC), "Dec 31 2026 12:59PM"),
        (datetime(2026, 10, 6, 13, 6, tzinfo=UTC), "Oct  6 2026  1:06PM"),
    ],
)
def test_restore_point_names_as_em_writes_them(when: datetime, name: str) -> None:
    assert restore_point_name(ReplicaPoint("p", "r", when, ())) == name


def test_hierarchy_roots_and_vm_refs() -> None:
    inv = inventory(
        replica("fs01", "a", "Nightly"),
        replica("web", "b", "Nightly", "HyperV"),
        replica("db", "c", "c", "KVM"),
    )
    prot = Protection.of(STORES, inv, limited=False)
    roots = prot.roots()
    assert [(r.platform, r.host_type) for r in roots] == [
        ("HyperV", "HvServer"),
        ("KVM", "KVM"),
        ("VMware", "VC"),
    ]
    vmware = prot.root(f"urn:veeam:HierarchyRoot:{roots[2].id}")
    ref = vm_ref(inv.replicas["fs01"])
    assert ref == f"urn:VMware:Vm:{vmware.id}.fs01"
    assert prot.vms(vmware, "FS*") == [inv.replicas["fs01"]] and prot.vms(vmware, "web") == []
    assert prot.vm(ref.upper()) is inv.replicas["fs01"]
    with pytest.raises(NotFoundError):
        prot.vm("urn:VMware:Vm:nope")
