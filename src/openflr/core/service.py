"""The service facade: one object that owns every core component of a running openflr."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import anyio.to_thread

from openflr.config import Settings
from openflr.core.sessions import LogonSession, SessionManager
from openflr.core.users import UserStore
from openflr.errors import UnauthorizedError
from openflr.store.db import Database

log = logging.getLogger(__name__)


class Service:
    """Holds the database, accounts and logon sessions; later issues add inventory, mounts, restores."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.database_url)
        self.users = UserStore(self.db)
        self.sessions = SessionManager(settings.sessions.idle_timeout, settings.sessions.max_per_user)
        # argon2 verification costs ~64 MiB and tens of ms: bound how many run at once.
        self._password_checks = asyncio.Semaphore(2)
        self._sweeper: asyncio.Task[None] | None = None

    async def logon(self, login_name: str, password: str, client: str = "") -> tuple[LogonSession, str]:
        """Check the password (off the event loop) and open a session; 401 on failure."""
        async with self._password_checks:
            user = await anyio.to_thread.run_sync(self.users.authenticate, login_name, password)
        if user is None:
            log.info("failed logon for %r from %s", login_name[:64], client or "-")
            raise UnauthorizedError("Logon failed: unknown user name or bad password.")
        session, token = self.sessions.create(user, client)
        log.info("user %s logged on from %s (session %s)", user.name, client or "-", session.session_id)
        return session, token

    async def start(self) -> None:
        """Start background work (the idle-session sweeper)."""
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="openflr-session-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        self.sessions.end_all("server shutdown")
        self.db.close()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sessions.sweep_interval)
            try:
                self.sessions.sweep()
            except Exception:
                log.exception("session sweep failed")
