"""The Enterprise Manager types openflr speaks, each described once (see ``api/schema.py``).

Field lists follow the declaration order of the vendor's XSD for the EM REST API
(own elements first, then inherited ``Links``/``Href``/``Type``), extended with the v1_5+ members the
13.x documentation shows (``StartMountSpec``, ``ToOriginalLocation`` options, ``VmName``, ...).
"""

from __future__ import annotations

from datetime import datetime

from openflr.api.schema import EmType, attr, items, links, list_of, obj, text

# --- generic -----------------------------------------------------------------------------------------

ERROR = EmType(
    "Error",
    (
        text("FirstChanceExceptionMessage"),
        text("StackTrace"),
        attr("Message"),
        attr("StatusCode", int),
        attr("Status"),
    ),
    links_first=False,
)

ENTITY_REF = EmType(
    "EntityRef",
    (links(), attr("UID"), attr("Name"), attr("Href"), attr("Type")),
)
ENTITY_REFERENCES = EmType("EntityReferences", (items("Ref", ENTITY_REF),))

PAGING_INFO = EmType(
    "PagingInfo",
    (links(), attr("PageNum", int), attr("PageSize", int), attr("PagesCount", int)),
)

# --- entry point and logon sessions --------------------------------------------------------------------

SUPPORTED_VERSION = EmType("SupportedVersion", (links(), attr("Name")))
ENTERPRISE_MANAGER = EmType(
    "EnterpriseManager",
    (
        list_of("SupportedVersions", "SupportedVersion", SUPPORTED_VERSION),
        links(),
        attr("Href"),
        attr("Type"),
    ),
)

LOGON_SESSION = EmType(
    "LogonSession",
    (text("UserName"), text("SessionId"), links(), attr("Href"), attr("Type")),
)
LOGON_SESSIONS = EmType("LogonSessions", (items("LogonSession", LOGON_SESSION),))

# --- inventory -----------------------------------------------------------------------------------------

BACKUP_SERVER = EmType(
    "BackupServer",
    (
        text("Description"),
        text("Port", int),
        text("Version"),
        attr("Name"),
        attr("UID"),
        links(),
        attr("Href"),
        attr("Type"),
    ),
)
BACKUP_SERVERS = EmType("BackupServers", (items("BackupServer", BACKUP_SERVER),))

REPLICA = EmType(
    "Replica",
    (
        text("JobName"),
        text("Platform"),
        attr("Name"),
        attr("UID"),
        links(),
        attr("Href"),
        attr("Type"),
    ),
)
REPLICAS = EmType("Replicas", (items("Replica", REPLICA),))

VM_REPLICA_POINT = EmType(
    "VmReplicaPoint",
    (
        text("CreationTimeUTC", datetime),
        text("VmName"),
        text("Algorithm"),
        text("PointType"),
        attr("VmDisplayName"),
        attr("Name"),
        attr("UID"),
        links(),
        attr("Href"),
        attr("Type"),
    ),
)
VM_REPLICA_POINTS = EmType("VmReplicaPoints", (items("VmReplicaPoint", VM_REPLICA_POINT),))

VM_RESTORE_POINT = EmType(
    "VmRestorePoint",
    (
        text("CreationTimeUTC", datetime),
        text("VmName"),
        text("Algorithm"),
        text("PointType"),
        text("HierarchyObjRef"),
        attr("VmDisplayName"),
        attr("Name"),
        attr("UID"),
        links(),
        attr("Href"),
        attr("Type"),
    ),
)
VM_RESTORE_POINTS = EmType("VmRestorePoints", (items("VmRestorePoint", VM_RESTORE_POINT),))

QUERY_SERVICE = EmType("QuerySvc", (links(), attr("Href"), attr("Type")))

QUERY_ENTITIES = EmType(
    "Entities",
    (
        list_of("Replicas", "Replica", REPLICA),
        list_of("VmRestorePoints", "VmRestorePoint", VM_RESTORE_POINT),
        list_of("VmReplicaPoints", "VmReplicaPoint", VM_REPLICA_POINT),
        list_of("BackupServers", "BackupServer", BACKUP_SERVER),
    ),
    links_first=False,
)

# --- tasks ---------------------------------------------------------------------------------------------

TASK_RESULT = EmType(
    "Result",
    (text("Message"), attr("Success", bool)),
    links_first=False,
)
TASK = EmType(
    "Task",
    (
        text("TaskId"),
        text("State"),
        text("Operation"),
        obj("Result", TASK_RESULT),
        links(),
        attr("Href"),
        attr("Type"),
    ),
)
TASKS = EmType("Tasks", (items("Task", TASK),))

# --- mounts and browsing -------------------------------------------------------------------------------

DIRECTORY_ENTRY = EmType(
    "DirectoryEntry",
    (text("Path"), text("Name"), links(), attr("Href"), attr("Type")),
)
FILE_ENTRY = EmType(
    "FileEntry",
    (
        text("Path"),
        text("Name"),
        text("Size", int),
        text("Owner"),
        text("ModifiedDateUTC", datetime),
        links(),
        attr("Href"),
        attr("Type"),
    ),
)
FILE_SYSTEM_ENTRY = EmType(
    "FileSystemEntry",
    (
        obj("FileEntry", FILE_ENTRY),
        obj("DirectoryEntry", DIRECTORY_ENTRY),
        links(),
        attr("Href"),
        attr("Type"),
    ),
)


def _mount_type(name: str) -> EmType:
    return EmType(
        name,
        (
            list_of("FSRoots", "DirectoryEntry", DIRECTORY_ENTRY),
            links(),
            attr("Href"),
            attr("Type"),
        ),
    )


VM_REPLICA_POINT_MOUNT = _mount_type("VmReplicaPointMount")
VM_REPLICA_POINT_MOUNTS = EmType(
    "VmReplicaPointMounts", (items("VmReplicaPointMount", VM_REPLICA_POINT_MOUNT),)
)
VM_RESTORE_POINT_MOUNT = _mount_type("VmRestorePointMount")
VM_RESTORE_POINT_MOUNTS = EmType(
    "VmRestorePointMounts", (items("VmRestorePointMount", VM_RESTORE_POINT_MOUNT),)
)

FILE_SYSTEM_ENTRIES = EmType(
    "FileSystemEntries",
    (
        list_of("Files", "FileEntry", FILE_ENTRY),
        list_of("Directories", "DirectoryEntry", DIRECTORY_ENTRY),
        obj("PagingInfo", PAGING_INFO),
        links(),
        attr("Href"),
        attr("Type"),
    ),
)

QUERY_RESULT = EmType(
    "QueryResult",
    (
        list_of("Refs", "Ref", ENTITY_REF),
        obj("Entities", QUERY_ENTITIES),
        links(),
        obj("PagingInfo", PAGING_INFO),
    ),
    links_first=False,
)

# --- request bodies ------------------------------------------------------------------------------------

START_MOUNT_SPEC = EmType("StartMountSpec", (text("OsKind"),), links_first=False)

PLAIN_CREDENTIALS = EmType("GuestCredentials", (text("UserName"), text("Password")), links_first=False)
TO_ORIGINAL_LOCATION = EmType(
    "ToOriginalLocation",
    (
        obj("GuestCredentials", PLAIN_CREDENTIALS),
        attr("Overwrite", bool),
        attr("PermissionsOnly", bool),
    ),
    links_first=False,
)
FOR_DIRECT_DOWNLOAD = EmType("ForDirectDownload", (text("FileName"),), links_first=False)
FILE_RESTORE_SPEC = EmType(
    "FileRestoreSpec",
    (obj("ToOriginalLocation", TO_ORIGINAL_LOCATION), obj("ForDirectDownload", FOR_DIRECT_DOWNLOAD)),
    links_first=False,
)

# --- openflr extensions (under /api/openflr/) ----------------------------------------------------------

PROBLEM = EmType("Problem", (text("Datastore"), text("Folder"), text("Message")), links_first=False)
INVENTORY_SUMMARY = EmType(
    "InventorySummary",
    (
        text("ScannedAtUTC", datetime),
        text("Replicas", int),
        text("Points", int),
        list_of("Problems", "Problem", PROBLEM),
        links(),
        attr("Href"),
        attr("Type"),
    ),
)
