"""Backup servers, replicas, replica points and the query service on the wire (docs/COMPATIBILITY.md)."""

from __future__ import annotations

from typing import Any, Literal, overload
from urllib.parse import parse_qs, urlsplit

import pytest
from lxml import etree

from tests.support import NS, Api, attr, find, local, text, xml

TOKEN = "X-RestSvcSessionId"
JSON = {"Accept": "application/json"}


@overload
def get(api: Api, token: str, path: str, json: Literal[False] = False) -> etree._Element: ...
@overload
def get(api: Api, token: str, path: str, json: Literal[True]) -> Any: ...
def get(api: Api, token: str, path: str, json: bool = False) -> Any:
    """The XML document at ``path``, or with ``json`` its JSON (parsed, so of no fixed type)."""
    r = api.get(path, headers={TOKEN: token, **(JSON if json else {})})
    assert r.status_code == 200, r.text
    return r.json() if json else xml(r)


def test_backup_server(api: Api, token: str) -> None:
    refs = get(api, token, "/api/backupServers")
    ref = find(refs, "em:Ref")
    assert attr(ref, "Type") == "BackupServerReference" and attr(ref, "UID").startswith(
        "urn:veeam:BackupServer:"
    )
    ent = get(api, token, attr(ref, "Href") + "?format=Entity")
    assert local(ent.tag) == "BackupServer"
    assert text(ent, "em:Description").startswith("openflr")
    body = get(api, token, "/api/backupServers?format=Entity", json=True)
    assert body["BackupServers"][0]["Name"] == attr(ref, "Name")
    assert (
        api.get("/api/backupServers/00000000-0000-0000-0000-000000000000", headers={TOKEN: token}).status_code
        == 404
    )


def test_replicas_and_their_points(api: Api, token: str) -> None:
    refs = get(api, token, "/api/replicas").findall("em:Ref", NS)
    names = sorted(attr(r, "Name") for r in refs)
    assert names == sorted(
        [
            "Win File Server_replica",
            "lin-web01_replica",
            "Win File Server",
            "lin-web01_replica",
            "Win File Server",
            "lin-web01",
        ]
    )
    for ref in refs:
        links = {(lk.get("Rel"), lk.get("Type")): attr(lk, "Href") for lk in find(ref, "em:Links")}
        down = links[("Down", "VmReplicaPointReferenceList")]
        points = get(api, token, down).findall("em:Ref", NS)
        assert len(points) == 3
        assert all(p.get("Type") == "VmReplicaPointReference" for p in points)
        ent = get(api, token, links[("Alternate", "Replica")])
        assert local(ent.tag) == "Replica"
        assert text(ent, "em:Platform") in ("VMware", "HyperV", "KVM")
        assert text(ent, "em:JobName").endswith("Replication")
    body = get(api, token, "/api/replicas?format=entity", json=True)
    assert len(body["Replicas"]) == 6


def test_points_ref_and_entity(api: Api, token: str) -> None:
    refs = get(api, token, "/api/vmReplicaPoints").findall("em:Ref", NS)
    assert len(refs) == 18
    ref = next(r for r in refs if attr(r, "Name") == "lin-web01@2026-11-03 21:00:12")
    links = [(lk.get("Rel"), lk.get("Type")) for lk in find(ref, "em:Links")]
    assert links == [
        ("Up", "BackupServerReference"),
        ("Up", "ReplicaReference"),
        ("Alternate", "VmReplicaPoint"),
    ]
    single = get(api, token, attr(ref, "Href"))
    assert local(single.tag) == "EntityRef" and attr(single, "UID") == attr(ref, "UID")
    ent = get(api, token, attr(ref, "Href") + "?format=Entity")
    assert local(ent.tag) == "VmReplicaPoint"
    assert attr(ent, "VmDisplayName") == "lin-web01"
    assert [local(c.tag) for c in ent] == ["Links", "CreationTimeUTC", "VmName", "Algorithm", "PointType"]
    assert text(ent, "em:CreationTimeUTC") == "2026-11-03T21:00:12.407Z"
    assert text(ent, "em:PointType") == "Snapshot"
    elinks = {(lk.get("Rel"), lk.get("Type")): attr(lk, "Href") for lk in find(ent, "em:Links")}
    assert elinks[("Create", "VmReplicaPointMount")] == attr(ref, "Href") + "/mounts"
    assert elinks[("Down", "VmReplicaPointMountList")] == attr(ref, "Href") + "/mounts"
    by_urn = api.get("/api/vmReplicaPoints/" + attr(ref, "UID"), headers={TOKEN: token})
    assert by_urn.status_code == 200
    missing = api.get("/api/vmReplicaPoints/0badc0de-0000-0000-0000-000000000000", headers={TOKEN: token})
    assert missing.status_code == 404 and local(xml(missing).tag) == "Error"
    body = get(api, token, "/api/vmReplicaPoints?format=Entity", json=True)
    assert len(body["VmReplicaPoints"]) == 18
    one = body["VmReplicaPoints"][0]
    assert list(one)[:4] == ["CreationTimeUTC", "VmName", "Algorithm", "PointType"]


def test_query_service_lists_types(api: Api, token: str) -> None:
    svc = get(api, token, "/api/querySvc")
    assert attr(svc, "Type") == "QueryService"
    names = {lk.get("Name") for lk in find(svc, "em:Links")}
    served = {"VmReplicaPoint", "VmRestorePoint", "Replica", "BackupServer", "Job", "Backup"}
    assert served | {"RestorePoint", "Repository", "HierarchyRoot", "BackupJobSession"} <= names


def test_acceptance_query_xml(api: Api, token: str) -> None:
    r = api.get(
        "/api/query",
        headers={TOKEN: token},
        params={
            "type": "VmReplicaPoint",
            "format": "Entities",
            "filter": 'VmDisplayName=="Win File Server"',
            "sortDesc": "CreationTime",
        },
    )
    root = xml(r)
    assert local(root.tag) == "QueryResult"
    points = root.findall("em:Entities/em:VmReplicaPoints/em:VmReplicaPoint", NS)
    times = [text(p, "em:CreationTimeUTC") for p in points]
    assert len(points) == 9 and all(p.get("VmDisplayName") == "Win File Server" for p in points)
    assert times == sorted(times, reverse=True)
    paging = find(root, "em:PagingInfo")
    assert dict(paging.attrib.items()) == {"PageNum": "1", "PageSize": "100", "PagesCount": "1"}
    assert [lk.get("Rel") for lk in find(paging, "em:Links")] == ["First", "Last"]


def test_acceptance_query_json(api: Api, token: str) -> None:
    body = get(
        api,
        token,
        '/api/query?type=VmReplicaPoint&format=Entities&filter=VmDisplayName=="lin-web01"'
        "&sortDesc=CreationTime",
        json=True,
    )
    assert body["Refs"] is None
    points = body["Entities"]["VmReplicaPoints"]["VmReplicaPoints"]
    assert [p["CreationTimeUTC"] for p in points[:3]] == ["2026-11-03T21:00:12.407Z"] * 3
    assert [p["CreationTimeUTC"] for p in points[-3:]] == ["2026-11-01T21:00:00Z"] * 3
    assert body["PagingInfo"]["PagesCount"] == 1


def test_query_refs_and_unencoded_fiql(api: Api, token: str) -> None:
    body = get(
        api,
        token,
        "/api/query?type=vmreplicapoint&filter=vmdisplayname==lin-web01;"
        'creationtime>"2026-11-02T00:00:00Z"&sortAsc=name',
        json=True,
    )
    refs = body["Refs"]["Refs"]
    assert [r["Name"] for r in refs] == ["lin-web01@2026-11-02 21:00:00"] * 3 + [
        "lin-web01@2026-11-03 21:00:12"
    ] * 3
    assert body["Entities"] is None


def test_query_paging_follows_next_links(api: Api, token: str) -> None:
    href = f"{api.base}/api/query?type=VmReplicaPoint&pageSize=4&sortAsc=CreationTime"
    seen: list[str] = []
    pages = 0
    while href:
        body = get(api, token, href, json=True)
        info = body["PagingInfo"]
        pages += 1
        assert info["PageNum"] == pages and info["PageSize"] == 4 and info["PagesCount"] == 5
        rels = {lk["Rel"]: lk["Href"] for lk in info["Links"]}
        assert ("Previous" in rels) == (pages > 1)
        assert parse_qs(urlsplit(rels["Last"]).query)["page"] == ["5"]
        seen += [r["UID"] for r in body["Refs"]["Refs"]]
        href = rels.get("Next", "")
    assert pages == 5 and len(seen) == len(set(seen)) == 18


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('type=VmReplicaPoint&filter=VmDisplayName=="unterminated', "closing quote"),
        ("type=VmReplicaPoint&filter=NoSuchField==1", "no field"),
        ("type=NoSuchType", "Unknown query type"),
        ("filter=Name==x", "needs a type"),
        ("type=Replica&pageSize=0", "positive whole number"),
        ("type=Replica&page=abc", "positive whole number"),
        ("type=Replica&format=Fancy", "Unknown format"),
        ("type=Replica&sortAsc=Name&sortDesc=Name", "not both"),
    ],
)
def test_bad_queries_are_400(api: Api, token: str, query: str, message: str) -> None:
    r = api.get(f"/api/query?{query}", headers={TOKEN: token})
    assert r.status_code == 400
    err = xml(r)
    assert local(err.tag) == "Error" and message in err.get("Message", "")
    j = api.get(f"/api/query?{query}", headers={TOKEN: token, **JSON})
    assert j.status_code == 400 and message in j.json()["Message"]


def test_other_query_types(api: Api, token: str) -> None:
    reps = get(api, token, "/api/query?type=Replica&format=Entities&filter=Platform==HyperV", json=True)
    assert sorted(r["Name"] for r in reps["Entities"]["Replicas"]["Replicas"]) == [
        "Win File Server",
        "lin-web01_replica",
    ]
    servers = get(api, token, "/api/query?type=BackupServer", json=True)
    assert len(servers["Refs"]["Refs"]) == 1


def test_inventory_needs_a_session(api: Api) -> None:
    for path in ("/api/replicas", "/api/vmReplicaPoints", "/api/query?type=Replica", "/api/querySvc"):
        assert api.get(path).status_code == 401


def test_logon_session_links_down_to_inventory(api: Api) -> None:
    r = api.post("/api/sessionMngr/?v=latest", auth=("flrop", "Secret1"))
    links = {lk.get("Type"): attr(lk, "Href") for lk in find(xml(r), "em:Links")}
    assert links["VmReplicaPointReferenceList"] == f"{api.base}/api/vmReplicaPoints"
    assert links["QueryService"] == f"{api.base}/api/querySvc"
    token = r.headers[TOKEN]
    for href in links.values():
        if href.startswith(f"{api.base}/api/logonSessions/"):
            continue
        assert api.get(href, headers={TOKEN: token}).status_code == 200, href


def test_rescan_is_for_administrators(api: Api) -> None:
    assert api.post("/api/openflr/rescan", headers={TOKEN: api.logon("flrop")}).status_code == 403
    r = api.post("/api/openflr/rescan", headers={TOKEN: api.logon("admin"), **JSON})
    assert r.status_code == 200
    assert r.json()["Points"] == 18 and r.json()["Problems"] is None
