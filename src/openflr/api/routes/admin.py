"""openflr extensions for administrators, under ``/api/openflr/`` (not part of the EM API)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from openflr.api import emtypes
from openflr.api.auth import require, service_of
from openflr.api.responses import em_response
from openflr.api.routing import Route
from openflr.api.schema import Value
from openflr.api.urls import api_base
from openflr.core.roles import Permission
from openflr.inventory.model import Inventory


def summary(request: Request, inv: Inventory) -> Value:
    return {
        "Href": f"{api_base(request)}/openflr/inventory",
        "Type": "InventorySummary",
        "ScannedAtUTC": inv.scanned_at,
        "Replicas": len(inv.replicas),
        "Points": len(inv.points),
        "Problems": [
            {"Datastore": p.datastore, "Folder": str(p.folder), "Message": p.message} for p in inv.problems
        ]
        or None,
    }


async def get_inventory(request: Request) -> Response:
    require(request, Permission.ADMINISTER)
    return em_response(
        request, emtypes.INVENTORY_SUMMARY, summary(request, service_of(request).catalog.current)
    )


async def post_rescan(request: Request) -> Response:
    require(request, Permission.ADMINISTER)
    inv = await service_of(request).rescan()
    return em_response(request, emtypes.INVENTORY_SUMMARY, summary(request, inv))


routes = [
    Route("/api/openflr/inventory", get_inventory, ["GET"]),
    Route("/api/openflr/rescan", post_rescan, ["POST"]),
]
