"""The web page's server side (docs/SECURITY.md, "The web page"), in process and over real HTTP and
HTTPS: its own log-on cookie, never enough alone for a change; who is logged on; a restore list as
one ZIP; where a restore would write; the audit log; sorted and filtered listings; the page's files
and headers."""

from __future__ import annotations

import io
import zipfile
from typing import Any
from urllib.parse import quote, urlsplit

import httpx2 as httpx
import pytest

from openflr.api.auth import CSRF_HEADER, WEB_COOKIE
from tests.api.flr import TOKEN, headers, list_all
from tests.api.test_downloads import file_url
from tests.support import USERS, Api

JSON = {"Accept": "application/json"}


def web_logon(api: Api, user: str = "flrop") -> tuple[str, dict[str, Any]]:
    """(the web cookie's token, the Me value)."""
    r = api.post("/api/openflr/web/logon", json={"UserName": user, "Password": USERS[user][0]}, headers=JSON)
    assert r.status_code == 200, r.text
    cookies = r.headers.get_list("set-cookie")
    assert len(cookies) == 1 and cookies[0].startswith(WEB_COOKIE + "="), cookies  # never the EM cookie
    attributes = [a.strip().lower() for a in cookies[0].split(";")]
    assert {"httponly", "samesite=strict", "path=/api"} <= set(attributes)
    assert ("secure" in attributes) == api.base.startswith("https")
    token = cookies[0].split(";")[0].split("=", 1)[1]
    return token, r.json()


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"{WEB_COOKIE}={token}", **JSON}


def web_mount(api: Api, token: str, me: dict[str, Any], like: str) -> str:
    """A mount, made through the web session, of the point of the mount ``like``."""
    point = like.rsplit("/mounts/", 1)[0]
    r = api.post(f"{point}/mounts", headers={**cookie(token), CSRF_HEADER: me["Csrf"]})
    assert r.status_code == 202, r.text
    task = r.json()
    while task["State"] != "Finished":
        task = api.get(task["Href"], headers=cookie(token)).json()
    assert task["Result"]["Success"], task
    return str(next(lk["Href"] for lk in task["Links"] if lk["Rel"] == "Related"))


def test_logon_tells_who_and_what(api: Api) -> None:
    _token, me = web_logon(api, "viewer")
    assert me["UserName"] == "viewer" and me["Role"] == "PortalUser"
    assert me["Permissions"] == {
        "Mount": False,
        "BrowseFiles": True,
        "Restore": False,
        "Download": False,
        "Administer": False,
    }
    _token, me = web_logon(api, "admin")
    assert me["Permissions"]["Administer"] and me["Permissions"]["Download"]
    assert len(me["Csrf"]) >= 24 and me["IdleTimeoutSeconds"] > 0


def test_bad_password_and_no_session(api: Api) -> None:
    r = api.post("/api/openflr/web/logon", json={"UserName": "flrop", "Password": "wrong"}, headers=JSON)
    assert r.status_code == 401 and "Logon failed" in r.json()["Message"]
    assert "set-cookie" not in r.headers
    r = api.post("/api/openflr/web/logon", json={"UserName": "flrop"}, headers=JSON)
    assert r.status_code == 400
    r = api.get("/api/openflr/me", headers=JSON)
    assert r.status_code == 401
    r = api.get("/api/openflr/me", headers=cookie("not-a-token"))
    assert r.status_code == 401


def test_the_cookie_alone_never_changes_anything(api: Api, win: str) -> None:
    token, me = web_logon(api)
    assert api.get("/api/openflr/me", headers=cookie(token)).json()["UserName"] == "flrop"
    point = win.rsplit("/mounts/", 1)[0]
    # Reads go with the cookie alone (downloads are links), changes do not.
    assert api.get(f"{point}/mounts", headers=cookie(token)).status_code == 200
    r = api.post(f"{point}/mounts", headers=cookie(token))
    assert r.status_code == 403 and CSRF_HEADER in r.json()["Message"]
    r = api.post(f"{point}/mounts", headers={**cookie(token), CSRF_HEADER: "x" + me["Csrf"][1:]})
    assert r.status_code == 403
    r = api.post(
        f"{point}/mounts",
        headers={**cookie(token), CSRF_HEADER: me["Csrf"], "Origin": "https://evil.example"},
    )
    assert r.status_code == 403 and "another site" in r.json()["Message"]
    r = api.post(
        f"{point}/mounts", headers={**cookie(token), CSRF_HEADER: me["Csrf"], "Sec-Fetch-Site": "cross-site"}
    )
    assert r.status_code == 403
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(api.base))
    r = api.post(f"{point}/mounts", headers={**cookie(token), CSRF_HEADER: me["Csrf"], "Origin": origin})
    assert r.status_code == 202, r.text
    r = api.post("/api/openflr/web/logoff", headers=cookie(token))
    assert r.status_code == 403
    r = api.post("/api/openflr/web/logoff", headers={**cookie(token), CSRF_HEADER: me["Csrf"]})
    assert r.status_code == 204 and "Max-Age=0" in r.headers["set-cookie"]
    assert api.get("/api/openflr/me", headers=cookie(token)).status_code == 401


def test_a_restore_list_downloads_as_one_zip(api: Api, op: str, win: str) -> None:
    token, me = web_logon(api)
    report = api.get(file_url(win, "C:/Documents/report.txt"), headers={TOKEN: op}).content
    _files, folders = list_all(api, op, f"{win}/C:/Users/alice")
    mine = web_mount(api, token, me, win)
    form = [
        ("mount", urlsplit(mine).path),
        ("item", "C:/Documents/report.txt"),
        ("item", "C:/Users/alice/Documents"),
        ("item", "C:/Documents/report.txt"),  # twice: once in the ZIP
        ("csrf", me["Csrf"]),
    ]
    body = "&".join(f"{k}={quote(v, safe='')}" for k, v in form)
    form_headers = {"Cookie": f"{WEB_COOKIE}={token}", "Content-Type": "application/x-www-form-urlencoded"}
    r = api.post("/api/openflr/zip", content=body, headers=form_headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert "restore-list.zip" in r.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    names = archive.namelist()
    assert names.count("C/Documents/report.txt") == 1
    assert archive.read("C/Documents/report.txt") == report
    assert any(n.startswith("C/Users/alice/Documents/") for n in names), names
    assert {d["Name"] for d in folders} >= {"Documents"}
    # Without the CSRF field the cookie is not enough; a bad mount or a missing item is a clean error.
    bare = "&".join(f"{k}={quote(v, safe='')}" for k, v in form if k != "csrf")
    assert api.post("/api/openflr/zip", content=bare, headers=form_headers).status_code == 403
    wrong = body.replace(quote(urlsplit(mine).path, safe=""), quote("/api/nothing", safe=""))
    others = body.replace(quote(urlsplit(mine).path, safe=""), quote(urlsplit(win).path, safe=""))
    assert api.post("/api/openflr/zip", content=others, headers=form_headers).status_code == 404
    assert api.post("/api/openflr/zip", content=wrong, headers=form_headers).status_code == 400
    missing = body + "&item=" + quote("C:/no/such.txt", safe="")
    assert api.post("/api/openflr/zip", content=missing, headers=form_headers).status_code == 404


def test_a_portal_user_gets_no_zip(api: Api, win: str) -> None:
    token, me = web_logon(api, "viewer")
    body = f"mount={quote(urlsplit(win).path, safe='')}&item=C%3A%2FDocuments&csrf={me['Csrf']}"
    r = api.post(
        "/api/openflr/zip",
        content=body,
        headers={"Cookie": f"{WEB_COOKIE}={token}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 403


def test_restore_target_says_where_or_why_not(api: Api, op: str, win: str) -> None:
    mount_path = quote(urlsplit(win).path, safe="")
    r = api.get(
        f"/api/openflr/restoreTarget?mount={mount_path}&path=C%3A%2FDocuments%2Freport.txt",
        headers=headers(op),
    )
    assert r.status_code == 200, r.text
    value = r.json()
    assert value["Path"] == "C:/Documents/report.txt"
    if value["Configured"]:
        assert value["Target"].endswith("/Documents/report.txt") and value["Reason"] is None
    else:
        assert value["Target"] is None and "No restore target is configured" in value["Reason"]
    r = api.get(f"/api/openflr/restoreTarget?mount={mount_path}&path=C%3A%2Fno%2Fsuch", headers=headers(op))
    assert r.status_code == 404


def test_audit_log_for_administrators(api: Api, op: str, win: str) -> None:
    assert api.get(file_url(win, "C:/Documents/report.txt"), headers={TOKEN: op}).status_code == 200
    admin = api.logon("admin")
    r = api.get("/api/openflr/audit?user=flrop&action=download&pageSize=5", headers=headers(admin))
    assert r.status_code == 200, r.text
    value = r.json()
    records = value["Records"]
    assert records and all(rec["User"] == "flrop" and rec["Action"] == "download" for rec in records)
    assert len(records) <= 5 and value["PagingInfo"]["PageSize"] == 5
    assert (
        any(rec["Path"] == "C:/Documents/report.txt" for rec in records)
        or value["PagingInfo"]["PagesCount"] > 1
    )
    r = api.get("/api/openflr/audit?vm=%25", headers=headers(admin))  # a literal %, not a wildcard
    assert r.status_code == 200 and r.json()["Records"] == []
    assert api.get("/api/openflr/audit", headers=headers(op)).status_code == 403
    assert api.get("/api/openflr/audit?since=yesterday", headers=headers(admin)).status_code == 400
    assert api.get("/api/openflr/audit?result=great", headers=headers(admin)).status_code == 400
    xml = api.get("/api/openflr/audit?pageSize=1", headers={TOKEN: admin})
    assert xml.status_code == 200 and b"<AuditRecords" in xml.content


def test_sorted_and_filtered_listing_pages(api: Api, op: str, lin: str) -> None:
    folder = f"{lin}/etc"
    files, dirs = list_all(api, op, folder)
    by_size = sorted(files, key=lambda f: (-f["Size"], f["Name"].casefold()))
    r = api.get(f"{folder}?action=listFiles&pageSize=3&page=1&orderBy=size&order=desc", headers=headers(op))
    assert r.status_code == 200, r.text
    body = r.json()
    got = [f["Name"] for f in body["Files"]["FileEntries"]]
    assert [f["Size"] for f in body["Files"]["FileEntries"]] == [f["Size"] for f in by_size[:3]]
    assert set(got) <= {f["Name"] for f in files}
    assert "orderBy=size&order=desc" in body["PagingInfo"]["Links"][-1]["Href"]
    wanted = files[0]["Name"][1:3].upper()
    r = api.get(
        f"{folder}?action=listAll&pageSize=1000&filter={quote(wanted)}&orderBy=name", headers=headers(op)
    )
    listed = [e["Name"] for e in (r.json()["Files"] or {}).get("FileEntries", [])]
    expected = sorted(
        (f["Name"] for f in files if wanted.casefold() in f["Name"].casefold()), key=str.casefold
    )
    assert listed == expected
    folders = [e["Name"] for e in (r.json()["Directories"] or {}).get("DirectoryEntries", [])]
    assert folders == sorted(
        (d["Name"] for d in dirs if wanted.casefold() in d["Name"].casefold()), key=str.casefold
    )
    assert api.get(f"{folder}?action=listAll&orderBy=size", headers=headers(op)).status_code == 400
    assert (
        api.get(f"{folder}?action=listAll&pageSize=5&orderBy=colour", headers=headers(op)).status_code == 400
    )
    assert (
        api.get(f"{folder}?action=listAll&pageSize=5&orderBy=name&order=up", headers=headers(op)).status_code
        == 400
    )


def test_the_page_and_its_headers(api: Api) -> None:
    r = api.get("/")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    policy = r.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy
    assert r.headers["x-content-type-options"] == "nosniff"
    assert b'<script type="module"' in r.content
    again = api.get("/", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    for bad in (
        "/static/../pyproject.toml",
        "/static/%2e%2e/api/app.py",
        "/static/.hidden.js",
        "/static/nothing.js",
    ):
        answer = api.get(bad)
        assert answer.status_code == 404, bad


@pytest.mark.parametrize("path", ["/static/app.js", "/static/app.css"])
def test_the_page_files_are_served(api: Api, path: str) -> None:
    r = api.get(path)
    assert r.status_code == 200, path
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-type"].startswith("text/javascript" if path.endswith(".js") else "text/css")
    assert isinstance(r, httpx.Response)
