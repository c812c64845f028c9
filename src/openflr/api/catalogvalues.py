"""The file catalog's resources under ``/api/openflr/catalog/`` and EM's ``/api/catalog/vms`` family:
their types (described once, so XML and JSON agree) and the values made from catalog results
(docs/EM-API.md, "File catalog")."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from openflr.api.emtypes import PAGING_INFO
from openflr.api.inventoryvalues import urn
from openflr.api.mountvalues import FAMILIES, time_of, url_part
from openflr.api.schema import EmType, Link, Value, attr, items, links, obj, text
from openflr.core.filecatalog import Change, Difference, PathVersion, PointStatus, ReplicaHit, Version
from openflr.core.mounts import Mount
from openflr.core.names import shown
from openflr.inventory.model import Inventory, Replica, ReplicaPoint

# --- types ---------------------------------------------------------------------------------------------

CATALOG_LINK = EmType("CatalogLink", (attr("Rel"), attr("Href"), attr("Method")), links_first=False)
"""A link with the HTTP method to use: XML ``<Link Rel="Mount" Href="…" Method="POST"/>``."""


CATALOG_POINT_REF = EmType(
    "CatalogPointRef",
    (
        text("PointUid"),
        text("CreationTimeUTC", datetime),
        text("Size", int),
        text("ModifiedDateUTC", datetime),
        text("Owner"),
    ),
    links_first=False,
)
CATALOG_HIT = EmType(
    "CatalogHit",
    (
        text("VmName"),
        text("ReplicaUid"),
        text("Path"),
        text("Name"),
        text("Type"),
        text("Size", int),
        text("ModifiedDateUTC", datetime),
        text("Owner"),
        items("CatalogPointRef", CATALOG_POINT_REF, json_key="Points"),
        items("Link", CATALOG_LINK, json_key="Links"),
    ),
    links_first=False,
)
CATALOG_SEARCH_RESULTS = EmType(
    "CatalogSearchResults",
    (items("CatalogHit", CATALOG_HIT, json_key="Hits"), obj("PagingInfo", PAGING_INFO)),
    links_first=False,
)

CATALOG_SUMMARY = EmType(
    "Summary",
    (text("Added", int), text("Removed", int), text("Modified", int), text("MetadataChanged", int)),
    links_first=False,
)
CATALOG_VERSION = EmType(
    "CatalogVersion",
    (
        text("VmName"),
        text("ReplicaUid"),
        text("PointUid"),
        text("CreationTimeUTC", datetime),
        text("Type"),
        text("Size", int),
        text("ModifiedDateUTC", datetime),
        text("Owner"),
        text("FileId", int),
        text("Sha256"),
        text("Change"),
        obj("Summary", CATALOG_SUMMARY),
        items("Link", CATALOG_LINK, json_key="Links"),
    ),
    links_first=False,
)
CATALOG_VERSIONS = EmType(
    "CatalogVersions",
    (text("Path"), items("CatalogVersion", CATALOG_VERSION, json_key="Versions")),
    links_first=False,
)

CATALOG_SIDE = EmType(
    "CatalogSide",
    (text("Size", int), text("ModifiedDateUTC", datetime), text("Owner")),
    links_first=False,
)
CATALOG_CHANGE = EmType(
    "CatalogChange",
    (
        text("Path"),
        text("Type"),
        text("Change"),
        obj("Before", CATALOG_SIDE),
        obj("After", CATALOG_SIDE),
    ),
    links_first=False,
)
CATALOG_DIFF = EmType(
    "CatalogDiff",
    (
        text("FromPointUid"),
        text("ToPointUid"),
        text("Under"),
        items("CatalogChange", CATALOG_CHANGE, json_key="Changes"),
        obj("PagingInfo", PAGING_INFO),
    ),
    links_first=False,
)

CATALOG_POINT_STATUS = EmType(
    "CatalogPointStatus",
    (
        text("VmName"),
        text("ReplicaUid"),
        text("PointUid"),
        text("CreationTimeUTC", datetime),
        text("State"),
        text("Entries", int),
        text("Total", int),
        text("Message"),
        text("Notes"),
    ),
    links_first=False,
)
CATALOG_STATUS = EmType(
    "CatalogStatus",
    (items("CatalogPointStatus", CATALOG_POINT_STATUS, json_key="Points"),),
    links_first=False,
)

# EM's own catalog family (its VMs with catalogued points).
CATALOG_VM = EmType(
    "CatalogVm",
    (links(), attr("Href"), attr("Type"), attr("Name"), attr("UID"), attr("VmDisplayName")),
)
CATALOG_VMS = EmType("CatalogVms", (items("CatalogVm", CATALOG_VM),))


# --- values --------------------------------------------------------------------------------------------

POINT_URN = "VmReplicaPoint"
REPLICA_URN = "VmReplica"


def point_uid(point_id: str) -> str:
    return urn(POINT_URN, point_id)


def replica_uid(replica: Replica) -> str:
    return urn(REPLICA_URN, replica.id)


def mount_link(base: str, point_id: str) -> Value:
    return {"Rel": "Mount", "Href": f"{base}/vmReplicaPoints/{point_id}/mounts", "Method": "POST"}


def item_href(base: str, mount: Mount, path: str) -> str:
    """The item's URL under a mount of its point."""
    collection = FAMILIES[mount.family][0]
    return f"{base}/{collection}/{mount.point_id}/mounts/{mount.mount_id}/{url_part(shown(path))}"


def _created(inv: Inventory, point_id: str, fallback: str = "") -> datetime | str | None:
    point = inv.points.get(point_id)
    if point is not None:
        return point.created
    if fallback:
        try:
            when = datetime.fromisoformat(fallback)
        except ValueError:
            return None
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None


def hit_value(base: str, inv: Inventory, found: ReplicaHit, mount: Mount | None) -> Value:
    """One search hit: its newest version's facts, each point that holds it and how to open it."""
    hit = found.hit
    newest_point, latest = hit.points[-1]
    hit_links = [mount_link(base, newest_point)]
    if mount is not None:
        hit_links.append({"Rel": "Alternate", "Href": item_href(base, mount, hit.path), "Method": "GET"})
    return {
        "VmName": found.replica.vm_name,
        "ReplicaUid": replica_uid(found.replica),
        "Path": shown(hit.path),
        "Name": shown(hit.name),
        "Type": hit.kind.label,
        "Size": latest.size,
        "ModifiedDateUTC": time_of(latest.mtime_ns),
        "Owner": latest.owner,
        "Points": [
            {
                "PointUid": point_uid(pid),
                "CreationTimeUTC": _created(inv, pid),
                "Size": v.size,
                "ModifiedDateUTC": time_of(v.mtime_ns),
                "Owner": v.owner,
            }
            for pid, v in hit.points
        ],
        "Links": hit_links,
    }


def _summary(summary: dict[Change, int] | None) -> Value | None:
    if summary is None:
        return None
    return {
        "Added": summary.get(Change.ADDED, 0),
        "Removed": summary.get(Change.REMOVED, 0),
        "Modified": summary.get(Change.MODIFIED, 0),
        "MetadataChanged": summary.get(Change.METADATA, 0),
    }


def version_value(base: str, inv: Inventory, replica: Replica, found: PathVersion) -> Value:
    v = found.version
    return {
        "VmName": replica.vm_name,
        "ReplicaUid": replica_uid(replica),
        "PointUid": point_uid(found.point),
        "CreationTimeUTC": _created(inv, found.point),
        "Type": v.kind.label,
        "Size": v.size,
        "ModifiedDateUTC": time_of(v.mtime_ns),
        "Owner": v.owner,
        "FileId": v.ident,
        "Sha256": v.sha256.hex() if v.sha256 is not None else None,
        "Change": found.change.value,
        "Summary": _summary(found.summary),
        "Links": [mount_link(base, found.point)],
    }


def versions_value(
    base: str, inv: Inventory, path: str, found: list[tuple[Replica, list[PathVersion]]]
) -> Value:
    shown_path = next((shown(vs[0].version.path) for _r, vs in found if vs), shown(path))
    return {
        "Path": shown_path,
        "Versions": [version_value(base, inv, r, v) for r, vs in found for v in vs],
    }


def _side(version: Version | None) -> Value | None:
    if version is None:
        return None
    return {"Size": version.size, "ModifiedDateUTC": time_of(version.mtime_ns), "Owner": version.owner}


def change_value(d: Difference) -> Value:
    return {
        "Path": shown(d.path),
        "Type": d.kind.label,
        "Change": d.change.value,
        "Before": _side(d.before),
        "After": _side(d.after),
    }


def change_values(differences: Iterable[Difference]) -> Iterator[Value]:
    return (change_value(d) for d in differences)


def status_value(inv: Inventory, status: PointStatus) -> Value:
    record = status.point
    return {
        "VmName": status.vm_name,
        "ReplicaUid": urn(REPLICA_URN, status.replica_id),
        "PointUid": point_uid(record.id),
        "CreationTimeUTC": _created(inv, record.id, record.created),
        "State": record.state,
        "Entries": record.entries,
        "Total": record.total,
        "Message": record.message,
        "Notes": record.notes,
    }


def statuses_value(inv: Inventory, found: Iterable[PointStatus]) -> Value:
    return {"Points": [status_value(inv, s) for s in found]}


# --- EM's /api/catalog/vms ---------------------------------------------------------------------------


def catalog_vm_href(base: str, name: str) -> str:
    return f"{base}/catalog/vms/{url_part(name)}"


def catalog_vm_ref(base: str, name: str) -> Value:
    href = catalog_vm_href(base, name)
    return {
        "Type": "CatalogVmReference",
        "Href": href,
        "Name": name,
        "UID": urn("CatalogVm", name),
        "Links": [
            Link("Alternate", f"{href}?format=Entity"),
            Link("Down", f"{href}/vmRestorePoints", "CatalogVmRestorePointReferenceList"),
        ],
    }


def catalog_vm_entity(base: str, name: str) -> Value:
    href = catalog_vm_href(base, name)
    return {
        "Type": "CatalogVm",
        "Href": f"{href}?format=Entity",
        "Name": name,
        "UID": urn("CatalogVm", name),
        "VmDisplayName": name,
        "Links": [
            Link("Alternate", href, "CatalogVmReference", name),
            Link("Down", f"{href}/vmRestorePoints", "CatalogVmRestorePointReferenceList"),
        ],
    }


def catalog_point_ref(base: str, name: str, point: ReplicaPoint) -> Value:
    """A catalogued point as EM names catalog restore points: by its creation time."""
    point_href = f"{base}/vmReplicaPoints/{point.id}"
    when = point.created.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {
        "Type": "CatalogVmRestorePointReference",
        "Href": point_href,
        "Name": when,
        "UID": urn("CatalogVmRestorePoint", point.id),
        "Links": [
            Link("Up", catalog_vm_href(base, name), "CatalogVmReference", name),
            Link("Alternate", point_href, "VmReplicaPointReference"),
        ],
    }
