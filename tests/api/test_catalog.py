"""The file catalog over HTTP (src/openflr/api/routes/catalog.py): search, versions, diff (JSON, XML,
paged, streamed, ZIP), status and upkeep, EM's /api/catalog/vms, roles and restore scope, checked
against the fixture builder's ground truth (tests/imagebuilder/trees.py)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from openflr.api.app import create_app
from openflr.core.roles import Role
from openflr.core.service import Service
from tests.api.flr import TOKEN, headers, mount
from tests.imagebuilder import Fixtures
from tests.support import SHARED_SERVER, USERS, Api, datastore_config, local, make_service, xml

WIN, LIN = "Win File Server", "lin-web01"
PASSWORD = "Sc0ped!pass"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, fixtures: Fixtures) -> Service:
    config = SHARED_SERVER + datastore_config(fixtures, ("qcow2",))
    found = make_service(tmp_path_factory.mktemp("catalog-api"), config)
    for name, scope, inplace in (("linonly", ["lin*"], False), ("inplace", [], True)):
        found.users.add(name, PASSWORD, Role.RESTORE_OPERATOR)
        found.users.set_restrictions(name, inplace_only=inplace, scope=scope)
    return found


@pytest.fixture(scope="module")
def capi(service: Service) -> Iterator[Api]:
    """The in-process API over the qcow2 datastore, every point catalogued before the first test."""
    with TestClient(
        create_app(service), base_url="https://testserver", raise_server_exceptions=False, cookies=None
    ) as client:
        # Asked for rather than left to the background builds, which a test config may turn off.
        service.files.build(service.catalog.current)
        assert service.files.builder.wait_idle(180)
        states = {s.point.state for s in service.files.status(service.catalog.current)}
        assert states == {"Ready"}, states
        yield Api(client, "https://testserver", "inproc")


@pytest.fixture(scope="module")
def points(service: Service) -> dict[str, list[str]]:
    """VM name -> its point ids, oldest first."""
    inv = service.catalog.current
    return {
        r.vm_name: [p.id for p in sorted(r.points, key=lambda p: p.created)] for r in inv.replicas.values()
    }


def logon(api: Api, user: str) -> str:
    password = USERS[user][0] if user in USERS else PASSWORD
    return api.logon(user, password)


@pytest.fixture(scope="module")
def tokens(capi: Api) -> dict[str, str]:
    return {u: logon(capi, u) for u in ("flrop", "admin", "viewer", "linonly", "inplace")}


def get(api: Api, token: str, url: str, status: int = 200, /, **params: Any) -> Any:
    r = api.get(url, headers=headers(token), params=params)
    assert r.status_code == status, r.text
    return r.json()


def error(api: Api, token: str, url: str, status: int, /, **params: Any) -> str:
    r = api.get(url, headers=headers(token), params=params)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["StatusCode"] == status and body["Message"], body
    return str(body["Message"])


def search(api: Api, token: str, **params: Any) -> list[dict[str, Any]]:
    body = get(api, token, "/api/openflr/catalog/search", pageSize=5000, **params)
    hits: list[dict[str, Any]] = body["Hits"]
    return hits


def truth(fixtures: Fixtures, vm: str, point: int) -> dict[str, dict[str, Any]]:
    """Guest path -> {size, mtime, sha256, uid} of every file of a VM's point (1, 2, 3)."""
    out = {}
    for volume in fixtures.manifest["vms"][vm][f"p{point}"]["volumes"].values():
        root = volume["guest_root"]
        for rel, facts in volume["files"].items():
            path = f"{root}/{rel}" if root.endswith(":") else f"{root.rstrip('/')}/{rel}"
            out[path] = facts
    return out


# --- search -----------------------------------------------------------------------------------------------


def test_search_by_name_across_vms_lists_each_hits_points(
    capi: Api, tokens: dict[str, str], points: dict[str, list[str]]
) -> None:
    hits = search(capi, tokens["viewer"], name="new_in_p2")
    found = {(h["VmName"], h["Path"]): h for h in hits}
    assert set(found) >= {(WIN, "C:/new_in_p2.txt"), (LIN, "/new_in_p2.txt"), (LIN, "/srv/www/new_in_p2.css")}
    win = found[(WIN, "C:/new_in_p2.txt")]
    assert [p["PointUid"] for p in win["Points"]] == [
        f"urn:veeam:VmReplicaPoint:{p}" for p in points[WIN][1:]
    ]
    assert win["Type"] == "File" and win["Size"] == len(b"created in point 2\r\n")
    assert win["ModifiedDateUTC"] == "2026-11-02T20:30:00Z"
    assert win["Points"][0]["CreationTimeUTC"] == "2026-11-02T21:00:00Z"
    links = {lk["Rel"]: lk for lk in win["Links"]}
    assert links["Mount"]["Method"] == "POST"
    assert links["Mount"]["Href"] == f"https://testserver/api/vmReplicaPoints/{points[WIN][2]}/mounts"
    assert "Alternate" not in links  # no mount of the newest point in this session yet


def test_search_matches_names_as_each_file_system_does(capi: Api, tokens: dict[str, str]) -> None:
    tok = tokens["viewer"]
    # NTFS ignores case; ext4 does not.
    win = {h["Path"] for h in search(capi, tok, name="README.txt", match="exact", vm=WIN)}
    assert win == {"C:/Documents/Mixed Case/ReadMe.TXT"}
    lin = {h["Path"] for h in search(capi, tok, name="casesensitive.txt", match="exact", vm=LIN)}
    assert lin == {"/data/casesensitive.txt"}
    lin_sub = {h["Path"] for h in search(capi, tok, name="CaseSens", vm=LIN)}
    assert lin_sub == {"/data/CaseSensitive.txt"}
    globbed = {h["Path"] for h in search(capi, tok, name="*.DOCX", match="glob", vm=WIN)}
    assert globbed == {"C:/Documents/Quarterly Report 2024.docx"}
    assert search(capi, tok, name="*.DOCX", match="glob", vm=LIN) == []


def test_search_under_sizes_times_type_and_owner(
    capi: Api, tokens: dict[str, str], fixtures: Fixtures
) -> None:
    tok = tokens["viewer"]
    p1 = truth(fixtures, LIN, 1)
    under = {h["Path"] for h in search(capi, tok, under="/home/alice", vm=LIN, type="File")}
    expected = {p for t in (1, 2, 3) for p in truth(fixtures, LIN, t) if p.startswith("/home/alice/")}
    assert under == expected
    big = {h["Path"] for h in search(capi, tok, minSize=1_000_000, vm=LIN, type="file")}
    assert big == {p for t in (1, 2, 3) for p, f in truth(fixtures, LIN, t).items() if f["size"] >= 1_000_000}
    ranged = search(capi, tok, minSize=10, maxSize=10, vm=LIN)
    assert {h["Path"] for h in ranged} == {
        p for t in (1, 2, 3) for p, f in truth(fixtures, LIN, t).items() if f["size"] == 10
    }
    assert "/etc/hostname" in {p for p, f in p1.items() if f["size"] == 10}
    recent = {
        h["Path"]
        for h in search(
            capi,
            tok,
            modifiedAfter="2026-11-02T00:00:00Z",
            modifiedBefore="2026-11-03T00:00Z",
            vm=LIN,
            type="File",
        )
    }
    assert {"/new_in_p2.txt", "/home/alice/report.txt"} <= recent
    assert "/new_in_p3 ✓.txt" not in recent
    dirs = search(capi, tok, name="alice", type="Directory", vm=LIN)
    assert {h["Path"] for h in dirs} == {"/home/alice"} and dirs[0]["Type"] == "Directory"
    links = search(capi, tok, type="Link", vm=LIN)
    assert {h["Path"] for h in links} == {"/data/link_to_hostname"}
    owned = {h["Path"] for h in search(capi, tok, owner="bob", vm=LIN)}
    assert "/home/bob/script.sh" in owned and "/home/alice/notes.txt" not in owned


def test_search_in_one_point_and_pages(
    capi: Api, tokens: dict[str, str], points: dict[str, list[str]]
) -> None:
    tok = tokens["viewer"]
    first = points[WIN][0]
    hits = search(capi, tok, name="new_in", point=f"urn:veeam:VmReplicaPoint:{first}")
    assert hits == []
    every = search(capi, tok, name="file_000", vm=WIN)
    assert len(every) == 100
    body = get(capi, tok, "/api/openflr/catalog/search", name="file_000", vm=WIN, pageSize=30, page=4)
    assert [h["Path"] for h in body["Hits"]] == [h["Path"] for h in every[90:]]
    info = body["PagingInfo"]
    assert (info["PageNum"], info["PageSize"], info["PagesCount"]) == (4, 30, 4)
    assert {lk["Rel"] for lk in info["Links"]} == {"First", "Previous", "Last"}


def test_search_gives_the_alternate_link_of_a_mount(
    capi: Api, tokens: dict[str, str], points: dict[str, list[str]]
) -> None:
    tok = logon(capi, "flrop")
    href = mount(capi, tok, f"https://testserver/api/vmReplicaPoints/{points[WIN][2]}")
    hit = search(capi, tok, name="report.txt", match="exact", vm=WIN)[0]
    alternate = next(lk["Href"] for lk in hit["Links"] if lk["Rel"] == "Alternate")
    assert alternate == href + "/C:/Documents/report.txt"
    item = capi.get(alternate, headers=headers(tok))
    assert item.status_code == 200 and item.json()["FileEntry"]["Path"] == "C:/Documents/report.txt"


def test_search_in_xml(capi: Api, tokens: dict[str, str]) -> None:
    r = capi.get(
        "/api/openflr/catalog/search?name=hostname&match=exact", headers=headers(tokens["viewer"], json=False)
    )
    root = xml(r)
    assert local(root.tag) == "CatalogSearchResults"
    hit = next(e for e in root if local(e.tag) == "CatalogHit")
    assert [local(c.tag) for c in hit][:3] == ["VmName", "ReplicaUid", "Path"]
    assert {local(c.tag) for c in hit} >= {"CatalogPointRef", "Link"}


def test_search_refuses_bad_requests(capi: Api, tokens: dict[str, str], points: dict[str, list[str]]) -> None:
    tok, path = tokens["viewer"], "/api/openflr/catalog/search"
    assert "Say what" in error(capi, tok, path, 400)
    assert "Say what" in error(capi, tok, path, 400, vm=WIN)
    error(capi, tok, path, 400, name="x", match="regex")
    error(capi, tok, path, 400, name="x", minSize="-1")
    error(capi, tok, path, 400, maxSize="ten")
    error(capi, tok, path, 400, modifiedAfter="yesterday")
    error(capi, tok, path, 400, modifiedBefore="99999-01-01")
    error(capi, tok, path, 400, name="x", type="Socket")
    error(capi, tok, path, 400, name="x", pageSize="0")
    error(capi, tok, path, 404, name="x", vm="no such vm")
    error(capi, tok, path, 404, name="x", point="urn:veeam:VmReplicaPoint:nope")
    r = capi.get(path + "?name=x&match=regex", headers=headers(tok, json=False))
    assert r.status_code == 400 and local(xml(r).tag) == "Error"


# --- versions ---------------------------------------------------------------------------------------------


def test_versions_of_a_file_follow_the_truth(
    capi: Api, tokens: dict[str, str], points: dict[str, list[str]], fixtures: Fixtures
) -> None:
    body = get(
        capi, tokens["viewer"], "/api/openflr/catalog/versions", vm=WIN, path="c:/documents/REPORT.txt"
    )
    assert body["Path"] == "C:/Documents/report.txt"
    versions = body["Versions"]
    assert [v["PointUid"] for v in versions] == [f"urn:veeam:VmReplicaPoint:{p}" for p in points[WIN]]
    assert [v["Change"] for v in versions] == ["Added", "Modified", "Unchanged"]
    assert [v["Size"] for v in versions] == [
        truth(fixtures, WIN, t)["C:/Documents/report.txt"]["size"] for t in (1, 2, 3)
    ]
    assert all(v["Sha256"] is None and v["Summary"] is None for v in versions)
    assert versions[0]["Links"][0]["Rel"] == "Mount"
    gone = get(
        capi, tokens["viewer"], "/api/openflr/catalog/versions", vm=WIN, path="C:/Documents/todelete.txt"
    )
    assert [v["PointUid"] for v in gone["Versions"]] == [f"urn:veeam:VmReplicaPoint:{points[WIN][0]}"]


def test_versions_of_a_folder_summarise_its_changes(capi: Api, tokens: dict[str, str]) -> None:
    body = get(capi, tokens["viewer"], "/api/openflr/catalog/versions", vm=WIN, path="C:/Documents")
    summaries = [v["Summary"] for v in body["Versions"]]
    assert summaries[0] is None
    assert summaries[1] == {"Added": 0, "Removed": 1, "Modified": 1, "MetadataChanged": 0}
    assert summaries[2] == {"Added": 1, "Removed": 1, "Modified": 0, "MetadataChanged": 0}
    assert all(v["Type"] == "Directory" for v in body["Versions"])


def test_versions_with_hashes(capi: Api, tokens: dict[str, str], fixtures: Fixtures) -> None:
    path = "/srv/www/index.html"  # same size in each point, different bytes
    error(capi, tokens["viewer"], "/api/openflr/catalog/versions", 403, vm=LIN, path=path, hashes="true")
    body = get(capi, tokens["flrop"], "/api/openflr/catalog/versions", vm=LIN, path=path, hashes="true")
    versions = body["Versions"]
    assert [v["Sha256"] for v in versions] == [truth(fixtures, LIN, t)[path]["sha256"] for t in (1, 2, 3)]
    assert len({v["Size"] for v in versions}) == 1
    # p1 -> p2: same size, other bytes; p2 -> p3: the same bytes (only XFS's build time moved).
    assert [v["Change"] for v in versions[:2]] == ["Added", "Modified"]
    assert versions[2]["Change"] in ("Unchanged", "MetadataChanged")
    error(capi, tokens["flrop"], "/api/openflr/catalog/versions", 400, vm=LIN, path=path, hashes="maybe")


def test_versions_refuse_bad_requests(capi: Api, tokens: dict[str, str]) -> None:
    tok, path = tokens["viewer"], "/api/openflr/catalog/versions"
    error(capi, tok, path, 400, vm=WIN)
    error(capi, tok, path, 400, path="C:/Documents")
    error(capi, tok, path, 404, vm=WIN, path="C:/never/there.txt")
    error(capi, tok, path, 404, vm="ghost", path="C:/Documents")


# --- diff -------------------------------------------------------------------------------------------------


def _truth_diff(fixtures: Fixtures, vm: str, a: int, b: int) -> dict[str, str]:
    before, after = truth(fixtures, vm, a), truth(fixtures, vm, b)
    out = dict.fromkeys(before.keys() - after.keys(), "Removed")
    out |= dict.fromkeys(after.keys() - before.keys(), "Added")
    for p in before.keys() & after.keys():
        x, y = before[p], after[p]
        if (x["size"], x["mtime"], x["sha256"]) != (y["size"], y["mtime"], y["sha256"]):
            out[p] = "Modified"
    return out


def test_diff_files_equal_the_truth(
    capi: Api, tokens: dict[str, str], points: dict[str, list[str]], fixtures: Fixtures
) -> None:
    p = points[WIN]
    body = get(capi, tokens["viewer"], "/api/openflr/catalog/diff", **{"from": p[1], "to": p[2]})
    assert body["FromPointUid"] == f"urn:veeam:VmReplicaPoint:{p[1]}"
    assert body["PagingInfo"] is None
    files = {c["Path"]: c["Change"] for c in body["Changes"] if c["Type"] == "File"}
    assert files == _truth_diff(fixtures, WIN, 2, 3)
    assert files == {
        "C:/Program Files/App/config.ini": "Modified",
        "C:/Documents/Quarterly Report 2024.docx": "Removed",
        "C:/Documents/new in p3 新しい.txt": "Added",
    }
    by_path = {c["Path"]: c for c in body["Changes"]}
    assert by_path["C:/Documents/new in p3 新しい.txt"]["Before"] is None
    assert by_path["C:/Documents/Quarterly Report 2024.docx"]["After"] is None
    assert by_path["C:/Documents/Quarterly Report 2024.docx"]["Before"]["Size"] == 50_000
    lin = points[LIN]
    body = get(capi, tokens["viewer"], "/api/openflr/catalog/diff", **{"from": lin[0], "to": lin[2]})
    files = {c["Path"]: c["Change"] for c in body["Changes"] if c["Type"] == "File"}
    assert files == _truth_diff(fixtures, LIN, 1, 3)


def test_diff_under_paged_and_in_xml(capi: Api, tokens: dict[str, str], points: dict[str, list[str]]) -> None:
    p, tok = points[WIN], tokens["viewer"]
    span = {"from": p[0], "to": p[2]}
    whole = get(capi, tok, "/api/openflr/catalog/diff", **span)["Changes"]
    assert len(whole) > 3
    paged: list[dict[str, Any]] = []
    for n in (1, 2, 3, 4, 5, 6):
        body = get(capi, tok, "/api/openflr/catalog/diff", pageSize=2, page=n, **span)
        paged += body["Changes"]
        assert body["PagingInfo"]["PagesCount"] == -(-len(whole) // 2)
    assert paged == whole[: len(paged)] and len(paged) == min(12, len(whole))
    under = get(capi, tok, "/api/openflr/catalog/diff", under="C:/Documents", **span)
    assert under["Under"] == "C:/Documents"
    assert {c["Path"] for c in under["Changes"]} == {
        c["Path"] for c in whole if c["Path"].startswith("C:/Documents/")
    }
    r = capi.get(
        f"/api/openflr/catalog/diff?from={p[0]}&to={p[2]}&under=C:/Documents",
        headers=headers(tok, json=False),
    )
    root = xml(r)
    assert local(root.tag) == "CatalogDiff"
    changes = [e for e in root if local(e.tag) == "CatalogChange"]
    assert len(changes) == len(under["Changes"])
    assert {local(c.tag) for c in changes[0]} >= {"Path", "Type", "Change"}


@pytest.mark.parametrize("side", ["from", "to"])
def test_diff_zip_holds_each_sides_changed_files(
    capi: Api, tokens: dict[str, str], points: dict[str, list[str]], fixtures: Fixtures, side: str
) -> None:
    p, tok = points[WIN], logon(capi, "flrop")
    r = capi.get(
        f"/api/openflr/catalog/diff?from={p[1]}&to={p[2]}&format=zip&side={side}", headers={TOKEN: tok}
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    changes = _truth_diff(fixtures, WIN, 2, 3)
    wanted = {"Modified", "Added"} if side == "to" else {"Modified", "Removed"}
    facts = truth(fixtures, WIN, 3 if side == "to" else 2)
    expected = {path for path, change in changes.items() if change in wanted}
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        members = {n: z.read(n) for n in z.namelist() if not n.endswith("/")}
    assert set(members) == {path.replace(":", "", 1) for path in expected}
    for path in expected:
        data = members[path.replace(":", "", 1)]
        assert hashlib.sha256(data).hexdigest() == facts[path]["sha256"]
    # Through Accept as well.
    r = capi.get(
        f"/api/openflr/catalog/diff?from={p[1]}&to={p[2]}", headers={TOKEN: tok, "Accept": "application/zip"}
    )
    assert r.status_code == 200 and r.content[:2] == b"PK"


def test_diff_zip_follows_the_download_rules(
    capi: Api, tokens: dict[str, str], points: dict[str, list[str]]
) -> None:
    p = points[WIN]
    query = {"from": p[1], "to": p[2], "format": "zip"}
    error(capi, tokens["viewer"], "/api/openflr/catalog/diff", 403, **query)
    error(capi, tokens["inplace"], "/api/openflr/catalog/diff", 403, **query)
    error(capi, tokens["flrop"], "/api/openflr/catalog/diff", 400, side="both", **query)


def test_diff_refuses_bad_requests(capi: Api, tokens: dict[str, str], points: dict[str, list[str]]) -> None:
    tok, path = tokens["viewer"], "/api/openflr/catalog/diff"
    error(capi, tok, path, 400, **{"from": points[WIN][0]})
    assert "same VM" in error(capi, tok, path, 400, **{"from": points[WIN][0], "to": points[LIN][0]})
    error(capi, tok, path, 404, **{"from": points[WIN][0], "to": "urn:veeam:VmReplicaPoint:nope"})
    error(capi, tok, path, 400, pageSize="-3", **{"from": points[WIN][0], "to": points[WIN][1]})


# --- status, build and drop -------------------------------------------------------------------------------


def test_status_lists_every_point(capi: Api, tokens: dict[str, str], points: dict[str, list[str]]) -> None:
    body = get(capi, tokens["viewer"], "/api/openflr/catalog/status")
    rows = body["Points"]
    assert {r["PointUid"] for r in rows} == {
        f"urn:veeam:VmReplicaPoint:{p}" for ids in points.values() for p in ids
    }
    assert all(r["State"] == "Ready" and r["Entries"] > 0 for r in rows)
    win = get(capi, tokens["viewer"], "/api/openflr/catalog/status", vm=WIN)["Points"]
    assert [r["CreationTimeUTC"] for r in win] == [
        "2026-11-01T21:00:00Z",
        "2026-11-02T21:00:00Z",
        "2026-11-03T21:00:12.407Z",
    ]
    error(capi, tokens["viewer"], "/api/openflr/catalog/status", 404, vm="ghost")


def test_build_and_drop_are_for_administrators(
    capi: Api, tokens: dict[str, str], points: dict[str, list[str]], service: Service
) -> None:
    first = points[LIN][0]
    for user in ("viewer", "flrop"):
        h = headers(tokens[user])
        assert capi.post(f"/api/openflr/catalog/points/{first}?action=build", headers=h).status_code == 403
        assert capi.post(f"/api/openflr/catalog/vms/{LIN}?action=build", headers=h).status_code == 403
        assert capi.delete(f"/api/openflr/catalog/points/{first}", headers=h).status_code == 403
    admin = headers(tokens["admin"])
    assert capi.post(f"/api/openflr/catalog/points/{first}?action=nap", headers=admin).status_code == 400
    assert capi.delete(f"/api/openflr/catalog/points/{first}", headers=admin).status_code == 204
    status = get(capi, tokens["viewer"], "/api/openflr/catalog/status", vm=LIN)["Points"]
    assert status[0]["State"] == "Dropped"
    # Not catalogued now: a diff from it is refused with the reason, and search skips it.
    reason = error(
        capi, tokens["viewer"], "/api/openflr/catalog/diff", 409, **{"from": first, "to": points[LIN][1]}
    )
    assert "not ready" in reason
    error(capi, tokens["viewer"], "/api/openflr/catalog/search", 409, name="hostname", point=first)
    versions = get(capi, tokens["viewer"], "/api/openflr/catalog/versions", vm=LIN, path="/etc/hostname")
    assert len(versions["Versions"]) == 2
    r = capi.post(f"/api/openflr/catalog/points/urn:veeam:VmReplicaPoint:{first}?action=build", headers=admin)
    assert r.status_code == 202, r.text
    assert [p["PointUid"] for p in r.json()["Points"]] == [f"urn:veeam:VmReplicaPoint:{first}"]
    assert service.files.builder.wait_idle(120)
    r = capi.post(f"/api/openflr/catalog/vms/{quote(LIN)}?action=build", headers=admin)
    assert r.status_code == 202 and len(r.json()["Points"]) == 3
    assert service.files.builder.wait_idle(120)
    status = get(capi, tokens["viewer"], "/api/openflr/catalog/status", vm=LIN)["Points"]
    assert [s["State"] for s in status] == ["Ready"] * 3
    assert capi.delete("/api/openflr/catalog/points/nope", headers=admin).status_code == 404


# --- restore scope ----------------------------------------------------------------------------------------


def test_a_scoped_user_never_sees_other_vms(
    capi: Api, tokens: dict[str, str], points: dict[str, list[str]]
) -> None:
    tok = tokens["linonly"]
    assert {h["VmName"] for h in search(capi, tok, name="new_in")} == {LIN}
    assert search(capi, tok, name="Quarterly") == []
    error(capi, tok, "/api/openflr/catalog/search", 404, name="x", vm=WIN)
    error(capi, tok, "/api/openflr/catalog/search", 404, name="x", point=points[WIN][0])
    error(capi, tok, "/api/openflr/catalog/versions", 404, vm=WIN, path="C:/Documents")
    error(capi, tok, "/api/openflr/catalog/diff", 404, **{"from": points[WIN][0], "to": points[WIN][1]})
    error(capi, tok, "/api/openflr/catalog/status", 404, vm=WIN)
    seen = [
        capi.get("/api/openflr/catalog/status", headers=headers(tok)).text,
        capi.get("/api/catalog/vms", headers=headers(tok)).text,
        capi.get("/api/catalog/vms?format=Entity", headers=headers(tok)).text,
        capi.get("/api/openflr/catalog/search?name=txt", headers=headers(tok)).text,
    ]
    assert all(WIN not in text and points[WIN][0] not in text for text in seen)
    assert capi.get(f"/api/catalog/vms/{quote(WIN)}", headers=headers(tok)).status_code == 404


# --- EM's /api/catalog/vms --------------------------------------------------------------------------------


def test_em_catalog_vms_family(capi: Api, tokens: dict[str, str], points: dict[str, list[str]]) -> None:
    tok = tokens["viewer"]
    refs = get(capi, tok, "/api/catalog/vms")["Refs"]
    assert {r["Name"] for r in refs} == {WIN, LIN}
    win = next(r for r in refs if r["Name"] == WIN)
    assert win["Type"] == "CatalogVmReference" and win["UID"] == f"urn:veeam:CatalogVm:{WIN}"
    down = next(lk["Href"] for lk in win["Links"] if lk["Rel"] == "Down")
    assert down == "https://testserver/api/catalog/vms/Win%20File%20Server/vmRestorePoints"
    entities = get(capi, tok, "/api/catalog/vms", format="Entity")["CatalogVms"]
    assert {e["VmDisplayName"] for e in entities} == {WIN, LIN}
    assert get(capi, tok, f"/api/catalog/vms/{quote(WIN)}")["Name"] == WIN
    assert get(capi, tok, "/api/catalog/vms/win%20file%20server", format="Entity")["Type"] == "CatalogVm"
    pts = get(capi, tok, down)["Refs"]
    assert [p["Name"] for p in pts] == [
        "2026-11-01T21:00:00Z",
        "2026-11-02T21:00:00Z",
        "2026-11-03T21:00:12Z",
    ]
    assert [p["UID"] for p in pts] == [f"urn:veeam:CatalogVmRestorePoint:{p}" for p in points[WIN]]
    assert (
        local(xml(capi.get("/api/catalog/vms", headers=headers(tok, json=False))).tag) == "EntityReferences"
    )
    error(capi, tok, "/api/catalog/vms/ghost", 404)
    error(capi, tok, "/api/catalog/vms/ghost/vmRestorePoints", 404)
    assert capi.get("/api/catalog/vms").status_code == 401


def test_format_json_in_the_query(capi: Api, tokens: dict[str, str]) -> None:
    r = capi.get("/api/openflr/catalog/status?format=json", headers={TOKEN: tokens["viewer"]})
    assert r.headers["content-type"].startswith("application/json") and "Points" in r.json()
