"""``GET /api/``, logon (``POST /api/sessionMngr``) and ``/api/logonSessions`` (docs/COMPATIBILITY.md)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from openflr.api import emtypes
from openflr.api.auth import TOKEN_NAME, basic_credentials, current_session, service_of
from openflr.api.responses import em_response
from openflr.api.routing import Route
from openflr.api.schema import Link, Value
from openflr.api.urls import api_base
from openflr.core.sessions import LogonSession
from openflr.errors import NotFoundError

SUPPORTED_VERSIONS = ("v1_2", "v1_3", "v1_4", "v1_5", "v1_6", "v1_7")

# Collections a logged-on client may follow from its LogonSession, in EM's order: the Ref lists,
# the services, then the same collections as entity lists (``?format=Entity``). Collections EM has
# and openflr does not serve at all (security, CDP, cloud, agents, NAS) are left out.
_COLLECTIONS: list[tuple[str, str]] = [
    ("/backupServers", "BackupServer"),
    ("/managedServers", "ManagedServer"),
    ("/jobs", "Job"),
    ("/failoverPlans", "FailoverPlan"),
    ("/hierarchyRoots", "HierarchyRoot"),
    ("/repositories", "Repository"),
    ("/backups", "Backup"),
    ("/restorePoints", "RestorePoint"),
    ("/vmRestorePoints", "VmRestorePoint"),
    ("/vAppRestorePoints", "VAppRestorePoint"),
    ("/replicas", "Replica"),
    ("/vmReplicaPoints", "VmReplicaPoint"),
    ("/catalog/vms", "CatalogVm"),
    ("/backupSessions", "BackupJobSession"),
    ("/restoreSessions", "RestoreSession"),
    ("/replicaSessions", "ReplicaJobSession"),
    ("/backupTaskSessions", "BackupTaskSession"),
    ("/replicaTaskSessions", "ReplicaTaskSession"),
    ("/wanAccelerators", "WanAccelerator"),
    ("/backupFiles", "BackupFile"),
    ("/externalRepositories", "ExternalRepository"),
    ("/vAppReplicaPoints", "VAppReplicaPoint"),
]
SESSION_LINKS: list[tuple[str, str, str]] = [
    *(("Down", f"{kind}ReferenceList", path) for path, kind in _COLLECTIONS),
    ("Down", "TaskList", "/tasks"),
    ("Down", "QueryService", "/querySvc"),
    ("Down", "LookupService", "/lookupSvc"),
    ("Down", "Report", "/reports/summary"),
    *(("Down", f"{kind}List", f"{path}?format=Entity") for path, kind in _COLLECTIONS),
]


def enterprise_manager(request: Request) -> Value:
    base = api_base(request)
    return {
        "Links": [
            Link("Down", f"{base}/logonSessions", "LogonSessionList"),
            Link("Create", f"{base}/sessionMngr/?v=latest", "LogonSession"),
        ],
        "SupportedVersions": [
            {"Name": v, "Links": [Link("Create", f"{base}/sessionMngr/?v={v}", "LogonSession")]}
            for v in SUPPORTED_VERSIONS
        ],
    }


async def get_root(request: Request) -> Response:
    return em_response(request, emtypes.ENTERPRISE_MANAGER, enterprise_manager(request))


def logon_session_value(request: Request, session: LogonSession) -> Value:
    base = api_base(request)
    href = f"{base}/logonSessions/{session.session_id}"
    links = [Link("Up", f"{base}/", "EnterpriseManager")]
    links += [
        Link(rel, f"{base}{path}", type_, "Summary" if type_ == "Report" else None)
        for rel, type_, path in SESSION_LINKS
    ]
    links.append(Link("Delete", href))
    return {
        "UserName": session.user.name,
        "SessionId": session.session_id,
        "Links": links,
        "Href": href,
        "Type": "LogonSession",
    }


async def post_logon(request: Request) -> Response:
    name, password = basic_credentials(request)
    client = request.client.host if request.client else ""
    session, token = await service_of(request).logon(name, password, client)
    value = logon_session_value(request, session)
    secure = "; Secure" if request.url.scheme == "https" else ""
    response = em_response(
        request, emtypes.LOGON_SESSION, value, status=201, headers={"Location": value["Href"]}
    )
    # Starlette lower-cases header names; EM clients compare this one case-sensitively.
    response.raw_headers.append((TOKEN_NAME.encode("ascii"), token.encode("ascii")))
    response.raw_headers.append(
        (b"set-cookie", f"{TOKEN_NAME}={token}; Path=/api; HttpOnly; SameSite=Lax{secure}".encode("ascii"))
    )
    return response


def _own_session(request: Request) -> LogonSession:
    caller = current_session(request)
    wanted = request.path_params["session_id"].strip().lower()
    if wanted == caller.session_id:
        return caller
    other = service_of(request).sessions.get(wanted)
    if other is None or other.user.id != caller.user.id:
        raise NotFoundError(f"Logon session {request.path_params['session_id']!r} does not exist.")
    return other


async def list_sessions(request: Request) -> Response:
    caller = current_session(request)
    others = [s for s in service_of(request).sessions.sessions_of(caller.user.id) if s is not caller]
    value = {"LogonSessions": [logon_session_value(request, s) for s in [caller, *others]]}
    return em_response(request, emtypes.LOGON_SESSIONS, value)


async def get_session(request: Request) -> Response:
    return em_response(request, emtypes.LOGON_SESSION, logon_session_value(request, _own_session(request)))


async def delete_session(request: Request) -> Response:
    session = _own_session(request)
    service_of(request).sessions.end(session, "logout")
    return Response(status_code=204)


routes = [
    Route("/api", get_root, ["GET"]),
    Route("/api/sessionMngr", post_logon, ["POST"]),
    Route("/api/logonSessions", list_sessions, ["GET"]),
    Route("/api/logonSessions/{session_id}", get_session, ["GET"]),
    Route("/api/logonSessions/{session_id}", delete_session, ["DELETE"]),
]
