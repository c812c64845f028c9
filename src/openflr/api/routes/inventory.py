"""Backup servers, replicas, replica points and the query service (docs/COMPATIBILITY.md)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from openflr.api import emtypes, inventoryvalues, querytypes, queryvalues
from openflr.api.auth import require, service_of
from openflr.api.paging import page_request, paging_info
from openflr.api.responses import em_response
from openflr.api.routes.reports import visible_datastores
from openflr.api.routing import FamilyRoute, Route, family_of
from openflr.api.schema import Link, Value
from openflr.api.urls import Query, api_base
from openflr.core import catalog_queries as cq
from openflr.core.families import PointFamily
from openflr.core.protection import Protection
from openflr.core.query import run_query
from openflr.core.roles import Permission
from openflr.errors import BadRequestError, NotFoundError


def _entity(query: Query) -> bool:
    return (query.get("format") or "").strip().lower() in ("entity", "entities")


async def list_servers(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    inv = service_of(request).inventory(session)
    base = api_base(request)
    if _entity(Query(request)):
        return em_response(
            request,
            emtypes.BACKUP_SERVERS,
            {"BackupServers": [inventoryvalues.server_entity(base, inv.server)]},
        )
    return em_response(
        request, emtypes.ENTITY_REFERENCES, {"Refs": [inventoryvalues.server_ref(base, inv.server)]}
    )


async def get_server(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    inv = service_of(request).inventory(session)
    wanted = request.path_params["id"].rsplit(":", 1)[-1].lower()
    if wanted != inv.server.id:
        raise NotFoundError(f"Backup server {request.path_params['id']!r} does not exist.")
    base = api_base(request)
    if _entity(Query(request)):
        return em_response(request, emtypes.BACKUP_SERVER, inventoryvalues.server_entity(base, inv.server))
    return em_response(request, emtypes.ENTITY_REF, inventoryvalues.server_ref(base, inv.server))


async def list_replicas(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    inv = service_of(request).inventory(session)
    base = api_base(request)
    replicas = sorted(inv.replicas.values(), key=lambda r: (r.vm_name.casefold(), r.id))
    if _entity(Query(request)):
        return em_response(
            request,
            emtypes.REPLICAS,
            {"Replicas": [inventoryvalues.replica_entity(base, inv, r) for r in replicas]},
        )
    return em_response(
        request,
        emtypes.ENTITY_REFERENCES,
        {"Refs": [inventoryvalues.replica_ref(base, inv, r) for r in replicas]},
    )


async def get_replica(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    service = service_of(request)
    replica = service.replica(session, request.path_params["id"])
    inv = service.inventory(session)
    base = api_base(request)
    if _entity(Query(request)):
        return em_response(request, emtypes.REPLICA, inventoryvalues.replica_entity(base, inv, replica))
    return em_response(request, emtypes.ENTITY_REF, inventoryvalues.replica_ref(base, inv, replica))


async def replica_points(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    service = service_of(request)
    replica = service.replica(session, request.path_params["id"])
    inv = service.inventory(session)
    base = api_base(request)
    if _entity(Query(request)):
        return em_response(
            request,
            emtypes.VM_REPLICA_POINTS,
            {
                "VmReplicaPoints": [
                    inventoryvalues.point_entity(base, inv, replica, p) for p in replica.points
                ]
            },
        )
    return em_response(
        request,
        emtypes.ENTITY_REFERENCES,
        {"Refs": [inventoryvalues.point_ref(base, inv, replica, p) for p in replica.points]},
    )


_POINT_LISTS = {
    PointFamily.REPLICA: emtypes.VM_REPLICA_POINTS,
    PointFamily.RESTORE: emtypes.VM_RESTORE_POINTS,
}
_POINT_TYPES = {PointFamily.REPLICA: emtypes.VM_REPLICA_POINT, PointFamily.RESTORE: emtypes.VM_RESTORE_POINT}


async def list_points(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    family = family_of(request)
    inv = service_of(request).inventory(session)
    base = api_base(request)
    pairs = sorted(
        ((inv.replicas[p.replica_id], p) for p in inv.points.values()),
        key=lambda rp: (rp[0].display_name.casefold(), rp[1].created, rp[1].id),
    )
    if _entity(Query(request)):
        key = _POINT_LISTS[family].fields[0].name
        return em_response(
            request,
            _POINT_LISTS[family],
            {key: [inventoryvalues.point_entity(base, inv, r, p, family) for r, p in pairs]},
        )
    return em_response(
        request,
        emtypes.ENTITY_REFERENCES,
        {"Refs": [inventoryvalues.point_ref(base, inv, r, p, family) for r, p in pairs]},
    )


async def get_point(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    family = family_of(request)
    service = service_of(request)
    replica, point = service.point(session, request.path_params["id"])
    inv = service.inventory(session)
    base = api_base(request)
    if _entity(Query(request)):
        return em_response(
            request, _POINT_TYPES[family], inventoryvalues.point_entity(base, inv, replica, point, family)
        )
    return em_response(
        request, emtypes.ENTITY_REF, inventoryvalues.point_ref(base, inv, replica, point, family)
    )


async def query_service(request: Request) -> Response:
    require(request, Permission.BROWSE_INVENTORY)
    base = api_base(request)
    links = [
        Link("Down", f"{base}/query?type={t.name}", "QueryResult", t.name) for t in cq.QUERY_TYPES.values()
    ]
    return em_response(
        request, emtypes.QUERY_SERVICE, {"Href": f"{base}/querySvc", "Type": "QueryService", "Links": links}
    )


def _sort(query: Query) -> tuple[str, bool] | None:
    asc, desc = query.get("sortAsc"), query.get("sortDesc")
    if asc and desc:
        raise BadRequestError("Use sortAsc or sortDesc, not both.")
    if desc:
        return desc.strip(), True
    if asc:
        return asc.strip(), False
    return None


async def run(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    service = service_of(request)
    query = Query(request)
    type_name = (query.get("type") or "").strip()
    if not type_name:
        raise BadRequestError("The query needs a type, e.g. type=VmReplicaPoint.")
    qtype = cq.QUERY_TYPES.get(type_name.lower())
    if qtype is None:
        raise BadRequestError(f"Unknown query type {type_name!r}; GET /api/querySvc lists the types.")
    fmt = (query.get("format") or "Refs").strip().lower()
    if fmt not in ("refs", "ref", "entities", "entity"):
        raise BadRequestError(f"Unknown format {query.get('format')!r}; use Refs or Entities.")
    entities = fmt.startswith("entit")
    settings = service.settings.api
    paging = page_request(query, settings.default_page_size, settings.max_page_size)
    size, page = paging.size, paging.number
    sort = _sort(query)
    inv = service.inventory(session)
    limited = bool(session.user.restore_scope)
    prot = Protection.of(service.settings.datastores, inv, limited)
    stores = visible_datastores(request, inv, limited)
    result = run_query(qtype, cq.records(prot, stores, qtype), query.get("filter"), sort, size, page)
    base = api_base(request)

    def href_for(n: int) -> str:
        parts = [f"type={quote(qtype.name)}", f"format={'Entities' if entities else 'Refs'}"]
        if query.get("filter"):
            parts.append(f"filter={quote(query.get('filter') or '', safe='')}")
        if sort:
            parts.append(f"{'sortDesc' if sort[1] else 'sortAsc'}={quote(sort[0], safe='')}")
        parts += [f"pageSize={size}", f"page={n}"]
        return f"{base}/query?" + "&".join(parts)

    value: Value = {"PagingInfo": paging_info(page, size, result.pages, href_for)}
    found = queryvalues.render(base, prot, qtype, [r["_object"] for r in result.records], entities)
    if entities:
        value["Entities"] = {querytypes.PLURAL[qtype.name]: found}
    else:
        value["Refs"] = found
    return em_response(request, querytypes.QUERY_RESULT, value)


routes = [
    Route("/api/backupServers", list_servers, ["GET"]),
    Route("/api/backupServers/{id}", get_server, ["GET"]),
    Route("/api/replicas", list_replicas, ["GET"]),
    Route("/api/replicas/{id}", get_replica, ["GET"]),
    Route("/api/replicas/{id}/vmReplicaPoints", replica_points, ["GET"]),
    FamilyRoute("/api/vmReplicaPoints", list_points, ["GET"], PointFamily.REPLICA),
    FamilyRoute("/api/vmReplicaPoints/{id}", get_point, ["GET"], PointFamily.REPLICA),
    FamilyRoute("/api/vmRestorePoints", list_points, ["GET"], PointFamily.RESTORE),
    FamilyRoute("/api/vmRestorePoints/{id}", get_point, ["GET"], PointFamily.RESTORE),
    Route("/api/querySvc", query_service, ["GET"]),
    Route("/api/query", run, ["GET"]),
]
