"""Jobs, backups, restore points and hierarchy roots -> EM values (Ref and Entity, with their links)."""

from __future__ import annotations

from openflr.api.inventoryvalues import replica_href, server_up, urn
from openflr.api.schema import Link, Value
from openflr.core.protection import HierarchyRoot, Job, restore_point_id, restore_point_name, vm_ref
from openflr.inventory.model import BackupServer, Replica, ReplicaPoint, stable_id

JOB_TYPE = "Replica"
BACKUP_TYPE = "Standard"


def job_href(base: str, job: Job) -> str:
    return f"{base}/jobs/{job.id}"


def backup_href(base: str, job: Job) -> str:
    return f"{base}/backups/{job.backup_id}"


def restore_point_href(base: str, point: ReplicaPoint) -> str:
    return f"{base}/restorePoints/{restore_point_id(point)}"


def root_href(base: str, root: HierarchyRoot) -> str:
    return f"{base}/hierarchyRoots/{root.id}"


def _repositories(base: str, job: Job) -> list[Link]:
    return [
        Link("Up", f"{base}/repositories/{stable_id('repository', name)}", "RepositoryReference", name)
        for name in job.datastores
    ]


# --- jobs ----------------------------------------------------------------------------------------------


def job_ref(base: str, server: BackupServer, job: Job) -> Value:
    href = job_href(base, job)
    return {
        "Type": "JobReference",
        "Href": href,
        "Name": job.name,
        "UID": urn("Job", job.id),
        "Links": [server_up(base, server), Link("Alternate", f"{href}?format=Entity", "Job", job.name)],
    }


def _description(job: Job) -> str:
    where = ", ".join(job.datastores)
    return f"Replication job; its replicas are in datastore{'s' if len(job.datastores) > 1 else ''} {where}."


def job_entity(base: str, server: BackupServer, job: Job) -> Value:
    href = job_href(base, job)
    links = [
        server_up(base, server),
        Link("Alternate", href, "JobReference", job.name),
        Link("Down", f"{href}/backupSessions", "BackupJobSessionReferenceList"),
        Link("Down", backup_href(base, job), "BackupReference", job.name),
        *(Link("Down", replica_href(base, r), "ReplicaReference", r.vm_name) for r in job.replicas),
    ]
    ran = bool(job.replicas)
    return {
        "Type": "Job",
        "Href": f"{href}?format=Entity",
        "Name": job.name,
        "UID": urn("Job", job.id),
        "Links": links,
        "JobType": JOB_TYPE,
        "Platform": job.platform or None,
        "Description": _description(job),
        "ScheduleConfigured": ran,
        "ScheduleEnabled": ran,
    }


# --- backups -------------------------------------------------------------------------------------------


def backup_ref(base: str, server: BackupServer, job: Job) -> Value:
    href = backup_href(base, job)
    return {
        "Type": "BackupReference",
        "Href": href,
        "Name": job.name,
        "UID": urn("Backup", job.backup_id),
        "Links": [
            server_up(base, server),
            *_repositories(base, job),
            Link("Alternate", f"{href}?format=Entity", "Backup", job.name),
            Link("Down", f"{href}/restorePoints", "RestorePointReferenceList"),
        ],
    }


def backup_entity(base: str, server: BackupServer, job: Job) -> Value:
    href = backup_href(base, job)
    return {
        "Type": "Backup",
        "Href": f"{href}?format=Entity",
        "Name": job.name,
        "UID": urn("Backup", job.backup_id),
        "Links": [
            *_repositories(base, job),
            server_up(base, server),
            Link("Alternate", href, "BackupReference", job.name),
            Link("Down", f"{href}/restorePoints", "RestorePointReferenceList"),
        ],
        "Platform": job.platform or None,
        "BackupType": BACKUP_TYPE,
    }


# --- restore points ------------------------------------------------------------------------------------


def restore_point_ref(base: str, server: BackupServer, job: Job, point: ReplicaPoint) -> Value:
    href = restore_point_href(base, point)
    name = restore_point_name(point)
    return {
        "Type": "RestorePointReference",
        "Href": href,
        "Name": name,
        "UID": urn("RestorePoint", restore_point_id(point)),
        "Links": [
            server_up(base, server),
            Link("Up", backup_href(base, job), "BackupReference", job.name),
            Link("Alternate", f"{href}?format=Entity", "RestorePoint", name),
            Link("Down", f"{href}/vmRestorePoints", "VmRestorePointReferenceList"),
        ],
    }


def restore_point_entity(base: str, server: BackupServer, job: Job, point: ReplicaPoint) -> Value:
    href = restore_point_href(base, point)
    name = restore_point_name(point)
    return {
        "Type": "RestorePoint",
        "Href": f"{href}?format=Entity",
        "Name": name,
        "UID": urn("RestorePoint", restore_point_id(point)),
        "Links": [
            Link("Up", backup_href(base, job), "BackupReference", job.name),
            server_up(base, server),
            Link("Alternate", href, "RestorePointReference", name),
            Link("Down", f"{href}/vmRestorePoints", "VmRestorePointReferenceList"),
        ],
        "BackupDateUTC": point.created,
    }


def restore_point_up(base: str, point: ReplicaPoint) -> Link:
    """A VM restore point's link up to its restore point."""
    return Link("Up", restore_point_href(base, point), "RestorePointReference", restore_point_name(point))


# --- hierarchy roots and lookup ------------------------------------------------------------------------


def root_ref(base: str, server: BackupServer, root: HierarchyRoot) -> Value:
    href = root_href(base, root)
    return {
        "Type": "HierarchyRootReference",
        "Href": href,
        "Name": root.platform,
        "UID": urn("HierarchyRoot", root.id),
        "Links": [
            server_up(base, server),
            Link("Alternate", f"{href}?format=Entity", "HierarchyRoot", root.platform),
        ],
    }


def root_entity(base: str, server: BackupServer, root: HierarchyRoot) -> Value:
    href = root_href(base, root)
    return {
        "Type": "HierarchyRoot",
        "Href": f"{href}?format=Entity",
        "Name": root.platform,
        "UID": urn("HierarchyRoot", root.id),
        "Links": [
            server_up(base, server),
            Link("Alternate", href, "HierarchyRootReference", root.platform),
        ],
        "HierarchyRootId": root.id,
        "UniqueId": root.id,
        "HostType": root.host_type,
    }


def hierarchy_item(replica: Replica) -> Value:
    return {
        "Type": "HierarchyItem",
        "ObjectRef": vm_ref(replica),
        "ObjectType": "Vm",
        "ObjectName": replica.display_name,
    }
