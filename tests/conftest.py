"""Shared fixtures: every wire test runs in-process (ASGI) and against real HTTP and HTTPS servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from openflr.api.app import create_app
from tests.imagebuilder import Fixtures, ensure_fixtures
from tests.support import (
    SHARED_SERVER,
    Api,
    RunningServer,
    add_users,
    datastore_config,
    make_service,
    plain_client,
    run_server,
)


@pytest.fixture(scope="session")
def fixtures() -> Fixtures:
    """The real disk images and datastores (built once, cached in .cache/fixtures)."""
    return ensure_fixtures()


@pytest.fixture(scope="session")
def real_server_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("server-data")
    add_users(data)
    return data


@pytest.fixture(scope="session")
def http_server(real_server_dir: Path, fixtures: Fixtures) -> Iterator[RunningServer]:
    with run_server(
        real_server_dir, https=False, config=SHARED_SERVER + datastore_config(fixtures)
    ) as server:
        yield server


@pytest.fixture(scope="session")
def https_server(real_server_dir: Path, fixtures: Fixtures) -> Iterator[RunningServer]:
    with run_server(real_server_dir, https=True, config=SHARED_SERVER + datastore_config(fixtures)) as server:
        yield server


@pytest.fixture(scope="session")
def inproc_client(tmp_path_factory: pytest.TempPathFactory, fixtures: Fixtures) -> Iterator[TestClient]:
    service = make_service(tmp_path_factory.mktemp("inproc-data"), SHARED_SERVER + datastore_config(fixtures))
    with TestClient(
        create_app(service), base_url="https://testserver", raise_server_exceptions=False, cookies=None
    ) as client:
        yield client


@pytest.fixture(params=["inproc", "http", "https"])
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    """The same test against the in-process app, a real HTTP server and a real HTTPS server."""
    if request.param == "inproc":
        client: TestClient = request.getfixturevalue("inproc_client")
        client.cookies.clear()
        yield Api(client, "https://testserver", "inproc")
        return
    server: RunningServer = request.getfixturevalue(f"{request.param}_server")
    with plain_client() as http:
        yield Api(http, server.base, request.param)
