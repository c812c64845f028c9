"""Query types over the inventory (EM field names; docs/COMPATIBILITY.md) and the records they filter."""

from __future__ import annotations

from openflr.core.query import INT, STR, TIME, UID, QueryType, Record, enum
from openflr.inventory.model import BackupServer, Inventory, Replica, ReplicaPoint

ALGORITHMS = ("Full", "ReversedIncremental", "Incremental", "SyntheticFull")

VM_REPLICA_POINT = QueryType(
    "VmReplicaPoint",
    {
        "UID": UID,
        "Name": STR,
        "CreationTime": TIME,
        "Type": STR,
        "Algorithm": enum(*ALGORITHMS),
        "ReplicaUid": UID,
        "ReplicaName": STR,
        "VmDisplayName": STR,
        "VmName": STR,
        "BackupServerUid": UID,
        "BackupServerName": STR,
    },
    default_sort="CreationTime",
)
VM_RESTORE_POINT = QueryType(
    "VmRestorePoint",
    {
        **VM_REPLICA_POINT.fields,
        # A replica point served as a restore point: its "backup" is the replica and its job.
        "BackupUid": UID,
        "BackupName": STR,
    },
    default_sort="CreationTime",
)
REPLICA = QueryType(
    "Replica",
    {
        "UID": UID,
        "Name": STR,
        "Platform": STR,
        "JobName": STR,
        "VmDisplayName": STR,
        "BackupServerUid": UID,
        "BackupServerName": STR,
    },
    default_sort="Name",
)
BACKUP_SERVER = QueryType(
    "BackupServer",
    {"UID": UID, "Name": STR, "Description": STR, "Port": INT, "Version": STR},
    default_sort="Name",
)
QUERY_TYPES = {t.name.lower(): t for t in (VM_REPLICA_POINT, VM_RESTORE_POINT, REPLICA, BACKUP_SERVER)}

POINT_ALGORITHM = "Full"
POINT_TYPE = "Snapshot"


def point_name(replica: Replica, point: ReplicaPoint) -> str:
    """EM's ``<vm>@<yyyy-MM-dd HH:mm:ss>`` (UTC)."""
    return f"{replica.display_name}@{point.created:%Y-%m-%d %H:%M:%S}"


def point_record(inv: Inventory, replica: Replica, point: ReplicaPoint) -> Record:
    return {
        "UID": point.id,
        "Name": point_name(replica, point),
        "CreationTime": point.created,
        "Type": POINT_TYPE,
        "Algorithm": POINT_ALGORITHM,
        "ReplicaUid": replica.id,
        "ReplicaName": replica.vm_name,
        "VmDisplayName": replica.display_name,
        "VmName": replica.display_name,
        "BackupServerUid": inv.server.id,
        "BackupServerName": inv.server.name,
        "BackupUid": replica.id,
        "BackupName": replica.job_name,
        "_object": point,
    }


def replica_record(inv: Inventory, replica: Replica) -> Record:
    return {
        "UID": replica.id,
        "Name": replica.vm_name,
        "Platform": replica.platform,
        "JobName": replica.job_name,
        "VmDisplayName": replica.display_name,
        "BackupServerUid": inv.server.id,
        "BackupServerName": inv.server.name,
        "_object": replica,
    }


def server_record(server: BackupServer) -> Record:
    return {
        "UID": server.id,
        "Name": server.name,
        "Description": server.description,
        "Port": server.port,
        "Version": server.version,
        "_object": server,
    }


def records(inv: Inventory, qtype: QueryType) -> list[Record]:
    if qtype in (VM_REPLICA_POINT, VM_RESTORE_POINT):
        return [point_record(inv, r, p) for r in inv.replicas.values() for p in r.points]
    if qtype is REPLICA:
        return [replica_record(inv, r) for r in inv.replicas.values()]
    return [server_record(inv.server)]
