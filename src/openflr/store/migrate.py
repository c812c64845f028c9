"""Schema migrations (Alembic, run in-process: no alembic.ini): what revision a database is at, and
upgrading it to the revision this code needs.

A database made before migrations existed (its tables, no ``alembic_version``) is adopted: the first
revision adds what its tables lack and records itself, so its data stays. A database at a revision
this code does not know was upgraded by a newer openflr and is refused, never changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from openflr.errors import OpenflrError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)

HEAD = "0002"
"""The newest revision in migrations/versions/ (a test checks): a database at it is opened without
loading Alembic at all, which keeps every command's start quick."""
MIGRATIONS = Path(__file__).with_name("migrations")
LEGACY_TABLES = frozenset({"users", "audit", "logon_failures"})
"""Tables of the releases before migrations (their ``upgrade()`` created and widened them)."""
_LOCK_KEY = 0x6F70656E666C72  # "openflr": one upgrade at a time across processes (PostgreSQL)


class SchemaError(OpenflrError):
    """The database's schema cannot be used by this openflr (newer than it, or behind with upgrades off)."""


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    """The revision recorded in the database; None: none recorded (empty, or made before migrations)."""
    head: str
    """The revision this code needs."""
    legacy: bool
    """Tables from before migrations, with no revision recorded."""
    known: bool
    """``current`` is one of this code's revisions (or None)."""

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def script() -> ScriptDirectory:
    """The migrations as Alembic sees them."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def _current(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if value is None else str(value)


def _state(conn: Connection) -> SchemaState:
    current = _current(conn)
    if current == HEAD:
        return SchemaState(current, HEAD, legacy=False, known=True)
    known = current is None or any(r.revision == current for r in script().walk_revisions())
    legacy = current is None and not LEGACY_TABLES.isdisjoint(inspect(conn).get_table_names())
    return SchemaState(current, HEAD, legacy, known)


def state(engine: Engine) -> SchemaState:
    with engine.connect() as conn:
        return _state(conn)


def too_new(where: str, st: SchemaState) -> SchemaError:
    from openflr import __version__

    return SchemaError(
        f"the database {where} is at schema revision {st.current}, which this openflr ({__version__}, "
        f"schema revision {st.head}) does not know: a newer openflr upgraded it. Run that release, or "
        "restore a backup of the database made before the upgrade."
    )


def upgrade(engine: Engine, where: str) -> tuple[SchemaState, SchemaState]:
    """Upgrade to the head revision; returns the states before and after (``SchemaError`` if too new)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Nodes starting together: the first upgrades, the others wait and then find it done.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        before = _state(conn)
        if not before.known:
            raise too_new(where, before)
        if before.up_to_date:
            return before, before
        if before.legacy:
            log.info(
                "database %s was made before schema migrations: checking its tables, then recording "
                "revision %s",
                where,
                before.head,
            )
        else:
            log.info(
                "upgrading database %s from schema revision %s to %s", where, before.current, before.head
            )
        from alembic import command

        command.upgrade(_config(conn), HEAD)
        return before, _state(conn)
