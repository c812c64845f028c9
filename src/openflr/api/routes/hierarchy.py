"""Hierarchy roots and the lookup service: the platforms the datastores hold and the source VMs on
them, so clients resolve a VM name to the ``HierarchyObjRef`` its VM restore points carry.

- ``/hierarchyRoots``: one root per platform of the visible replicas (``VMware``, ``HyperV``, ``KVM``).
- ``/lookupSvc``: a ``Down`` link per root to ``/lookup?host=<root>&name=*&type=Vm``.
- ``/lookup?host=…&type=Vm&name=…``: the matching VMs (``*``/``?`` wildcards, any case) as
  ``HierarchyItems``; other object types have no objects here (empty list). An unknown ``host`` is 404.
- ``/lookup?hierarchyRef=…``: the one VM with that reference, or 404.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from openflr.api import emtypes, protectiontypes
from openflr.api import protectionvalues as pv
from openflr.api.inventoryvalues import urn
from openflr.api.responses import em_response
from openflr.api.routes.jobs import entity_format, protection
from openflr.api.routing import Route
from openflr.api.schema import Link
from openflr.api.urls import Query, api_base
from openflr.errors import BadRequestError


async def list_roots(request: Request) -> Response:
    _session, prot = protection(request)
    base, server = api_base(request), prot.inventory.server
    if entity_format(request):
        roots = [pv.root_entity(base, server, r) for r in prot.roots()]
        return em_response(request, protectiontypes.HIERARCHY_ROOTS, {"HierarchyRoots": roots})
    refs = [pv.root_ref(base, server, r) for r in prot.roots()]
    return em_response(request, emtypes.ENTITY_REFERENCES, {"Refs": refs})


async def get_root(request: Request) -> Response:
    _session, prot = protection(request)
    root = prot.root(request.path_params["id"])
    base, server = api_base(request), prot.inventory.server
    if entity_format(request):
        return em_response(request, protectiontypes.HIERARCHY_ROOT, pv.root_entity(base, server, root))
    return em_response(request, emtypes.ENTITY_REF, pv.root_ref(base, server, root))


async def lookup_service(request: Request) -> Response:
    session, prot = protection(request)
    base = api_base(request)
    links = [Link("Up", f"{base}/logonSessions/{session.session_id}", "LogonSession")]
    links += [
        Link("Down", f"{base}/lookup?host={urn('HierarchyRoot', r.id)}&name=*&type=Vm", "HierarchyItemList")
        for r in prot.roots()
    ]
    value = {"Href": f"{base}/lookupSvc", "Type": "LookupService", "Links": links}
    return em_response(request, protectiontypes.LOOKUP_SERVICE, value)


async def lookup(request: Request) -> Response:
    _session, prot = protection(request)
    query = Query(request)
    ref = (query.get("hierarchyRef") or query.get("hierachyRef") or "").strip()
    if ref:
        found = [prot.vm(ref)]
    else:
        host = (query.get("host") or "").strip()
        if not host:
            raise BadRequestError(
                "The lookup needs host=<HierarchyRoot UID> (with name and type) or hierarchyRef."
            )
        root = prot.root(host)
        kind = (query.get("type") or "Vm").strip().lower()
        found = prot.vms(root, query.get("name") or "*") if kind == "vm" else []
    items = [pv.hierarchy_item(r) for r in found]
    return em_response(request, protectiontypes.HIERARCHY_ITEMS, {"HierarchyItems": items})


routes = [
    Route("/api/hierarchyRoots", list_roots, ["GET"]),
    Route("/api/hierarchyRoots/{id}", get_root, ["GET"]),
    Route("/api/lookupSvc", lookup_service, ["GET"]),
    Route("/api/lookup", lookup, ["GET"]),
]
