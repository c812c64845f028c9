"""EM types for what protects the replicas: jobs, backups, restore points, hierarchy roots and the
lookup service (served by ``api/routes/jobs.py`` and ``api/routes/hierarchy.py``).

Field order follows the vendor schema (own elements first; ``Links`` goes first in XML).
"""

from __future__ import annotations

from datetime import datetime

from openflr.api.schema import EmType, Field, attr, items, links, text


def _entity(name: str, *own: Field) -> EmType:
    return EmType(name, (*own, attr("Name"), attr("UID"), links(), attr("Href"), attr("Type")))


JOB = _entity(
    "Job",
    text("JobType"),
    text("Platform"),
    text("Description"),
    text("ScheduleConfigured", bool),
    text("ScheduleEnabled", bool),
    text("NextRun", datetime),
)
JOBS = EmType("Jobs", (items("Job", JOB),))

BACKUP = _entity("Backup", text("Platform"), text("BackupType"))
BACKUPS = EmType("Backups", (items("Backup", BACKUP),))

RESTORE_POINT = _entity("RestorePoint", text("BackupDateUTC", datetime))
RESTORE_POINTS = EmType("RestorePoints", (items("RestorePoint", RESTORE_POINT),))

HIERARCHY_ROOT = _entity("HierarchyRoot", text("HierarchyRootId"), text("UniqueId"), text("HostType"))
HIERARCHY_ROOTS = EmType("HierarchyRoots", (items("HierarchyRoot", HIERARCHY_ROOT),))

HIERARCHY_ITEM = EmType(
    "HierarchyItem",
    (text("ObjectRef"), text("ObjectType"), text("ObjectName"), links(), attr("Href"), attr("Type")),
)
HIERARCHY_ITEMS = EmType("HierarchyItems", (items("HierarchyItem", HIERARCHY_ITEM),))

LOOKUP_SERVICE = EmType("LookupSvc", (links(), attr("Href"), attr("Type")))
