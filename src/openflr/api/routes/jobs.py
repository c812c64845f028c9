"""Jobs, backups and restore points (docs/COMPATIBILITY.md, "Jobs, backups and restore points").

A client walks ``/jobs`` -> the job's backup -> ``/backups/{id}/restorePoints`` ->
``/restorePoints/{id}/vmRestorePoints`` and reaches the points ``/vmRestorePoints`` serves (the
model is in ``core/protection.py``). openflr runs no job: starting, stopping or editing one is EM's
501 with a message saying so.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from openflr.api import emtypes, inventoryvalues, protectiontypes
from openflr.api import protectionvalues as pv
from openflr.api.auth import require, service_of
from openflr.api.reporttypes import BACKUP_JOB_SESSIONS
from openflr.api.responses import em_response
from openflr.api.routing import Route
from openflr.api.schema import Value
from openflr.api.urls import Query, api_base
from openflr.core.families import PointFamily
from openflr.core.protection import Protection
from openflr.core.roles import Permission
from openflr.core.sessions import LogonSession
from openflr.errors import NotSupportedError


def entity_format(request: Request) -> bool:
    return (Query(request).get("format") or "").strip().lower() in ("entity", "entities")


def protection(request: Request) -> tuple[LogonSession, Protection]:
    """The caller's session and the jobs, backups and points it may see."""
    session = require(request, Permission.BROWSE_INVENTORY)
    service = service_of(request)
    inv = service.inventory(session)
    return session, Protection.of(service.settings.datastores, inv, bool(session.user.restore_scope))


def _refs(request: Request, refs: list[Value]) -> Response:
    return em_response(request, emtypes.ENTITY_REFERENCES, {"Refs": refs})


# --- /jobs -------------------------------------------------------------------------------------------


async def list_jobs(request: Request) -> Response:
    _session, prot = protection(request)
    base, server = api_base(request), prot.inventory.server
    if entity_format(request):
        jobs = [pv.job_entity(base, server, j) for j in prot.jobs]
        return em_response(request, protectiontypes.JOBS, {"Jobs": jobs})
    return _refs(request, [pv.job_ref(base, server, j) for j in prot.jobs])


async def get_job(request: Request) -> Response:
    _session, prot = protection(request)
    job = prot.job(request.path_params["id"])
    base, server = api_base(request), prot.inventory.server
    if entity_format(request):
        return em_response(request, protectiontypes.JOB, pv.job_entity(base, server, job))
    return em_response(request, emtypes.ENTITY_REF, pv.job_ref(base, server, job))


async def job_sessions(request: Request) -> Response:
    """A job's backup sessions: always empty (openflr sees the points a job left, not its runs)."""
    _session, prot = protection(request)
    prot.job(request.path_params["id"])
    if entity_format(request):
        return em_response(request, BACKUP_JOB_SESSIONS, {"BackupJobSessions": []})
    return _refs(request, [])


async def change_job(request: Request) -> Response:
    """``POST /jobs/{id}?action=start|stop|retry|...`` and ``PUT /jobs/{id}``: EM's 501."""
    _session, prot = protection(request)
    job = prot.job(request.path_params["id"])
    action = (Query(request).get("action") or "").strip() or ("edit" if request.method == "PUT" else "")
    what = f"the {action!r} action" if action else f"{request.method} on a job"
    raise NotSupportedError(
        f"openflr does not support {what}: it restores files from replicas and runs no jobs. "
        f"Job {job.name!r} is run and configured on the Veeam backup server."
    )


# --- /backups ----------------------------------------------------------------------------------------


async def list_backups(request: Request) -> Response:
    _session, prot = protection(request)
    base, server = api_base(request), prot.inventory.server
    if entity_format(request):
        backups = [pv.backup_entity(base, server, j) for j in prot.jobs]
        return em_response(request, protectiontypes.BACKUPS, {"Backups": backups})
    return _refs(request, [pv.backup_ref(base, server, j) for j in prot.jobs])


async def get_backup(request: Request) -> Response:
    _session, prot = protection(request)
    job = prot.backup(request.path_params["id"])
    base, server = api_base(request), prot.inventory.server
    if entity_format(request):
        return em_response(request, protectiontypes.BACKUP, pv.backup_entity(base, server, job))
    return em_response(request, emtypes.ENTITY_REF, pv.backup_ref(base, server, job))


async def backup_points(request: Request) -> Response:
    _session, prot = protection(request)
    job = prot.backup(request.path_params["id"])
    base, server = api_base(request), prot.inventory.server
    points = [p for _r, p in job.points()]
    if entity_format(request):
        found = [pv.restore_point_entity(base, server, job, p) for p in points]
        return em_response(request, protectiontypes.RESTORE_POINTS, {"RestorePoints": found})
    return _refs(request, [pv.restore_point_ref(base, server, job, p) for p in points])


# --- /restorePoints ----------------------------------------------------------------------------------


async def list_restore_points(request: Request) -> Response:
    _session, prot = protection(request)
    base, server = api_base(request), prot.inventory.server
    found = prot.restore_points()
    if entity_format(request):
        entities = [pv.restore_point_entity(base, server, j, p) for j, _r, p in found]
        return em_response(request, protectiontypes.RESTORE_POINTS, {"RestorePoints": entities})
    return _refs(request, [pv.restore_point_ref(base, server, j, p) for j, _r, p in found])


async def get_restore_point(request: Request) -> Response:
    _session, prot = protection(request)
    job, _replica, point = prot.restore_point(request.path_params["id"])
    base, server = api_base(request), prot.inventory.server
    if entity_format(request):
        value = pv.restore_point_entity(base, server, job, point)
        return em_response(request, protectiontypes.RESTORE_POINT, value)
    return em_response(request, emtypes.ENTITY_REF, pv.restore_point_ref(base, server, job, point))


async def restore_point_vms(request: Request) -> Response:
    """The VM restore points of one restore point: exactly the replica point it stands for."""
    _session, prot = protection(request)
    _job, replica, point = prot.restore_point(request.path_params["id"])
    base, inv = api_base(request), prot.inventory
    if entity_format(request):
        value = inventoryvalues.point_entity(base, inv, replica, point, PointFamily.RESTORE)
        return em_response(request, emtypes.VM_RESTORE_POINTS, {"VmRestorePoints": [value]})
    return _refs(request, [inventoryvalues.point_ref(base, inv, replica, point, PointFamily.RESTORE)])


routes = [
    Route("/api/jobs", list_jobs, ["GET"]),
    Route("/api/jobs/{id}", get_job, ["GET"]),
    Route("/api/jobs/{id}", change_job, ["POST", "PUT"]),
    Route("/api/jobs/{id}/backupSessions", job_sessions, ["GET"]),
    Route("/api/backups", list_backups, ["GET"]),
    Route("/api/backups/{id}", get_backup, ["GET"]),
    Route("/api/backups/{id}/restorePoints", backup_points, ["GET"]),
    Route("/api/restorePoints", list_restore_points, ["GET"]),
    Route("/api/restorePoints/{id}", get_restore_point, ["GET"]),
    Route("/api/restorePoints/{id}/vmRestorePoints", restore_point_vms, ["GET"]),
]
