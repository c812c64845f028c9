"""The file catalog over HTTP (docs/EM-API.md, "File catalog"): search, versions of a path, the
difference between two points (also as a ZIP of one side's changed files), the catalog's status and
upkeep under ``/api/openflr/catalog/``, and EM's ``/api/catalog/vms`` family.

Every answer comes from the inventory within the caller's restore scope: a VM outside it is not
there, by name or by id.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from openflr.api import catalogvalues as cv
from openflr.api import downloads, emtypes
from openflr.api.auth import current_session, require, service_of
from openflr.api.downloads import content_disposition
from openflr.api.negotiation import Format
from openflr.api.paging import page_request, paging_info
from openflr.api.responses import em_response
from openflr.api.routing import Route
from openflr.api.schema import Value
from openflr.api.urls import Query, api_base
from openflr.core import browse
from openflr.core.filecatalog import MAX_DIFF_ZIP_FILES, Criteria, Kind, NameMatch, changed_files
from openflr.core.mounts import Mount
from openflr.core.roles import Permission
from openflr.core.service import Service
from openflr.core.sessions import LogonSession
from openflr.errors import BadRequestError, NotFoundError
from openflr.inventory.model import Inventory, Replica

T = TypeVar("T")
_SIZE = re.compile(r"\s*[0-9]{1,19}\s*\Z")
_DRIVE = re.compile(r"[A-Za-z]:(/|\Z)")
_KINDS = {k.label.lower(): k for k in Kind}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_LIMIT = 2**63 - 1
_FORMAT_KEY = "openflr.format"
"""Where ``responses.response_format`` keeps the negotiated format (``format=json`` sets it here)."""


async def _run(fn: Callable[[], T]) -> T:
    """Catalog queries read SQLite (and ``hashes`` read points): off the event loop."""
    return await anyio.to_thread.run_sync(fn)


def _query(request: Request) -> Query:
    """The query string; ``format=json``/``xml`` chooses the representation as ``Accept`` does."""
    query = Query(request)
    fmt = (query.get("format") or "").strip().lower()
    if fmt in ("json", "xml"):
        request.scope[_FORMAT_KEY] = Format.JSON if fmt == "json" else Format.XML
    return query


def _text(query: Query, name: str) -> str:
    return (query.get(name) or "").strip()


def _guest_path(query: Query, name: str) -> str:
    """A guest path as clients write it: ``c:\\Users`` is ``C:/Users`` (the drive's letter in upper
    case, as the catalog names drives; the names below keep their case)."""
    path = (query.get(name) or "").strip().replace("\\", "/")
    if _DRIVE.match(path):
        path = path[0].upper() + path[1:]
    return path


def _size(query: Query, name: str) -> int | None:
    raw = query.get(name)
    if raw is None or not raw.strip():
        return None
    if not _SIZE.match(raw) or int(raw) > 2**63 - 1:
        raise BadRequestError(
            f"{name} must be a size in bytes (a whole number, 0 or more), not {raw[:40]!r}."
        )
    return int(raw)


def _time_ns(query: Query, name: str) -> int | None:
    raw = _text(query, name)
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadRequestError(
            f"{name} must be a time in ISO 8601 (2026-11-02T21:00:00Z), not {raw[:40]!r}."
        ) from None
    ns = (when - _EPOCH) // timedelta(microseconds=1) * 1000
    return max(-_NS_LIMIT, min(ns, _NS_LIMIT))  # SQLite integers are 64-bit


def _choice(query: Query, name: str, allowed: dict[str, T], default: T) -> T:
    raw = _text(query, name)
    if not raw:
        return default
    found = allowed.get(raw.lower())
    if found is None:
        raise BadRequestError(f"{name} must be one of {', '.join(allowed)}, not {raw[:40]!r}.")
    return found


def _flag(query: Query, name: str) -> bool:
    return _choice(query, name, {"true": True, "false": False, "1": True, "0": False}, False)


def _criteria(query: Query) -> Criteria:
    kind = _choice(query, "type", {k: frozenset({v}) for k, v in _KINDS.items()}, frozenset[Kind]())
    criteria = Criteria(
        name=(query.get("name") or ""),
        match=_choice(query, "match", {m.value: m for m in NameMatch}, NameMatch.SUBSTRING),
        under=_guest_path(query, "under"),
        min_size=_size(query, "minSize"),
        max_size=_size(query, "maxSize"),
        modified_after=_time_ns(query, "modifiedAfter"),
        modified_before=_time_ns(query, "modifiedBefore"),
        kinds=kind,
        owner=_text(query, "owner"),
    )
    if criteria == Criteria(match=criteria.match):
        raise BadRequestError(
            "Say what to look for: name, under, minSize, maxSize, modifiedAfter, modifiedBefore, type "
            "or owner."
        )
    if (
        criteria.min_size is not None
        and criteria.max_size is not None
        and criteria.min_size > criteria.max_size
    ):
        raise BadRequestError("minSize is larger than maxSize.")
    return criteria


def _kept_query(request: Request) -> str:
    return "".join(
        f"&{k}={v}" for k, v in request.query_params.items() if k.lower() not in ("page", "pagesize")
    )


def _newest_mount(service: Service, session: LogonSession, point_id: str) -> Mount | None:
    """The session's first mount of the point this node has open (search hits link to it)."""
    mounts = [m for m in service.mounts.local_of_point(session, point_id) if not m.gone]
    return mounts[0] if mounts else None


# --- search, versions, diff ---------------------------------------------------------------------------


async def search(request: Request) -> Response:
    """Items whose name, place, size, time, type or owner match, across the VMs in scope."""
    session = current_session(request)
    service = service_of(request)
    query = _query(request)
    criteria = _criteria(query)
    settings = service.settings.api
    paging = page_request(query, settings.default_page_size, settings.max_page_size)
    inv = service.inventory(session)
    vm, point = _text(query, "vm"), _text(query, "point")
    hits = await _run(lambda: service.files.search(inv, criteria, vm=vm, point=point))
    size, number = paging.size, paging.number
    pages = max(1, -(-len(hits) // size))
    base = api_base(request)
    shown = [
        cv.hit_value(base, inv, h, _newest_mount(service, session, h.hit.points[-1][0]))
        for h in hits[(number - 1) * size : number * size]
    ]
    href = f"{base}/openflr/catalog/search?pageSize={size}{_kept_query(request)}"
    value: Value = {
        "Hits": shown,
        "PagingInfo": paging_info(number, size, pages, lambda n: f"{href}&page={n}"),
    }
    return em_response(request, cv.CATALOG_SEARCH_RESULTS, value)


async def versions(request: Request) -> Response:
    """Each catalogued point that holds a path, with how it changed since the point before."""
    query = _query(request)
    hashes = _flag(query, "hashes")
    # Hashing reads the files' content: only for those who may restore.
    session = require(request, Permission.RESTORE) if hashes else current_session(request)
    service = service_of(request)
    vm, path = _text(query, "vm"), _guest_path(query, "path")
    if not vm or not path.strip():
        raise BadRequestError("Name the VM (vm) and the path (path) whose versions to list.")
    inv = service.inventory(session)
    found = await _run(lambda: service.files.versions(inv, vm, path, hashes=hashes))
    return em_response(request, cv.CATALOG_VERSIONS, cv.versions_value(api_base(request), inv, path, found))


async def diff(request: Request) -> Response:
    """What changed between two points of one VM: paged, streamed whole, or one side's changed files
    as a ZIP."""
    query = _query(request)
    as_zip = (
        _text(query, "format").lower() == "zip"
        or "application/zip" in (request.headers.get("accept") or "").lower()
    )
    side = _choice(query, "side", {"from": "from", "to": "to"}, "to")
    session = require(request, Permission.RESTORE) if as_zip else current_session(request)
    service = service_of(request)
    point_a, point_b, under = _text(query, "from"), _text(query, "to"), _guest_path(query, "under")
    if not point_a or not point_b:
        raise BadRequestError("Name both points: from and to.")
    settings = service.settings.api
    paging = page_request(query, settings.default_page_size, settings.max_page_size)
    inv = service.inventory(session)
    replica, changes = await _run(lambda: service.files.diff(inv, point_a, point_b, under))
    a_id, b_id = (p.rsplit(":", 1)[-1].lower() for p in (point_a, point_b))
    if as_zip:
        point_id = a_id if side == "from" else b_id
        return await _diff_zip(
            request, session, service, inv, replica, point_id, changed_files(changes, side)
        )
    value: Value = {
        "FromPointUid": cv.point_uid(a_id),
        "ToPointUid": cv.point_uid(b_id),
        "Under": under or None,
    }
    if paging.asked is None:
        value["Changes"] = cv.change_values(changes)  # lazy: streamed while it is written
        return em_response(request, cv.CATALOG_DIFF, value)
    size, number = paging.size, paging.number
    pages = max(1, -(-len(changes) // size))
    value["Changes"] = [cv.change_value(d) for d in changes[(number - 1) * size : number * size]]
    href = f"{api_base(request)}/openflr/catalog/diff?pageSize={size}{_kept_query(request)}"
    value["PagingInfo"] = paging_info(number, size, pages, lambda n: f"{href}&page={n}")
    return em_response(request, cv.CATALOG_DIFF, value)


async def _diff_zip(
    request: Request,
    session: LogonSession,
    service: Service,
    inv: Inventory,
    replica: Replica,
    point_id: str,
    paths: list[str],
) -> Response:
    """The changed files of one side as one ZIP, read through a mount of that point in the session
    (an existing one, or one made for it, which stays like any other mount of the session)."""
    if not paths:
        raise NotFoundError("No file changed on that side between the two points.")
    mounts = [m for m in await service.mounts_of_point(session, point_id) if not m.gone]
    mount = mounts[0] if mounts else None
    if mount is None:
        point = inv.points[point_id]
        mount = await anyio.to_thread.run_sync(service.mounts.mount, session, replica, point)
    wheres = [await browse.locate(service, mount, path.split("/")) for path in paths]
    response = downloads.download_list(request, session, mount, wheres, MAX_DIFF_ZIP_FILES)
    when = mount.point.created.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    response.headers["content-disposition"] = content_disposition(f"{replica.vm_name} changes {when}.zip")
    return response


# --- status and upkeep ----------------------------------------------------------------------------------


async def status(request: Request) -> Response:
    session = current_session(request)
    service = service_of(request)
    inv = service.inventory(session)
    vm = _text(_query(request), "vm")
    found = await _run(lambda: service.files.status(inv, vm))
    return em_response(request, cv.CATALOG_STATUS, cv.statuses_value(inv, found))


def _build_action(query: Query) -> bool:
    action = _text(query, "action").lower()
    if action != "build":
        raise BadRequestError(f"action must be build, not {action[:40]!r}.")
    return _flag(query, "again")


async def build_point(request: Request) -> Response:
    """Administrators: build one point's catalog ahead of the background work."""
    session = require(request, Permission.ADMINISTER)
    service = service_of(request)
    again = _build_action(_query(request))
    inv = service.inventory(session)
    given = request.path_params["id"]
    await _run(lambda: service.files.build(inv, point=given, again=again))
    pid = given.rsplit(":", 1)[-1].lower()
    replica = inv.replicas[inv.points[pid].replica_id]
    found = await _run(lambda: service.files.status(inv, replica.id))
    chosen = [s for s in found if s.point.id == pid]
    return em_response(request, cv.CATALOG_STATUS, cv.statuses_value(inv, chosen), status=202)


async def build_vm(request: Request) -> Response:
    """Administrators: build every point of a VM ahead of the background work."""
    session = require(request, Permission.ADMINISTER)
    service = service_of(request)
    again = _build_action(_query(request))
    inv = service.inventory(session)
    vm = request.path_params["vm"]
    await _run(lambda: service.files.build(inv, vm=vm, again=again))
    found = await _run(lambda: service.files.status(inv, vm))
    return em_response(request, cv.CATALOG_STATUS, cv.statuses_value(inv, found), status=202)


async def drop_point(request: Request) -> Response:
    """Administrators: forget a point's catalog (it is built again on request)."""
    session = require(request, Permission.ADMINISTER)
    service = service_of(request)
    inv = service.inventory(session)
    given = request.path_params["id"]
    await _run(lambda: service.files.drop(inv, point=given))
    return Response(status_code=204)


# --- EM's /api/catalog/vms ------------------------------------------------------------------------------


def _entity(query: Query) -> bool:
    return _text(query, "format").lower() in ("entity", "entities")


def _catalogued(service: Service, inv: Inventory) -> dict[str, list[tuple[Replica, list[str]]]]:
    """VM name -> its replicas with their ready points (oldest first), for VMs with at least one."""
    out: dict[str, list[tuple[Replica, list[str]]]] = {}
    for replica in sorted(inv.replicas.values(), key=lambda r: (r.vm_name.casefold(), r.id)):
        ready = service.files.ready_points(replica)
        if ready:
            out.setdefault(replica.vm_name, []).append((replica, ready))
    return out


def _catalog_vm(catalogued: dict[str, list[tuple[Replica, list[str]]]], name: str) -> str:
    folded = name.casefold()
    found = next((n for n in catalogued if n.casefold() == folded), None)
    if found is None:
        raise NotFoundError(f"There is no catalogued VM {name!r}.")
    return found


async def catalog_vms(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    service = service_of(request)
    inv = service.inventory(session)
    catalogued = await _run(lambda: _catalogued(service, inv))
    base = api_base(request)
    if _entity(Query(request)):
        return em_response(
            request, cv.CATALOG_VMS, {"CatalogVms": [cv.catalog_vm_entity(base, n) for n in catalogued]}
        )
    return em_response(
        request, emtypes.ENTITY_REFERENCES, {"Refs": [cv.catalog_vm_ref(base, n) for n in catalogued]}
    )


async def catalog_vm(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    service = service_of(request)
    inv = service.inventory(session)
    catalogued = await _run(lambda: _catalogued(service, inv))
    name = _catalog_vm(catalogued, request.path_params["vmname"])
    base = api_base(request)
    if _entity(Query(request)):
        return em_response(request, cv.CATALOG_VM, cv.catalog_vm_entity(base, name))
    return em_response(request, emtypes.ENTITY_REF, cv.catalog_vm_ref(base, name))


async def catalog_vm_points(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    service = service_of(request)
    inv = service.inventory(session)
    catalogued = await _run(lambda: _catalogued(service, inv))
    name = _catalog_vm(catalogued, request.path_params["vmname"])
    base = api_base(request)
    refs = [
        cv.catalog_point_ref(base, name, inv.points[pid])
        for _replica, ready in catalogued[name]
        for pid in ready
        if pid in inv.points
    ]
    return em_response(request, emtypes.ENTITY_REFERENCES, {"Refs": refs})


routes = [
    Route("/api/openflr/catalog/search", search, ["GET"]),
    Route("/api/openflr/catalog/versions", versions, ["GET"]),
    Route("/api/openflr/catalog/diff", diff, ["GET"]),
    Route("/api/openflr/catalog/status", status, ["GET"]),
    Route("/api/openflr/catalog/points/{id}", build_point, ["POST"]),
    Route("/api/openflr/catalog/points/{id}", drop_point, ["DELETE"]),
    Route("/api/openflr/catalog/vms/{vm}", build_vm, ["POST"]),
    Route("/api/catalog/vms", catalog_vms, ["GET"]),
    Route("/api/catalog/vms/{vmname}", catalog_vm, ["GET"]),
    Route("/api/catalog/vms/{vmname}/vmRestorePoints", catalog_vm_points, ["GET"]),
]
