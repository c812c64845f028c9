"""Query types over the inventory (EM field names; docs/COMPATIBILITY.md) and the records they filter."""

from __future__ import annotations

from collections.abc import Sequence

from openflr.config import DatastoreSettings
from openflr.core.protection import (
    HierarchyRoot,
    Job,
    Protection,
    restore_point_id,
    restore_point_name,
    vm_ref,
)
from openflr.core.query import INT, STR, TIME, UID, QueryType, Record, enum
from openflr.inventory.model import BackupServer, Inventory, Replica, ReplicaPoint, stable_id

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
        "RestorePointId": UID,
        "RestorePointName": STR,
        "HierarchyObjRef": STR,
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
JOB = QueryType(
    "Job",
    {
        "UID": UID,
        "Name": STR,
        "Description": STR,
        "JobType": STR,
        "Platform": STR,
        "ScheduleConfigured": STR,
        "ScheduleEnabled": STR,
        "BackupServerUid": UID,
        "BackupServerName": STR,
    },
    default_sort="Name",
)
BACKUP = QueryType(
    "Backup",
    {
        "UID": UID,
        "Name": STR,
        "Platform": STR,
        "BackupType": STR,
        "JobUid": UID,
        "JobName": STR,
        "BackupServerUid": UID,
        "BackupServerName": STR,
    },
    default_sort="Name",
)
RESTORE_POINT = QueryType(
    "RestorePoint",
    {
        "UID": UID,
        "Name": STR,
        "CreationTime": TIME,
        "BackupUid": UID,
        "BackupName": STR,
        "BackupServerUid": UID,
        "BackupServerName": STR,
    },
    default_sort="CreationTime",
)
REPOSITORY = QueryType(
    "Repository",
    {"UID": UID, "Name": STR, "Kind": STR, "BackupServerUid": UID, "BackupServerName": STR},
    default_sort="Name",
    open=True,  # monitoring clients filter repositories by CreationTime, which they do not have
)
HIERARCHY_ROOT = QueryType(
    "HierarchyRoot",
    {"UID": UID, "Name": STR, "HostType": STR, "BackupServerUid": UID, "BackupServerName": STR},
    default_sort="Name",
)

# The other query types of EM, in the order its QueryResult lists their entities: openflr has none of
# these objects (no job runs, restores, cloud, agents or file shares), so each answers an empty result.
EMPTY_TYPES = (
    ("FailoverPlan", "FailoverPlans"),
    ("VAppRestorePoint", "VAppRestorePoints"),
    ("BackupJobSession", "BackupJobSessions"),
    ("ReplicaJobSession", "ReplicaJobSessions"),
    ("ReplicaTaskSession", "ReplicaTaskSessions"),
    ("RestoreSession", "RestoreSessions"),
    ("BackupTaskSession", "BackupTaskSessions"),
    ("ManagedServer", "ManagedServers"),
    ("EnterpriseRole", "EnterpiseRoles"),
    ("EnterpriseAccount", "EnterpiseAccounts"),
    ("WanAccelerator", "WanAccelerators"),
    ("CloudGateway", "CloudGateways"),
    ("CloudTenant", "CloudTenants"),
    ("CloudReplica", "CloudReplicas"),
    ("VCloudOrganizationConfig", "VCloudOrganizationConfigs"),
    ("BackupFile", "BackupFiles"),
    ("VSphereSelfServiceConfig", "VSphereSelfServiceConfigs"),
    ("CloudPublicIp", "CloudPublicIps"),
    ("CloudHardwarePlan", "CloudHardwarePlans"),
    ("CloudVmReplicaPoint", "CloudVmReplicaPoints"),
    ("AgentRestorePoint", "AgentRestorePoints"),
    ("AgentBackupJob", "AgentBackupJob"),
    ("CloudGatewayPool", "CloudGatewayPools"),
    ("CloudFailoverPlan", "CloudFailoverPlans"),
    ("ExternalRepository", "ExternalRepositories"),
    ("VlanConfiguration", "VlanConfigurations"),
    ("CloudFailoverSession", "CloudFailoverSessions"),
    ("AgentProtectionGroup", "AgentProtectionGroups"),
    ("DiscoveredComputer", "DiscoveredComputers"),
    ("FileServer", "FileServers"),
    ("NASJob", "NASJobs"),
    ("CdpReplica", "CdpReplicas"),
    ("CdpReplicaVm", "CdpReplicaVms"),
    ("CdpPolicy", "CdpPolicies"),
    ("CdpReplicaSession", "CdpReplicaSessions"),
    ("CdpReplicaTaskSession", "CdpReplicaTaskSessions"),
    ("VAppReplicaPoint", "VAppReplicaPoints"),
    ("VmCdpReplica", "VmCdpReplicas"),
    ("VAppCdpReplica", "VAppCdpReplicas"),
    ("VAppCdpReplicaVm", "VAppCdpReplicaVms"),
    ("SystemSession", "SystemSessions"),
)
EMPTY = {
    name.lower(): QueryType(name, {"UID": UID, "Name": STR}, default_sort="Name", open=True)
    for name, _plural in EMPTY_TYPES
}
SERVED = (VM_REPLICA_POINT, VM_RESTORE_POINT, REPLICA, BACKUP_SERVER, JOB, BACKUP, RESTORE_POINT, REPOSITORY)
QUERY_TYPES = {t.name.lower(): t for t in (*SERVED, HIERARCHY_ROOT, *EMPTY.values())}

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
        "BackupUid": stable_id("backup", replica.job_name),
        "BackupName": replica.job_name,
        "RestorePointId": restore_point_id(point),
        "RestorePointName": restore_point_name(point),
        "HierarchyObjRef": vm_ref(replica),
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


def _on_server(inv: Inventory, record: Record) -> Record:
    return {**record, "BackupServerUid": inv.server.id, "BackupServerName": inv.server.name}


def job_record(inv: Inventory, job: Job) -> Record:
    ran = "true" if job.replicas else "false"
    return _on_server(
        inv,
        {
            "UID": job.id,
            "Name": job.name,
            "Description": "",
            "JobType": "Replica",
            "Platform": job.platform,
            "ScheduleConfigured": ran,
            "ScheduleEnabled": ran,
            "_object": job,
        },
    )


def backup_record(inv: Inventory, job: Job) -> Record:
    return _on_server(
        inv,
        {
            "UID": job.backup_id,
            "Name": job.name,
            "Platform": job.platform,
            "BackupType": "Standard",
            "JobUid": job.id,
            "JobName": job.name,
            "_object": job,
        },
    )


def restore_point_record(inv: Inventory, job: Job, point: ReplicaPoint) -> Record:
    return _on_server(
        inv,
        {
            "UID": restore_point_id(point),
            "Name": restore_point_name(point),
            "CreationTime": point.created,
            "BackupUid": job.backup_id,
            "BackupName": job.name,
            "_object": (job, point),
        },
    )


def repository_record(inv: Inventory, store: DatastoreSettings) -> Record:
    uid = stable_id("repository", store.name)
    return _on_server(inv, {"UID": uid, "Name": store.name, "Kind": "Datastore", "_object": store})


def root_record(inv: Inventory, root: HierarchyRoot) -> Record:
    return _on_server(
        inv, {"UID": root.id, "Name": root.platform, "HostType": root.host_type, "_object": root}
    )


def records(prot: Protection, stores: Sequence[DatastoreSettings], qtype: QueryType) -> list[Record]:
    """The records of ``qtype`` the caller may see (``stores``: the datastores it may know of)."""
    inv = prot.inventory
    if qtype in (VM_REPLICA_POINT, VM_RESTORE_POINT):
        return [point_record(inv, r, p) for r in inv.replicas.values() for p in r.points]
    if qtype is REPLICA:
        return [replica_record(inv, r) for r in inv.replicas.values()]
    if qtype is BACKUP_SERVER:
        return [server_record(inv.server)]
    if qtype is JOB:
        return [job_record(inv, j) for j in prot.jobs]
    if qtype is BACKUP:
        return [backup_record(inv, j) for j in prot.jobs]
    if qtype is RESTORE_POINT:
        return [restore_point_record(inv, j, p) for j, _r, p in prot.restore_points()]
    if qtype is REPOSITORY:
        return [repository_record(inv, s) for s in stores]
    if qtype is HIERARCHY_ROOT:
        return [root_record(inv, r) for r in prot.roots()]
    return []
