"""Wire behaviour that needs control of the service object (settings, injected faults)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from openflr.api.app import create_app
from tests.support import Api, make_service


def test_camel_case_json_setting(tmp_path: Path) -> None:
    service = make_service(tmp_path, OPENFLR_API_JSON_CASING="camel")
    with TestClient(create_app(service), base_url="https://testserver") as client:
        api = Api(client, "https://testserver", "inproc")
        body = api.get("/api/", headers={"Accept": "application/json"}).json()
        assert "supportedVersions" in body and "SupportedVersions" not in body
        assert body["supportedVersions"]["supportedVersions"][0]["links"][0]["rel"] == "Create"
        r = api.post("/api/sessionMngr/", auth=("flrop", "Secret1"), headers={"Accept": "application/json"})
        assert list(r.json()) == ["userName", "sessionId", "links", "href", "type"]


def test_idle_expiry_in_process(tmp_path: Path) -> None:
    service = make_service(
        tmp_path, OPENFLR_SESSIONS_IDLE_TIMEOUT="0.5", OPENFLR_SESSIONS_SWEEP_INTERVAL="0.1"
    )
    with TestClient(create_app(service), base_url="https://testserver") as client:
        api = Api(client, "https://testserver", "inproc")
        token = api.logon()
        assert api.get("/api/logonSessions", headers={"X-RestSvcSessionId": token}).status_code == 200
        time.sleep(1.0)
        assert service.sessions.all() == []  # the sweeper ended it without a request
        assert api.get("/api/logonSessions", headers={"X-RestSvcSessionId": token}).status_code == 401


def test_unhandled_exception_is_500_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    service = make_service(tmp_path)

    def broken(*_a: object) -> None:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(service.users, "authenticate", broken)
    with TestClient(
        create_app(service), base_url="https://testserver", raise_server_exceptions=False
    ) as client:
        r = client.post("/api/sessionMngr/", auth=("flrop", "Secret1"))
        assert r.status_code == 500
        assert b"<Error" in r.content and b"injected fault" not in r.content and b"Traceback" not in r.content
        assert client.get("/api/").status_code == 200
    assert any("injected fault" in (rec.exc_text or "") or rec.exc_info for rec in caplog.records)
