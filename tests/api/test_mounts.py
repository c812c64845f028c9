"""Mounts, tasks and browsing on the wire (docs/COMPATIBILITY.md): in-process, over HTTP and over HTTPS."""

from __future__ import annotations

import http.client
import ssl
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import anyio
import orjson
import pytest
from lxml import etree
from starlette.testclient import TestClient
from starlette.types import Message, Scope

from tests.api.flr import TOKEN, headers, list_all, mount, point_href, roots, wait_task
from tests.support import NS, Api, attr, find, local, text, xml


def test_mount_flow_in_xml(api: Api, op: str) -> None:
    point = point_href(api, op, "VMware", "Win File Server")
    r = api.post(point + "/mounts", headers={TOKEN: op})  # empty body, no Content-Type
    assert r.status_code == 202
    task = xml(r)
    assert local(task.tag) == "Task"
    assert text(task, "em:Operation") == "MountRestorePoint"
    assert text(task, "em:State") in ("Running", "Finished")
    href = attr(task, "Href")
    wait_task(api, op, href)
    done = xml(api.get(href, headers={TOKEN: op}))
    assert text(done, "em:State") == "Finished"
    result = find(done, "em:Result")
    assert result.get("Success") == "true" and text(result, "em:Message") == "Ok"
    related = find(done, "em:Links/em:Link[@Rel='Related']")
    mount_id = attr(related, "Href").rsplit("/", 1)[1]
    assert attr(related, "Type") == "VmReplicaPointMount"
    assert attr(related, "Name") == f"{point.rsplit('/', 1)[1]}@{mount_id}"
    mnt = xml(api.get(attr(related, "Href"), headers={TOKEN: op}))
    assert local(mnt.tag) == "VmReplicaPointMount"
    assert [lk.get("Rel") for lk in find(mnt, "em:Links")] == ["Delete"]
    assert [text(e, "em:Path") for e in mnt.findall("em:FSRoots/em:DirectoryEntry", NS)] == ["C:", "S:"]
    listing = xml(api.get(attr(related, "Href") + "/C:?action=listAll", headers={TOKEN: op}))
    assert local(listing.tag) == "FileSystemEntries"
    assert {text(d, "em:Name") for d in listing.findall("em:Directories/em:DirectoryEntry", NS)} >= {
        "Documents",
        "Windows",
        "Users",
    }
    mounts = xml(api.get(point + "/mounts", headers={TOKEN: op}))
    assert local(mounts.tag) == "VmReplicaPointMounts"
    assert attr(related, "Href") in [attr(m, "Href") for m in mounts.findall("em:VmReplicaPointMount", NS)]
    assert api.delete(attr(related, "Href"), headers={TOKEN: op}).status_code == 204
    gone = api.get(attr(related, "Href"), headers={TOKEN: op})
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


@pytest.mark.parametrize("number", ["\u00b9", "\u0661", "\uff11"])  # superscript, Arabic-Indic, full-width 1
def test_ids_of_other_digits_are_404_not_500(api: Api, op: str, win: str, number: str) -> None:
    # str.isdigit() takes these, int() refuses the first: an id is ASCII digits or not an id.
    point = win.rsplit("/", 1)[0]
    for method in ("GET", "DELETE"):
        r = api.request(method, f"{point}/{quote(number)}", headers=headers(op))
        assert (r.status_code, r.json()["StatusCode"]) == (404, 404), r.text
    r = api.get(f"/api/tasks/task-{quote(number)}", headers=headers(op))
    assert (r.status_code, r.json()["StatusCode"]) == (404, 404), r.text


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
    entry = find(d, "em:DirectoryEntry")
    assert text(entry, "em:Path") == "C:/Documents"
    assert [lk.get("Rel") for lk in find(entry, "em:Links")] == ["Up", "Down", "Down", "Down", "Restore"]
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
        "C:/Documents//report.txt",
        "C:/./Documents/report.txt",
    ],
)
def test_windows_path_forms(api: Api, op: str, win: str, path: str) -> None:
    r = api.get(f"{win}/{path}", headers=headers(op))
    assert r.status_code == 200, r.text
    assert r.json()["FileEntry"]["Path"] == "C:/Documents/report.txt"  # the listed case is kept


def test_an_encoded_backslash_is_part_of_a_name(api: Api, op: str, win: str) -> None:
    """A raw ``\\`` separates; ``%5C`` is a character of a name (docs/COMPATIBILITY.md,
    "Deliberate differences")."""
    encoded = quote("C:\\Documents\\report.txt", safe=":")
    r = api.get(f"{win}/{encoded}", headers=headers(op))
    assert r.status_code == 404, r.text
    assert "there is no volume 'C:\\\\Documents\\\\report.txt'" in r.json()["Message"]


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
        ("C:%5C..%5CS:%5Cx", 404, "no volume"),  # %5C: a character of one name, not a separator
        ("C:\\..\\S:\\x", 400, ".."),
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
    names = {text(e, "em:Name") for e in root.iter("{http://www.veeam.com/ent/v1.0}DirectoryEntry")}
    assert {"etc", "srv", "scratch", "home"} <= names


# --- hostile paths: nothing outside the mounted roots, whatever the encoding ----------------------------


def raw_get(api: Api, target: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
    """GET ``target`` (path and query) byte for byte, with no client-side normalisation: httpx
    removes ``..`` segments before sending, so this goes around it (a plain socket client for the
    real servers, the ASGI app itself, decoding like uvicorn, in process)."""
    if api.mode == "inproc":
        client: TestClient = api.client
        path, _, query = target.partition("?")
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "https",
            "path": unquote(path),
            "raw_path": path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": [(b"host", b"testserver")]
            + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 443),
        }
        messages: list[Any] = []
        requested = False

        async def receive() -> Message:
            nonlocal requested
            if requested:  # the client stays connected until the response is complete
                await anyio.sleep_forever()
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            messages.append(message)

        assert client.portal is not None
        client.portal.call(client.app, scope, receive, send)
        start = next(m for m in messages if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        ctype = dict(start["headers"]).get(b"content-type", b"").decode()
        return start["status"], ctype, body
    parts = urlsplit(api.base)
    assert parts.hostname is not None, api.base
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, context=ssl._create_unverified_context(), timeout=30
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("content-type") or "", response.read()
    finally:
        conn.close()


# (path after the mount's Href, status, part of the message); each is also sent with ?action=download
# and ?action=listAll where it has no query of its own.
HOSTILE_WIN_PATHS: dict[str, list[tuple[str, int, str]]] = {
    "dot-dot": [
        ("..", 400, ".."),
        ("../..", 400, ".."),
        ("C:/..", 400, ".."),
        ("C:/Documents/../../..", 400, ".."),
        ("C:/Documents/../../../S:/x", 400, ".."),
        ("C:/Documents/report.txt/..", 400, ".."),
        ("S:/../C:", 400, ".."),
        ("S:/../../..", 400, ".."),
        ("C:\\..\\S:", 400, ".."),
        ("C:\\Documents\\..\\..\\S:\\", 400, ".."),
    ],
    "percent-encoded": [
        ("%2e%2e", 400, ".."),
        ("C:/Documents/%2e%2e/%2e%2e", 400, ".."),
        ("C:/Documents/%2E%2E%2F%2E%2E%2FS:", 400, ".."),
        ("C:/Documents%2F..%2F..%2F", 400, ".."),
        ("C:/Documents/.%2e/report.txt", 400, ".."),
        ("C:%5C..%5C..%5CS:%5C", 404, "no volume"),  # one name holding backslashes
        ("S:%2F..%2FC:", 400, ".."),
        ("%2e%2e%5c%2e%2e%5cC:", 404, "no volume"),
    ],
    "malformed-percent": [
        ("C:/Documents/%zz", 404, "does not exist"),
        ("C:/Documents/%", 404, "does not exist"),
        ("C:/Documents/%2", 404, "does not exist"),
        ("C:/Documents/%%32%65", 404, "does not exist"),
        ("%zz%", 404, "no volume"),
        ("C:/Documents/%u002e%u002e", 404, "does not exist"),
    ],
    "overlong-utf8": [
        ("C:/Documents/%C0%AE%C0%AE/%C0%AE%C0%AE/S:", 404, "does not exist"),
        ("C:/Documents/%C0%AE%C0%AE%C0%AF%C0%AE%C0%AE%C0%AFS:", 404, "does not exist"),
        ("C:/Documents/%E0%80%AE%E0%80%AE/x", 404, "does not exist"),
        ("C:/Documents/%F0%80%80%AE%F0%80%80%AE", 404, "does not exist"),
        ("C:/Documents/%C1%9C..", 404, "does not exist"),
        ("C:/Documents/%ED%A0%80", 404, "does not exist"),
        ("C:/Documents/%FF%FE", 404, "does not exist"),
    ],
    "nul": [
        ("C:/Documents/report.txt%00", 400, "NUL"),
        ("C:/Documents/report.txt%00.jpg", 400, "NUL"),
        ("C:%00/", 400, "NUL"),
        ("%00", 400, "NUL"),
        ("C:/Documents/%00/../..", 400, "NUL"),
    ],
    "device-and-unc": [
        # Percent-encoded, the backslashes are characters of one name: no such volume.
        ("%5C%5C%3F%5CC:%5CDocuments", 404, "no volume"),
        ("%5C%5C.%5CC:", 404, "no volume"),
        ("%5C%5C.%5CPhysicalDrive0", 404, "no volume"),
        ("%5C%5Cserver%5Cshare%5Cx", 404, "no volume"),
        ("%5C%5C%3F%5CUNC%5Cserver%5Cshare", 404, "no volume"),
        ("%5C%5C%3F%5CGLOBALROOT%5CDevice%5CHarddiskVolume1", 404, "no volume"),
        ("\\\\%3F\\C:\\Documents", 400, "device or UNC"),
        ("\\\\.\\PhysicalDrive0", 400, "device or UNC"),
        ("\\\\server\\share\\x", 400, "device or UNC"),
        ("\\\\%3F\\GLOBALROOT\\Device\\HarddiskVolume1", 400, "device or UNC"),
        ("\\\\?\\C:\\Documents", 400, "device or UNC"),  # the '?' starts the query: the path is '\\'
        ("\\\\.\\C:", 400, "device or UNC"),
    ],
    "other-drives": [
        ("C:..", 404, "no volume"),
        ("C:../S:", 404, "no volume"),
        ("D:", 404, "no volume"),
        ("D:/", 404, "no volume"),
        ("d:/Windows", 404, "no volume"),
        ("Z:/x", 404, "no volume"),
        ("Volume$9:/x", 404, "no volume"),
        ("C:/S:/", 404, "does not exist"),
        ("C:/Documents/S:", 404, "does not exist"),
        ("C:S:", 404, "no volume"),
    ],
    "ntfs-streams": [
        ("C:/Documents/report.txt:$DATA", 404, "does not exist"),
        ("C:/Documents/report.txt::$DATA", 404, "does not exist"),
        ("C:/Documents::$INDEX_ALLOCATION", 404, "does not exist"),
        ("C:/Documents:$I30:$INDEX_ALLOCATION", 404, "does not exist"),
        ("C:/Documents/report.txt:..", 404, "does not exist"),
        ("C:/Documents/report.txt:../../S:", 400, ".."),
        ("C:/Documents/report.txt:%2e%2e%5c%2e%2e", 404, "does not exist"),
        ("C:/Documents/report.txt:..\\..", 400, ".."),
        ("C:/Documents/report.txt:S:", 404, "does not exist"),
        ("C:/Documents/report.txt:%5C%5C%3F%5CC:", 404, "does not exist"),
    ],
    "ntfs-metafiles": [
        ("C:/$MFT", 404, "does not exist"),
        ("c:/$mft", 404, "does not exist"),
        ("C:/$MFT:$DATA", 404, "does not exist"),
        ("C:/$MFTMirr", 404, "does not exist"),
        ("C:/$LogFile", 404, "does not exist"),
        ("C:/$Secure:$SDS", 404, "does not exist"),
        ("C:/$Extend/$UsnJrnl:$J", 404, "does not exist"),
        ("C:/$BadClus:$Bad", 404, "does not exist"),
        ("C:/$Boot", 404, "does not exist"),
        ("C:/%24MFT", 404, "does not exist"),
    ],
}
HOSTILE_LIN_PATHS = [
    ("..", 400, ".."),
    ("etc/../../..", 400, ".."),
    ("srv/%2e%2e/etc/shadow", 400, ".."),
    ("etc%2F..%2F..%2F..%2Fetc%2Fpasswd", 400, ".."),
    ("etc/passwd%00", 400, "NUL"),
    ("%5C%5C.%5Cetc", 404, "does not exist"),  # one name holding backslashes
    ("\\\\.\\etc", 400, "device or UNC"),
    ("etc/%C0%AE%C0%AE/passwd", 404, "does not exist"),
    ("etc/hostname:stream", 404, "does not exist"),
    ("C:/etc", 404, "does not exist"),
    ("etc/%zz", 404, "does not exist"),
]


def _variants(path: str) -> list[str]:
    if "?" in path:
        return [path]
    return [path, path + "?action=download", path + "?action=listAll&pageSize=10&page=1"]


def _check_refused(api: Api, op: str, mount_href: str, cases: list[tuple[str, int, str]]) -> int:
    base = urlsplit(api.url(mount_href)).path
    bad = []
    sent = 0
    for path, status, message in cases:
        for target in _variants(path):
            for accept in ("application/json", "application/xml"):
                got, ctype, body = raw_get(api, f"{base}/{target}", {TOKEN: op, "Accept": accept})
                sent += 1
                if accept == "application/json":
                    ok = got == status and ctype.startswith("application/json")
                    ok = ok and message in orjson.loads(body)["Message"]
                else:
                    ok = got == status and local(etree.fromstring(body).tag) == "Error"
                if not ok:
                    bad.append((target, accept, got, body[:200]))
    assert not bad, bad
    return sent


@pytest.mark.parametrize("kind", HOSTILE_WIN_PATHS)
def test_hostile_paths_never_leave_the_mount(api: Api, op: str, win: str, kind: str) -> None:
    assert api.get(f"{win}/C:/Documents/report.txt", headers=headers(op)).status_code == 200
    _check_refused(api, op, win, HOSTILE_WIN_PATHS[kind])


def test_hostile_paths_on_a_linux_mount(api: Api, op: str, lin: str) -> None:
    assert api.get(f"{lin}/etc/hostname", headers=headers(op)).status_code == 200
    _check_refused(api, op, lin, HOSTILE_LIN_PATHS)


def test_hostile_mount_ids(api: Api, op: str, win: str) -> None:
    point = win.rsplit("/mounts/", 1)[0]
    cases = [("..", 404), ("%2e%2e", 404), ("..%2FC:", 404), ("1%00", 404), ("-1", 404), ("9" * 400, 404)]
    base = urlsplit(api.url(point)).path
    for mount_id, status in cases:
        got, _, body = raw_get(api, f"{base}/mounts/{mount_id}/C:", {TOKEN: op, "Accept": "application/json"})
        assert got == status, (mount_id, body[:200])


def test_a_refused_path_stays_refused_once_its_target_is_cached(api: Api, op: str, win: str) -> None:
    """The resolved-path cache is keyed by checked components, so '\\\\C:' cannot ride on 'C:'."""
    base = urlsplit(api.url(win)).path
    assert raw_get(api, f"{base}/C:/Documents", {TOKEN: op})[0] == 200
    assert raw_get(api, f"{base}/\\\\C:/Documents", {TOKEN: op})[0] == 400
    assert raw_get(api, f"{base}/%5C%5CC:/Documents", {TOKEN: op})[0] == 404  # a name holding "\\"
    assert raw_get(api, f"{base}/C:/./Documents/", {TOKEN: op})[0] == 200


def test_ntfs_metafiles_are_neither_listed_nor_reachable(api: Api, op: str, win: str) -> None:
    files, dirs = list_all(api, op, f"{win}/C:")
    assert not [e["Name"] for e in files + dirs if e["Name"].startswith("$")]
    r = api.post(f"{win}/C:/$MFT?action=restore", json={"ForDirectDownload": {}}, headers=headers(op))
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("pageSize=1000000000&page=1", 200),  # clamped to api.max_page_size
        ("pageSize=10&page=1000000000", 200),  # past the end: an empty page
        ("pageSize=10&page=1000000000000000000000", 400),
        ("pageSize=%EF%BC%95", 400),  # a full-width digit: int() would take it
        ("pageSize=1_000", 400),
        ("pageSize=0", 400),
        ("pageSize=-5", 400),
        ("pageSize=abc", 400),
        ("pageSize=1e3", 400),
        ("pageSize=" + "9" * 5000, 400),
        ("pageSize=%00", 400),
        ("page=0&pageSize=5", 400),
    ],
)
def test_paging_parameters_are_bounded(api: Api, op: str, win: str, query: str, status: int) -> None:
    r = api.get(f"{win}/C:/Documents?action=listAll&{query}", headers=headers(op))
    assert r.status_code == status, r.text
    if status == 200:
        info = r.json()["PagingInfo"]
        assert info["PageSize"] <= 5000
    else:
        assert "pageSize" in r.json()["Message"] or "page" in r.json()["Message"]
