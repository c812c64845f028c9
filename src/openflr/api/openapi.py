"""``GET /api/openapi.json``: an OpenAPI 3.1 description of the EM-compatible surface openflr serves.

Generated, never written by hand: the paths and methods come from the app's own routes, and every
schema from the ``EmType`` descriptions the JSON renderer works from (each declared member present,
``null`` when absent; PascalCase or camelCase as ``api.json_casing`` says). What the routes cannot
tell (which type a route answers with, its query parameters and request body, who may call it) is
the table ``_OPERATIONS`` below; a route missing from it is still listed, with a generic answer.
XML is the default representation and is listed too, without a schema (its shape, attributes and
element order, is the vendor's XSD, see docs/COMPATIBILITY.md); the JSON schemas describe the JSON form.

The document needs no logon. Tools use it to generate clients and to fuzz the server
(``tests/api/test_fuzz_http.py`` runs schemathesis against it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from starlette import routing
from starlette.requests import Request
from starlette.responses import Response

from openflr import __version__
from openflr.api import catalogvalues, emtypes, protectiontypes, querytypes, reporttypes, webtypes
from openflr.api.routes import health
from openflr.api.routes.empty import EMPTY_COLLECTIONS
from openflr.api.routes.empty import list_type as empty_list_type
from openflr.api.routing import Route
from openflr.api.schema import EmType, Field, Kind, camel
from openflr.api.urls import api_base
from openflr.core.catalog_queries import QUERY_TYPES

OPENAPI_VERSION = "3.1.0"
TOKEN_HEADER = "X-RestSvcSessionId"
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}")


# --- what each operation takes and answers -------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    where: str = "query"
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    description: str = ""


@dataclass(frozen=True)
class Operation:
    summary: str
    answers: Sequence[EmType] = ()
    """EM types of the success body (several: the client picks one, e.g. with ``format=Entity``)."""
    status: int = 200
    auth: str = "session"
    """``none``, ``basic`` (logon) or ``session`` (the ``X-RestSvcSessionId`` token)."""
    params: Sequence[Param] = ()
    body: EmType | None = None
    errors: Sequence[int] = ()
    """Error statuses beyond the ones every operation of its kind may answer."""
    download: bool = False
    """The success body may also be file content (``action=download``)."""
    extra_status: Sequence[int] = ()
    """Further success statuses (a restore answers 202 with a Task, a download 200/206)."""
    tag: str = "EM"
    json_schema: dict[str, Any] | None = None
    """The JSON body of every success status, for an answer that is not an EM type."""


_FORMAT = Param(
    "format",
    schema={"type": "string", "enum": ["Entity", "Entities", "Refs"]},
    description="`Entity` (or `Entities`) for full entities instead of references (any case).",
)
_PAGE_SIZE = Param(
    "pageSize",
    schema={"type": "integer", "minimum": 1},
    description="Entries per page (clamped to the server's `api.max_page_size`).",
)
_PAGE = Param("page", schema={"type": "integer", "minimum": 1}, description="Page number, from 1.")
_BROWSE_ACTION = Param(
    "action",
    schema={"type": "string", "enum": ["listAll", "listDirs", "listFiles", "download"]},
    description="List the folder (paged with `pageSize`/`page`, whole and streamed without) or "
    "download the item (a folder downloads as a ZIP). Without it: the item itself.",
)
_LISTING_ORDER = (
    Param(
        "orderBy",
        schema={"type": "string", "enum": ["name", "size", "modified", "owner"]},
        description="openflr: sort a paged listing by this column (folders first); needs pageSize.",
    ),
    Param("order", schema={"type": "string", "enum": ["asc", "desc"]}, description="openflr: sort order."),
    Param(
        "filter", description="openflr: only entries whose name holds this text (any case); needs pageSize."
    ),
)
_RESTORE_ACTION = Param(
    "action",
    schema={"type": "string", "enum": ["restore", "download"]},
    description="`restore` with a `FileRestoreSpec` body, or `download`.",
)
_RANGE = Param("Range", "header", description="One byte range of a file (`bytes=0-1023`).")
_IF_RANGE = Param("If-Range", "header", description="Honour `Range` only if the file is unchanged.")
_QUERY_PARAMS = (
    Param(
        "type",
        schema={"type": "string", "enum": [t.name for t in QUERY_TYPES.values()]},
        description="What to query (any case); required.",
    ),
    _FORMAT,
    Param(
        "filter",
        description='EM filter: `field==value`, `;` (and), `,` (or), `( )`, e.g. `VmDisplayName=="x"`.',
    ),
    Param("sortAsc", description="Field to sort by, ascending (not with sortDesc)."),
    Param("sortDesc", description="Field to sort by, descending."),
    _PAGE_SIZE,
    _PAGE,
)


def _family(
    prefix: str, point: EmType, points: EmType, mount: EmType, mounts: EmType
) -> dict[tuple[str, str], Operation]:
    m = f"{prefix}/{{point_id}}/mounts"
    item = m + "/{mount_id}/{filepath}"
    return {
        ("GET", prefix): Operation("List the points", (emtypes.ENTITY_REFERENCES, points), params=(_FORMAT,)),
        ("GET", prefix + "/{id}"): Operation("One point", (emtypes.ENTITY_REF, point), params=(_FORMAT,)),
        ("POST", m): Operation(
            "Mount the point (a MountRestorePoint task)",
            (emtypes.TASK,),
            status=202,
            body=emtypes.START_MOUNT_SPEC,
            errors=(403, 501),
            tag="FLR",
        ),
        ("GET", m): Operation("This session's mounts of the point", (mounts,), errors=(403,), tag="FLR"),
        ("GET", m + "/{mount_id}"): Operation(
            "A mount and its file-system roots", (mount,), errors=(403,), tag="FLR"
        ),
        ("DELETE", m + "/{mount_id}"): Operation("Unmount", status=204, errors=(403,), tag="FLR"),
        ("GET", item): Operation(
            "An item, a folder listing or a download",
            (emtypes.FILE_SYSTEM_ENTRY, emtypes.FILE_SYSTEM_ENTRIES),
            params=(_BROWSE_ACTION, _PAGE_SIZE, _PAGE, *_LISTING_ORDER, _RANGE, _IF_RANGE),
            errors=(403, 416, 501),
            download=True,
            extra_status=(206, 304),
            tag="FLR",
        ),
        ("POST", item): Operation(
            "Restore (a FileRestoreFromMountPoint task) or download an item",
            (emtypes.TASK,),
            status=202,
            params=(_RESTORE_ACTION,),
            body=emtypes.FILE_RESTORE_SPEC,
            errors=(403, 416, 501),
            download=True,
            extra_status=(200, 206),
            tag="FLR",
        ),
    }


def _listing(what: str, entities: EmType, entity: EmType | None) -> dict[tuple[str, str], Operation]:
    """A collection with ``?format=Entity`` and its ``/{id}``."""
    ops = {
        ("GET", f"/api/{what}"): Operation(
            f"List {what}", (emtypes.ENTITY_REFERENCES, entities), params=(_FORMAT,)
        )
    }
    ops[("GET", f"/api/{what}/{{id}}")] = Operation(
        f"One of {what}", (emtypes.ENTITY_REF, entity) if entity else (), params=(_FORMAT,)
    )
    return ops


_CATALOG_VM = Param("vm", description="A VM: its replica's UID or id, or its name (any case).")
_CATALOG_FORMAT = Param(
    "format", schema={"type": "string", "enum": ["json", "xml"]}, description="The representation."
)
_CATALOG_BUILD = (
    Param("action", schema={"type": "string", "enum": ["build"]}, description="`build`; required."),
    Param("again", schema={"type": "boolean"}, description="Also points already built."),
)
_CATALOG_OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/api/openflr/catalog/search"): Operation(
        "Search the file catalog of the VMs in scope (name, place, size, time, type, owner)",
        (catalogvalues.CATALOG_SEARCH_RESULTS,),
        params=(
            Param("name", description="Part of the name (substring), a glob (`*.docx`) or the exact name."),
            Param("match", schema={"type": "string", "enum": ["substring", "glob", "exact"]}),
            _CATALOG_VM,
            Param("point", description="One point (its UID or id) instead of every catalogued point."),
            Param("under", description="Only items below this folder (`C:/Users`, `/home`)."),
            Param("minSize", schema={"type": "integer", "minimum": 0}),
            Param("maxSize", schema={"type": "integer", "minimum": 0}),
            Param("modifiedAfter", description="Modified at or after (ISO 8601)."),
            Param("modifiedBefore", description="Modified before (ISO 8601)."),
            Param("type", schema={"type": "string", "enum": ["File", "Directory", "Link"]}),
            Param("owner", description="The owner's name (any case)."),
            _PAGE_SIZE,
            _PAGE,
            _CATALOG_FORMAT,
        ),
        errors=(400, 409),
        tag="openflr",
    ),
    ("GET", "/api/openflr/catalog/versions"): Operation(
        "Every catalogued version of a path, with what changed from one point to the next",
        (catalogvalues.CATALOG_VERSIONS,),
        params=(
            _CATALOG_VM,
            Param("path", description="The item's Path (`C:/Documents/report.txt`, `/etc/hosts`)."),
            Param("hashes", schema={"type": "boolean"}, description="Compare files by SHA-256 (Restore)."),
            _CATALOG_FORMAT,
        ),
        errors=(400, 403),
        tag="openflr",
    ),
    ("GET", "/api/openflr/catalog/diff"): Operation(
        "What changed between two points of one VM, or one side's changed files as a ZIP",
        (catalogvalues.CATALOG_DIFF,),
        params=(
            Param("from", description="The earlier point (UID or id)."),
            Param("to", description="The later point (UID or id)."),
            Param("under", description="Only changes below this folder."),
            _PAGE_SIZE,
            _PAGE,
            Param(
                "format",
                schema={"type": "string", "enum": ["json", "xml", "zip"]},
                description="`zip`: the changed files of one side (`side`) as a ZIP.",
            ),
            Param("side", schema={"type": "string", "enum": ["from", "to"]}),
        ),
        errors=(400, 403, 409, 503),
        download=True,
        tag="openflr",
    ),
    ("GET", "/api/openflr/catalog/status"): Operation(
        "The catalog's state, point by point, for the VMs in scope",
        (catalogvalues.CATALOG_STATUS,),
        params=(_CATALOG_VM, _CATALOG_FORMAT),
        tag="openflr",
    ),
    ("POST", "/api/openflr/catalog/points/{id}"): Operation(
        "Build a point's catalog now (administrators)",
        (catalogvalues.CATALOG_STATUS,),
        status=202,
        params=_CATALOG_BUILD,
        errors=(400, 403),
        tag="openflr",
    ),
    ("DELETE", "/api/openflr/catalog/points/{id}"): Operation(
        "Drop a point's catalog (administrators)", status=204, errors=(403,), tag="openflr"
    ),
    ("POST", "/api/openflr/catalog/vms/{vm}"): Operation(
        "Build every point of a VM's catalog now (administrators)",
        (catalogvalues.CATALOG_STATUS,),
        status=202,
        params=_CATALOG_BUILD,
        errors=(400, 403),
        tag="openflr",
    ),
    ("GET", "/api/catalog/vms"): Operation(
        "VMs with catalogued points",
        (emtypes.ENTITY_REFERENCES, catalogvalues.CATALOG_VMS),
        params=(_FORMAT,),
    ),
    ("GET", "/api/catalog/vms/{vmname}"): Operation(
        "A VM with catalogued points", (emtypes.ENTITY_REF, catalogvalues.CATALOG_VM), params=(_FORMAT,)
    ),
    ("GET", "/api/catalog/vms/{vmname}/vmRestorePoints"): Operation(
        "A VM's catalogued points, named by their creation time", (emtypes.ENTITY_REFERENCES,)
    ),
}


_OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/api"): Operation(
        "The entry point: supported versions and the logon link", (emtypes.ENTERPRISE_MANAGER,), auth="none"
    ),
    ("GET", "/api/openapi.json"): Operation("This document", auth="none", tag="openflr"),
    ("GET", "/api/openflr/health"): Operation(
        "Liveness (check=live: the process serves) or readiness (the default: the database answers and "
        "every datastore can be listed; 503 names the failed checks). No logon",
        auth="none",
        params=(
            Param(
                "check",
                schema={"type": "string", "enum": list(health.CHECKS)},
                description="`live` or `ready` (the default).",
            ),
        ),
        extra_status=(503,),
        json_schema={"$ref": "#/components/schemas/Health"},
        tag="openflr",
    ),
    ("POST", "/api/sessionMngr"): Operation(
        "Log on with HTTP Basic; the token comes back in the X-RestSvcSessionId header",
        (emtypes.LOGON_SESSION,),
        status=201,
        auth="basic",
        params=(Param("v", schema={"type": "string", "examples": ["latest", "v1_5"]}),),
        errors=(429,),
    ),
    ("GET", "/api/logonSessions"): Operation("This user's logon sessions", (emtypes.LOGON_SESSIONS,)),
    ("GET", "/api/logonSessions/{session_id}"): Operation("A logon session", (emtypes.LOGON_SESSION,)),
    ("DELETE", "/api/logonSessions/{session_id}"): Operation("Log off", status=204),
    **_listing("backupServers", emtypes.BACKUP_SERVERS, emtypes.BACKUP_SERVER),
    **_listing("replicas", emtypes.REPLICAS, emtypes.REPLICA),
    ("GET", "/api/replicas/{id}/vmReplicaPoints"): Operation(
        "A replica's points", (emtypes.ENTITY_REFERENCES, emtypes.VM_REPLICA_POINTS), params=(_FORMAT,)
    ),
    **_family(
        "/api/vmReplicaPoints",
        emtypes.VM_REPLICA_POINT,
        emtypes.VM_REPLICA_POINTS,
        emtypes.VM_REPLICA_POINT_MOUNT,
        emtypes.VM_REPLICA_POINT_MOUNTS,
    ),
    **_family(
        "/api/vmRestorePoints",
        emtypes.VM_RESTORE_POINT,
        emtypes.VM_RESTORE_POINTS,
        emtypes.VM_RESTORE_POINT_MOUNT,
        emtypes.VM_RESTORE_POINT_MOUNTS,
    ),
    ("GET", "/api/querySvc"): Operation("The query service", (emtypes.QUERY_SERVICE,)),
    ("GET", "/api/query"): Operation(
        "Query: filter, sort and page", (querytypes.QUERY_RESULT,), params=_QUERY_PARAMS
    ),
    ("GET", "/api/tasks"): Operation("This session's tasks", (emtypes.TASKS,), tag="FLR"),
    ("GET", "/api/tasks/{task_id}"): Operation("A task", (emtypes.TASK,), tag="FLR"),
    ("DELETE", "/api/tasks/{task_id}"): Operation("Forget a task", status=204, tag="FLR"),
    ("GET", "/api/openflr/inventory"): Operation(
        "Inventory summary (administrators)", (emtypes.INVENTORY_SUMMARY,), errors=(403,), tag="openflr"
    ),
    ("POST", "/api/openflr/rescan"): Operation(
        "Rescan the datastores now (administrators)",
        (emtypes.INVENTORY_SUMMARY,),
        errors=(403,),
        tag="openflr",
    ),
    ("POST", "/api/openflr/web/logon"): Operation(
        "The web page's log-on: an HttpOnly session cookie; changes need the Csrf value as the "
        "X-Openflr-Csrf header",
        (webtypes.ME,),
        auth="none",
        body=webtypes.WEB_LOGON_SPEC,
        errors=(400, 401, 429),
        tag="openflr",
    ),
    ("POST", "/api/openflr/web/logoff"): Operation(
        "End the web page's session", status=204, errors=(403,), tag="openflr"
    ),
    ("GET", "/api/openflr/me"): Operation(
        "Who is logged on, the role and what it may do", (webtypes.ME,), tag="openflr"
    ),
    ("POST", "/api/openflr/zip"): Operation(
        "Several items of one mount as one ZIP (a form: mount, item repeated, csrf)",
        errors=(400, 403, 404),
        download=True,
        tag="openflr",
    ),
    ("GET", "/api/openflr/restoreTarget"): Operation(
        "Where a restore of an item to its original location would write",
        (webtypes.RESTORE_TARGET,),
        params=(
            Param("mount", description="The mount's Href or path."),
            Param("path", description="The item's Path."),
        ),
        errors=(400, 403, 404),
        tag="openflr",
    ),
    ("GET", "/api/openflr/audit"): Operation(
        "The audit log, newest first (administrators)",
        (webtypes.AUDIT_RECORDS,),
        params=(
            Param("user", description="A user name (any case)."),
            Param("vm", description="Part of a VM's name (any case)."),
            Param(
                "action", schema={"type": "string", "enum": ["download", "restore", "restore-permissions"]}
            ),
            Param(
                "result",
                schema={
                    "type": "string",
                    "enum": ["running", "success", "failed", "cancelled", "interrupted"],
                },
            ),
            Param("since", description="Started at or after (ISO 8601)."),
            Param("until", description="Started before (ISO 8601)."),
            _PAGE_SIZE,
            _PAGE,
        ),
        errors=(400, 403),
        tag="openflr",
    ),
    **_CATALOG_OPERATIONS,
    ("GET", "/api/reports/summary"): Operation("The summary reports", (reporttypes.SUMMARY_REPORT,)),
    ("GET", "/api/reports/summary/overview"): Operation("Overview report", (reporttypes.OVERVIEW_REPORT,)),
    ("GET", "/api/reports/summary/vms_overview"): Operation(
        "VMs overview report", (reporttypes.VMS_OVERVIEW_REPORT,)
    ),
    ("GET", "/api/reports/summary/job_statistics"): Operation(
        "Job statistics report", (reporttypes.JOB_STATISTICS_REPORT,)
    ),
    **_listing("repositories", reporttypes.REPOSITORIES, reporttypes.REPOSITORY),
    **_listing("backupSessions", reporttypes.BACKUP_JOB_SESSIONS, None),
    ("GET", "/api/backupSessions/{id}/taskSessions"): Operation("Task sessions of a backup session (none)"),
    **_listing("replicaSessions", reporttypes.REPLICA_JOB_SESSIONS, None),
    **_listing("agents/discoveredComputers", reporttypes.DISCOVERED_COMPUTERS, None),
    ("GET", "/api/reports/summary/processed_vms"): Operation(
        "VMs processed per day", (reporttypes.PROCESSED_VMS_REPORT,)
    ),
    ("GET", "/api/reports/summary/repository"): Operation(
        "Repositories report", (reporttypes.REPOSITORY_REPORT,)
    ),
    **_listing("jobs", protectiontypes.JOBS, protectiontypes.JOB),
    ("POST", "/api/jobs/{id}"): Operation(
        "Start, stop or change a job: not supported (openflr runs no jobs)", errors=(501,)
    ),
    ("PUT", "/api/jobs/{id}"): Operation("Edit a job: not supported", errors=(501,)),
    ("GET", "/api/jobs/{id}/backupSessions"): Operation(
        "A job's sessions (none)",
        (emtypes.ENTITY_REFERENCES, reporttypes.BACKUP_JOB_SESSIONS),
        params=(_FORMAT,),
    ),
    **_listing("backups", protectiontypes.BACKUPS, protectiontypes.BACKUP),
    ("GET", "/api/backups/{id}/restorePoints"): Operation(
        "A backup's restore points",
        (emtypes.ENTITY_REFERENCES, protectiontypes.RESTORE_POINTS),
        params=(_FORMAT,),
    ),
    **_listing("restorePoints", protectiontypes.RESTORE_POINTS, protectiontypes.RESTORE_POINT),
    ("GET", "/api/restorePoints/{id}/vmRestorePoints"): Operation(
        "A restore point's VM restore points",
        (emtypes.ENTITY_REFERENCES, emtypes.VM_RESTORE_POINTS),
        params=(_FORMAT,),
    ),
    **_listing("hierarchyRoots", protectiontypes.HIERARCHY_ROOTS, protectiontypes.HIERARCHY_ROOT),
    **{
        op: described
        for path, entity, _what in EMPTY_COLLECTIONS
        for op, described in _listing(path, empty_list_type(entity), None).items()
    },
    ("GET", "/api/lookupSvc"): Operation("The lookup service", (protectiontypes.LOOKUP_SERVICE,)),
    ("GET", "/api/lookup"): Operation(
        "Find VMs: host, name and type, or hierarchyRef",
        (protectiontypes.HIERARCHY_ITEMS,),
        params=(
            Param("host", description="A hierarchy root's UID."),
            Param("name", description="VM name; * and ? match any text and one character."),
            Param("type", description="Object type; only Vm has objects."),
            Param("hierarchyRef", description="A VM's HierarchyObjRef."),
        ),
    ),
}

_LIMIT_ERRORS = (400, 413, 414, 431, 503)
"""What any request may get: a malformed request, or one over a limit (``[limits]``), or a busy server."""


# --- schemas from EM types -----------------------------------------------------------------------------

_SCALARS: dict[type, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    bool: {"type": "boolean"},
    datetime: {"type": "string", "format": "date-time"},
}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    return {**schema, "type": [schema["type"], "null"]}


class _Schemas:
    """``components/schemas``: one entry per EM type, named after it (numbered when names clash)."""

    def __init__(self, camel: bool) -> None:
        self.camel = camel
        self.names: dict[int, str] = {}
        self.schemas: dict[str, Any] = {
            "Link": {
                "type": "object",
                "properties": {
                    self._key(k): {"type": ["string", "null"]} for k in ("Rel", "Href", "Name", "Type")
                },
                "required": [self._key(k) for k in ("Rel", "Href", "Name", "Type")],
            }
        }

    def _key(self, name: str) -> str:
        return camel(name) if self.camel else name

    def ref(self, type_: EmType) -> dict[str, Any]:
        name = self.names.get(id(type_))
        if name is None:
            name = type_.name
            n = 2
            while name in self.schemas:
                name = f"{type_.name}{n}"
                n += 1
            self.names[id(type_)] = name
            self.schemas[name] = {}  # reserve the name before recursing (types may share members)
            self.schemas[name] = self._object(type_)
        return {"$ref": f"#/components/schemas/{name}"}

    def _object(self, type_: EmType) -> dict[str, Any]:
        props = {(f.json_name_camel if self.camel else f.json_name): self._field(f) for f in type_.fields}
        return {"type": "object", "properties": props, "required": list(props)}

    def _field(self, f: Field) -> dict[str, Any]:
        if f.kind in (Kind.ATTR, Kind.TEXT):
            return _nullable(dict(_SCALARS.get(f.scalar, _SCALARS[str])))
        if f.kind is Kind.LINKS:
            return {"type": ["array", "null"], "items": {"$ref": "#/components/schemas/Link"}}
        assert f.type is not None
        item = self.ref(f.type)
        if f.kind is Kind.OBJ:
            return _nullable(item)
        if f.kind is Kind.LIST:
            key = self._key(f.json_key)
            return {
                "type": ["object", "null"],
                "properties": {key: {"type": "array", "items": item}},
                "required": [key],
            }
        return {"type": ["array", "null"], "items": item}

    def body(self, type_: EmType) -> dict[str, Any]:
        """A request body: members optional, names matched without regard to case by the server."""
        props: dict[str, Any] = {}
        for f in type_.fields:
            if f.kind in (Kind.ATTR, Kind.TEXT):
                props[f.json_name] = dict(_SCALARS.get(f.scalar, _SCALARS[str]))
            elif f.kind is Kind.OBJ and f.type is not None:
                props[f.json_name] = self.body(f.type)
        return {"type": "object", "properties": props}


# --- the document ----------------------------------------------------------------------------------


def _template(path: str) -> str:
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def _routes(routes: Iterable[routing.BaseRoute]) -> list[tuple[str, str, routing.Route]]:
    """The API's routes (the web page's files at ``/`` and ``/static/`` are not the API)."""
    out = []
    for r in routes:
        if isinstance(r, routing.Route) and r.methods and r.path.startswith("/api"):
            for method in sorted(r.methods - {"HEAD"}):
                out.append((method, _template(r.path), r))
    return out


def undescribed(routes: Iterable[routing.BaseRoute]) -> list[tuple[str, str]]:
    """(method, path) of the routes that ``_OPERATIONS`` leaves undescribed (tests keep this empty)."""
    return [(m, p) for m, p, _ in _routes(routes) if (m, p) not in _OPERATIONS]


def _error_response() -> dict[str, Any]:
    return {
        "description": "An EM Error",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
            "application/xml": {},
        },
    }


def _success(schemas: _Schemas, op: Operation, status: int) -> dict[str, Any]:
    if status in (204, 304):
        return {"description": "No content" if status == 204 else "Not modified"}
    content: dict[str, Any] = {}
    if op.json_schema is not None:
        content["application/json"] = {"schema": op.json_schema}
    if op.answers and status != 206:
        refs = [schemas.ref(t) for t in op.answers]
        content["application/json"] = {"schema": refs[0] if len(refs) == 1 else {"anyOf": refs}}
        content["application/xml"] = {}
    if op.download and status in (200, 206):
        content["*/*"] = {"schema": {"type": "string", "format": "binary"}}
    if not content:
        content["application/json"] = {"schema": {"type": "object"}}
    return {"description": "OK", "content": content}


def _operation(schemas: _Schemas, method: str, path: str, op: Operation) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in _PARAM.findall(path)
    ]
    params += [
        {
            "name": p.name,
            "in": p.where,
            "required": False,
            "schema": p.schema,
            **({"description": p.description} if p.description else {}),
        }
        for p in op.params
    ]
    responses: dict[str, Any] = {}
    for status in (op.status, *op.extra_status):
        responses[str(status)] = _success(schemas, op, status)
    errors = set(_LIMIT_ERRORS) | set(op.errors)
    if op.auth != "none":
        errors.add(401)
    if "{" in path or op.auth == "session":
        errors.add(404)
    for status in sorted(errors):
        responses.setdefault(str(status), _error_response())
    out: dict[str, Any] = {
        "operationId": _operation_id(method, path),
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": params,
        "responses": responses,
    }
    if op.auth == "none":
        out["security"] = []
    elif op.auth == "basic":
        out["security"] = [{"basic": []}]
    if op.body is not None:
        schema = schemas.body(op.body)
        out["requestBody"] = {
            "required": False,
            "content": {
                "application/json": {"schema": schema},
                "application/xml": {"schema": {**schema, "xml": {"name": op.body.name}}},
            },
        }
    return out


def _operation_id(method: str, path: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", path.removeprefix("/api")) or ["Root"]
    return method.lower() + "".join(w[:1].upper() + w[1:] for w in words)


def _generic(method: str) -> Operation:
    return Operation(f"{method} (not described yet)", status=204 if method == "DELETE" else 200)


def openapi_document(
    routes: Iterable[routing.BaseRoute], server_url: str, camel: bool = False
) -> dict[str, Any]:
    schemas = _Schemas(camel)
    schemas.ref(emtypes.ERROR)
    schemas.schemas.update(Health=health.SCHEMA, HealthCheck=health.CHECK_SCHEMA)
    paths: dict[str, dict[str, Any]] = {}
    for method, path, _route in _routes(routes):
        op = _OPERATIONS.get((method, path)) or _generic(method)
        paths.setdefault(path, {})[method.lower()] = _operation(schemas, method, path, op)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "openflr: Veeam Backup Enterprise Manager REST API (file-level restore)",
            "version": __version__,
            "description": (
                "The EM-compatible surface of openflr. XML is the default representation; send "
                "`Accept: application/json` for JSON, described by the schemas here. Log on with "
                "`POST /api/sessionMngr/?v=latest` and HTTP Basic, then send the returned "
                "`X-RestSvcSessionId` header (or cookie) on every request."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": server_url}],
        "security": [{"session": []}, {"sessionCookie": []}],
        "tags": [
            {"name": "EM", "description": "Logon, inventory, query and monitoring resources"},
            {"name": "FLR", "description": "Mounts, browsing, restores and downloads"},
            {"name": "openflr", "description": "openflr's own resources (not part of EM)"},
        ],
        "paths": paths,
        "components": {
            "schemas": schemas.schemas,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "header", "name": TOKEN_HEADER},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": TOKEN_HEADER},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
    }


async def get_openapi(request: Request) -> Response:
    service = getattr(request.app.state, "service", None)
    camel = service is not None and service.settings.api.json_casing == "camel"
    server = api_base(request).removesuffix("/api")
    doc = openapi_document(request.app.routes, server, camel)
    return Response(orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE), media_type="application/json")


routes = [Route("/api/openapi.json", get_openapi, ["GET"])]
