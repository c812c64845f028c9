"""Test helpers: real `openflr serve` processes, an in-process client, EM XML helpers."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Any, TypeVar

import httpx2 as httpx
from lxml import etree

from openflr.config import load_settings
from openflr.core.roles import Role
from openflr.core.service import Service
from tests.imagebuilder import Fixtures

NS = {"em": "http://www.veeam.com/ent/v1.0"}
OPENFLR = [sys.executable, "-m", "openflr"]
USERS = {
    "flrop": ("Secret1", "RestoreOperator"),
    "admin": ("Adm1n!pass", "PortalAdministrator"),
    "viewer": ("V1ewer!pass", "PortalUser"),
}
FIXTURE_DATASTORES = ("vmware", "hyperv", "qcow2")
"""The datastores the shared servers serve (each named after its layout)."""

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


def make_service(data_dir: Path, config: str = "", **env: str) -> Service:
    """An in-process service over ``data_dir`` (with ``config`` as its openflr.toml) and the test users."""
    if config:
        (data_dir / "openflr.toml").write_text(config)
        env = {"OPENFLR_CONFIG": str(data_dir / "openflr.toml"), **env}
    settings = load_settings(env={"OPENFLR_DATA_DIR": str(data_dir), **env})
    service = Service(settings)
    for name, (password, role) in USERS.items():
        if service.users.get(name) is None:
            service.users.add(name, password, Role(role))
    return service


SERVERS_ALLOWED = True
"""False in a run that deselects the ``server`` tests (`./scripts/test --fast`, tests/conftest.py)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(
    data_dir: Path,
    *args: str,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, OPENFLR_DATA_DIR=str(data_dir), **(env or {}))
    proc = subprocess.run(
        [*OPENFLR, *args], input=stdin, capture_output=True, text=True, env=full_env, timeout=120
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"openflr {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def add_users(data_dir: Path) -> None:
    for name, (password, role) in USERS.items():
        cli(data_dir, "users", "add", name, "--role", role, stdin=password + "\n")


@dataclass
class RunningServer:
    base: str
    """``http://127.0.0.1:PORT`` (no ``/api``)."""
    process: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path
    port: int

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_when(self, ready: Callable[[str], bool], timeout: float = 10) -> str:
        """The log once ``ready`` holds for it (or at ``timeout``): a request's access line is
        written after its response has gone out, so a client may be done before it is there."""
        deadline = time.monotonic() + timeout
        while not ready(text := self.log()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return text


@contextmanager
def run_server(
    data_dir: Path,
    *,
    https: bool,
    config: str = "",
    env: Mapping[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
    command: str = "serve",
) -> Iterator[RunningServer]:
    """Start `openflr serve` (or ``command``, e.g. ``demo``) on a free port and wait until it answers."""
    assert SERVERS_ALLOWED, "this test starts a server but is not marked `server` (tests/conftest.py)"
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [*OPENFLR, command, "--host", "127.0.0.1", "--port", str(port), *extra_args]
    if config:
        cfg = data_dir / "openflr.toml"
        cfg.write_text(config)
        args += ["--config", str(cfg)]
    if not https:
        args.append("--http")
    log_path = data_dir / f"server-{port}.log"
    full_env = dict(os.environ, OPENFLR_DATA_DIR=str(data_dir), **(env or {}))
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=full_env)
    scheme = "https" if https else "http"
    base = f"{scheme}://127.0.0.1:{port}"
    server = RunningServer(base, proc, data_dir, log_path, port)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"openflr {command} exited early:\n{server.log()}")
            try:
                httpx.get(base + "/api/", verify=False, timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"openflr {command} did not start:\n{server.log()}") from None
                time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def demo_password(server: RunningServer) -> str:
    """The password `openflr demo` printed."""
    found = re.search(r"password: (\S+)", server.log())
    assert found, server.log()
    return found.group(1)


def plain_client(**kw: Any) -> httpx.Client:
    """An HTTP client that never stores cookies (so tests control token transport)."""
    client = httpx.Client(**{"verify": False, "timeout": 30, **kw})
    client.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return client


class Api:
    """A client for one server, in-process or real, with EM conveniences."""

    def __init__(self, client: Any, base: str, mode: str) -> None:
        # Cookies are sent only where a test sets them: token transport is under test.
        client.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self.client = client
        self.base = base
        self.mode = mode

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        response: httpx.Response = self.client.request(method, self.url(path), **kw)
        return response

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    def logon(self, user: str = "flrop", password: str | None = None, **kw: Any) -> str:
        """Log on and return the token (cookies are not kept by the client)."""
        password = USERS[user][0] if password is None else password
        r = self.post("/api/sessionMngr/?v=latest", auth=(user, password), **kw)
        assert r.status_code == 201, r.text
        return r.headers["X-RestSvcSessionId"]

    def session_href(self, token: str) -> str:
        r = self.get(
            "/api/logonSessions", headers={"X-RestSvcSessionId": token, "Accept": "application/json"}
        )
        assert r.status_code == 200, r.text
        return str(r.json()["LogonSessions"][0]["Href"])


def xml(response: httpx.Response) -> etree._Element:
    assert "xml" in response.headers.get("content-type", ""), response.headers
    return etree.fromstring(response.content)


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def find(parent: etree._Element, path: str) -> etree._Element:
    """The first ``path`` (``em:`` names the EM namespace) below ``parent``; the test fails without one."""
    found = parent.find(path, NS)
    assert found is not None, f"no {path} in {local(parent.tag)}"
    return found


def text(parent: etree._Element, path: str) -> str:
    """The text of the first ``path`` below ``parent`` ("" when it is empty); the test fails without one."""
    return find(parent, path).text or ""


def attr(element: etree._Element, name: str) -> str:
    """The attribute ``name`` of ``element``; the test fails without it."""
    value = element.get(name)
    assert value is not None, f"{local(element.tag)} has no {name}"
    return value


_T = TypeVar("_T")


def until(probe: Callable[[], _T | None], timeout: float = 30, every: float = 0.2) -> _T:
    """``probe()`` once it is truthy; a transport error counts as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = probe()
        except httpx.TransportError:
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)
