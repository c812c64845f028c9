"""Real third-party EM clients against a real `openflr serve` process (HTTP and HTTPS).

Each PyPI client runs in its own virtualenv (they pin old libraries), cached in
``.cache/client-venvs/<name>`` and rebuilt when its pinned requirement changes.
"""

from __future__ import annotations

import subprocess
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import datastore_config
from tests.imagebuilder import Fixtures
from tests.support import USERS, RunningServer, add_users, plain_client, run_server

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / ".cache" / "client-venvs"
CLIENT_SERVER = "[sessions]\nmax_per_user = 1000\n"


def client_venv(name: str, *requirements: str) -> Path:
    """A virtualenv with ``requirements`` installed; returns its ``bin`` folder."""
    home = VENVS / name
    stamp = home / "openflr-requirements.txt"
    wanted = "\n".join(requirements) + "\n"
    if not (stamp.is_file() and stamp.read_text() == wanted):
        venv.EnvBuilder(clear=True, with_pip=True).create(home)
        subprocess.run(
            [str(home / "bin" / "python"), "-m", "pip", "install", "-q", *requirements],
            check=True,
            timeout=600,
        )
        stamp.write_text(wanted)
    return home / "bin"


@dataclass(frozen=True)
class ClientTarget:
    """A server a client is pointed at, with the ids a client script needs."""

    server: RunningServer
    user: str
    password: str
    point_id: str
    """Newest point of ``Win File Server`` on the qcow2 datastore."""

    @property
    def base(self) -> str:
        return self.server.base


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
