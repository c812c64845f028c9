"""Logon sessions shared through the database by several nodes (two SessionManagers on one real
SQLite or PostgreSQL database, each with its own cache): tokens, logouts, expiry, the per-user cap."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from openflr.core.roles import Role
from openflr.core.sessions import LogonSession, SessionManager
from openflr.core.sessionstore import SessionStore
from openflr.core.users import User
from openflr.errors import TooManyRequestsError
from openflr.store.db import Database
from openflr.store.models import LogonSessionRow

ALICE = User(1, "alice", Role.RESTORE_OPERATOR, datetime.now(UTC), allowed_extensions=("txt",))
BOB = User(2, "bob", Role.PORTAL_USER, datetime.now(UTC))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def nodes(
    url: str, clock: Clock, idle: float = 60, cap: int = 100
) -> tuple[Database, SessionManager, SessionManager]:
    db = Database(url)
    a = SessionManager(idle, cap, clock=clock, store=SessionStore(db, "a"), recheck_seconds=5)
    b = SessionManager(idle, cap, clock=clock, store=SessionStore(db, "b"), recheck_seconds=5)
    return db, a, b


def last_seen(db: Database, session: LogonSession) -> float:
    with db.session() as s:
        stmt = select(LogonSessionRow.last_seen).where(LogonSessionRow.id == session.session_id)
        return float(s.execute(stmt).scalar_one())


def test_a_token_made_on_one_node_resolves_on_another(database_url: str) -> None:
    clock = Clock()
    db, a, b = nodes(database_url, clock)
    session, token = a.create(ALICE, "10.0.0.5")
    seen = b.resolve(token)
    assert seen is not None and seen is not session
    assert (seen.session_id, seen.user, seen.csrf, seen.client) == (
        session.session_id,
        ALICE,
        session.csrf,
        "10.0.0.5",
    )
    assert b.resolve(token) is seen  # cached from now on
    assert b.get(session.session_id.upper()) is seen
    assert b.resolve("not-a-token") is None
    with db.session() as s:  # the database holds a hash of the token, never the token
        row = s.get(LogonSessionRow, session.session_id)
        assert row is not None and token not in (row.token_hash, row.csrf) and row.node == "a"


def test_a_logout_on_one_node_is_seen_on_another_within_recheck_seconds(database_url: str) -> None:
    clock = Clock()
    _db, a, b = nodes(database_url, clock)
    ended: list[tuple[str, bool]] = []
    b.add_end_listener(lambda s, why: ended.append((why, s.ended)))
    session, token = a.create(ALICE)
    assert b.resolve(token) is not None
    assert a.end(session, "logout")
    clock.now += 1
    assert b.resolve(token) is not None  # B's copy is trusted for recheck_seconds
    clock.now += 5
    assert b.resolve(token) is None
    assert ended == [("ended on another node", True)]
    assert a.resolve(token) is None and not b.end(session, "logout")


def test_activity_is_written_in_batches_not_per_request(database_url: str) -> None:
    clock = Clock()
    db, a, _b = nodes(database_url, clock)
    session, token = a.create(ALICE)
    created = last_seen(db, session)
    for _ in range(20):
        clock.now += 1
        assert a.resolve(token) is session
    assert last_seen(db, session) == created  # nothing written per request
    a.sweep()
    assert last_seen(db, session) == clock.now


def test_idle_expiry_counts_activity_on_every_node(database_url: str) -> None:
    clock = Clock()
    _db, a, b = nodes(database_url, clock, idle=60)
    _session, token = a.create(ALICE)
    assert b.resolve(token) is not None
    for _ in range(4):  # used through B only, for longer than the idle timeout
        clock.now += 30
        assert b.resolve(token) is not None
        b.sweep()
        assert a.sweep() == 0  # A's copy is old, but B wrote the activity
    assert a.resolve(token) is not None
    clock.now += 61
    assert a.sweep() == 1  # idle everywhere: A ends it, for B too
    clock.now += 6
    assert b.resolve(token) is None


def test_a_busy_session_stays_alive_for_every_node(database_url: str) -> None:
    clock = Clock()
    _db, a, b = nodes(database_url, clock, idle=60)
    session, token = a.create(ALICE)
    with session.streaming():
        for _ in range(5):
            clock.now += 30
            a.sweep()  # a download in flight on A keeps it alive in the database
            assert b.sweep() == 0
    assert b.resolve(token) is not None


def test_a_node_that_stops_leaves_sessions_to_the_others(database_url: str) -> None:
    clock = Clock()
    _db, a, b = nodes(database_url, clock)
    released: list[bool] = []
    a.add_end_listener(lambda s, _why: released.append(s.ended))
    _session, token = a.create(ALICE)
    a.release_all("server shutdown")
    assert released == [False]
    assert b.resolve(token) is not None


def test_the_cap_per_user_counts_every_node(database_url: str) -> None:
    clock = Clock()
    _db, a, b = nodes(database_url, clock, idle=60, cap=2)
    a.create(ALICE)
    b.create(ALICE)
    for node in (a, b):
        with pytest.raises(TooManyRequestsError) as refused:
            node.create(ALICE)
        assert refused.value.status == 429
    b.create(BOB)
    assert [s.user for s in a.sessions_of(ALICE.id)] == [ALICE, ALICE]
    clock.now += 61  # both idle: the cap frees up
    a.create(ALICE)


def test_a_sweep_reads_again_the_sessions_due_before_the_next_one(database_url: str) -> None:
    """The sweep reads ahead (a request seldom waits for the database), but a copy it read is still
    trusted for recheck_seconds only: a logout on another node is seen within that time."""
    clock = Clock()
    db = Database(database_url)
    a = SessionManager(900, 100, clock=clock, store=SessionStore(db, "a"), recheck_seconds=1)
    b = SessionManager(
        900, 100, clock=clock, store=SessionStore(db, "b"), recheck_seconds=1, sweep_interval=5
    )
    session, token = a.create(ALICE)
    assert b.resolve(token) is not None
    b.sweep()  # reads the session again now: it would be due before the next sweep
    a.end(session, "logout")
    clock.now += 1.5
    assert b.resolve(token) is None
