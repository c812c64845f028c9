"""Logon sessions: opaque tokens, idle expiry, and teardown hooks (mounts and tasks die with a session)."""

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
    """Monotonic time of the last request made with this session."""
    client: str = ""
    active_streams: int = 0
    """Downloads or restores in flight; a session that is busy does not expire."""
    ended: bool = False
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    """A second secret for a session held in a browser cookie: requests that change something must
    also carry it (docs/SECURITY.md, "The web page"), so the cookie alone is never enough."""
    data: dict[str, object] = field(default_factory=dict)
    """Per-session state owned by other services (mount table, task table, ...)."""

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


def _token_key(token: str) -> bytes:
    # Sessions are indexed by a hash of the token: lookups never compare secrets byte by byte,
    # and the table itself holds no usable token.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


class SessionManager:
    """In-memory table of live logon sessions of this process."""

    def __init__(
        self,
        idle_timeout: float,
        max_per_user: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_timeout = idle_timeout
        self.max_per_user = max_per_user
        self._clock = clock
        self._lock = threading.RLock()
        self._by_token: dict[bytes, LogonSession] = {}
        self._by_id: dict[str, tuple[bytes, LogonSession]] = {}
        self._listeners: list[EndListener] = []

    def add_end_listener(self, listener: EndListener) -> None:
        """``listener(session, reason)`` runs once when a session ends (logout, expiry, shutdown)."""
        self._listeners.append(listener)

    def create(self, user: User, client: str = "") -> tuple[LogonSession, str]:
        """Open a session for ``user``; returns it with its secret token."""
        self.sweep()
        with self._lock:
            owned = [s for s in self._by_token.values() if s.user.id == user.id]
            if len(owned) >= self.max_per_user:
                now = self._clock()
                idle = [s.last_seen + self.idle_timeout - now for s in owned if s.active_streams == 0]
                raise SessionLimitError(
                    f"Logon refused: user {user.name!r} already has {len(owned)} logon sessions, the "
                    "limit per user. Log out of one (DELETE its LogonSession Href) or wait until one "
                    "has been idle long enough to expire.",
                    retry_after=min(idle, default=self.idle_timeout),
                )
            token = new_token()
            session = LogonSession(
                session_id=str(uuid.uuid4()),
                user=user,
                created_at=datetime.now(UTC),
                last_seen=self._clock(),
                client=client,
            )
            key = _token_key(token)
            self._by_token[key] = session
            self._by_id[session.session_id] = (key, session)
        return session, token

    def resolve(self, token: str) -> LogonSession | None:
        """The live session for ``token`` (and mark it used), or None if unknown or expired."""
        key = _token_key(token)
        expired = None
        with self._lock:
            session = self._by_token.get(key)
            if session is None:
                return None
            # The dict finds the entry by digest; confirm it without an early-exit comparison.
            entry = self._by_id.get(session.session_id)
            if entry is None or not hmac.compare_digest(entry[0], key):
                return None
            now = self._clock()
            if self._is_idle(session, now):
                expired = session
            else:
                session.last_seen = now
        if expired is not None:
            self.end(expired, "expired")
            return None
        return session

    def get(self, session_id: str) -> LogonSession | None:
        """The live session with this id (not marked used), or None if unknown or idle too long."""
        with self._lock:
            entry = self._by_id.get(session_id.lower())
            if entry is None or self._is_idle(entry[1], self._clock()):
                return None
            return entry[1]

    def sessions_of(self, user_id: int) -> list[LogonSession]:
        """The user's live sessions, oldest first (those idle too long are no longer live)."""
        now = self._clock()
        with self._lock:
            live = (s for s in self._by_token.values() if s.user.id == user_id and not self._is_idle(s, now))
            return sorted(live, key=lambda s: s.created_at)

    def all(self) -> list[LogonSession]:
        with self._lock:
            return list(self._by_token.values())

    def end(self, session: LogonSession, reason: str) -> bool:
        """End ``session`` and run the teardown listeners; False if it had already ended."""
        with self._lock:
            entry = self._by_id.pop(session.session_id, None)
            if entry is None:
                return False
            self._by_token.pop(entry[0], None)
            session.ended = True
        log.info("logon session %s of %s ended (%s)", session.session_id, session.user.name, reason)
        for listener in self._listeners:
            try:
                listener(session, reason)
            except Exception:
                log.exception("session teardown listener failed for %s", session.session_id)
        return True

    def sweep(self) -> int:
        """End every idle session; returns how many ended."""
        now = self._clock()
        with self._lock:
            idle = [s for s in self._by_token.values() if self._is_idle(s, now)]
        return sum(self.end(s, "expired") for s in idle)

    def end_all(self, reason: str) -> None:
        for session in self.all():
            self.end(session, reason)

    def _is_idle(self, session: LogonSession, now: float) -> bool:
        return session.active_streams == 0 and now - session.last_seen > self.idle_timeout
