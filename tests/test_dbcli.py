"""``openflr db current`` and ``openflr db upgrade``, run as real processes on PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from openflr.store import migrate
from tests.store.postgres import new_database, run_postgres
from tests.support import cli, free_port


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    with run_postgres() as url:
        yield url


def test_upgrade_on_postgresql_with_auto_upgrade_off(cluster: str, tmp_path: Path) -> None:
    url = new_database(cluster).replace("openflr@", "openflr:hunter2@")  # trust: the password is not checked
    env = {"OPENFLR_STORE_URL": url, "OPENFLR_STORE_AUTO_UPGRADE": "false"}
    shown = url.replace(":hunter2@", ":***@")

    current = cli(tmp_path, "db", "current", env=env, check=False)
    assert current.returncode == 1
    empty = f"no schema revision (empty); 'openflr db upgrade' creates revision {migrate.HEAD}"
    assert current.stdout == f"{shown} (postgresql): {empty}\n"
    refused = cli(tmp_path, "users", "list", env=env, check=False)
    assert refused.returncode == 1
    assert f"Error: the database {shown} is at schema revision (none)" in refused.stderr
    assert "run 'openflr db upgrade' ([store] auto_upgrade is off)" in refused.stderr

    upgraded = cli(tmp_path, "db", "upgrade", env=env)
    assert upgraded.stdout == f"{shown}: upgraded from schema revision (none) to {migrate.HEAD}\n"
    assert cli(tmp_path, "db", "current", env=env).stdout.endswith(
        f"schema revision {migrate.HEAD} (up to date)\n"
    )
    assert "already at schema revision" in cli(tmp_path, "db", "upgrade", env=env).stdout
    cli(tmp_path, "users", "add", "alice", "--role", "PortalUser", env=env, stdin="pw\n")
    assert "alice" in cli(tmp_path, "users", "list", env=env).stdout
    assert not (tmp_path / "openflr.db").exists()  # all of it in PostgreSQL
    for proc in (current, refused, upgraded):
        assert "hunter2" not in proc.stdout + proc.stderr


def test_a_newer_database_stops_the_server_before_it_starts(cluster: str, tmp_path: Path) -> None:
    url = new_database(cluster)
    env = {"OPENFLR_STORE_URL": url}
    cli(tmp_path, "db", "upgrade", env=env)
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'f00d'")
    served = cli(
        tmp_path, "serve", "--http", "--host", "127.0.0.1", "--port", str(free_port()), env=env, check=False
    )
    assert served.returncode == 1
    assert "Error: the database postgresql+psycopg://openflr@" in served.stderr
    assert "is at schema revision f00d, which this openflr" in served.stderr
    assert "Traceback" not in served.stderr
    current = cli(tmp_path, "db", "current", env=env, check=False)
    assert current.returncode == 1 and "newer than this openflr's" in current.stdout


def test_sqlite_in_the_data_directory_by_default(tmp_path: Path) -> None:
    assert cli(tmp_path, "db", "upgrade").stdout == (
        f"{tmp_path / 'openflr.db'}: upgraded from schema revision (none) to {migrate.HEAD}\n"
    )
    assert cli(tmp_path, "db", "current").stdout == (
        f"{tmp_path / 'openflr.db'} (sqlite): schema revision {migrate.HEAD} (up to date)\n"
    )
