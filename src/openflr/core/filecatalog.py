"""File catalog use cases: search, versions of a path, the difference between two points, and the
catalog's own status and upkeep, each within the user's restore scope (docs/CATALOG.md).

Front ends (the HTTP API, the command line, the web page) call these; ``openflr.catalog`` does the
storing and querying. A VM is named by its replica id or by its name; a name can stand for several
replicas (one per job or datastore), and then each is searched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from openflr.catalog import queries
from openflr.catalog.builder import CatalogBuilder, PointStatus
from openflr.catalog.names import NameMatch
from openflr.catalog.queries import Change, Criteria, Difference, Hit, PathVersion
from openflr.catalog.store import CatalogFile, Kind, PointState, Version
from openflr.config import Settings
from openflr.errors import BadRequestError, ConflictError, NotFoundError
from openflr.guestfs.view import open_view
from openflr.inventory.model import Inventory, Replica, ReplicaPoint

__all__ = [
    "Change",
    "Criteria",
    "Difference",
    "FileCatalog",
    "Kind",
    "NameMatch",
    "PathVersion",
    "PointState",
    "PointStatus",
    "ReplicaHit",
    "Version",
]

MAX_DIFF_ZIP_FILES = 100_000
"""Changed files one diff ZIP may hold (each is located before the ZIP starts); narrow with a folder."""
HASH_LIMIT = 64
"""Versions hashed for one request at most (each is read whole from its point)."""


@dataclass(frozen=True)
class ReplicaHit:
    """A search hit in one VM's catalog."""

    replica: Replica
    hit: Hit


class FileCatalog:
    """The catalogs of the inventory's VMs and their background builder."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.builder = CatalogBuilder(settings.catalog_dir, settings.catalog.workers)

    def start(self, inventory: Inventory) -> None:
        self.builder.sync(inventory, build=self.settings.catalog.enabled)
        self.builder.start()

    def inventory_changed(self, inventory: Inventory) -> None:
        self.builder.sync(inventory, build=self.settings.catalog.enabled)

    def stop(self) -> None:
        self.builder.stop()

    # --- naming -------------------------------------------------------------------------------------

    @staticmethod
    def replicas(inventory: Inventory, vm: str) -> list[Replica]:
        """The replicas ``vm`` names in an (already scoped) inventory: a replica id, or a VM's name
        (case-insensitive; the source VM's or the replica's); 404 when none."""
        wanted = vm.strip()
        bare = wanted.rsplit(":", 1)[-1].lower()
        found = [r for r in inventory.replicas.values() if r.id == bare]
        if not found:
            folded = wanted.casefold()
            found = [
                r
                for r in inventory.replicas.values()
                if folded in (r.vm_name.casefold(), r.display_name.casefold())
            ]
        if not found:
            raise NotFoundError(f"There is no VM {vm!r}.")
        return sorted(found, key=lambda r: r.id)

    @staticmethod
    def ordered(replica: Replica) -> list[ReplicaPoint]:
        return sorted(replica.points, key=lambda p: (p.created, p.id))

    def ready_points(self, replica: Replica) -> list[str]:
        """The replica's points whose catalog is ready, oldest first."""
        catalog = self.builder.existing(replica.id)
        if catalog is None:
            return []
        ready = {r.id for r in catalog.points() if r.state == PointState.READY}
        return [p.id for p in self.ordered(replica) if p.id in ready]

    # --- status and upkeep --------------------------------------------------------------------------

    def status(self, inventory: Inventory, vm: str = "") -> list[PointStatus]:
        replicas = (
            self.replicas(inventory, vm) if vm else sorted(inventory.replicas.values(), key=lambda r: r.id)
        )
        order = {p.id: i for r in replicas for i, p in enumerate(self.ordered(r))}
        found = self.builder.status(replicas)
        return sorted(found, key=lambda s: (s.vm_name.casefold(), s.replica_id, order.get(s.point.id, 0)))

    def build(self, inventory: Inventory, vm: str = "", point: str = "", *, again: bool = False) -> list[str]:
        """Queue points for building ahead of the background work; the ids queued."""
        return self.builder.request(self._points(inventory, vm, point), again=again)

    def drop(self, inventory: Inventory, vm: str = "", point: str = "") -> int:
        return self.builder.drop(self._points(inventory, vm, point))

    def _points(self, inventory: Inventory, vm: str, point: str) -> list[str]:
        if point:
            pid = point.rsplit(":", 1)[-1].lower()
            if pid not in inventory.points:
                raise NotFoundError(f"Replica point {point!r} does not exist.")
            return [pid]
        replicas = self.replicas(inventory, vm) if vm else list(inventory.replicas.values())
        return [p.id for r in replicas for p in self.ordered(r)]

    # --- search -------------------------------------------------------------------------------------

    def search(
        self, inventory: Inventory, criteria: Criteria, vm: str = "", point: str = ""
    ) -> list[ReplicaHit]:
        """Paths matching ``criteria``: in one point, in every catalogued point of a VM, or across every
        VM of the (scoped) inventory; each hit lists the points that hold it."""
        if point:
            pid = point.rsplit(":", 1)[-1].lower()
            found = inventory.points.get(pid)
            if found is None:
                raise NotFoundError(f"Replica point {point!r} does not exist.")
            replicas = [inventory.replicas[found.replica_id]]
            self._require_ready(replicas[0], pid)
        else:
            replicas = (
                self.replicas(inventory, vm)
                if vm
                else sorted(inventory.replicas.values(), key=lambda r: r.id)
            )
        hits: list[ReplicaHit] = []
        for replica in replicas:
            catalog = self.builder.existing(replica.id)
            if catalog is None:
                continue
            points = [pid] if point else self.ready_points(replica)
            hits += [ReplicaHit(replica, hit) for hit in queries.search(catalog, points, criteria)]
        return hits

    def _require_ready(self, replica: Replica, point_id: str) -> CatalogFile:
        catalog = self.builder.existing(replica.id)
        record = catalog.point(point_id) if catalog is not None else None
        if catalog is None or record is None or record.state != PointState.READY:
            state = record.state if record is not None else "not catalogued"
            raise ConflictError(
                f"The catalog of point {point_id} is not ready ({state}); build it first "
                "(openflr catalog build, or POST /api/openflr/catalog/points/{id}?action=build)."
            )
        return catalog

    # --- versions -----------------------------------------------------------------------------------

    def versions(
        self, inventory: Inventory, vm: str, path: str, *, hashes: bool = False
    ) -> list[tuple[Replica, list[PathVersion]]]:
        """Each point (of each replica ``vm`` names) that holds ``path``, oldest first; 404 when no
        catalogued point ever held it. ``hashes``: compare files by sha256 (computed once, kept)."""
        if "\0" in path or len(path) > 32768:
            raise BadRequestError("The path is not valid.")
        out = []
        for replica in self.replicas(inventory, vm):
            catalog = self.builder.existing(replica.id)
            if catalog is None:
                continue
            points = self.ready_points(replica)
            found = queries.versions(catalog, points, path)
            if found is None:
                continue
            if hashes and any(v.version.kind is Kind.FILE for v in found):
                self._hash(replica, catalog, [v.version for v in found])
                found = queries.versions(catalog, points, path) or []
            out.append((replica, found))
        if not out:
            raise NotFoundError(f"No catalogued point of {vm!r} holds {path!r}.")
        return out

    def _hash(self, replica: Replica, catalog: CatalogFile, versions: Sequence[Version]) -> None:
        """Compute and keep the sha256 of file versions that have none yet (each read from a point
        that holds it)."""
        todo = {v.id: v for v in versions if v.kind is Kind.FILE and v.sha256 is None}
        if len(todo) > HASH_LIMIT:
            raise BadRequestError(f"More than {HASH_LIMIT} versions to hash at once; ask for fewer.")
        for point in self.ordered(replica):
            if not todo:
                return
            members = catalog.members(point.id)
            here = [v for vid, v in todo.items() if members is not None and vid in members]
            if not here:
                continue
            view = open_view([d.files for d in point.disks], replica.os_kind)
            try:
                for version in here:
                    where = view.locate(version.path)
                    reader = view.open(where)
                    digest = hashlib.sha256()
                    offset = 0
                    while offset < reader.size:
                        chunk = reader.pread(min(4 << 20, reader.size - offset), offset)
                        if not chunk:
                            break
                        digest.update(chunk)
                        offset += len(chunk)
                    catalog.set_sha256(version.id, digest.digest())
                    del todo[version.id]
            finally:
                view.close()

    # --- differences --------------------------------------------------------------------------------

    def diff(
        self, inventory: Inventory, point_a: str, point_b: str, under: str = ""
    ) -> tuple[Replica, list[Difference]]:
        """What changed from one point to another of the same VM (below ``under``), by path."""
        ids = [p.rsplit(":", 1)[-1].lower() for p in (point_a, point_b)]
        found = [inventory.points.get(pid) for pid in ids]
        for given, point in zip((point_a, point_b), found, strict=True):
            if point is None:
                raise NotFoundError(f"Replica point {given!r} does not exist.")
        a, b = found
        assert a is not None and b is not None
        if a.replica_id != b.replica_id:
            raise BadRequestError("Both points must be points of the same VM replica.")
        replica = inventory.replicas[a.replica_id]
        catalog = self._require_ready(replica, a.id)
        self._require_ready(replica, b.id)
        return replica, list(queries.diff(catalog, a.id, b.id, under))


def changed_files(differences: Sequence[Difference], side: str) -> list[str]:
    """The paths of the changed files one side of a difference holds: ``to`` has the Added and
    Modified ones, ``from`` the Removed and Modified ones (folders and links are left out)."""
    wanted = {Change.ADDED, Change.MODIFIED} if side == "to" else {Change.REMOVED, Change.MODIFIED}
    return [d.path for d in differences if d.change in wanted and d.kind is Kind.FILE]
