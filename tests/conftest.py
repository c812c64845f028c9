"""Shared fixtures: every wire test runs in-process (ASGI) and against real HTTP and HTTPS servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from openflr.api.app import create_app
from openflr.config import load_settings
from openflr.core.roles import Role
from openflr.core.service import Service
from tests.imagebuilder import Fixtures, ensure_fixtures
from tests.support import USERS, Api, RunningServer, add_users, plain_client, run_server

FIXTURE_DATASTORES = ("vmware", "hyperv", "qcow2")


@pytest.fixture(scope="session")
def fixtures() -> Fixtures:
    """The real disk images and datastores (built once, cached in .cache/fixtures)."""
    return ensure_fixtures()


# The shared servers live for the whole run and every test logs on afresh.
# Logon throttling has its own tests and server (tests/api/test_logon_abuse.py); here it is loosened so
# that deliberate bad logons across the suite never lock the test users out of the shared servers.
SHARED_SERVER = (
    "[sessions]\nmax_per_user = 100000\n"
    "[security]\nlogon_free_failures = 1000\nlock_after = 100000\nspray_lock_accounts = 100000\n"
)


def datastore_config(fx: Fixtures, names: tuple[str, ...] = FIXTURE_DATASTORES) -> str:
    """TOML for the fixture datastores (each named after its layout)."""
    return "".join(
        f'[[datastores]]\nname = "{n}"\npath = "{fx.datastore(n)}"\njob = "{n.upper()} Replication"\n\n'
        for n in names
    )


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


def make_service(data_dir: Path, config: str = "", **env: str) -> Service:
    if config:
        (data_dir / "openflr.toml").write_text(config)
        env = {"OPENFLR_CONFIG": str(data_dir / "openflr.toml"), **env}
    settings = load_settings(env={"OPENFLR_DATA_DIR": str(data_dir), **env})
    service = Service(settings)
    for name, (password, role) in USERS.items():
        if service.users.get(name) is None:
            service.users.add(name, password, Role(role))
    return service


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
