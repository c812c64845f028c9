"""Fixtures for the real third-party EM clients: a real `openflr serve` process (HTTP and HTTPS).

The clients' virtualenvs and ``ClientTarget`` are in tests/clients/support.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.support import ClientTarget
from tests.imagebuilder import Fixtures
from tests.support import USERS, RunningServer, add_users, datastore_config, plain_client, run_server

CLIENT_SERVER = "[sessions]\nmax_per_user = 1000\n"


def _newest_windows_point(server: RunningServer) -> str:
    user, (password, _) = "flrop", USERS["flrop"]
    with plain_client() as http:
        r = http.post(f"{server.base}/api/sessionMngr/?v=latest", auth=(user, password))
        token = {"X-RestSvcSessionId": r.headers["X-RestSvcSessionId"], "Accept": "application/json"}
        body = http.get(
            f"{server.base}/api/query?type=VmReplicaPoint&format=Entities"
            '&filter=VmName=="Win File Server"&sortDesc=CreationTime',
            headers=token,
        ).json()
        points = body["Entities"]["VmReplicaPoints"]["VmReplicaPoints"]
        gone = http.delete(r.headers["Location"], headers=token)
        assert gone.status_code == 204, gone.text
    return str(points[0]["UID"]).rsplit(":", 1)[1]


@pytest.fixture(scope="session")
def client_server_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("client-server")
    add_users(data)
    return data


def _serve(data: Path, fixtures: Fixtures, https: bool) -> Iterator[ClientTarget]:
    config = CLIENT_SERVER + datastore_config(fixtures, ("qcow2",))
    with run_server(data, https=https, config=config) as server:
        yield ClientTarget(server, "flrop", USERS["flrop"][0], _newest_windows_point(server))


@pytest.fixture(scope="session")
def client_http(client_server_dir: Path, fixtures: Fixtures) -> Iterator[ClientTarget]:
    yield from _serve(client_server_dir, fixtures, https=False)


@pytest.fixture(scope="session")
def client_https(client_server_dir: Path, fixtures: Fixtures) -> Iterator[ClientTarget]:
    yield from _serve(client_server_dir, fixtures, https=True)


@pytest.fixture(params=["http", "https"])
def target(request: pytest.FixtureRequest) -> ClientTarget:
    """The same client run against the real server over HTTP and over HTTPS (self-signed)."""
    found: ClientTarget = request.getfixturevalue(f"client_{request.param}")
    return found
