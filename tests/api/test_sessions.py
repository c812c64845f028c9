"""Logon sessions on the wire (docs/COMPATIBILITY.md): in-process, over HTTP and over HTTPS."""

from __future__ import annotations

import base64

import pytest

from tests.support import NS, USERS, Api, attr, find, local, xml

TOKEN = "X-RestSvcSessionId"


def test_entry_point_lists_versions_without_auth(api: Api) -> None:
    r = api.get("/api/")
    assert r.status_code == 200
    root = xml(r)
    assert local(root.tag) == "EnterpriseManager"
    assert root.nsmap[None] == NS["em"]
    names = [v.get("Name") for v in root.findall("em:SupportedVersions/em:SupportedVersion", NS)]
    assert names == ["v1_2", "v1_3", "v1_4", "v1_5", "v1_6", "v1_7"]
    create = root.find("em:Links/em:Link[@Rel='Create']", NS)
    assert create is not None and create.get("Href") == f"{api.base}/api/sessionMngr/?v=latest"
    assert not r.content.startswith(b"\xef\xbb\xbf")
    assert api.get("/api").status_code == 200


def test_entry_point_json(api: Api) -> None:
    r = api.get("/api/", headers={"Accept": "application/json"})
    body = r.json()
    assert r.headers["content-type"].startswith("application/json")
    assert [v["Name"] for v in body["SupportedVersions"]["SupportedVersions"]][-1] == "v1_7"
    assert body["Links"][0] == {
        "Rel": "Down",
        "Href": f"{api.base}/api/logonSessions",
        "Name": None,
        "Type": "LogonSessionList",
    }
    assert not r.content.startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize("version", ["latest", "v1_2", "v1_4", "v1_7", "", None])
def test_logon_with_any_version(api: Api, version: str | None) -> None:
    path = "/api/sessionMngr/" + ("" if version is None else f"?v={version}")
    r = api.post(path, auth=("flrop", "Secret1"))
    assert r.status_code == 201
    token = r.headers[TOKEN]
    assert len(base64.b64decode(token)) == 16
    root = xml(r)
    assert local(root.tag) == "LogonSession"
    session_id = root.findtext("em:SessionId", namespaces=NS)
    assert root.findtext("em:UserName", namespaces=NS) == "flrop"
    assert r.headers["Location"] == f"{api.base}/api/logonSessions/{session_id}"
    assert root.get("Href") == r.headers["Location"]
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{TOKEN}={token}; Path=/api")
    links = {(lnk.get("Rel"), lnk.get("Type")): lnk.get("Href") for lnk in find(root, "em:Links")}
    assert links[("Up", "EnterpriseManager")] == f"{api.base}/api/"
    assert links[("Delete", None)] == r.headers["Location"]
    assert token != session_id


def test_logon_json_has_links(api: Api) -> None:
    r = api.post(
        "/api/sessionMngr/?v=latest",
        auth=("flrop", "Secret1"),
        headers={"Accept": "application/json", "Content-Type": "application/json"},
    )
    assert r.status_code == 201
    body = r.json()
    assert list(body) == ["UserName", "SessionId", "Links", "Href", "Type"]
    assert body["Type"] == "LogonSession"


@pytest.mark.parametrize("login", ["flrop", "FLROP", "CORP\\flrop", "flrop@corp.example", "Corp\\FlrOp"])
def test_logon_name_forms(api: Api, login: str) -> None:
    r = api.post("/api/sessionMngr/?v=latest", auth=(login, "Secret1"))
    assert r.status_code == 201, r.text


def test_logon_utf8_password(api: Api, tmp_path_factory: pytest.TempPathFactory) -> None:
    # Basic credentials are UTF-8 on the wire (RFC 7617); a wrong one is refused
    r = api.post("/api/sessionMngr/", auth=("flrop", "Sécret1"))
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("auth", "headers"),
    [
        (None, {}),
        (("flrop", "wrong"), {}),
        (("nobody", "Secret1"), {}),
        (None, {"Authorization": "Bearer abc"}),
    ],
)
def test_logon_refused(api: Api, auth: tuple[str, str] | None, headers: dict[str, str]) -> None:
    r = api.post("/api/sessionMngr/?v=latest", auth=auth, headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Basic realm="RestSvc"'
    err = xml(r)
    assert local(err.tag) == "Error"
    assert err.get("StatusCode") == "401"
    assert TOKEN not in r.headers


def test_logon_garbled_basic_is_400(api: Api) -> None:
    r = api.post("/api/sessionMngr/", headers={"Authorization": "Basic !!!notbase64"})
    assert r.status_code == 400
    assert local(xml(r).tag) == "Error"


def test_token_works_then_logout_kills_it(api: Api) -> None:
    token = api.logon()
    r = api.get("/api/logonSessions", headers={TOKEN: token})
    assert r.status_code == 200
    sessions = xml(r)
    assert local(sessions.tag) == "LogonSessions"
    href = attr(find(sessions, "em:LogonSession"), "Href")
    assert api.get(href, headers={TOKEN: token}).status_code == 200
    assert api.delete(href, headers={TOKEN: token}).status_code == 204
    after = api.get("/api/logonSessions", headers={TOKEN: token})
    assert after.status_code == 401
    assert local(xml(after).tag) == "Error"


def test_header_name_is_case_insensitive(api: Api) -> None:
    token = api.logon()
    for name in ("x-restsvcsessionid", "X-RESTSVCSESSIONID", TOKEN):
        assert api.get("/api/logonSessions", headers={name: token}).status_code == 200


def test_cookie_carries_token_and_wins_over_header(api: Api) -> None:
    mine = api.logon("flrop")
    theirs = api.logon("admin")
    r = api.get(
        "/api/logonSessions",
        headers={"Cookie": f"{TOKEN}={mine}", TOKEN: theirs, "Accept": "application/json"},
    )
    assert r.status_code == 200
    assert r.json()["LogonSessions"][0]["UserName"] == "flrop"
    # veeam-em sends the same cookie name twice
    r = api.get(
        "/api/logonSessions",
        headers={"Cookie": f"{TOKEN}={mine}; {TOKEN}={mine}", "Accept": "application/json"},
    )
    assert r.status_code == 200
    # a dead cookie is not rescued by a live header: the cookie wins
    r = api.get("/api/logonSessions", headers={"Cookie": f"{TOKEN}=AAAAAAAAAAAAAAAAAAAAAA==", TOKEN: theirs})
    assert r.status_code == 401


@pytest.mark.parametrize("token", [None, "", "garbage", "AAAAAAAAAAAAAAAAAAAAAA=="])
def test_missing_or_unknown_token_is_401(api: Api, token: str | None) -> None:
    headers = {} if token is None else {TOKEN: token}
    r = api.get("/api/logonSessions", headers=headers)
    assert r.status_code == 401
    assert xml(r).get("StatusCode") == "401"
    j = api.get("/api/logonSessions", headers={**headers, "Accept": "application/json"})
    assert j.status_code == 401
    assert j.json()["StatusCode"] == 401 and j.json()["Message"]


def test_sessions_of_other_users_are_invisible(api: Api) -> None:
    mine = api.logon("flrop")
    theirs = api.logon("admin")
    their_href = api.session_href(theirs)
    assert api.get(their_href, headers={TOKEN: mine}).status_code == 404
    assert api.delete(their_href, headers={TOKEN: mine}).status_code == 404
    assert api.get(their_href, headers={TOKEN: theirs}).status_code == 200
    listed = api.get("/api/logonSessions", headers={TOKEN: mine, "Accept": "application/json"}).json()
    assert all(s["UserName"] == "flrop" for s in listed["LogonSessions"])


def test_list_starts_with_the_calling_session(api: Api) -> None:
    first = api.logon()
    second = api.logon()
    listed = api.get("/api/logonSessions", headers={TOKEN: second, "Accept": "application/json"}).json()
    ids = [s["SessionId"] for s in listed["LogonSessions"]]
    assert ids[0] == api.session_href(second).rsplit("/", 1)[1]
    assert api.session_href(first).rsplit("/", 1)[1] in ids


def test_the_caller_may_end_its_users_other_sessions(api: Api) -> None:
    other = api.logon("viewer")
    caller = api.logon("viewer")
    other_href = api.session_href(other)
    listed = api.get("/api/logonSessions", headers={TOKEN: caller, "Accept": "application/json"}).json()
    assert other_href in [s["Href"] for s in listed["LogonSessions"][1:]]
    assert api.get(other_href, headers={TOKEN: caller}).status_code == 200
    assert api.delete(other_href, headers={TOKEN: caller}).status_code == 204
    assert api.get("/api/logonSessions", headers={TOKEN: other}).status_code == 401
    listed = api.get("/api/logonSessions", headers={TOKEN: caller, "Accept": "application/json"}).json()
    assert other_href not in [s["Href"] for s in listed["LogonSessions"]]
    assert api.get(other_href, headers={TOKEN: caller}).status_code == 404


def test_unknown_session_id_is_404(api: Api) -> None:
    token = api.logon()
    r = api.get("/api/logonSessions/00000000-0000-0000-0000-000000000000", headers={TOKEN: token})
    assert r.status_code == 404
    assert local(xml(r).tag) == "Error"


def test_users_exist_for_every_role(api: Api) -> None:
    for name in USERS:
        assert api.logon(name)
