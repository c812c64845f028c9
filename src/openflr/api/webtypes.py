"""Types of the web page's resources under ``/api/openflr/`` (not part of the EM API): who is logged
on and what they may do, where a restore would write, and the audit log. Described once like the EM
types, so they answer in XML and JSON alike (docs/EM-API.md, "openflr extensions")."""

from __future__ import annotations

from datetime import datetime

from openflr.api.emtypes import PAGING_INFO
from openflr.api.schema import EmType, attr, items, obj, text

WEB_LOGON_SPEC = EmType("WebLogonSpec", (text("UserName"), text("Password")), links_first=False)

PERMISSIONS = EmType(
    "Permissions",
    (
        text("Mount", bool),
        text("BrowseFiles", bool),
        text("Restore", bool),
        text("Download", bool),
        text("Administer", bool),
    ),
    links_first=False,
)
ME = EmType(
    "Me",
    (
        text("UserName"),
        text("Role"),
        text("SessionId"),
        text("Csrf"),
        text("IdleTimeoutSeconds", int),
        obj("Permissions", PERMISSIONS),
        attr("Type"),
    ),
    links_first=False,
)

RESTORE_TARGET = EmType(
    "RestoreTarget",
    (text("Path"), text("Target"), text("Configured", bool), text("Reason"), attr("Type")),
    links_first=False,
)

AUDIT_RECORD = EmType(
    "AuditRecord",
    (
        text("Id", int),
        text("StartedAtUTC", datetime),
        text("EndedAtUTC", datetime),
        text("User"),
        text("Client"),
        text("Action"),
        text("Vm"),
        text("PointId"),
        text("PointTimeUTC", datetime),
        text("Path"),
        text("Target"),
        text("Bytes", int),
        text("Items", int),
        text("FailedItems", int),
        text("Result"),
        text("Message"),
        text("TaskId"),
    ),
    links_first=False,
)
AUDIT_RECORDS = EmType(
    "AuditRecords",
    (items("AuditRecord", AUDIT_RECORD, json_key="Records"), obj("PagingInfo", PAGING_INFO)),
    links_first=False,
)
