"""Every replica point is also a VmRestorePoint (docs/COMPATIBILITY.md): listed, queried, mounted, browsed and
downloaded through ``/api/vmRestorePoints`` exactly as through ``/api/vmReplicaPoints``.
In-process, over HTTP and over HTTPS."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from tests.api.flr import TOKEN, headers, list_all, point_href, roots, wait_task
from tests.imagebuilder import Fixtures
from tests.support import Api, find, local, xml

REPORT = "Documents/report.txt"


def restore_href(api: Api, op: str) -> str:
    """The newest Windows point on the qcow2 datastore, as a VmRestorePoint Href."""
    replica_href = point_href(api, op, "KVM", "Win File Server")
    return replica_href.replace("/vmReplicaPoints/", "/vmRestorePoints/")


def test_restore_points_list_the_same_points(api: Api, op: str) -> None:
    replica = api.get("/api/vmReplicaPoints", headers=headers(op)).json()["Refs"]
    restore = api.get("/api/vmRestorePoints", headers=headers(op)).json()["Refs"]
    assert [r["UID"].rsplit(":", 1)[1] for r in restore] == [r["UID"].rsplit(":", 1)[1] for r in replica]
    assert restore and all(r["Type"] == "VmRestorePointReference" for r in restore)
    assert all("/api/vmRestorePoints/" in r["Href"] for r in restore)
    assert all(r["UID"].startswith("urn:veeam:VmRestorePoint:") for r in restore)
    entities = api.get("/api/vmRestorePoints?format=Entity", headers=headers(op)).json()
    assert [e["Type"] for e in entities["VmRestorePoints"]] == ["VmRestorePoint"] * len(restore)


def test_restore_point_entity_in_xml(api: Api, op: str) -> None:
    href = restore_href(api, op)
    doc = xml(api.get(href + "?format=Entity", headers={TOKEN: op}))
    assert local(doc.tag) == "VmRestorePoint"
    assert doc.get("Type") == "VmRestorePoint"
    links = {lk.get("Rel"): lk for lk in find(doc, "em:Links")}
    assert links["Create"].get("Href") == href + "/mounts"
    assert links["Create"].get("Type") == "VmRestorePointMount"
    assert links["Down"].get("Type") == "VmRestorePointMountList"
    assert links["Alternate"].get("Type") == "VmRestorePointReference"
    assert doc.get("VmDisplayName") == "Win File Server"
    ref = xml(api.get(href, headers={TOKEN: op}))
    assert local(ref.tag) == "EntityRef" and ref.get("Type") == "VmRestorePointReference"


def test_unknown_restore_point_is_404(api: Api, op: str) -> None:
    r = api.get("/api/vmRestorePoints/00000000-0000-0000-0000-000000000000", headers=headers(op))
    assert r.status_code == 404 and r.json()["Message"]


def test_query_restore_points_with_backup_fields(api: Api, op: str) -> None:
    r = api.get(
        '/api/query?type=VmRestorePoint&format=Entities&filter=VmName=="Win File Server"',
        headers=headers(op),
    )
    assert r.status_code == 200, r.text
    points = r.json()["Entities"]["VmRestorePoints"]["VmRestorePoints"]
    assert points and {p["VmDisplayName"] for p in points} == {"Win File Server"}
    by_backup = api.get(
        '/api/query?type=VmRestorePoint&format=Entities&filter=BackupName=="QCOW2 Replication"',
        headers=headers(op),
    ).json()["Entities"]["VmRestorePoints"]["VmRestorePoints"]
    # The replica stands in for the backup: its job is the backup's name.
    replicas = api.get("/api/replicas?format=Entity", headers=headers(op)).json()["Replicas"]
    kvm = {r["Href"].split("?")[0] for r in replicas if r["Platform"] == "KVM"}
    ups = {
        next(lk["Href"] for lk in p["Links"] if lk["Rel"] == "Up" and "replicas" in lk["Href"])
        for p in by_backup
    }
    assert by_backup and ups == kvm


def test_mount_browse_download_through_restore_points(api: Api, op: str, fixtures: Fixtures) -> None:
    point = restore_href(api, op)
    r = api.post(point + "/mounts", headers=headers(op))
    assert r.status_code == 202, r.text
    task = wait_task(api, op, r.json()["Href"])
    related = next(lk for lk in task["Links"] if lk["Rel"] == "Related")
    assert related["Type"] == "VmRestorePointMount"
    mount_href = related["Href"]
    assert mount_href.startswith(point + "/mounts/")
    mount = api.get(mount_href, headers=headers(op)).json()
    assert mount["Type"] == "VmRestorePointMount"
    assert "C:" in roots(api, op, mount_href)
    files, _ = list_all(api, op, f"{mount_href}/C:/Documents")
    assert "report.txt" in {f["Name"] for f in files}
    listed = api.get(point + "/mounts", headers=headers(op)).json()
    assert mount_href in [m["Href"] for m in listed["VmRestorePointMounts"]]

    r = api.post(
        f"{mount_href}/C:/{quote(REPORT)}?action=restore",
        json={"ForDirectDownload": {}},
        headers=headers(op),
    )
    assert r.status_code == 202, r.text
    task = wait_task(api, op, r.json()["Href"])
    download = next(lk["Href"] for lk in task["Links"] if lk["Rel"] == "Download")
    body = api.get(download, headers=headers(op)).content
    truth = fixtures.manifest["vms"]["Win File Server"]["p3"]["volumes"]["c"]["files"][REPORT]
    assert hashlib.sha256(body).hexdigest() == truth["sha256"]

    # A restore-point mount is not reachable through the replica family, and vice versa.
    other = mount_href.replace("/vmRestorePoints/", "/vmReplicaPoints/")
    assert api.get(other, headers=headers(op)).status_code == 404
    assert api.delete(mount_href, headers=headers(op)).status_code == 204
    assert api.get(mount_href, headers=headers(op)).status_code == 404
