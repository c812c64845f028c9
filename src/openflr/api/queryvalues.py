"""Query results -> EM values: the Ref or Entity of each found object, by query type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openflr.api import inventoryvalues
from openflr.api import protectionvalues as pv
from openflr.api.routes.reports import repository_entity, repository_ref
from openflr.api.schema import Value
from openflr.core import catalog_queries as cq
from openflr.core.families import PointFamily
from openflr.core.protection import Protection
from openflr.core.query import QueryType

Render = Callable[[str, Protection, Any], Value]


def _point(family: PointFamily, entity: bool) -> Render:
    def render(base: str, prot: Protection, point: Any) -> Value:
        inv = prot.inventory
        replica = inv.replicas[point.replica_id]
        make = inventoryvalues.point_entity if entity else inventoryvalues.point_ref
        return make(base, inv, replica, point, family)

    return render


def _restore_point(entity: bool) -> Render:
    def render(base: str, prot: Protection, obj: Any) -> Value:
        job, point = obj
        make = pv.restore_point_entity if entity else pv.restore_point_ref
        return make(base, prot.inventory.server, job, point)

    return render


# (Ref, Entity) renderer of each query type openflr has objects of.
_RENDER: dict[str, tuple[Render, Render]] = {
    cq.VM_REPLICA_POINT.name: (_point(PointFamily.REPLICA, False), _point(PointFamily.REPLICA, True)),
    cq.VM_RESTORE_POINT.name: (_point(PointFamily.RESTORE, False), _point(PointFamily.RESTORE, True)),
    cq.REPLICA.name: (
        lambda b, p, r: inventoryvalues.replica_ref(b, p.inventory, r),
        lambda b, p, r: inventoryvalues.replica_entity(b, p.inventory, r),
    ),
    cq.BACKUP_SERVER.name: (
        lambda b, p, s: inventoryvalues.server_ref(b, s),
        lambda b, p, s: inventoryvalues.server_entity(b, s),
    ),
    cq.JOB.name: (
        lambda b, p, j: pv.job_ref(b, p.inventory.server, j),
        lambda b, p, j: pv.job_entity(b, p.inventory.server, j),
    ),
    cq.BACKUP.name: (
        lambda b, p, j: pv.backup_ref(b, p.inventory.server, j),
        lambda b, p, j: pv.backup_entity(b, p.inventory.server, j),
    ),
    cq.RESTORE_POINT.name: (_restore_point(False), _restore_point(True)),
    cq.REPOSITORY.name: (
        lambda b, p, s: repository_ref(b, p.inventory.server, s),
        lambda b, p, s: repository_entity(b, p.inventory.server, s),
    ),
    cq.HIERARCHY_ROOT.name: (
        lambda b, p, r: pv.root_ref(b, p.inventory.server, r),
        lambda b, p, r: pv.root_entity(b, p.inventory.server, r),
    ),
}


def render(base: str, prot: Protection, qtype: QueryType, objects: list[Any], entity: bool) -> list[Value]:
    """The Refs (or Entities) of ``objects`` found by a ``qtype`` query; none for empty types."""
    pair = _RENDER.get(qtype.name)
    if pair is None:
        return []
    make = pair[1] if entity else pair[0]
    return [make(base, prot, o) for o in objects]
