"""Wire conventions shared by every resource: errors, negotiation, tolerance, Hrefs (README)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from openflr.api.app import create_app
from tests.support import Api, RunningServer, local, make_service, xml

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
    assert j.json()["Message"].startswith(f"{method} is not supported on {path.rstrip('/')}")
    assert r.headers["Allow"] in j.json()["Message"]


def test_a_path_added_to_an_href_with_a_query_is_explained(api: Api) -> None:
    """``$POINT/mounts`` with ``POINT`` still ending in ``?format=Entity``: the error says why."""
    r = api.post("/api/logonSessions?format=Entity/mounts", headers={"Accept": "application/json"})
    assert r.status_code == 405
    message = r.json()["Message"]
    assert "?format=Entity/mounts holds a path" in message and "remove the '?...' part" in message
    plain = api.post("/api/logonSessions?format=Entity", headers={"Accept": "application/json"})
    assert "holds a path" not in plain.json()["Message"]


def test_body_over_limit_is_413(api: Api) -> None:
    r = api.post("/api/sessionMngr/", content=b"x" * (1024 * 1024 + 1), auth=("flrop", "Secret1"))
    assert r.status_code == 413
    assert xml(r).get("StatusCode") == "413"


def test_streamed_body_over_limit_is_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
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


def test_public_url_wins_over_the_host_header(tmp_path: Path) -> None:
    """Behind a reverse proxy: Hrefs and Location name the public address, whatever Host says."""
    service = make_service(tmp_path, '[server]\npublic_url = "https://flr.example.com/openflr/"\n')
    with TestClient(create_app(service), base_url="https://testserver") as client:
        root = client.get("/api/", headers={"Host": "attacker.example:1"})
        assert b"attacker" not in root.content
        assert b'Href="https://flr.example.com/openflr/api/sessionMngr/?v=latest"' in root.content
        logon = client.post("/api/sessionMngr/?v=latest", auth=("flrop", "Secret1"), headers={"Host": "x.y"})
        assert logon.headers["Location"].startswith("https://flr.example.com/openflr/api/logonSessions/")


@pytest.mark.parametrize("url", ["ftp://flr.example.com", "flr.example.com", "https://h/?a=1", "https://"])
def test_public_url_must_be_an_http_address(tmp_path: Path, url: str) -> None:
    from openflr.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="OPENFLR_SERVER_PUBLIC_URL: expected an http"):
        load_settings(env={"OPENFLR_DATA_DIR": str(tmp_path), "OPENFLR_SERVER_PUBLIC_URL": url})


def test_garbled_host_header_does_not_leak_into_hrefs(api: Api) -> None:
    r = api.get("/api/", headers={"Host": 'evil"><x'})
    assert r.status_code in (200, 400)
    assert b"evil" not in r.content


# --- request limits ([limits]: max_url_bytes, max_header_bytes, max_query_params) ------------------------


def test_url_over_limit_is_414(api: Api) -> None:
    token = api.logon()
    assert api.get("/api/logonSessions?x=" + "a" * 8000, headers={TOKEN: token}).status_code == 200
    r = api.get("/api/logonSessions?x=" + "a" * 8200, headers={TOKEN: token})
    assert r.status_code == 414
    err = xml(r)
    assert err.get("StatusCode") == "414" and err.get("Status") == "RequestUriTooLong"
    assert "8192" in err.get("Message", "")
    j = api.get("/api/" + "p" * 9000, headers={"Accept": "application/json"})
    assert j.status_code == 414 and j.json()["StatusCode"] == 414


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Big": "b" * 17000},
        {f"X-Many-{i}": "v" * 100 for i in range(200)},
    ],
    ids=["one-big-header", "many-headers"],
)
def test_headers_over_limit_are_431(api: Api, headers: dict[str, str]) -> None:
    r = api.get("/api/", headers=headers)
    assert r.status_code == 431
    err = xml(r)
    assert err.get("Status") == "RequestHeaderFieldsTooLarge" and "16384" in err.get("Message", "")
    assert api.get("/api/", headers={"X-Big": "b" * 12000}).status_code == 200


def test_too_many_query_parameters_are_400(api: Api) -> None:
    token = api.logon()
    ok = "&".join(f"p{i}=1" for i in range(64))
    assert api.get(f"/api/logonSessions?{ok}", headers={TOKEN: token}).status_code == 200
    many = "&".join(f"p{i}=1" for i in range(65))
    r = api.get(f"/api/logonSessions?{many}", headers={TOKEN: token, "Accept": "application/json"})
    assert r.status_code == 400
    assert r.json()["Message"] == "The request has 65 query parameters; the limit is 64."


def test_limits_come_from_the_config(tmp_path: Path) -> None:
    service = make_service(tmp_path, "[limits]\nmax_url_bytes = 100\nmax_query_params = 2\n")
    with TestClient(create_app(service), base_url="https://testserver") as client:
        assert client.get("/api/?a=1&b=2").status_code == 200
        assert client.get("/api/?a=1&b=2&c=3").status_code == 400
        assert client.get("/api/" + "x" * 100).status_code == 414


def _raw_exchange(port: int, request: bytes) -> bytes:
    """Send bytes as they are (no client-side checks) and read the answer until the server closes;
    what arrived, possibly nothing when the server hung up before it had the whole request."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        try:
            s.sendall(request)
            while chunk := s.recv(65536):
                out += chunk
        except (BrokenPipeError, ConnectionResetError):
            pass
    return out


def test_what_uvicorn_does_before_the_app(http_server: RunningServer) -> None:
    """httptools buffers a header block of any size and any number of headers (a 4 MiB header
    reaches the app, which answers 431; a cap in the protocol class may instead hang up early),
    but refuses a request target over 64 KiB (its URL parser keeps 16-bit offsets) before the app
    runs: openflr's protocol class turns that into a 400 EM Error and closes the connection."""
    huge_header = _raw_exchange(
        http_server.port,
        b"GET /api/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (4 << 20) + b"\r\nConnection: close\r\n\r\n",
    )
    if huge_header:
        assert huge_header.startswith(b"HTTP/1.1 431 ")
        assert b'Status="RequestHeaderFieldsTooLarge"' in huge_header
    many = _raw_exchange(
        http_server.port,
        b"GET /api/ HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 20000 + b"Connection: close\r\n\r\n",
    )
    assert many.startswith(b"HTTP/1.1 431 ")
    mid = _raw_exchange(
        http_server.port, b"GET /api/" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert mid.startswith(b"HTTP/1.1 414 ") and b'StatusCode="414"' in mid
    huge_url = _raw_exchange(
        http_server.port, b"GET /api/" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert huge_url.startswith(b"HTTP/1.1 400 ")
    assert b"<Error " in huge_url and b"Malformed HTTP request" in huge_url
    assert httpx.get(http_server.base + "/api/").status_code == 200


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def test_a_never_ending_header_is_cut_off_early(http_server: RunningServer) -> None:
    """A client that keeps sending one header gets 431 and a closed connection after 256 KiB of head:
    httptools would otherwise buffer all of it before openflr's code runs."""
    before = _rss_kib(http_server.process.pid)
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", http_server.port), timeout=30) as s:
        try:
            s.sendall(b"GET /api/ HTTP/1.1\r\nHost: x\r\nX-Big: ")
            while sent < 64 << 20:
                s.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    assert sent < 16 << 20, "the server read on without hanging up"
    if answer:  # the answer may be lost when the server resets a connection with unread data
        assert answer.startswith(b"HTTP/1.1 431 ") and b"<Error " in answer
    assert _rss_kib(http_server.process.pid) - before < 20 * 1024
    assert httpx.get(http_server.base + "/api/").status_code == 200


# --- /api/openapi.json ---------------------------------------------------------------------------------


def test_openapi_document_describes_every_route(api: Api) -> None:
    r = api.get("/api/openapi.json")  # no logon needed
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    scheme = "http" if api.mode == "http" else "https"
    assert doc["servers"][0]["url"].startswith(f"{scheme}://")
    browse = doc["paths"]["/api/vmReplicaPoints/{point_id}/mounts/{mount_id}/{filepath}"]["get"]
    names = {p["name"] for p in browse["parameters"]}
    assert {"point_id", "mount_id", "filepath", "action", "pageSize", "page", "Range"} <= names
    query = doc["paths"]["/api/query"]["get"]
    assert {"type", "format", "filter", "sortAsc", "sortDesc", "pageSize", "page"} <= {
        p["name"] for p in query["parameters"]
    }
    assert doc["paths"]["/api/sessionMngr"]["post"]["security"] == [{"basic": []}]
    assert doc["paths"]["/api"]["get"]["security"] == []
    assert doc["components"]["securitySchemes"]["session"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-RestSvcSessionId",
    }
    restore = doc["paths"]["/api/vmReplicaPoints/{point_id}/mounts/{mount_id}/{filepath}"]["post"]
    spec = restore["requestBody"]["content"]["application/json"]["schema"]
    assert spec["properties"]["ToOriginalLocation"]["properties"]["Overwrite"] == {"type": "boolean"}
    entry = doc["components"]["schemas"]["FileEntry"]
    assert entry["properties"]["Size"] == {"type": ["integer", "null"]}
    assert set(entry["required"]) == set(entry["properties"])
    assert "500" not in browse["responses"]


def test_openapi_covers_the_app_routes(tmp_path: Path) -> None:
    from openflr.api import openapi

    routes = create_app(make_service(tmp_path), manage_service=False).routes
    assert len(routes) > 80
    assert openapi.undescribed(routes) == []


def test_openapi_follows_json_casing(tmp_path: Path) -> None:
    service = make_service(tmp_path, '[api]\njson_casing = "camel"\n')
    with TestClient(create_app(service), base_url="https://testserver") as client:
        doc = client.get("/api/openapi.json").json()
    assert "sessionId" in doc["components"]["schemas"]["LogonSession"]["properties"]
    assert "rel" in doc["components"]["schemas"]["Link"]["properties"]


@pytest.mark.parametrize(
    "query",
    [
        "%zz=1&a=%ff&b=%00",
        "format=%C0%AE%C0%AE&x=%",
        "=&&&=&a==b",
        "format=Entity&format=" + "x" * 4000,
    ],
)
def test_garbled_query_strings_are_tolerated(api: Api, query: str) -> None:
    token = api.logon()
    r = api.get(f"/api/logonSessions?{query}", headers={TOKEN: token})
    assert r.status_code == 200


@pytest.mark.parametrize(
    "filter_text",
    ["%00", "Name%3D%3D%22", "((((", "%C0%AE", "VmName==" + "x" * 5000, "Name%3D%3Da%3B" * 300],
)
def test_garbled_filters_are_400(api: Api, filter_text: str) -> None:
    token = api.logon()
    r = api.get(
        f"/api/query?type=VmReplicaPoint&filter={filter_text}",
        headers={TOKEN: token, "Accept": "application/json"},
    )
    assert r.status_code == 400 and r.json()["StatusCode"] == 400


def test_deeply_nested_filter_is_400(api: Api) -> None:
    token = api.logon()
    deep = "(" * 400 + "Name==x" + ")" * 400
    r = api.get(
        "/api/query",
        params={"type": "VmReplicaPoint", "filter": deep},
        headers={TOKEN: token, "Accept": "application/json"},
    )
    assert r.status_code == 400


def test_huge_page_number_is_400(api: Api) -> None:
    token = api.logon()
    r = api.get(
        "/api/query?type=VmReplicaPoint&pageSize=10&page=" + "9" * 25,
        headers={TOKEN: token, "Accept": "application/json"},
    )
    assert r.status_code == 400
