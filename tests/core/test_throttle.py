"""LogonThrottle against real SQLite and PostgreSQL databases, with an injected clock (no sleeping)."""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from openflr.config import SecuritySettings
from openflr.core.throttle import ADDRESS, PAIR, LogonLockedError, LogonThrottle, address_key
from openflr.store.db import Database
from tests.store.postgres import new_database


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def settings(**kw: Any) -> SecuritySettings:
    base = SecuritySettings(
        logon_free_failures=2,
        logon_max_delay=2.0,
        logon_base_delay=0.25,
        lock_after=5,
        lock_seconds=600.0,
        spray_lock_accounts=4,
        failure_window=900.0,
    )
    return dataclasses.replace(base, **kw)


@pytest.fixture
def db(database_url: str) -> Database:
    return Database(database_url)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def fail(t: LogonThrottle, name: str, addr: str) -> float:
    attempt = t.begin(name, addr)
    t.failed(attempt)
    return attempt.delay


def test_delay_grows_doubles_and_is_capped(db: Database, clock: Clock) -> None:
    t = LogonThrottle(db, settings(lock_after=100), clock)
    delays = [fail(t, "alice", "10.0.0.1") for _ in range(8)]
    assert delays == [0, 0, 0.25, 0.5, 1.0, 2.0, 2.0, 2.0]


def test_delay_counts_the_account_across_addresses(db: Database, clock: Clock) -> None:
    t = LogonThrottle(db, settings(lock_after=100), clock)
    delays = [fail(t, "alice", f"10.0.0.{i}") for i in range(1, 6)]
    assert delays == [0, 0, 0.25, 0.5, 1.0]  # distributed guessing of one account is slowed too


def test_delay_counts_the_address_across_accounts(db: Database, clock: Clock) -> None:
    t = LogonThrottle(db, settings(spray_lock_accounts=100), clock)
    delays = [fail(t, f"user{i}", "10.0.0.1") for i in range(5)]
    assert delays == [0, 0, 0.25, 0.5, 1.0]


def test_lock_per_pair_refuses_even_before_the_password_check(db: Database, clock: Clock) -> None:
    t = LogonThrottle(db, settings(), clock)
    for _ in range(5):
        fail(t, "alice", "10.0.0.1")
    with pytest.raises(LogonLockedError) as exc:
        t.begin("alice", "10.0.0.1")
    assert exc.value.status == 429
    assert exc.value.headers() == {"Retry-After": "600"}
    assert "10.0.0.1" in exc.value.message and "openflr users unlock" in exc.value.message
    # The same name in other spellings is the same account.
    for spelling in ("ALICE", "CORP\\alice", "alice@corp.example"):
        with pytest.raises(LogonLockedError):
            t.begin(spelling, "10.0.0.1")
    # Another address is not locked (only delayed by the account's count).
    attempt = t.begin("alice", "10.0.0.2")
    assert attempt.delay == 2.0
    t.succeeded(attempt)
    clock.now += 100
    with pytest.raises(LogonLockedError) as exc:
        t.begin("alice", "10.0.0.1")
    assert exc.value.retry_after == 500
    (lock,) = t.locks()
    assert (lock.kind, lock.account, lock.address, lock.failures) == (PAIR, "alice", "10.0.0.1", 5)
    assert lock.until == clock.now + 500


def test_lock_expires_and_the_count_starts_afresh(db: Database, clock: Clock) -> None:
    t = LogonThrottle(db, settings(logon_free_failures=100), clock)
    for _ in range(5):
        fail(t, "alice", "10.0.0.1")
    clock.now += 601
    assert t.locks() == []
    for _ in range(4):
        fail(t, "alice", "10.0.0.1")  # four more are allowed before the next lock
    fail(t, "alice", "10.0.0.1")
    with pytest.raises(LogonLockedError):
        t.begin("alice", "10.0.0.1")


def test_success_resets_the_pair(db: Database, clock: Clock) -> None:
    t = LogonThrottle(db, settings(), clock)
    for _ in range(4):
        fail(t, "alice", "10.0.0.1")
    t.succeeded(t.begin("alice", "10.0.0.1"))
    for _ in range(4):
        fail(t, "alice", "10.0.0.1")
    t.begin("alice", "10.0.0.1")  # 4 + 4 failures, but never 5 in a row: not locked


def test_parallel_attempts_are_slowed_and_refused_once_locked(db: Database, clock: Clock) -> None:
    t = LogonThrottle(db, settings(), clock)
    started = [t.begin("alice", "10.0.0.1") for _ in range(8)]  # all in flight at once
    delays = [a.delay for a in started]
    assert delays[:2] == [0.0, 0.0] and delays[2:5] == [0.25, 0.5, 1.0] and delays[-1] == 2.0
    for attempt in started[:5]:
        t.failed(attempt)
    assert [lock.account for lock in t.locks()] == ["alice"]
    # The attempts still waiting are refused at their check, before any password is tried.
    for attempt in started[5:]:
        with pytest.raises(LogonLockedError):
            t.check(attempt)
        t.release(attempt)


def test_a_burst_of_right_passwords_never_locks(db: Database, clock: Clock) -> None:
    """Many workers of one script logging on at once are slowed, never locked out."""
    t = LogonThrottle(db, settings(), clock)
    started = [t.begin("alice", "10.0.0.1") for _ in range(50)]
    for attempt in started:
        t.check(attempt)
        t.succeeded(attempt)
    assert t.locks() == []
    assert t.begin("alice", "10.0.0.1").delay == 0.0  # nothing left counting against alice


def test_window_forgets_old_failures(db: Database, clock: Clock) -> None:
    t = LogonThrottle(db, settings(), clock)
    for _ in range(4):
        fail(t, "alice", "10.0.0.1")
    clock.now += 901
    assert fail(t, "alice", "10.0.0.1") == 0
    t.begin("alice", "10.0.0.1")  # counted afresh: 1 failure, not 5


def test_spraying_locks_the_address_for_every_account(
    db: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    t = LogonThrottle(db, settings(logon_free_failures=100), clock)
    caplog.set_level(logging.INFO, logger="openflr.core.throttle")
    for name in ("a", "b", "c"):
        fail(t, name, "10.0.0.9")
    t.begin("d", "10.0.0.9")  # not yet: 3 accounts failed (plus this one in flight)
    clock.now += 1
    fail(t, "e", "10.0.0.9")
    with pytest.raises(LogonLockedError) as exc:
        t.begin("someone-else", "10.0.0.9")
    assert "different accounts" in exc.value.message
    t.begin("a", "10.0.0.10")  # other addresses are untouched
    assert [(lock.kind, lock.address) for lock in t.locks()] == [(ADDRESS, "10.0.0.9")]
    assert "logon locked: address 10.0.0.9" in caplog.text
    lifted = t.unlock(address="10.0.0.9")
    assert [lock.kind for lock in lifted] == [ADDRESS]
    t.begin("someone-else", "10.0.0.9")


def test_unknown_names_are_counted_and_locked_like_known_ones(db: Database, clock: Clock) -> None:
    # The throttle never asks whether a user exists: it only sees names.
    t = LogonThrottle(db, settings(), clock)
    for _ in range(5):
        fail(t, "no-such-user", "10.0.0.1")
    with pytest.raises(LogonLockedError):
        t.begin("no-such-user", "10.0.0.1")


def test_unlock_by_name_address_or_both(db: Database, clock: Clock) -> None:
    t = LogonThrottle(db, settings(spray_lock_accounts=100), clock)
    for addr in ("10.0.0.1", "10.0.0.2"):
        for name in ("alice", "bob"):
            for _ in range(5):
                fail(t, name, addr)
    assert len(t.locks()) == 4
    lifted = t.unlock("ALICE", "10.0.0.1")
    assert [(lock.account, lock.address) for lock in lifted] == [("alice", "10.0.0.1")]
    t.begin("alice", "10.0.0.1")
    with pytest.raises(LogonLockedError):
        t.begin("alice", "10.0.0.2")
    assert [lock.address for lock in t.unlock("alice")] == ["10.0.0.2"]
    # alice's failures no longer delay alice; bob's failures from 10.0.0.2 still delay that address
    assert t.begin("alice", "10.0.0.2").delay == t.delay_for(5)
    assert [lock.account for lock in t.unlock(address="10.0.0.2")] == ["bob"]
    assert [(lock.account, lock.address) for lock in t.locks()] == [("bob", "10.0.0.1")]
    assert t.unlock("carol") == []
    with pytest.raises(ValueError, match="name an account"):
        t.unlock()


def test_state_is_shared_through_the_database(db: Database, clock: Clock, tmp_path: Path) -> None:
    server = LogonThrottle(db, settings(), clock)
    for _ in range(5):
        fail(server, "alice", "10.0.0.1")
    admin = LogonThrottle(Database(db.url), settings(), clock)  # what `openflr users unlock` opens
    assert [lock.account for lock in admin.locks()] == ["alice"]
    admin.unlock("alice")
    server.begin("alice", "10.0.0.1")


def test_lock_events_are_logged_without_secrets(
    db: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    t = LogonThrottle(db, settings(), clock)
    caplog.set_level(logging.INFO, logger="openflr.core.throttle")
    for _ in range(5):
        fail(t, "Alice", "10.0.0.1")
    assert "logon locked: account 'Alice' from 10.0.0.1 after 5 failed logons, for 600 s" in caplog.text
    t.unlock("alice")
    assert "logon lock lifted: account 'alice' from 10.0.0.1" in caplog.text


def test_prune_forgets_quiet_counters_but_keeps_locks(db: Database, clock: Clock) -> None:
    t = LogonThrottle(db, settings(lock_seconds=2000.0), clock)
    for _ in range(5):
        fail(t, "alice", "10.0.0.1")
    fail(t, "bob", "10.0.0.2")
    clock.now += 1000
    assert t.prune() == 5  # every row but alice's locked pair
    assert [lock.account for lock in t.locks()] == ["alice"]


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::9", "2001:db8:1:2::/64"),
        ("::1", "::1"),
        ("fe80::1%eth0", "fe80::/64"),
        ("testclient", "testclient"),
        ("", "-"),
    ],
)
def test_address_key(host: str, key: str) -> None:
    assert address_key(host) == key


def test_nodes_sharing_a_postgresql_database_count_every_failure_once(
    postgres_url: str, clock: Clock
) -> None:
    """Several servers on one database (each its own engine), failing the same pair at once."""
    url = new_database(postgres_url)
    nodes = [
        LogonThrottle(Database(url), settings(lock_after=12, spray_lock_accounts=0), clock) for _ in range(4)
    ]
    start = threading.Barrier(len(nodes))

    def node(t: LogonThrottle) -> None:
        start.wait()
        for _ in range(3):
            fail(t, "alice", "10.0.0.1")

    threads = [threading.Thread(target=node, args=(t,)) for t in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [lock] = nodes[0].locks()
    assert (lock.account, lock.failures) == ("alice", 12)
    with pytest.raises(LogonLockedError):
        nodes[1].begin("alice", "10.0.0.1")
