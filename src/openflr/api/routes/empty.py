"""EM collections openflr has nothing to put in: each answers an empty list (Ref or ``?format=Entity``)
and 404 for any id, so clients that walk every collection of the ``LogonSession`` find no 404s.

openflr runs no jobs (no task or restore sessions), reads no backup files, manages no servers and
has no failover plans, vApps, WAN accelerators or external repositories (EM's guest catalog,
``/api/catalog/vms``, is served from openflr's file catalog: ``routes/catalog.py``).
"""

from __future__ import annotations

from openflr.api.querytypes import placeholder
from openflr.api.routes.reports import empty_list, no_such
from openflr.api.routing import Route
from openflr.api.schema import EmType, items, plural

# (path, entity type, what one is called); a list's root element is the entity type's plural.
EMPTY_COLLECTIONS: tuple[tuple[str, str, str], ...] = (
    ("managedServers", "ManagedServer", "managed server"),
    ("failoverPlans", "FailoverPlan", "failover plan"),
    ("vAppRestorePoints", "VAppRestorePoint", "vApp restore point"),
    ("restoreSessions", "RestoreSession", "restore session"),
    ("backupTaskSessions", "BackupTaskSession", "backup task session"),
    ("replicaTaskSessions", "ReplicaTaskSession", "replica task session"),
    ("wanAccelerators", "WanAccelerator", "WAN accelerator"),
    ("backupFiles", "BackupFile", "backup file"),
    ("externalRepositories", "ExternalRepository", "external repository"),
    ("vAppReplicaPoints", "VAppReplicaPoint", "vApp replica point"),
)


def list_type(entity: str) -> EmType:
    root = plural(entity)
    return EmType(root, (items(entity, placeholder(entity), json_key=root),))


routes = [
    route
    for path, entity, what in EMPTY_COLLECTIONS
    for route in (
        Route(f"/api/{path}", empty_list(list_type(entity)), ["GET"]),
        Route(f"/api/{path}/{{id}}", no_such(what[0].upper() + what[1:]), ["GET"]),
    )
]
