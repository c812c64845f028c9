"""Wire conventions shared by every resource: errors, negotiation, tolerance, Hrefs (SPEC §6-7)."""

from __future__ import annotations

import pytest

from tests.support import Api, local, xml

TOKEN = "X-RestSvcSessionId"


@pytest.mark.parametrize("accept", [None, "*/*", "application/xml", "text/xml", "text/html, */*"])
def test_xml_by_default(api: Api, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    r = api.get("/api/", headers=headers)
    assert r.headers["content-type"].startswith("application/xml")
    assert r.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')


@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "Application/JSON",
        "application/xml;q=0.5, application/json",
        "text/html, application/json;q=0.9",
        "application/json; charset=utf-8",
    ],
)
def test_json_when_asked(api: Api, accept: str) -> None:
    r = api.get("/api/", headers={"Accept": accept})
    assert r.headers["content-type"].startswith("application/json")
    assert "SupportedVersions" in r.json()


def test_unknown_route_is_404_error_in_both_formats(api: Api) -> None:
    r = api.get("/api/noSuchThing")
    assert r.status_code == 404
    err = xml(r)
    assert local(err.tag) == "Error"
    assert err.get("StatusCode") == "404" and err.get("Status") == "NotFound"
    assert "/api/noSuchThing" in err.get("Message", "")
    j = api.get("/api/noSuchThing", headers={"Accept": "application/json"})
    assert j.status_code == 404
    assert j.json() == {
        "FirstChanceExceptionMessage": None,
        "StackTrace": None,
        "Message": "There is no resource at /api/noSuchThing.",
        "StatusCode": 404,
        "Status": "NotFound",
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/api/"), ("DELETE", "/api/sessionMngr/"), ("POST", "/api/logonSessions"), ("PATCH", "/api/")],
)
def test_wrong_verb_is_405_error(api: Api, method: str, path: str) -> None:
    r = api.request(method, path)
    assert r.status_code == 405
    assert "Allow" in r.headers
    assert xml(r).get("Status") == "MethodNotAllowed"
    j = api.request(method, path, headers={"Accept": "application/json"})
    assert j.status_code == 405 and j.json()["StatusCode"] == 405


def test_body_over_limit_is_413(api: Api) -> None:
    r = api.post("/api/sessionMngr/", content=b"x" * (1024 * 1024 + 1), auth=("flrop", "Secret1"))
    assert r.status_code == 413
    assert xml(r).get("StatusCode") == "413"


def test_streamed_body_over_limit_is_413(api: Api) -> None:
    def chunks():  # no Content-Length: chunked transfer encoding
        for _ in range(20):
            yield b"y" * 65536 * 2

    r = api.post("/api/sessionMngr/", content=chunks(), auth=("flrop", "Secret1"))
    # The logon handler does not read the body; a route that does gets 413. Either way the server
    # answers and stays up.
    assert r.status_code in (201, 413)
    assert api.get("/api/").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/LogonSessions",
        "/API/logonsessions",
        "/api//logonSessions",
        "/api/logonSessions/",
        "/api/logonSessions?v=latest",
        "/api/logonSessions?amp;pageSize=100&unknown=1",
        "/api/logonSessions?format=ENTITY",
    ],
)
def test_tolerant_paths_and_queries(api: Api, path: str) -> None:
    token = api.logon()
    assert api.get(path, headers={TOKEN: token}).status_code == 200


def test_content_type_on_get_and_delete_is_ignored(api: Api) -> None:
    token = api.logon()
    headers = {TOKEN: token, "Content-Type": "application/xml; charset=utf-8", "Content-Length": "0"}
    assert api.get("/api/logonSessions", headers=headers).status_code == 200
    href = api.session_href(token)
    assert api.delete(href, headers=headers).status_code == 204


def test_hrefs_follow_the_host_header(api: Api) -> None:
    r = api.get("/api/", headers={"Host": "em01.example.local:9398"})
    scheme = "http" if api.mode == "http" else "https"
    create = xml(r).find(
        "{http://www.veeam.com/ent/v1.0}Links/{http://www.veeam.com/ent/v1.0}Link[@Rel='Create']"
    )
    assert create is not None
    assert create.get("Href") == f"{scheme}://em01.example.local:9398/api/sessionMngr/?v=latest"


def test_garbled_host_header_does_not_leak_into_hrefs(api: Api) -> None:
    r = api.get("/api/", headers={"Host": 'evil"><x'})
    assert r.status_code in (200, 400)
    assert b"evil" not in r.content
