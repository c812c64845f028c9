"""SessionManager: tokens, idle expiry, teardown listeners, per-user cap."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from openflr.core.roles import Role
from openflr.core.sessions import LogonSession, SessionManager
from openflr.core.users import User
from openflr.errors import TooManyRequestsError

ALICE = User(1, "alice", Role.RESTORE_OPERATOR, datetime.now(UTC))
BOB = User(2, "bob", Role.PORTAL_USER, datetime.now(UTC))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_tokens_are_16_random_bytes_and_distinct() -> None:
    mgr = SessionManager(900, 100)
    tokens = {mgr.create(ALICE)[1] for _ in range(50)}
    assert len(tokens) == 50
    assert all(len(base64.b64decode(t)) == 16 for t in tokens)


def test_resolve_touches_and_idle_expires() -> None:
    clock = Clock()
    ended: list[tuple[str, str]] = []
    mgr = SessionManager(10, 100, clock=clock)
    mgr.add_end_listener(lambda s, why: ended.append((s.session_id, why)))
    session, token = mgr.create(ALICE)
    clock.now += 9
    assert mgr.resolve(token) is session
    clock.now += 9
    assert mgr.resolve(token) is session  # touched 9 s ago, not idle
    clock.now += 10.5
    assert mgr.resolve(token) is None
    assert ended == [(session.session_id, "expired")]
    assert session.ended


def test_sweep_ends_idle_sessions_once() -> None:
    clock = Clock()
    ended: list[LogonSession] = []
    mgr = SessionManager(5, 100, clock=clock)
    mgr.add_end_listener(lambda s, why: ended.append(s))
    a, _ = mgr.create(ALICE)
    clock.now += 3
    b, tb = mgr.create(BOB)
    clock.now += 3
    assert mgr.sweep() == 1
    assert ended == [a]
    assert mgr.resolve(tb) is b
    assert mgr.sweep() == 0


def test_busy_session_does_not_expire() -> None:
    clock = Clock()
    mgr = SessionManager(5, 100, clock=clock)
    session, token = mgr.create(ALICE)
    session.active_streams = 1
    clock.now += 60
    assert mgr.sweep() == 0
    session.active_streams = 0
    assert mgr.sweep() == 1
    assert mgr.resolve(token) is None


def test_end_runs_listeners_once_even_if_one_fails() -> None:
    mgr = SessionManager(5, 100)
    calls: list[str] = []

    def boom(_s: LogonSession, _why: str) -> None:
        raise RuntimeError("listener bug")

    mgr.add_end_listener(boom)
    mgr.add_end_listener(lambda s, why: calls.append(why))
    session, token = mgr.create(ALICE)
    assert mgr.end(session, "logout")
    assert not mgr.end(session, "logout")
    assert calls == ["logout"]
    assert mgr.resolve(token) is None
    assert mgr.get(session.session_id) is None


def test_cap_per_user() -> None:
    mgr = SessionManager(900, 2)
    mgr.create(ALICE)
    mgr.create(ALICE)
    with pytest.raises(TooManyRequestsError) as refused:
        mgr.create(ALICE)
    assert refused.value.status == 429 and int(refused.value.headers()["Retry-After"]) >= 1
    mgr.create(BOB)  # other users are not affected


def test_sessions_of_and_get() -> None:
    mgr = SessionManager(900, 10)
    a1, _ = mgr.create(ALICE)
    a2, _ = mgr.create(ALICE)
    mgr.create(BOB)
    assert mgr.sessions_of(ALICE.id) == [a1, a2]
    assert mgr.get(a1.session_id.upper()) is a1


def test_only_live_sessions_are_listed_or_found() -> None:
    """``/logonSessions`` lists the user's live sessions: one idle too long is gone before any sweep."""
    clock = Clock()
    mgr = SessionManager(10, 100, clock=clock)
    old, _ = mgr.create(ALICE)
    clock.now += 8
    new, token = mgr.create(ALICE)
    mgr.create(BOB)
    assert mgr.sessions_of(ALICE.id) == [old, new]
    clock.now += 5  # old idle 13 s, new 5 s
    assert mgr.resolve(token) is new
    assert mgr.sessions_of(ALICE.id) == [new]
    assert mgr.get(old.session_id) is None and mgr.get(new.session_id) is new
