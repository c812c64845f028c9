"""The monitoring resources EM clients poll: summary reports, repositories, sessions, agents.

Monitoring clients (veeam-exporter, the Grafana/Zabbix collectors; docs/COMPATIBILITY.md) read these
before anything else, so they must answer in EM shapes. Every number is derived from the inventory
openflr really has; openflr runs no jobs itself, so whatever describes job *runs* is empty or zero:

- ``/reports/summary``: links to the five reports below.
- ``/reports/summary/overview``: one backup server (this one), no proxies, one repository server per
  datastore the caller can see, no running jobs; ``ScheduledJobs`` counts the replication jobs that
  produced the replicas (distinct job names) and every visible replica counts as a VM whose latest
  state is successful (a replica exists only once its job has succeeded at least once).
- ``/reports/summary/vms_overview``: every replica is a protected and replicated VM, never a backed
  up one; ``RestorePoints`` counts the replica points. ``ReplicaRestorePointsSize`` is the bytes the
  replica VMs' folders occupy (each file counted once); ``SourceVmsSize`` the virtual size of each
  replica's newest disks. The backup figures are 0: there are no backups and no backup runs, which
  is also why ``SuccessBackupPercents`` is 0 rather than an invented 100.
- ``/reports/summary/job_statistics``: the replication jobs as scheduled replica jobs, every run
  count and duration 0 (openflr sees the points a job left behind, not its runs).
- ``/reports/summary/repository``: one ``Period`` per datastore the caller can see: its name, capacity
  and free space (as ``/repositories``) and, as ``BackupSize``, the bytes of the visible replica
  folders in it.
- ``/reports/summary/processed_vms``: one ``Day`` for each of the last 7 UTC days, newest first:
  ``ReplicatedVms`` counts the replicas that gained a point that day, ``BackupedVms`` is 0.
- ``/repositories``: one ``Repository`` per datastore (``Kind`` ``Datastore``), capacity and free
  space from ``statvfs`` of its path, ``-1`` for both when the path cannot be read (EM's own value for
  a repository of unknown size). Users limited to some VMs see only datastores holding one of them.
- ``/backupSessions``, ``/replicaSessions``, ``/agents/discoveredComputers``: empty lists. openflr
  runs no backup job and knows no agent; it does not know the replication job's sessions either
  (their end times and results live on the Veeam server), and inventing one session per point would
  feed made-up durations and results to monitoring.
- any ``/{id}`` below those lists, and ``/backupSessions/{id}/taskSessions``: 404 ``Error``.

Every resource needs a logon session with the inventory-reading permission.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from openflr.api import emtypes, reporttypes
from openflr.api.auth import require, service_of
from openflr.api.inventoryvalues import server_href, urn
from openflr.api.responses import em_response
from openflr.api.routing import Endpoint, Route
from openflr.api.schema import EmType, Link, Value
from openflr.api.urls import Query, api_base
from openflr.config import DatastoreSettings
from openflr.core.protection import Protection
from openflr.core.roles import Permission
from openflr.core.usage import datastore_space, datastore_usage, replica_bytes, source_bytes
from openflr.errors import NotFoundError
from openflr.inventory.model import BackupServer, Inventory, stable_id

REPOSITORY_KIND = "Datastore"


def _entity(request: Request) -> bool:
    return (Query(request).get("format") or "").strip().lower() in ("entity", "entities")


def _bare(ident: str) -> str:
    return ident.rsplit(":", 1)[-1].strip().lower()


def _server_up(base: str, server: BackupServer) -> Link:
    return Link("Up", server_href(base, server), "BackupServerReference", server.name)


# --- what the reports count ------------------------------------------------------------------------


def visible_datastores(request: Request, inv: Inventory, limited: bool) -> list[DatastoreSettings]:
    """The configured datastores the caller may know of (with a restore scope: those holding a VM)."""
    stores = service_of(request).settings.datastores
    if not limited:
        return list(stores)
    used = {r.datastore for r in inv.replicas.values()}
    return [d for d in stores if d.name in used]


def _job_count(request: Request, inv: Inventory, limited: bool) -> int:
    """The replication jobs the caller can see (as ``/jobs`` lists them)."""
    return len(Protection.of(service_of(request).settings.datastores, inv, limited).jobs)


# --- /reports/summary --------------------------------------------------------------------------------


REPORTS = (
    ("overview", "Overview"),
    ("vms_overview", "VmsOverview"),
    ("job_statistics", "JobStatistics"),
    ("processed_vms", "ProcessedVms"),
    ("repository", "Repository"),
)


async def summary(request: Request) -> Response:
    require(request, Permission.BROWSE_INVENTORY)
    base = api_base(request)
    links = [Link("Down", f"{base}/reports/summary/{path}", "ReportFrame", name) for path, name in REPORTS]
    return em_response(request, reporttypes.SUMMARY_REPORT, {"Links": links})


async def overview(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    inv = service_of(request).inventory(session)
    stores = visible_datastores(request, inv, bool(session.user.restore_scope))
    value: Value = {
        "BackupServers": 1,
        "ProxyServers": 0,
        "RepositoryServers": len(stores),
        "RunningJobs": 0,
        "ScheduledJobs": _job_count(request, inv, bool(session.user.restore_scope)),
        "SuccessfulVmLastestStates": len(inv.replicas),
        "WarningVmLastestStates": 0,
        "FailedVmLastestStates": 0,
    }
    return em_response(request, reporttypes.OVERVIEW_REPORT, value)


async def vms_overview(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    inv = service_of(request).inventory(session)
    folders = [r.folder for r in inv.replicas.values()]
    occupied = await anyio.to_thread.run_sync(replica_bytes, folders)
    value: Value = {
        "ProtectedVms": len(inv.replicas),
        "BackedUpVms": 0,
        "ReplicatedVms": len(inv.replicas),
        "RestorePoints": len(inv.points),
        "FullBackupPointsSize": 0,
        "IncrementalBackupPointsSize": 0,
        "ReplicaRestorePointsSize": occupied,
        "SourceVmsSize": source_bytes(inv),
        "SuccessBackupPercents": 0,
        "ProtectedVmsReportLink": "",
    }
    return em_response(request, reporttypes.VMS_OVERVIEW_REPORT, value)


async def job_statistics(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    inv = service_of(request).inventory(session)
    jobs = _job_count(request, inv, bool(session.user.restore_scope))
    value: Value = {
        "RunningJobs": 0,
        "ScheduledJobs": jobs,
        "ScheduledBackupJobs": 0,
        "ScheduledReplicaJobs": jobs,
        "TotalJobRuns": 0,
        "SuccessfulJobRuns": 0,
        "WarningsJobRuns": 0,
        "FailedJobRuns": 0,
        "MaxJobDuration": 0,
        "MaxBackupJobDuration": 0,
        "MaxReplicaJobDuration": 0,
        "MaxDurationBackupJobName": "",
        "MaxDurationReplicaJobName": "",
        "BackupJobStatusReportLink": "",
    }
    return em_response(request, reporttypes.JOB_STATISTICS_REPORT, value)


async def repository_report(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    inv = service_of(request).inventory(session)
    stores = visible_datastores(request, inv, bool(session.user.restore_scope))
    usage = await anyio.to_thread.run_sync(datastore_usage, stores, inv)
    periods: list[Value] = [
        {"Name": u.name, "Capacity": u.capacity, "FreeSpace": u.free, "BackupSize": u.replica_bytes}
        for u in usage
    ]
    value: Value = {"Periods": periods, "CapacityPlanningReportLink": ""}
    return em_response(request, reporttypes.REPOSITORY_REPORT, value)


PROCESSED_DAYS = 7


def processed_days(inv: Inventory, today: date) -> list[Value]:
    """The last ``PROCESSED_DAYS`` UTC days, newest first, with the replicas that gained a point."""
    by_day: dict[date, set[str]] = {}
    for point in inv.points.values():
        created = point.created if point.created.tzinfo is None else point.created.astimezone(UTC)
        by_day.setdefault(created.date(), set()).add(point.replica_id)
    days = []
    for back in range(PROCESSED_DAYS):
        day = today - timedelta(days=back)
        stamp = datetime(day.year, day.month, day.day, tzinfo=UTC)
        days.append({"Timestamp": stamp, "ReplicatedVms": len(by_day.get(day, ())), "BackupedVms": 0})
    return days


async def processed_vms(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    inv = service_of(request).inventory(session)
    days = processed_days(inv, datetime.now(UTC).date())
    return em_response(request, reporttypes.PROCESSED_VMS_REPORT, {"Days": days})


# --- /repositories -----------------------------------------------------------------------------------


def repository_id(store: DatastoreSettings) -> str:
    return stable_id("repository", store.name)


def repository_ref(base: str, server: BackupServer, store: DatastoreSettings) -> Value:
    href = f"{base}/repositories/{repository_id(store)}"
    return {
        "Type": "RepositoryReference",
        "Href": href,
        "Name": store.name,
        "UID": urn("Repository", repository_id(store)),
        "Links": [
            _server_up(base, server),
            Link("Alternate", f"{href}?format=Entity", "Repository", store.name),
        ],
    }


def repository_entity(base: str, server: BackupServer, store: DatastoreSettings) -> Value:
    href = f"{base}/repositories/{repository_id(store)}"
    capacity, free = datastore_space(store.path)
    return {
        "Type": "Repository",
        "Href": f"{href}?format=Entity",
        "Name": store.name,
        "UID": urn("Repository", repository_id(store)),
        "Capacity": capacity,
        "FreeSpace": free,
        "Kind": REPOSITORY_KIND,
        "Links": [
            _server_up(base, server),
            Link("Alternate", href, "RepositoryReference", store.name),
        ],
    }


def _entities(base: str, server: BackupServer, stores: list[DatastoreSettings]) -> list[Value]:
    return [repository_entity(base, server, s) for s in stores]


async def list_repositories(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    inv = service_of(request).inventory(session)
    stores = visible_datastores(request, inv, bool(session.user.restore_scope))
    base = api_base(request)
    if _entity(request):
        found = await anyio.to_thread.run_sync(_entities, base, inv.server, stores)
        return em_response(request, reporttypes.REPOSITORIES, {"Repositories": found})
    refs = [repository_ref(base, inv.server, s) for s in stores]
    return em_response(request, emtypes.ENTITY_REFERENCES, {"Refs": refs})


async def get_repository(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    inv = service_of(request).inventory(session)
    wanted = _bare(request.path_params["id"])
    stores = visible_datastores(request, inv, bool(session.user.restore_scope))
    store = next((s for s in stores if repository_id(s) == wanted), None)
    if store is None:
        raise NotFoundError(f"Repository {request.path_params['id']!r} does not exist.")
    base = api_base(request)
    if _entity(request):
        found = await anyio.to_thread.run_sync(repository_entity, base, inv.server, store)
        return em_response(request, reporttypes.REPOSITORY, found)
    return em_response(request, emtypes.ENTITY_REF, repository_ref(base, inv.server, store))


# --- lists openflr has nothing to put in -------------------------------------------------------------


def empty_list(entity_type: EmType) -> Endpoint:
    key = entity_type.fields[0].name

    async def endpoint(request: Request) -> Response:
        require(request, Permission.BROWSE_INVENTORY)
        if _entity(request):
            return em_response(request, entity_type, {key: []})
        return em_response(request, emtypes.ENTITY_REFERENCES, {"Refs": []})

    return endpoint


def no_such(what: str) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        require(request, Permission.BROWSE_INVENTORY)
        raise NotFoundError(f"{what} {request.path_params['id']!r} does not exist.")

    return endpoint


routes = [
    Route("/api/reports/summary", summary, ["GET"]),
    Route("/api/reports/summary/overview", overview, ["GET"]),
    Route("/api/reports/summary/vms_overview", vms_overview, ["GET"]),
    Route("/api/reports/summary/job_statistics", job_statistics, ["GET"]),
    Route("/api/reports/summary/processed_vms", processed_vms, ["GET"]),
    Route("/api/reports/summary/repository", repository_report, ["GET"]),
    Route("/api/repositories", list_repositories, ["GET"]),
    Route("/api/repositories/{id}", get_repository, ["GET"]),
    Route("/api/backupSessions", empty_list(reporttypes.BACKUP_JOB_SESSIONS), ["GET"]),
    Route("/api/backupSessions/{id}", no_such("Backup job session"), ["GET"]),
    Route("/api/backupSessions/{id}/taskSessions", no_such("Backup job session"), ["GET"]),
    Route("/api/replicaSessions", empty_list(reporttypes.REPLICA_JOB_SESSIONS), ["GET"]),
    Route("/api/replicaSessions/{id}", no_such("Replica job session"), ["GET"]),
    Route("/api/agents/discoveredComputers", empty_list(reporttypes.DISCOVERED_COMPUTERS), ["GET"]),
    Route("/api/agents/discoveredComputers/{id}", no_such("Discovered computer"), ["GET"]),
]
