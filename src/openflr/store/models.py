"""Tables. Every change to them comes with a revision in migrations/versions/ (docs/ARCHITECTURE.md,
"store/"): a test compares the migrated schema with these models on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    Integer,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy import String as _String
from sqlalchemy import Text as _Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def _no_nul(value: str | None, dialect: Dialect) -> str | None:
    # PostgreSQL refuses NUL in text: a name typed by a client or a path in a message must not
    # turn a logon or an audit record into an error. SQLite stores it as it is.
    if value is not None and dialect.name == "postgresql" and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


class String(TypeDecorator[str]):
    """VARCHAR; NUL characters become U+FFFD on PostgreSQL."""

    impl = _String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return _no_nul(value, dialect)


class Text(TypeDecorator[str]):
    """TEXT; NUL characters become U+FFFD on PostgreSQL."""

    impl = _Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return _no_nul(value, dialect)


class Base(DeclarativeBase):
    pass


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    name_key: Mapped[str] = mapped_column(String(256), unique=True, index=True)
    """Case-folded name used for lookups (EM matches account names case-insensitively)."""
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    inplace_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """EM's "in-place restore only": no direct downloads."""
    allowed_extensions: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    """Comma-separated file extensions this user may restore or download; empty: any."""
    restore_scope: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    """Comma-separated VM name patterns (fnmatch) whose points the user sees; empty: all VMs."""


class AuditRow(Base):
    """One download or restore: who, from where, what, where to, how much, how it ended."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    user: Mapped[str] = mapped_column(String(256), index=True)
    client: Mapped[str] = mapped_column(String(128), default="")
    action: Mapped[str] = mapped_column(String(32))
    """``download``, ``restore`` or ``restore-permissions``."""
    vm: Mapped[str] = mapped_column(String(512), default="")
    point_id: Mapped[str] = mapped_column(String(64), default="")
    point_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    path: Mapped[str] = mapped_column(Text, default="")
    target: Mapped[str] = mapped_column(Text, default="")
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    items: Mapped[int] = mapped_column(Integer, default=0)
    failed_items: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[str] = mapped_column(String(32), default="running")
    """``running``, ``success``, ``failed``, ``interrupted``."""
    message: Mapped[str] = mapped_column(Text, default="")
    task_id: Mapped[str] = mapped_column(String(32), default="")
    node: Mapped[str] = mapped_column(String(128), default="", server_default=text("''"), index=True)
    """The node that ran it: its running records are closed when it stops (core/nodes.py)."""


class LogonFailureRow(Base):
    """Failed-logon counters and locks (core/throttle.py), shared by the server and the CLI.

    One row per ``kind``: ``pair`` (account and client address), ``account`` (every address) or
    ``address`` (every account); the unused key is ``''``. Times are Unix epoch seconds.
    """

    __tablename__ = "logon_failures"
    __table_args__ = (UniqueConstraint("kind", "account", "address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    account: Mapped[str] = mapped_column(String(256), default="", index=True)
    """Case-folded account key (``core.users.account_key``), known user or not."""
    address: Mapped[str] = mapped_column(String(64), default="", index=True)
    """Client address (IPv6 clients by /64 network)."""
    failures: Mapped[int] = mapped_column(Integer, default=0)
    """Failed (or still undecided) logons since the count last started afresh."""
    last_failure: Mapped[float] = mapped_column(Float, default=0.0)
    locked_until: Mapped[float] = mapped_column(Float, default=0.0)
    """Logons of this pair (or from this address) are refused until then; 0: not locked."""


class NodeRow(Base):
    """One openflr process sharing this database (``[cluster] node_name``): its heartbeat, so the
    others notice when it stops (core/nodes.py). Times are Unix epoch seconds."""

    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    started_at: Mapped[float] = mapped_column(Float)
    heartbeat_at: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))
    """``running``, ``stopped`` (a graceful stop) or ``dead`` (its heartbeat stopped)."""


class LogonSessionRow(Base):
    """A logon session, shared by every node (core/sessionstore.py). Times are Unix epoch seconds."""

    __tablename__ = "logon_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    """The public id (a GUID, lower case)."""
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    """sha256 of the token, hex: the token itself is never stored."""
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    user_json: Mapped[str] = mapped_column(Text)
    """The account as it was at logon (role and restore rules apply from a user's next logon)."""
    client: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[float] = mapped_column(Float, index=True)
    """The last request any node saw with it (written coarsely: not on every request)."""
    csrf: Mapped[str] = mapped_column(String(64))
    ended: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    end_reason: Mapped[str] = mapped_column(String(64), default="")
    node: Mapped[str] = mapped_column(String(128), default="")
    """The node it was made on."""


class MountRow(Base):
    """A mount of a point by a session; its id is the mount's number in its Href. Any node serves it,
    opening the point from the shared datastore on first use."""

    __tablename__ = "mounts"
    # SQLite never hands out an id again, even the highest after it was deleted.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(String(36), index=True)
    point_id: Mapped[str] = mapped_column(String(64))
    family: Mapped[str] = mapped_column(String(16))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(16))
    """``mounted`` or ``unmounted`` (kept until the session ends)."""
    node: Mapped[str] = mapped_column(String(128), default="")


class TaskRow(Base):
    """A task clients poll (``task-<id>``), readable from any node; written by the node running it."""

    __tablename__ = "tasks"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), index=True)
    """``Running``, ``Finished``; ``Deleted`` once a client deleted it (its node then cancels it)."""
    success: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    result_json: Mapped[str] = mapped_column(Text, default="[]")
    """What it produced (links to a mount or a download), as JSON."""
    progress_json: Mapped[str] = mapped_column(Text, default="{}")
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    node: Mapped[str] = mapped_column(String(128), default="", index=True)
