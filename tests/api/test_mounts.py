"""Mounts, tasks and browsing on the wire (SPEC §3-§4): in-process, over HTTP and over HTTPS."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.api.flr import TOKEN, headers, list_all, mount, point_href, roots, wait_task
from tests.support import NS, Api, local, xml


@pytest.fixture
def op(api: Api) -> str:
    return api.logon("flrop")


@pytest.fixture
def win(api: Api, op: str) -> str:
    """A mount of the newest point of the Windows VM on the qcow2 datastore."""
    return mount(api, op, point_href(api, op, "KVM", "Win File Server"))


@pytest.fixture
def lin(api: Api, op: str) -> str:
    return mount(api, op, point_href(api, op, "KVM", "lin-web01"))


def test_mount_flow_in_xml(api: Api, op: str) -> None:
    point = point_href(api, op, "VMware", "Win File Server")
    r = api.post(point + "/mounts", headers={TOKEN: op})  # empty body, no Content-Type
    assert r.status_code == 202
    task = xml(r)
    assert local(task.tag) == "Task"
    assert task.findtext("em:Operation", namespaces=NS) == "MountRestorePoint"
    assert task.findtext("em:State", namespaces=NS) in ("Running", "Finished")
    href = task.get("Href")
    wait_task(api, op, href)
    done = xml(api.get(href, headers={TOKEN: op}))
    assert done.findtext("em:State", namespaces=NS) == "Finished"
    result = done.find("em:Result", NS)
    assert result.get("Success") == "true" and result.findtext("em:Message", namespaces=NS) == "Ok"
    related = done.find("em:Links/em:Link[@Rel='Related']", NS)
    mount_id = related.get("Href").rsplit("/", 1)[1]
    assert related.get("Type") == "VmReplicaPointMount"
    assert related.get("Name") == f"{point.rsplit('/', 1)[1]}@{mount_id}"
    mnt = xml(api.get(related.get("Href"), headers={TOKEN: op}))
    assert local(mnt.tag) == "VmReplicaPointMount"
    assert [lk.get("Rel") for lk in mnt.find("em:Links", NS)] == ["Delete"]
    assert [
        e.findtext("em:Path", namespaces=NS) for e in mnt.findall("em:FSRoots/em:DirectoryEntry", NS)
    ] == ["C:", "S:"]
    listing = xml(api.get(related.get("Href") + "/C:?action=listAll", headers={TOKEN: op}))
    assert local(listing.tag) == "FileSystemEntries"
    assert {
        d.findtext("em:Name", namespaces=NS) for d in listing.findall("em:Directories/em:DirectoryEntry", NS)
    } >= {"Documents", "Windows", "Users"}
    mounts = xml(api.get(point + "/mounts", headers={TOKEN: op}))
    assert local(mounts.tag) == "VmReplicaPointMounts"
    assert related.get("Href") in [m.get("Href") for m in mounts.findall("em:VmReplicaPointMount", NS)]
    assert api.delete(related.get("Href"), headers={TOKEN: op}).status_code == 204
    gone = api.get(related.get("Href"), headers={TOKEN: op})
    assert gone.status_code == 404 and local(xml(gone).tag) == "Error"
    tasks = xml(api.get("/api/tasks", headers={TOKEN: op}))
    assert href in [t.get("Href") for t in tasks.findall("em:Task", NS)]
    assert api.delete(href, headers={TOKEN: op}).status_code == 204
    assert api.get(href, headers={TOKEN: op}).status_code == 404


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"OsKind": "Windows"}', "application/json"),
        (b"", None),
        (
            b'<StartMountSpec xmlns="http://www.veeam.com/ent/v1.0"><OsKind>Linux</OsKind></StartMountSpec>',
            "application/xml",
        ),
    ],
)
def test_mount_bodies(api: Api, op: str, body: bytes, content_type: str | None) -> None:
    point = point_href(api, op, "HyperV", "lin-web01")
    hdrs = headers(op) | ({"Content-Type": content_type} if content_type else {})
    r = api.post(point + "/mounts", content=body, headers=hdrs)
    assert r.status_code == 202
    assert wait_task(api, op, r.json()["Href"])["Result"]["Success"]


def test_bad_mount_body_is_400(api: Api, op: str) -> None:
    point = point_href(api, op, "HyperV", "lin-web01")
    r = api.post(
        point + "/mounts",
        content=b'{"OsKind": "Solaris"}',
        headers=headers(op) | {"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and "OsKind" in r.json()["Message"]
    r = api.post(
        point + "/mounts", content=b"<StartMountSpec", headers={TOKEN: op, "Content-Type": "application/xml"}
    )
    assert r.status_code == 400


def test_mount_ids_count_up_per_point(api: Api, op: str) -> None:
    point = point_href(api, op, "VMware", "lin-web01", 0)
    first = int(mount(api, op, point).rsplit("/", 1)[1])
    second = int(mount(api, op, point).rsplit("/", 1)[1])
    assert second == first + 1


def test_mounts_and_tasks_belong_to_their_session(api: Api, op: str, win: str) -> None:
    other = api.logon("admin")
    assert api.get(win, headers=headers(other)).status_code == 404
    assert api.get(win + "/C:?action=listAll", headers=headers(other)).status_code == 404
    assert api.delete(win, headers=headers(other)).status_code == 404
    point = win.rsplit("/mounts/", 1)[0]
    listed = api.get(point + "/mounts", headers=headers(other)).json()
    assert listed["VmReplicaPointMounts"] == []
    tasks = api.get("/api/tasks", headers=headers(op)).json()["Tasks"]
    assert tasks and all(api.get(t["Href"], headers=headers(other)).status_code == 404 for t in tasks)
    assert api.get(win, headers=headers(op)).status_code == 200


def test_logout_unmounts(api: Api, win: str) -> None:
    mine = api.logon("flrop")
    mnt = mount(api, mine, win.rsplit("/mounts/", 1)[0])
    assert api.delete(api.session_href(mine), headers={TOKEN: mine}).status_code == 204
    again = api.logon("flrop")
    assert api.get(mnt, headers=headers(again)).status_code == 404


def test_portal_user_cannot_mount(api: Api) -> None:
    viewer = api.logon("viewer")
    point = point_href(api, viewer, "KVM", "lin-web01")
    r = api.post(point + "/mounts", headers=headers(viewer))
    assert r.status_code == 403 and r.json()["Status"] == "Forbidden"


def test_unknown_point_and_mount(api: Api, op: str, win: str) -> None:
    r = api.post("/api/vmReplicaPoints/00000000-0000-0000-0000-000000000000/mounts", headers=headers(op))
    assert r.status_code == 404
    assert api.get(win.rsplit("/", 1)[0] + "/999", headers=headers(op)).status_code == 404
    assert api.get(win.rsplit("/", 1)[0] + "/abc", headers=headers(op)).status_code == 404


# --- browsing ------------------------------------------------------------------------------------------


def test_listing_shapes_and_links(api: Api, op: str, win: str) -> None:
    body = api.get(win + "/C:/Documents?action=listAll", headers=headers(op)).json()
    assert body["Href"] == f"{win}/C:/Documents?action=listAll"
    assert body["Links"][0]["Rel"] == "Up"
    files = body["Files"]["FileEntries"]
    report = next(f for f in files if f["Name"] == "report.txt")
    assert report["Path"] == "C:/Documents/report.txt" and report["Owner"] == "BUILTIN\\Administrators"
    assert report["Href"] == f"{win}/C:/Documents/report.txt"
    assert [lk["Rel"] for lk in report["Links"]] == ["Up", "Restore"]
    assert report["Links"][0]["Href"] == f"{win}/C:/Documents?action=listAll&pageSize=100&page=1"
    assert report["ModifiedDateUTC"].endswith("Z")
    mixed = next(d for d in body["Directories"]["DirectoryEntries"] if d["Name"] == "Mixed Case")
    assert [lk["Rel"] for lk in mixed["Links"]] == ["Up", "Down", "Down", "Down", "Restore"]
    assert mixed["Links"][2]["Href"].endswith("?action=listDirs&pageSize=10&page=1")
    info = body["PagingInfo"]
    assert info["PageNum"] == 1 and info["PagesCount"] == 1
    assert info["PageSize"] == len(files) + len(body["Directories"]["DirectoryEntries"])
    dirs_only = api.get(win + "/C:/Documents?action=listDirs", headers=headers(op)).json()
    assert dirs_only["Files"] is None and [
        d["Name"] for d in dirs_only["Directories"]["DirectoryEntries"]
    ] == ["Mixed Case"]
    files_only = api.get(win + "/C:/Documents?action=LISTFILES", headers=headers(op)).json()
    assert files_only["Directories"] is None and len(files_only["Files"]["FileEntries"]) == len(files)


def test_item_without_action(api: Api, op: str, win: str) -> None:
    f = api.get(win + "/C:/Documents/report.txt", headers=headers(op)).json()
    assert f["DirectoryEntry"] is None and f["FileEntry"]["Size"] > 0
    d = xml(api.get(win + "/C:/Documents", headers={TOKEN: op}))
    assert local(d.tag) == "FileSystemEntry"
    entry = d.find("em:DirectoryEntry", NS)
    assert entry.findtext("em:Path", namespaces=NS) == "C:/Documents"
    assert [lk.get("Rel") for lk in entry.find("em:Links", NS)] == ["Up", "Down", "Down", "Down", "Restore"]
    top = api.get(win + "/", headers=headers(op)).json()  # the top of a Windows guest lists its drives
    assert [d["Path"] for d in top["Directories"]["DirectoryEntries"]] == ["C:", "S:"]


def test_paging_follows_next_links(api: Api, op: str, win: str) -> None:
    href = win + "/C:/Many?action=listAll&pageSize=1000&page=1"
    names: list[str] = []
    pages = 0
    while href:
        body = api.get(href, headers=headers(op)).json()
        pages += 1
        info = body["PagingInfo"]
        assert info == {**info, "PageNum": pages, "PageSize": 1000, "PagesCount": 10}
        rels = {lk["Rel"]: lk["Href"] for lk in info["Links"]}
        assert ("Previous" in rels) == (pages > 1)
        names += [f["Name"] for f in body["Files"]["FileEntries"]]
        href = rels.get("Next", "")
    assert pages == 10 and len(names) == len(set(names)) == 10_000
    past = api.get(win + "/C:/Many?action=listAll&pageSize=1000&page=11", headers=headers(op)).json()
    assert past["Files"] is None and past["PagingInfo"]["PageNum"] == 11


def test_directories_come_first_when_paging(api: Api, op: str, win: str) -> None:
    first = api.get(win + "/C:?action=listAll&pageSize=3&page=1", headers=headers(op)).json()
    assert first["Files"] is None and len(first["Directories"]["DirectoryEntries"]) == 3
    total = api.get(win + "/C:?action=listAll", headers=headers(op)).json()["PagingInfo"]["PageSize"]
    last = api.get(win + f"/C:?action=listAll&pageSize=3&page={-(-total // 3)}", headers=headers(op)).json()
    assert last["Files"] is not None


@pytest.mark.parametrize(
    "path",
    [
        "C:/Documents/report.txt",
        "C:\\Documents\\report.txt",
        "c:/DOCUMENTS/REPORT.TXT",
        quote("C:\\Documents\\report.txt", safe=":"),
        "C:/Documents//report.txt",
        "C:/./Documents/report.txt",
    ],
)
def test_windows_path_forms(api: Api, op: str, win: str, path: str) -> None:
    r = api.get(f"{win}/{path}", headers=headers(op))
    assert r.status_code == 200, r.text
    assert r.json()["FileEntry"]["Path"] == "C:/Documents/report.txt"  # the listed case is kept


@pytest.mark.parametrize("path", ["C:", "C:/", "c:", "S:/EFI/BOOT"])
def test_drive_roots_with_or_without_slash(api: Api, op: str, win: str, path: str) -> None:
    assert api.get(f"{win}/{path}?action=listAll", headers=headers(op)).status_code == 200


def test_linux_paths_are_exact(api: Api, op: str, lin: str) -> None:
    upper = api.get(lin + "/data/CaseSensitive.txt", headers=headers(op)).json()["FileEntry"]
    lower = api.get(lin + "/data/casesensitive.txt", headers=headers(op)).json()["FileEntry"]
    assert upper["Size"] != lower["Size"]
    assert api.get(lin + "/DATA/casesensitive.txt", headers=headers(op)).status_code == 404
    assert api.get(lin + "/etc/passwd", headers=headers(op)).json()["FileEntry"]["Owner"] == "root"
    srv = api.get(lin + "/srv/www?action=listFiles", headers=headers(op)).json()
    assert {f["Owner"] for f in srv["Files"]["FileEntries"]} == {"www-data"}
    assert api.get(lin + "/home/alice/notes.txt", headers=headers(op)).json()["FileEntry"]["Owner"] == "alice"
    top = roots(api, op, lin)
    assert list(top) == ["/", "/scratch", "/srv"]
    assert top["/"] == lin + "/"


def test_unicode_names_round_trip(api: Api, op: str, win: str, lin: str) -> None:
    for base, folder in ((win, "C:/Documents"), (lin, "/data")):
        files, _ = list_all(api, op, f"{base}/{quote(folder.lstrip('/'), safe=':/')}")
        odd = [f for f in files if not f["Name"].isascii() or " " in f["Name"]]
        assert len(odd) >= 4
        for f in odd:
            again = api.get(f["Href"], headers=headers(op))
            assert again.status_code == 200, f["Name"]
            assert again.json()["FileEntry"]["Name"] == f["Name"]
            assert again.json()["FileEntry"]["Path"] == f["Path"]


def test_long_paths(api: Api, op: str, win: str) -> None:
    href = win + "/C:/Deep"
    while True:
        files, dirs = list_all(api, op, href)
        if files:
            break
        href = dirs[0]["Href"]
    path = files[0]["Path"]
    assert len(path) > 260
    assert api.get(files[0]["Href"], headers=headers(op)).json()["FileEntry"]["Path"] == path


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("C:/Documents/nope.txt", 404, "C:/Documents/nope.txt"),
        ("Z:/x", 404, "no volume"),
        ("C:%5C..%5CS:%5Cx", 400, ".."),
        ("C:/Documents/%2e%2e/%2e%2e/etc", 400, ".."),
        ("C:/Documents/a%00b", 400, "NUL"),
        ("C:/Documents/report.txt?action=listAll", 400, "not a folder"),
        ("C:/Documents?action=fly", 400, "Unknown action"),
        ("C:/Documents?action=restore", 400, "action=restore"),
    ],
)
def test_bad_paths(api: Api, op: str, win: str, path: str, status: int, message: str) -> None:
    r = api.get(f"{win}/{path}", headers=headers(op))
    assert r.status_code == status, r.text
    assert message in r.json()["Message"]
    x = api.get(f"{win}/{path}", headers={TOKEN: op})
    assert x.status_code == status and local(xml(x).tag) == "Error"


def test_listing_in_xml_streams_files_then_directories(api: Api, op: str, lin: str) -> None:
    root = xml(api.get(lin + "/?action=listAll", headers={TOKEN: op}))
    assert [local(c.tag) for c in root] == ["Links", "Files", "Directories", "PagingInfo"]
    names = {
        e.findtext("em:Name", namespaces=NS)
        for e in root.iter("{http://www.veeam.com/ent/v1.0}DirectoryEntry")
    }
    assert {"etc", "srv", "scratch", "home"} <= names
