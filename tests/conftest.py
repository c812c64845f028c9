"""Shared fixtures: every wire test runs in-process (ASGI) and against real HTTP and HTTPS servers."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from pathlib import Path
from types import CodeType

import pytest
from starlette.testclient import TestClient

from openflr.api.app import create_app
from tests import support
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

# The file catalog builds in the background after each scan (docs/CATALOG.md). Most tests do not use it
# and every server they start would catalogue the fixture datastores on the machine's two cores, so it is
# off unless a test turns it on (OPENFLR_CATALOG_ENABLED=true, or a build asked for through the API/CLI,
# which runs whatever this says). Servers started by tests inherit this environment.
os.environ.setdefault("OPENFLR_CATALOG_ENABLED", "false")

# --- the fast tier ---------------------------------------------------------------------------------------
# `./scripts/test --fast` is `pytest -m "not server and not slow"`: the in-process tests only. A test is
# marked `server` here when it, a fixture it uses or a test helper they call reaches one of STARTS_SERVERS
# (a real `openflr serve`, smbd, sshd or PostgreSQL; fixtures asked for by a literal name, as in
# ``request.getfixturevalue("samba_server")``, count as used), when a parameter picks a real server
# (``api[http]``, ``faulty[https]``; an ``inproc`` or ``sqlite`` parameter is in-process whatever its fixture
# does for the others), or when it lives below tests/clients (real third-party clients, each in its own
# virtualenv).
STARTS_SERVERS = frozenset({"run_server", "run_samba", "run_sshd", "run_postgres"})
SERVER_PARAMS = frozenset({"http", "https"})
IN_PROCESS_PARAMS = frozenset({"inproc", "sqlite"})
"""A fixture parameter that picks the in-process variant, whatever the fixture does for the others."""
CLIENT_TESTS = Path(__file__).parent / "clients"


def _names(code: CodeType) -> tuple[set[str], set[str]]:
    """The global and attribute names, and the string constants, of ``code`` and the code nested in it."""
    names, strings = set(code.co_names), set()
    for const in code.co_consts:
        if isinstance(const, CodeType):
            inner_names, inner_strings = _names(const)
            names |= inner_names
            strings |= inner_strings
        elif isinstance(const, str):
            strings.add(const)
    return names, strings


class _ServerFinder:
    """Whether a test's own code, its fixtures or the test helpers they call start a server."""

    def __init__(self, item: pytest.Function) -> None:
        self.item = item
        self.seen: set[CodeType] = set()

    def fixture(self, name: str) -> bool:
        defs = self.item.session._fixturemanager.getfixturedefs(name, self.item)
        return defs is not None and len(defs) > 0 and self.reaches(defs[-1].func)

    def reaches(self, func: object) -> bool:
        code = getattr(func, "__code__", None)
        if not isinstance(code, CodeType) or code in self.seen:
            return False
        self.seen.add(code)
        names, strings = _names(code)
        if not STARTS_SERVERS.isdisjoint(names):
            return True
        scope: dict[str, object] = getattr(func, "__globals__", {})
        helpers = (scope.get(name) for name in names)
        return any(
            inspect.isfunction(helper) and helper.__module__.startswith("tests.") and self.reaches(helper)
            for helper in helpers
        ) or any(self.fixture(s) for s in strings if s.isidentifier())


def _starts_a_server(item: pytest.Function) -> bool:
    if CLIENT_TESTS in item.path.parents:
        return True
    params: dict[str, object] = dict(item.callspec.params) if hasattr(item, "callspec") else {}
    if not SERVER_PARAMS.isdisjoint(p for p in params.values() if isinstance(p, str)):
        return True
    in_process = {name for name, p in params.items() if isinstance(p, str) and p in IN_PROCESS_PARAMS}
    finder = _ServerFinder(item)
    return finder.reaches(item.function) or any(
        name not in in_process and finder.reaches(defs[-1].func)
        for name, defs in item._fixtureinfo.name2fixturedefs.items()
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and _starts_a_server(item):
            item.add_marker(pytest.mark.server)


def pytest_configure(config: pytest.Config) -> None:
    # In a run that leaves the server tests out, a test that starts a server anyway is marked wrongly:
    # it fails at once instead of slowing the fast tier down.
    support.SERVERS_ALLOWED = "not server" not in (config.option.markexpr or "")


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
