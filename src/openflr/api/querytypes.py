"""``QueryResult`` and its ``Entities``: one list per EM query type, in the order EM writes them."""

from __future__ import annotations

from openflr.api import emtypes, protectiontypes, reporttypes
from openflr.api.schema import EmType, Field, attr, links, list_of, obj
from openflr.core.catalog_queries import EMPTY_TYPES


def placeholder(name: str) -> EmType:
    """An entity openflr never has: only the members every EM entity shares."""
    return EmType(name, (attr("Name"), attr("UID"), links(), attr("Href"), attr("Type")))


_SERVED: dict[str, EmType] = {
    "Jobs": protectiontypes.JOB,
    "Backups": protectiontypes.BACKUP,
    "Replicas": emtypes.REPLICA,
    "Repositories": reporttypes.REPOSITORY,
    "RestorePoints": protectiontypes.RESTORE_POINT,
    "VmRestorePoints": emtypes.VM_RESTORE_POINT,
    "VmReplicaPoints": emtypes.VM_REPLICA_POINT,
    "BackupJobSessions": reporttypes.BACKUP_JOB_SESSION,
    "ReplicaJobSessions": reporttypes.REPLICA_JOB_SESSION,
    "HierarchyRoots": protectiontypes.HIERARCHY_ROOT,
    "BackupServers": emtypes.BACKUP_SERVER,
    "DiscoveredComputers": reporttypes.DISCOVERED_COMPUTER,
}

ENTITY_LISTS: tuple[str, ...] = (
    "Jobs",
    "FailoverPlans",
    "Backups",
    "Replicas",
    "Repositories",
    "RestorePoints",
    "VmRestorePoints",
    "VAppRestorePoints",
    "VmReplicaPoints",
    "BackupJobSessions",
    "ReplicaJobSessions",
    "ReplicaTaskSessions",
    "RestoreSessions",
    "HierarchyRoots",
    "BackupTaskSessions",
    "BackupServers",
    *(
        plural
        for _name, plural in EMPTY_TYPES
        if plural
        not in (
            "FailoverPlans",
            "VAppRestorePoints",
            "BackupJobSessions",
            "ReplicaJobSessions",
            "ReplicaTaskSessions",
            "RestoreSessions",
            "BackupTaskSessions",
        )
    ),
)
"""JSON keys of ``Entities`` in EM's order (``EnterpiseRoles`` is EM's own spelling)."""

SINGULAR = {plural: name for name, plural in EMPTY_TYPES} | {
    "Jobs": "Job",
    "Backups": "Backup",
    "Replicas": "Replica",
    "Repositories": "Repository",
    "RestorePoints": "RestorePoint",
    "VmRestorePoints": "VmRestorePoint",
    "VmReplicaPoints": "VmReplicaPoint",
    "HierarchyRoots": "HierarchyRoot",
    "BackupServers": "BackupServer",
}


def _list(plural: str) -> Field:
    item = SINGULAR[plural]
    return list_of(plural, item, _SERVED.get(plural) or placeholder(item), json_key=plural)


QUERY_ENTITIES = EmType("Entities", tuple(_list(p) for p in ENTITY_LISTS), links_first=False)

QUERY_RESULT = EmType(
    "QueryResult",
    (
        list_of("Refs", "Ref", emtypes.ENTITY_REF),
        obj("Entities", QUERY_ENTITIES),
        links(),
        obj("PagingInfo", emtypes.PAGING_INFO),
    ),
    links_first=False,
)

PLURAL = {singular: plural for plural, singular in SINGULAR.items()}
"""Query type name -> its ``Entities`` key."""
