"""A throw-away PostgreSQL cluster for the tests, and the fixtures that run store tests on both databases.

Debian's ``postgresql`` package (scripts/setup-test-deps) provides the programs; its own cluster and
service are not used. ``initdb`` and ``pg_ctl`` refuse root, so as root the cluster belongs to
``nobody``. It listens on 127.0.0.1 with trust authentication and a random port, for this test session only.

Test modules take the fixtures by importing them: ``from tests.store.postgres import database_url``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support import free_port

PG_USER = "openflr"
_names = itertools.count(1)
_cluster: list[str] = []
"""The URL of this session's cluster once started (each module importing the fixture has its own
copy of it; the first starts the cluster, the others share it)."""


def pg_bin() -> Path:
    """The newest installed PostgreSQL's bin directory."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: scripts/setup-test-deps installs it (postgresql)")
    return found[-1].parent


def _as_owner(args: list[str]) -> list[str]:
    return ["runuser", "-u", "nobody", "--", *args] if os.geteuid() == 0 else list(args)


@contextlib.contextmanager
def run_postgres() -> Iterator[str]:
    """Start a new cluster; yields the URL of its ``postgres`` database (user ``openflr``, no password)."""
    bin_dir = pg_bin()
    # Not under pytest's 0700 temporary directory (nor a TMPDIR only root may enter): the cluster's
    # owner must reach it.
    base = Path(tempfile.mkdtemp(prefix="openflr-pg-", dir="/tmp" if os.geteuid() == 0 else None))
    data, sockets = base / "data", base / "run"
    sockets.mkdir()
    if os.geteuid() == 0:
        for path in (base, sockets):
            shutil.chown(path, "nobody", "nogroup")
    port = free_port()
    pg_ctl = str(bin_dir / "pg_ctl")
    env = dict(os.environ, LC_ALL="C.UTF-8")
    try:
        subprocess.run(
            _as_owner(
                [
                    *(str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", PG_USER),
                    *("-E", "UTF8", "--locale=C.UTF-8", "--no-sync"),
                ]
            ),
            check=True,
            capture_output=True,
            env=env,
        )
        options = (
            f"-k {sockets} -p {port} -c listen_addresses=127.0.0.1 -c max_connections=300 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        subprocess.run(
            _as_owner([pg_ctl, "-D", str(data), "-l", str(base / "log"), "-o", options, "-w", "start"]),
            check=True,
            capture_output=True,
            env=env,
        )
        try:
            yield f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                _as_owner([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]),
                check=False,
                capture_output=True,
                env=env,
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def new_database(cluster_url: str) -> str:
    """A new, empty database in the cluster; its URL."""
    name = f"t{os.getpid()}_{next(_names)}"
    with psycopg.connect(_libpq(cluster_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return cluster_url.rsplit("/", 1)[0] + "/" + name


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """This session's PostgreSQL cluster (its ``postgres`` database), started on first use."""
    if _cluster:
        yield _cluster[0]
        return
    with run_postgres() as url:
        _cluster.append(url)
        try:
            yield url
        finally:
            _cluster.clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on an SQLite file and on a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'openflr.db'}"
    return new_database(request.getfixturevalue("postgres_url"))
