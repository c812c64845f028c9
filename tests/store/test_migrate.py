"""Schema migrations on SQLite and PostgreSQL: fresh databases, refusals, concurrent starts, masking."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from openflr.core.roles import Role
from openflr.core.users import UserStore
from openflr.store import migrate
from openflr.store.db import Database, SchemaError
from openflr.store.models import Base
from tests.store.postgres import new_database


def test_head_is_the_newest_revision() -> None:
    assert migrate.script().get_heads() == [migrate.HEAD]


def test_a_fresh_database_gets_the_models_schema(database_url: str) -> None:
    db = Database(database_url)
    assert db.schema().up_to_date and db.schema().current == migrate.HEAD
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == migrate.HEAD
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []
    assert {"users", "audit", "logon_failures"} <= set(inspect(db.engine).get_table_names())


def test_a_database_newer_than_the_code_is_refused_and_left_alone(database_url: str) -> None:
    UserStore(Database(database_url)).add("alice", "pw", Role.PORTAL_USER)
    with Database(database_url).engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    for auto_upgrade in (True, False):
        with pytest.raises(SchemaError, match=r"revision 9999, which this openflr .* does not know"):
            Database(database_url, auto_upgrade=auto_upgrade)
    db = Database(database_url, check_schema=False)
    with pytest.raises(SchemaError, match="a newer openflr upgraded it"):
        db.upgrade()
    assert db.schema().current == "9999" and not db.schema().known
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM users")).scalars().all() == ["alice"]


def test_auto_upgrade_off_leaves_postgresql_to_the_administrator(postgres_url: str, tmp_path: Path) -> None:
    url = new_database(postgres_url)
    with pytest.raises(SchemaError, match=r"run 'openflr db upgrade' \(\[store\] auto_upgrade is off\)"):
        Database(url, auto_upgrade=False)
    assert "users" not in inspect(Database(url, check_schema=False).engine).get_table_names()
    Database(url, check_schema=False).upgrade()
    Database(url, auto_upgrade=False)  # up to date: opens
    # SQLite has one user at a time: it is always upgraded
    assert Database(f"sqlite:///{tmp_path / 'a.db'}", auto_upgrade=False).schema().up_to_date


def test_servers_starting_together_upgrade_once(postgres_url: str) -> None:
    url = new_database(postgres_url)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def node() -> None:
        start.wait()
        try:
            Database(url)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=node) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Database(url, check_schema=False).schema().up_to_date


def test_the_password_is_never_shown(postgres_url: str, caplog: pytest.LogCaptureFixture) -> None:
    url = new_database(postgres_url).replace("openflr@", "openflr:s3cret-pw@")  # trust: not checked
    caplog.set_level(logging.DEBUG)
    db = Database(url)
    assert db.safe_url.startswith("postgresql+psycopg://openflr:***@127.0.0.1:")
    assert "upgrading database postgresql+psycopg://openflr:***@" in caplog.text
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'zz'"))
    with pytest.raises(SchemaError) as refused:
        Database(url)
    assert "openflr:***@" in refused.value.message
    assert "s3cret" not in refused.value.message + caplog.text + repr(db.engine)
