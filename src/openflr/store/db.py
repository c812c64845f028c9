"""Database handle: engine, session factory, and a schema at the revision this code needs.

SQLite in the data directory by default; PostgreSQL (psycopg 3) when ``[store] url`` names one.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from openflr.store import migrate
from openflr.store.migrate import SchemaError, SchemaState

log = logging.getLogger(__name__)

__all__ = ["Database", "SchemaError", "aware_utc", "safe_url"]

CONNECT_TIMEOUT = 10
"""Seconds to reach a PostgreSQL server (unless the URL says ``connect_timeout``)."""


def engine_url(url: str) -> URL:
    """``url`` as SQLAlchemy takes it: plain ``postgresql://`` (and ``postgres://``) use psycopg 3, and
    so does ``postgresql+asyncpg://``: the store is synchronous (its calls run in worker threads), so
    a URL written for an asyncio driver reaches the same server and database through psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SchemaError(
            "the database URL cannot be read (it is not shown: it may hold a password)"
        ) from None
    if parsed.drivername in ("postgresql", "postgres", "postgresql+asyncpg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def aware_utc(value: datetime | None) -> datetime | None:
    """A time read from a row, as an aware UTC datetime (SQLite gives back naive ones)."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def safe_url(url: str) -> str:
    """``url`` for messages and logs: the password (if any) as ``***``; a SQLite file as its path."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(an unreadable database URL)"


class Database:
    """One engine per process; ``session()`` hands out short-lived ORM sessions.

    Opening checks the schema's revision: behind the code, it is upgraded when ``auto_upgrade`` is
    on (SQLite always); newer than the code, ``SchemaError``. ``check_schema=False`` skips this
    (``openflr db`` looks at the revision itself).
    """

    def __init__(self, url: str, *, auto_upgrade: bool = True, check_schema: bool = True) -> None:
        self.url = url
        self.safe_url = safe_url(url)
        if url.startswith("sqlite:///"):
            _private_sqlite_file(Path(url.removeprefix("sqlite:///")))
        target = engine_url(url)
        if target.get_backend_name() == "postgresql":
            args = {} if "connect_timeout" in target.query else {"connect_timeout": CONNECT_TIMEOUT}
            # pre-ping: a server restarted meanwhile costs one reconnect, not a failed request.
            self.engine: Engine = create_engine(target, pool_pre_ping=True, connect_args=args)
        else:
            self.engine = create_engine(target)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if check_schema:
            self._open_schema(auto_upgrade or self.engine.dialect.name == "sqlite")

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def session(self) -> Session:
        return self._sessions()

    def schema(self) -> SchemaState:
        """The revision the database is at and the one this code needs."""
        return migrate.state(self.engine)

    def upgrade(self) -> tuple[SchemaState, SchemaState]:
        """Upgrade the schema to this code's revision; the states before and after."""
        return migrate.upgrade(self.engine, self.safe_url)

    def _open_schema(self, upgrade: bool) -> None:
        st = self.schema()
        if st.up_to_date:
            return
        if not st.known:
            raise migrate.too_new(self.safe_url, st)
        if not upgrade:
            raise SchemaError(
                f"the database {self.safe_url} is at schema revision {st.current or '(none)'} and this "
                f"openflr needs {st.head}: run 'openflr db upgrade' ([store] auto_upgrade is off)"
            )
        self.upgrade()

    def close(self) -> None:
        self.engine.dispose()


def _private_sqlite_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does (its -wal and -shm files take the same
    mode), and tighten an existing one and its companions that other accounts could read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    except OSError:
        return  # not a file that can be opened: SQLite says why, in its own words
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = file.stat().st_mode & 0o777
        except FileNotFoundError:
            continue
        if mode & 0o077:
            file.chmod(mode & 0o600)
            log.warning("%s was readable by other accounts (mode %o): now %o", file, mode, mode & 0o600)


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()
