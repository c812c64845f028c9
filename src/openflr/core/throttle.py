"""Logon throttling: growing delays after failed logons, then temporary locks (docs/SECURITY.md).

Three counters are kept for every failed logon, in the database so that ``openflr users unlock``
(another process) sees and lifts the same state as the server:

- the **pair** (account name, client address): after ``lock_after`` failures the pair is locked for
  ``lock_seconds``; logons of that account from that address are then refused even with the right
  password. The same account from any other address is not locked, so an attacker cannot lock
  the real user out from elsewhere.
- the **account** (every address): only delays, never locks.
- the **address** (every account): delays; and once ``spray_lock_accounts`` different account
  names have failed from it (password spraying) the address is locked for every account.

Each attempt is delayed, before its password is checked, by ``logon_base_delay`` doubling per
failure beyond ``logon_free_failures`` of its account or its address (whichever has more), capped at
``logon_max_delay``. Attempts still in flight (in this process) count towards that delay, so a
parallel burst is slowed like a sequence, but only failed attempts count towards a lock: a burst of
right passwords (a monitoring tool, a script with many workers) never locks its user. The password
checks of one pair run one after the other (``Service.logon``), each checking the lock again and
recording its outcome before the next: once a pair is locked, no attempt queued behind it has its
password checked, so at most ``lock_after`` wrong passwords are ever tried, however many arrive at
once. A right password resets its pair; the wrong ones queued beside it count afresh after it.
Account names are counted whether or not the user exists: unknown names are throttled and locked
exactly like known ones. Counters start afresh after ``failure_window`` seconds without a failure.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openflr.config import SecuritySettings
from openflr.core.users import account_key
from openflr.errors import TooManyRequestsError
from openflr.store.db import Database
from openflr.store.models import LogonFailureRow

log = logging.getLogger(__name__)

PAIR, ACCOUNT, ADDRESS = "pair", "account", "address"
_PRUNE_EVERY = 60.0
_MAX_ACCOUNT = 256
_MAX_ADDRESS = 64


class LogonLockedError(TooManyRequestsError, PermissionError):
    """Logons of this account from this address (or of any account from this address) are locked.

    429 Too Many Requests with ``Retry-After``: the client is told to wait rather than to retry
    with other credentials, which a 401 would invite.
    """


def address_key(host: str) -> str:
    """The client address as counted: IPv4 as is, IPv4-mapped IPv6 as IPv4, other IPv6 by /64."""
    text = host.strip()
    if not text:
        return "-"
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text[:_MAX_ADDRESS]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        if not ip.is_loopback:
            # One host usually holds a whole /64: counting single addresses would let it rotate.
            return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True)
class Attempt:
    """A logon attempt that has been counted and may go ahead after ``delay`` seconds."""

    account: str
    address: str
    delay: float
    shown_name: str
    """The login name as typed, cut short, for the server log."""


@dataclass(frozen=True)
class LogonLock:
    kind: str
    """``pair`` (one account from one address) or ``address`` (every account from one address)."""
    account: str
    """Case-folded account key; empty for an address lock."""
    address: str
    failures: int
    until: float
    """Unix time the lock ends."""


class LogonThrottle:
    """Failure counters and locks in the database; ``clock`` is wall-clock Unix time (shared)."""

    def __init__(
        self, db: Database, settings: SecuritySettings, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._last_prune = 0.0
        self._in_flight: dict[tuple[str, str], int] = {}
        """Attempts begun and not yet ended in this process, per account and per address."""

    # --- the logon path --------------------------------------------------------------------------

    def delay_for(self, failures: int) -> float:
        """Delay of an attempt made after ``failures`` failures of its account or address."""
        s = self.settings
        over = failures - s.logon_free_failures
        if over < 0:
            return 0.0
        return float(min(s.logon_max_delay, s.logon_base_delay * 2.0 ** min(over, 40)))

    def begin(self, login_name: str, client: str) -> Attempt:
        """Count an attempt (as failed until ``succeeded``); ``LogonLockedError`` when locked."""
        account = account_key(login_name)[:_MAX_ACCOUNT]
        address = address_key(client)
        for tries in (1, 2):
            try:
                return self._begin(account, address, login_name[:64])
            except IntegrityError:  # another process inserted the same counter row first
                if tries == 2:
                    raise
        raise AssertionError("unreachable")

    def _begin(self, account: str, address: str, shown: str) -> Attempt:
        now = self._clock()
        with self._lock, self._db.session() as s, s.begin():
            pair = self._row(s, PAIR, account, address)
            acct = self._row(s, ACCOUNT, account, "")
            addr = self._row(s, ADDRESS, "", address)
            self._refuse_if_locked(pair, addr, now)
            acct_n = self._count(acct, now) + self._in_flight.get((ACCOUNT, account), 0)
            addr_n = self._count(addr, now) + self._in_flight.get((ADDRESS, address), 0)
            delay = self.delay_for(max(acct_n, addr_n))
            for key in ((ACCOUNT, account), (ADDRESS, address)):
                self._in_flight[key] = self._in_flight.get(key, 0) + 1
        return Attempt(account, address, delay, shown)

    def check(self, attempt: Attempt) -> None:
        """Right before the password check: ``LogonLockedError`` if a lock came into force meanwhile."""
        now = self._clock()
        with self._lock, self._db.session() as s:
            pair = s.scalar(select(LogonFailureRow).where(*_key(PAIR, attempt.account, attempt.address)))
            addr = s.scalar(select(LogonFailureRow).where(*_key(ADDRESS, "", attempt.address)))
            if pair is not None and addr is not None:
                self._refuse_if_locked(pair, addr, now)

    def release(self, attempt: Attempt) -> None:
        """The attempt was refused by a lock before its password was checked: it only stops counting."""
        with self._lock:
            self._end(attempt)

    def _end(self, attempt: Attempt) -> None:
        for key in ((ACCOUNT, attempt.account), (ADDRESS, attempt.address)):
            left = self._in_flight.get(key, 0) - 1
            if left > 0:
                self._in_flight[key] = left
            else:
                self._in_flight.pop(key, None)

    def failed(self, attempt: Attempt) -> None:
        """The password was wrong (or the attempt was abandoned): count it; lock what crossed a threshold."""
        now = self._clock()
        st = self.settings
        with self._lock, self._db.session() as s, s.begin():
            self._end(attempt)
            for kind, account, address in (
                (PAIR, attempt.account, attempt.address),
                (ACCOUNT, attempt.account, ""),
                (ADDRESS, "", attempt.address),
            ):
                row = self._row(s, kind, account, address)
                fresh = self._count(row, now) == 0
                s.execute(
                    update(LogonFailureRow)
                    .where(LogonFailureRow.id == row.id)
                    .values(
                        failures=1 if fresh else LogonFailureRow.failures + 1,
                        last_failure=now,
                        locked_until=0.0 if fresh else LogonFailureRow.locked_until,
                    )
                )
            s.expire_all()
            pair = s.scalar(select(LogonFailureRow).where(*_key(PAIR, attempt.account, attempt.address)))
            if (
                pair is not None
                and st.lock_after > 0
                and pair.failures >= st.lock_after
                and pair.locked_until <= now
            ):
                self._set_lock(s, pair, now)
                log.warning(
                    "logon locked: account %r from %s after %d failed logons, for %d s",
                    attempt.shown_name,
                    attempt.address,
                    pair.failures,
                    st.lock_seconds,
                )
            if st.spray_lock_accounts > 0:
                accounts = s.scalar(
                    select(func.count())
                    .select_from(LogonFailureRow)
                    .where(
                        LogonFailureRow.kind == PAIR,
                        LogonFailureRow.address == attempt.address,
                        LogonFailureRow.failures > 0,
                        LogonFailureRow.last_failure >= now - st.failure_window,
                    )
                )
                addr = s.scalar(select(LogonFailureRow).where(*_key(ADDRESS, "", attempt.address)))
                if (
                    addr is not None
                    and (accounts or 0) >= st.spray_lock_accounts
                    and addr.locked_until <= now
                ):
                    self._set_lock(s, addr, now)
                    log.warning(
                        "logon locked: address %s after failed logons for %d different accounts, for %d s",
                        attempt.address,
                        accounts,
                        st.lock_seconds,
                    )
        if now - self._last_prune > _PRUNE_EVERY:
            self.prune()

    def succeeded(self, attempt: Attempt) -> None:
        """The password was right: the pair starts afresh."""
        with self._lock, self._db.session() as s, s.begin():
            self._end(attempt)
            s.execute(delete(LogonFailureRow).where(*_key(PAIR, attempt.account, attempt.address)))

    # --- administration ----------------------------------------------------------------------------

    def locks(self) -> list[LogonLock]:
        """Every lock in force, pairs first, by account then address."""
        now = self._clock()
        with self._db.session() as s:
            rows = s.scalars(
                select(LogonFailureRow)
                .where(LogonFailureRow.locked_until > now)
                .order_by(LogonFailureRow.kind.desc(), LogonFailureRow.account, LogonFailureRow.address)
            ).all()
            return [_lock(r) for r in rows]

    def unlock(self, name: str | None = None, address: str | None = None) -> list[LogonLock]:
        """Lift locks and reset counters; returns the locks that were in force.

        ``name`` alone: that account from every address (and its all-address delay). ``address``
        alone: the address lock and every account's lock from it. Both: that one pair.
        """
        if name is None and address is None:
            raise ValueError("name an account, an address or both")
        now = self._clock()
        account = None if name is None else account_key(name)[:_MAX_ACCOUNT]
        addr = None if address is None else address_key(address)
        conditions = [LogonFailureRow.kind == PAIR]
        if account is not None:
            conditions.append(LogonFailureRow.account == account)
        if addr is not None:
            conditions.append(LogonFailureRow.address == addr)
        targets = [conditions]
        if account is not None and addr is None:
            targets.append([LogonFailureRow.kind == ACCOUNT, LogonFailureRow.account == account])
        if addr is not None and account is None:
            targets.append([LogonFailureRow.kind == ADDRESS, LogonFailureRow.address == addr])
        lifted: list[LogonLock] = []
        with self._lock, self._db.session() as s, s.begin():
            # The pairs' failures also leave their account's and address's counts (and delays).
            # Pairs first, then their account and address rows: the order logons lock them in.
            for pair in s.scalars(
                select(LogonFailureRow).where(*conditions, LogonFailureRow.failures > 0).with_for_update()
            ).all():
                for kind, acc, adr in ((ACCOUNT, pair.account, ""), (ADDRESS, "", pair.address)):
                    s.execute(
                        update(LogonFailureRow)
                        .where(*_key(kind, acc, adr))
                        .values(
                            failures=case(
                                (
                                    LogonFailureRow.failures > pair.failures,
                                    LogonFailureRow.failures - pair.failures,
                                ),
                                else_=0,
                            )
                        )
                    )
            for where in targets:
                rows = s.scalars(select(LogonFailureRow).where(*where, LogonFailureRow.locked_until > now))
                lifted += [_lock(r) for r in rows]
                s.execute(update(LogonFailureRow).where(*where).values(failures=0, locked_until=0.0))
        for lock in lifted:
            log.info("logon lock lifted: %s", describe(lock))
        return lifted

    def prune(self) -> int:
        """Forget counters that are neither recent nor locked; returns how many rows went."""
        now = self._clock()
        self._last_prune = now
        with self._lock, self._db.session() as s, s.begin():
            # Rows a logon holds are left for the next prune (PostgreSQL), never waited for.
            stale = (
                select(LogonFailureRow.id)
                .where(
                    LogonFailureRow.last_failure < now - self.settings.failure_window,
                    LogonFailureRow.locked_until <= now,
                )
                .with_for_update(skip_locked=True)
            )
            result = s.execute(delete(LogonFailureRow).where(LogonFailureRow.id.in_(stale)))
        return int(getattr(result, "rowcount", 0) or 0)

    # --- helpers -----------------------------------------------------------------------------------

    def _count(self, row: LogonFailureRow, now: float) -> int:
        """Failures that still count: none once a lock has run out or the window has passed."""
        if row.locked_until and row.locked_until <= now:
            return 0
        if now - row.last_failure > self.settings.failure_window:
            return 0
        return row.failures

    def _refuse_if_locked(self, pair: LogonFailureRow, addr: LogonFailureRow, now: float) -> None:
        if addr.locked_until > now:
            raise LogonLockedError(
                f"Logon refused: too many failed logons for different accounts from your address "
                f"({addr.address}). Try again in {math.ceil(addr.locked_until - now)} seconds, or ask "
                "an administrator to lift the lock with 'openflr users unlock --address'.",
                addr.locked_until - now,
            )
        if pair.locked_until > now:
            wait = pair.locked_until - now
            raise LogonLockedError(
                f"Logon refused: too many failed logons for this account from your address "
                f"({pair.address}). Try again in {math.ceil(wait)} seconds, or ask an administrator "
                "to lift the lock with 'openflr users unlock'.",
                wait,
            )

    def _set_lock(self, s: Session, row: LogonFailureRow, now: float) -> None:
        s.execute(
            update(LogonFailureRow)
            .where(LogonFailureRow.id == row.id, LogonFailureRow.locked_until <= now)
            .values(locked_until=now + self.settings.lock_seconds)
        )

    def _row(self, s: Session, kind: str, account: str, address: str) -> LogonFailureRow:
        """The counter, made if missing, and locked until the transaction ends: on PostgreSQL by
        ``FOR UPDATE`` (several servers may share the database), on SQLite by its write lock."""
        query = (
            select(LogonFailureRow)
            .where(*_key(kind, account, address))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        row = s.scalar(query)
        if row is None:
            insert = pg_insert if self._db.dialect == "postgresql" else sqlite_insert
            s.execute(
                insert(LogonFailureRow)
                .values(
                    kind=kind,
                    account=account,
                    address=address,
                    failures=0,
                    last_failure=0.0,
                    locked_until=0.0,
                )
                .on_conflict_do_nothing(index_elements=["kind", "account", "address"])
            )
            row = s.scalar(query)
        assert row is not None
        return row


def describe(lock: LogonLock) -> str:
    """One line for logs and the CLI (never a password or token)."""
    if lock.kind == ADDRESS:
        return f"address {lock.address} (every account)"
    return f"account {lock.account!r} from {lock.address}"


def _key(kind: str, account: str, address: str) -> tuple[ColumnElement[bool], ...]:
    return (
        LogonFailureRow.kind == kind,
        LogonFailureRow.account == account,
        LogonFailureRow.address == address,
    )


def _lock(row: LogonFailureRow) -> LogonLock:
    return LogonLock(row.kind, row.account, row.address, row.failures, row.locked_until)
