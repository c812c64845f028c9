"""Domain objects -> EM values (Ref and Entity representations with their links, docs/COMPATIBILITY.md)."""

from __future__ import annotations

from openflr.api.schema import Link, Value
from openflr.core.catalog_queries import POINT_ALGORITHM, POINT_TYPE, point_name
from openflr.core.families import PointFamily
from openflr.core.protection import job_id, restore_point_id, restore_point_name, vm_ref
from openflr.inventory.model import BackupServer, Inventory, Replica, ReplicaPoint


def urn(kind: str, ident: str) -> str:
    return f"urn:veeam:{kind}:{ident}"


def server_href(base: str, server: BackupServer) -> str:
    return f"{base}/backupServers/{server.id}"


def replica_href(base: str, replica: Replica) -> str:
    return f"{base}/replicas/{replica.id}"


# The two families of points (docs/COMPATIBILITY.md): every replica point is also served as a
# VmRestorePoint, so scripts written for backups restore from replicas unchanged.
POINT_KINDS = {
    PointFamily.REPLICA: ("vmReplicaPoints", "VmReplicaPoint"),
    PointFamily.RESTORE: ("vmRestorePoints", "VmRestorePoint"),
}


def point_href(base: str, point: ReplicaPoint, family: PointFamily = PointFamily.REPLICA) -> str:
    return f"{base}/{POINT_KINDS[family][0]}/{point.id}"


def server_up(base: str, server: BackupServer) -> Link:
    """The link up to the backup server, which every job, backup and replica carries."""
    return Link("Up", server_href(base, server), "BackupServerReference", server.name)


def _job_up(base: str, replica: Replica) -> Link:
    """A replica's link up to the replication job that made it."""
    return Link("Up", f"{base}/jobs/{job_id(replica.job_name)}", "JobReference", replica.job_name)


def _point_ups(
    base: str, inv: Inventory, replica: Replica, point: ReplicaPoint, family: PointFamily
) -> list[Link]:
    """Up links of a point: the server, the replica and, for a VmRestorePoint, its restore point."""
    ups = [server_up(base, inv.server)]
    if family is PointFamily.RESTORE:
        ups.append(
            Link(
                "Up",
                f"{base}/restorePoints/{restore_point_id(point)}",
                "RestorePointReference",
                restore_point_name(point),
            )
        )
    ups.append(Link("Up", replica_href(base, replica), "ReplicaReference", replica.vm_name))
    return ups


def server_ref(base: str, server: BackupServer) -> Value:
    href = server_href(base, server)
    return {
        "Type": "BackupServerReference",
        "Href": href,
        "Name": server.name,
        "UID": urn("BackupServer", server.id),
        "Links": [Link("Alternate", f"{href}?format=Entity", "BackupServer", server.name)],
    }


def server_entity(base: str, server: BackupServer) -> Value:
    href = server_href(base, server)
    return {
        "Type": "BackupServer",
        "Href": f"{href}?format=Entity",
        "Name": server.name,
        "UID": urn("BackupServer", server.id),
        "Description": server.description,
        "Port": server.port,
        "Version": server.version,
        "Links": [
            Link("Alternate", href, "BackupServerReference", server.name),
            Link("Down", f"{base}/replicas", "ReplicaReferenceList"),
        ],
    }


def replica_ref(base: str, inv: Inventory, replica: Replica) -> Value:
    href = replica_href(base, replica)
    return {
        "Type": "ReplicaReference",
        "Href": href,
        "Name": replica.vm_name,
        "UID": urn("Replica", replica.id),
        "Links": [
            server_up(base, inv.server),
            _job_up(base, replica),
            Link("Alternate", f"{href}?format=Entity", "Replica", replica.vm_name),
            Link("Down", f"{href}/vmReplicaPoints", "VmReplicaPointReferenceList"),
        ],
    }


def replica_entity(base: str, inv: Inventory, replica: Replica) -> Value:
    href = replica_href(base, replica)
    return {
        "Type": "Replica",
        "Href": f"{href}?format=Entity",
        "Name": replica.vm_name,
        "UID": urn("Replica", replica.id),
        "JobName": replica.job_name,
        "Platform": replica.platform,
        "Links": [
            server_up(base, inv.server),
            _job_up(base, replica),
            Link("Alternate", href, "ReplicaReference", replica.vm_name),
            Link("Down", f"{href}/vmReplicaPoints", "VmReplicaPointReferenceList"),
        ],
    }


def point_ref(
    base: str,
    inv: Inventory,
    replica: Replica,
    point: ReplicaPoint,
    family: PointFamily = PointFamily.REPLICA,
) -> Value:
    href = point_href(base, point, family)
    kind = POINT_KINDS[family][1]
    name = point_name(replica, point)
    return {
        "Type": f"{kind}Reference",
        "Href": href,
        "Name": name,
        "UID": urn(kind, point.id),
        "Links": [
            *_point_ups(base, inv, replica, point, family),
            Link("Alternate", f"{href}?format=Entity", kind, name),
        ],
    }


def point_entity(
    base: str,
    inv: Inventory,
    replica: Replica,
    point: ReplicaPoint,
    family: PointFamily = PointFamily.REPLICA,
) -> Value:
    href = point_href(base, point, family)
    kind = POINT_KINDS[family][1]
    name = point_name(replica, point)
    return {
        "Type": kind,
        "Href": f"{href}?format=Entity",
        "Name": name,
        "UID": urn(kind, point.id),
        "VmDisplayName": replica.display_name,
        "Links": [
            *_point_ups(base, inv, replica, point, family),
            Link("Alternate", href, f"{kind}Reference", name),
            Link("Down", f"{href}/mounts", f"{kind}MountList"),
            Link("Create", f"{href}/mounts", f"{kind}Mount"),
        ],
        "CreationTimeUTC": point.created,
        "VmName": replica.display_name,
        "Algorithm": POINT_ALGORITHM,
        "PointType": POINT_TYPE,
        "HierarchyObjRef": vm_ref(replica) if family is PointFamily.RESTORE else None,
    }
