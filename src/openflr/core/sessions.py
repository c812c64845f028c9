"""Logon sessions: opaque tokens, idle expiry, and teardown hooks (mounts and tasks die with a session).

With a ``SessionStore`` (every running server has one) sessions live in the database and any node
serves any of them: each node keeps a cache in front of it (core/sessionstore.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from openflr.core.sessionstore import SessionRecord, SessionStore
from openflr.core.users import User
from openflr.errors import TooManyRequestsError

log = logging.getLogger(__name__)


@dataclass(eq=False)
class LogonSession:
    session_id: str
    """Public id (a GUID string), shown in ``LogonSession/SessionId`` and in its Href."""
    user: User
    created_at: datetime
    last_seen: float
    """When the last request with this session was made (the manager's clock: Unix time), as far as
    this node knows."""
    client: str = ""
    active_streams: int = 0
    """Downloads or restores in flight; a session that is busy does not expire."""
    ended: bool = False
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    """A second secret for a session held in a browser cookie: requests that change something must
    also carry it (docs/SECURITY.md, "The web page"), so the cookie alone is never enough."""
    data: dict[str, object] = field(default_factory=dict)
    """Per-session state owned by other services (mount table, task table, ...)."""
    checked_at: float = 0.0
    """When this node last read the session from the database."""
    flushed_seen: float = 0.0
    """The ``last_seen`` this node last wrote to the database."""

    @contextmanager
    def streaming(self) -> Iterator[None]:
        """Hold the session alive while a response streams (a download, an unpaged listing): a
        session that is busy does not expire under it, however long the client takes."""
        with _STREAMS_LOCK:
            self.active_streams += 1
        try:
            yield
        finally:
            with _STREAMS_LOCK:
                self.active_streams -= 1


_STREAMS_LOCK = threading.Lock()
"""Streams start and end on the event loop and in worker threads alike."""


EndListener = Callable[[LogonSession, str], None]


class SessionLimitError(TooManyRequestsError):
    """The user already holds ``[sessions] max_per_user`` sessions: 429 rather than 503, the limit
    is this user's, not the server's."""


def new_token() -> str:
    """128 random bits, base64 (24 characters), the shape EM uses for ``X-RestSvcSessionId``."""
    return base64.b64encode(secrets.token_bytes(16)).decode("ascii")


def token_hash(token: str) -> str:
    """The token as the database keeps it: its sha256, hex."""
    return _token_key(token).hex()


def _token_key(token: str) -> bytes:
    # Sessions are indexed by a hash of the token: lookups never compare secrets byte by byte,
    # and the table itself holds no usable token.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


class SessionManager:
    """The live logon sessions this node knows, in front of the database when a ``store`` is given
    (then every node sees every session); in this process's memory only without one.

    With a store: a token another node issued is read from the database on first use here; a cached
    session is read again when ``recheck_seconds`` have passed since, so a logout or an expiry on
    another node is seen within that time; activity is written by ``sweep`` (the service runs it every
    ``[sessions] sweep_interval``), one batch for all sessions used since, never per request.
    """

    def __init__(
        self,
        idle_timeout: float,
        max_per_user: int,
        clock: Callable[[], float] = time.time,
        store: SessionStore | None = None,
        recheck_seconds: float = 5.0,
        sweep_interval: float = 0.0,
    ) -> None:
        self.idle_timeout = idle_timeout
        self.max_per_user = max_per_user
        self.recheck_seconds = recheck_seconds
        self.sweep_interval = sweep_interval
        """How often ``sweep`` runs: it reads again, in one query, the sessions that would be due
        before the next sweep, so that requests seldom wait for a read of their own."""
        self._clock = clock
        self._store = store
        self._lock = threading.RLock()
        self._by_token: dict[bytes, LogonSession] = {}
        self._by_id: dict[str, tuple[bytes, LogonSession]] = {}
        self._listeners: list[EndListener] = []

    @property
    def shared(self) -> bool:
        """Sessions live in the database (every node sees them)."""
        return self._store is not None

    def add_end_listener(self, listener: EndListener) -> None:
        """``listener(session, reason)`` runs once on this node when it lets a session go: it ended
        (logout, expiry, here or on another node: ``session.ended``), or this node shuts down (then
        ``session.ended`` is False when the session lives on in the database for other nodes)."""
        self._listeners.append(listener)

    def create(self, user: User, client: str = "") -> tuple[LogonSession, str]:
        """Open a session for ``user``; returns it with its secret token."""
        self.sweep()
        now = self._clock()
        live = self._live_of(user.id, now) if self._may_be_over(user.id, now) else []
        if len(live) >= self.max_per_user:
            idle = [s.last_seen + self.idle_timeout - now for s in live if s.active_streams == 0]
            raise SessionLimitError(
                f"Logon refused: user {user.name!r} already has {len(live)} logon sessions, the "
                "limit per user. Log out of one (DELETE its LogonSession Href) or wait until one "
                "has been idle long enough to expire.",
                retry_after=max(1.0, min(idle, default=self.idle_timeout)),
            )
        token = new_token()
        session = LogonSession(
            session_id=str(uuid.uuid4()),
            user=user,
            created_at=datetime.now(UTC),
            last_seen=now,
            client=client,
            checked_at=now,
            flushed_seen=now,
        )
        key = _token_key(token)
        if self._store is not None:
            self._store.insert(
                SessionRecord(
                    session.session_id,
                    key.hex(),
                    user,
                    client,
                    session.created_at,
                    now,
                    session.csrf,
                    ended=False,
                    end_reason="",
                )
            )
        with self._lock:
            self._by_token[key] = session
            self._by_id[session.session_id] = (key, session)
        return session, token

    def resolve(self, token: str) -> LogonSession | None:
        """The live session for ``token`` (and mark it used), or None if unknown or expired."""
        key = _token_key(token)
        now = self._clock()
        with self._lock:
            session = self._by_token.get(key)
            if session is not None:
                # The dict finds the entry by digest; confirm it without an early-exit comparison.
                entry = self._by_id.get(session.session_id)
                if entry is None or not hmac.compare_digest(entry[0], key):
                    return None
        if session is None:
            if self._store is None:
                return None
            record = self._store.by_token(key.hex())
            if record is None or record.ended:
                return None
            session = self._adopt(record, key, now)
        elif self._stale(session, now) and not self._recheck([session], now):
            return None
        if self._is_idle(session, now):
            if self._store is not None and not self._recheck([session], now):
                return None  # ended on another node
            if self._is_idle(session, now):  # no other node saw it used either
                self.end(session, "expired")
                return None
        session.last_seen = max(session.last_seen, now)
        return session

    def get(self, session_id: str) -> LogonSession | None:
        """The live session with this id (not marked used), or None if unknown or idle too long."""
        sid = session_id.strip().lower()
        now = self._clock()
        with self._lock:
            entry = self._by_id.get(sid)
        if entry is not None:
            session = entry[1]
            if self._stale(session, now) and not self._recheck([session], now):
                return None
            return None if self._is_idle(session, now) else session
        if self._store is None or len(sid) > 36:
            return None
        record = self._store.by_id(sid)
        if record is None or record.ended or now - record.last_seen > self.idle_timeout:
            return None
        return self._adopt(record, bytes.fromhex(record.token_hash), now)

    def sessions_of(self, user_id: int) -> list[LogonSession]:
        """The user's live sessions, oldest first (those idle too long are no longer live)."""
        return self._live_of(user_id, self._clock())

    def _may_be_over(self, user_id: int, now: float) -> bool:
        """Whether the user may hold ``max_per_user`` sessions already (one count in the database:
        the sessions themselves are read only then)."""
        if self._store is None:
            return True
        return self._store.count_live(user_id, now - self.idle_timeout - self._slack) >= self.max_per_user

    @property
    def _slack(self) -> float:
        """How far the database's record of activity may lag behind a node's (one sweep and more)."""
        return 2 * self.sweep_interval + self.recheck_seconds

    def _live_of(self, user_id: int, now: float) -> list[LogonSession]:
        if self._store is None:
            with self._lock:
                live = [
                    s for s in self._by_token.values() if s.user.id == user_id and not self._is_idle(s, now)
                ]
        else:
            live = []
            for record in self._store.live_of_user(user_id, now - self.idle_timeout - self._slack):
                session = self._adopt(record, bytes.fromhex(record.token_hash), now)
                session.last_seen = max(session.last_seen, record.last_seen)
                if not session.ended and not self._is_idle(session, now):
                    live.append(session)
        return sorted(live, key=lambda s: s.created_at)

    def all(self) -> list[LogonSession]:
        """The sessions this node holds (made or used here)."""
        with self._lock:
            return list(self._by_token.values())

    def end(self, session: LogonSession, reason: str) -> bool:
        """End ``session`` (for every node) and run this node's teardown listeners; False if it had
        already ended."""
        with self._lock:
            entry = self._by_id.pop(session.session_id, None)
            if entry is not None:
                self._by_token.pop(entry[0], None)
                session.ended = True
        ended_here = self._store.end(session.session_id, reason) if self._store is not None else False
        if entry is None:
            return ended_here
        log.info("logon session %s of %s ended (%s)", session.session_id, session.user.name, reason)
        self._notify(session, reason)
        return True

    def sweep(self) -> int:
        """Write the activity seen since the last sweep, notice sessions ended elsewhere, and end
        every idle session (this node's and, with a store, any node's); returns how many ended."""
        now = self._clock()
        with self._lock:
            cached = list(self._by_token.values())
        if self._store is not None:
            self._flush(cached, now)
            soon = now + self.sweep_interval  # read now those due before the next sweep
            self._recheck([s for s in cached if self._stale(s, soon)], now)
            idle = [s for s in cached if not s.ended and self._is_idle(s, now)]
            if idle:
                self._recheck(idle, now)  # another node may have seen them since
        idle = [s for s in cached if not s.ended and self._is_idle(s, now)]
        ended = sum(self.end(s, "expired") for s in idle)
        if self._store is not None:
            for sid in self._store.expire(now - self.idle_timeout):
                ended += 1
                with self._lock:
                    entry = self._by_id.get(sid)
                if entry is not None:
                    self._forget(entry[1], "expired")
        return ended

    def end_all(self, reason: str) -> None:
        for session in self.all():
            self.end(session, reason)

    def release_all(self, reason: str) -> None:
        """This node stops: with a store, let every session go here but leave it live for the other
        nodes (its activity written first); without one, end them all."""
        if self._store is None:
            self.end_all(reason)
            return
        with self._lock:
            cached = list(self._by_token.values())
            self._by_token.clear()
            self._by_id.clear()
        try:
            self._flush(cached, self._clock())
        except Exception:
            log.exception("writing the sessions' last activity failed")
        for session in cached:
            self._notify(session, reason)

    # --- the database side ----------------------------------------------------------------------------

    def _adopt(self, record: SessionRecord, key: bytes, now: float) -> LogonSession:
        """The cached session for ``record``, made from it when this node has none yet."""
        with self._lock:
            entry = self._by_id.get(record.session_id)
            if entry is not None:
                return entry[1]
            session = LogonSession(
                session_id=record.session_id,
                user=record.user,
                created_at=record.created_at,
                last_seen=record.last_seen,
                client=record.client,
                csrf=record.csrf,
                checked_at=now,
                flushed_seen=record.last_seen,
            )
            self._by_token[key] = session
            self._by_id[session.session_id] = (key, session)
            return session

    def _recheck(self, sessions: list[LogonSession], now: float) -> bool:
        """Read these sessions from the database: those ended (or gone) are let go here, the others
        take the newest activity any node recorded. True when every one of them is still live."""
        if self._store is None or not sessions:
            return True
        states = self._store.states(s.session_id for s in sessions)
        live = True
        for session in sessions:
            state = states.get(session.session_id)
            if state is None or state[0]:
                self._forget(session, "ended on another node")
                live = False
                continue
            session.last_seen = max(session.last_seen, state[1])
            session.checked_at = now
        return live

    def _forget(self, session: LogonSession, reason: str) -> None:
        """A session ended elsewhere: drop it here and run the listeners."""
        with self._lock:
            entry = self._by_id.pop(session.session_id, None)
            if entry is None:
                return
            self._by_token.pop(entry[0], None)
            session.ended = True
        self._notify(session, reason)

    def _flush(self, sessions: list[LogonSession], now: float) -> None:
        """One batch of activity: sessions used since their last write, and busy ones (a long download
        keeps its session alive on every node)."""
        assert self._store is not None
        seen: dict[str, float] = {}
        for session in sessions:
            when = now if session.active_streams > 0 else session.last_seen
            if when > session.flushed_seen:
                seen[session.session_id] = when
        self._store.touch(seen)
        for session in sessions:
            if session.session_id in seen:
                session.flushed_seen = seen[session.session_id]

    def _notify(self, session: LogonSession, reason: str) -> None:
        for listener in self._listeners:
            try:
                listener(session, reason)
            except Exception:
                log.exception("session teardown listener failed for %s", session.session_id)

    def _stale(self, session: LogonSession, now: float) -> bool:
        """This node's copy of a shared session is due to be read again."""
        return self._store is not None and now - session.checked_at > self.recheck_seconds

    def _is_idle(self, session: LogonSession, now: float) -> bool:
        return session.active_streams == 0 and now - session.last_seen > self.idle_timeout
