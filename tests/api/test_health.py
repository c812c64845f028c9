"""``/api/openflr/health`` (docs/DEPLOYMENT.md, "Health checks"): liveness, and readiness that fails
with 503 when a datastore or the database cannot be read, naming the check but never a path.

In-process for the checks themselves, and over a real ``openflr serve`` for the wire.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from openflr.api.app import create_app
from tests.store.postgres import new_database, run_postgres
from tests.support import make_service, plain_client, run_server

HEALTH = "/api/openflr/health"


def stores(data: Path) -> str:
    """Two datastores (empty folders) named ``primary`` and ``second``."""
    out = ""
    for name in ("primary", "second"):
        (data / name).mkdir(exist_ok=True)
        out += f'[[datastores]]\nname = "{name}"\npath = "{data / name}"\n\n'
    return out


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    service = make_service(tmp_path, stores(tmp_path))
    with TestClient(create_app(service), base_url="https://testserver", cookies=None) as c:
        yield c


def ready(client: Any, base: str = "") -> tuple[int, dict[str, Any]]:
    r = client.get(base + HEALTH, headers={"Accept": "application/xml"})
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    assert "set-cookie" not in r.headers
    return r.status_code, r.json()


def test_live_and_ready_without_a_logon(client: TestClient, tmp_path: Path) -> None:
    live = client.get(HEALTH + "?check=live")
    assert (live.status_code, live.json()) == (200, {"status": "ok", "checks": {}})
    status, body = ready(client)
    assert status == 200
    assert body == {
        "status": "ok",
        "checks": {
            "database": {"status": "ok"},
            "datastores": {"primary": {"status": "ok"}, "second": {"status": "ok"}},
        },
    }
    assert client.get(HEALTH + "?check=READY").status_code == 200
    bad = client.get(HEALTH + "?check=everything", headers={"Accept": "application/json"})
    assert bad.status_code == 400 and bad.json()["Status"] == "BadRequest"


def test_a_removed_datastore_is_503_naming_it_not_its_path(client: TestClient, tmp_path: Path) -> None:
    (tmp_path / "primary").rename(tmp_path / "gone")
    status, body = ready(client)
    assert status == 503
    assert body["status"] == "fail"
    assert body["checks"]["database"] == {"status": "ok"}
    assert body["checks"]["datastores"]["second"] == {"status": "ok"}
    failed = body["checks"]["datastores"]["primary"]
    assert failed == {"status": "fail", "reason": "the datastore cannot be listed"}
    assert str(tmp_path) not in str(body)
    assert client.get(HEALTH + "?check=live").status_code == 200  # alive, not ready
    (tmp_path / "gone").rename(tmp_path / "primary")
    assert ready(client)[0] == 200


def test_a_datastore_that_is_a_file_is_503(client: TestClient, tmp_path: Path) -> None:
    (tmp_path / "second").rmdir()
    (tmp_path / "second").write_text("not a folder")
    status, body = ready(client)
    assert status == 503 and body["checks"]["datastores"]["second"]["status"] == "fail"


def test_an_unreadable_database_is_503(client: TestClient, tmp_path: Path) -> None:
    db = tmp_path / "openflr.db"
    db.rename(tmp_path / "aside.db")  # what root cannot be kept from reading: a folder in its place
    db.mkdir()
    try:
        status, body = ready(client)
    finally:
        db.rmdir()
        (tmp_path / "aside.db").rename(db)
    assert status == 503
    assert body["checks"]["database"] == {"status": "fail", "reason": "the database does not answer"}
    assert body["checks"]["datastores"]["primary"] == {"status": "ok"}
    assert str(tmp_path) not in str(body)
    assert ready(client)[0] == 200


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 000")
def test_a_database_of_mode_000_is_503(client: TestClient, tmp_path: Path) -> None:
    db = tmp_path / "openflr.db"
    db.chmod(0)
    try:
        assert ready(client)[0] == 503
    finally:
        db.chmod(0o600)


def test_documented_without_a_logon(client: TestClient) -> None:
    doc = client.get("/api/openapi.json").json()
    op = doc["paths"][HEALTH]["get"]
    assert op["security"] == []
    for status in ("200", "503"):
        schema = op["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Health"}
    assert "database" in doc["components"]["schemas"]["Health"]["properties"]["checks"]["properties"]


def test_a_real_server_answers_ready_then_503(tmp_path: Path) -> None:
    with run_server(tmp_path, https=True, config=stores(tmp_path)) as server, plain_client() as http:
        status, body = ready(http, server.base)
        assert status == 200, body
        head = http.head(server.base + HEALTH)
        assert head.status_code == 200
        (tmp_path / "second").rename(tmp_path / "moved")
        for _ in range(2):
            status, body = ready(http, server.base)
            assert status == 503
            assert body["checks"]["datastores"]["second"]["status"] == "fail"
        (tmp_path / "moved").rename(tmp_path / "second")
        assert ready(http, server.base)[0] == 200
        log = server.log_when(lambda text: "is fine again" in text)
    assert log.count("health: datastore second failed") == 1, log
    assert "health: datastore second is fine again" in log


def test_readiness_on_postgresql_follows_the_database(tmp_path: Path) -> None:
    with run_postgres() as cluster:
        url = new_database(cluster)
        service = make_service(tmp_path, stores(tmp_path) + f'[store]\nurl = "{url}"\n')
        with TestClient(create_app(service), base_url="https://testserver", cookies=None) as client:
            assert ready(client)[0] == 200
            name = url.rsplit("/", 1)[1]
            with psycopg.connect(cluster.replace("+psycopg", ""), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                status, body = ready(client)
                assert status == 503
                assert body["checks"]["database"]["status"] == "fail"
                assert "127.0.0.1" not in str(body) and name not in str(body)
                admin.execute(f'CREATE DATABASE "{name}"')
            assert ready(client)[0] == 200
