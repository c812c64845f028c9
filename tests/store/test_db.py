"""Schema upgrades in place: a database from a release before migrations gains the new tables and
columns, keeps its rows and is recorded at the current revision."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from openflr.core.audit import AuditLog
from openflr.core.roles import Role
from openflr.core.users import UserStore
from openflr.store import migrate
from openflr.store.db import Database, engine_url
from tests.store.postgres import new_database


def test_an_older_database_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the users table as the first release made it
        conn.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(256), name_key VARCHAR(256) UNIQUE, "
            "password_hash TEXT, role VARCHAR(64), created_at DATETIME)"
        )
        conn.execute(
            "INSERT INTO users (name, name_key, password_hash, role, created_at) "
            "VALUES ('old', 'old', 'x', 'RestoreOperator', '2026-11-01 10:00:00')"
        )
    assert Database(f"sqlite:///{path}", check_schema=False).schema().legacy
    db = Database(f"sqlite:///{path}")
    assert db.schema().current == migrate.HEAD
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(migrate.HEAD,)]
    users = UserStore(db)
    old = users.get("old")
    assert old is not None
    assert (old.inplace_only, old.allowed_extensions, old.restore_scope) == (False, (), ())
    users.add("new", "pw", Role.PORTAL_USER)
    assert users.set_restrictions("old", extensions=["pdf"]).allowed_extensions == ("pdf",)
    record = AuditLog(db).start(user="old", action="download")
    assert AuditLog(Database(f"sqlite:///{path}")).get(record) is not None


def test_an_asyncpg_url_reaches_the_same_database_through_psycopg(postgres_url: str) -> None:
    url = new_database(postgres_url)
    assert url.startswith("postgresql+psycopg://")
    asyncpg = url.replace("postgresql+psycopg://", "postgresql+asyncpg://", 1)
    assert engine_url(asyncpg).drivername == "postgresql+psycopg"
    UserStore(Database(asyncpg)).add("through-asyncpg-url", "pw", Role.PORTAL_USER)
    assert UserStore(Database(url)).get("through-asyncpg-url") is not None
