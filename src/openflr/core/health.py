"""Readiness of a node: its database answers and every configured datastore can be listed.

A load balancer asks every few seconds (``/api/openflr/health``), so each check is bounded in time: it
runs in a daemon thread of its own and is given up after ``timeout`` seconds (a hung NFS mount or
database must not hang the answer, nor the process's exit). A check whose previous run has not
returned yet fails at once instead of starting another thread behind it. What a caller is told is a
fixed phrase, never a path or an exception's text; the server log says why, once per change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from openflr.config import Settings
from openflr.store.db import Database

log = logging.getLogger(__name__)

TIMEOUT = 3.0
"""Seconds a check may take before it counts as failed."""


@dataclass(frozen=True)
class Check:
    ok: bool
    reason: str = ""
    """Why it failed, in words safe to show to anyone (no path, no secret)."""


@dataclass(frozen=True)
class Readiness:
    database: Check
    datastores: dict[str, Check]
    """By datastore name."""

    @property
    def ok(self) -> bool:
        return self.database.ok and all(c.ok for c in self.datastores.values())


class Health:
    """The checks of one node (one per process)."""

    def __init__(self, settings: Settings, db: Database, timeout: float = TIMEOUT) -> None:
        self.settings = settings
        self.db = db
        self.timeout = timeout
        self._running: dict[str, asyncio.Future[None]] = {}
        self._failing: set[str] = set()

    async def readiness(self) -> Readiness:
        stores = self.settings.datastores
        checks = await asyncio.gather(
            self._check("database", self._database, "the database does not answer"),
            *(
                self._check(f"datastore {s.name}", _lister(s.path), "the datastore cannot be listed")
                for s in stores
            ),
        )
        return Readiness(checks[0], {s.name: c for s, c in zip(stores, checks[1:], strict=True)})

    def _database(self) -> None:
        url = self.db.url
        if url.startswith("sqlite:///"):
            # A fresh read-only connection reads the file itself: a pooled one keeps working on a file
            # that was removed, replaced or damaged since it was opened.
            uri = "file:" + urllib.parse.quote(url.removeprefix("sqlite:///")) + "?mode=ro"
            reader = sqlite3.connect(uri, uri=True, timeout=self.timeout)
            try:
                reader.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                reader.close()
            return
        with self.db.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    async def _check(self, name: str, work: Callable[[], None], failed: str) -> Check:
        running = self._running.get(name)
        if running is not None and not running.done():
            return self._outcome(name, Check(False, f"{failed} (an earlier check has not returned)"), None)
        future = _in_daemon_thread(work, name)
        self._running[name] = future
        try:
            await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            return self._outcome(name, Check(False, f"{failed} (no answer in {self.timeout:g} s)"), None)
        except Exception as exc:
            return self._outcome(name, Check(False, failed), exc)
        return self._outcome(name, Check(True), None)

    def _outcome(self, name: str, check: Check, exc: BaseException | None) -> Check:
        """Log a check's change of state (not every failed probe of a balancer)."""
        if not check.ok and name not in self._failing:
            self._failing.add(name)
            log.warning("health: %s failed: %s", name, exc if exc is not None else check.reason)
        elif check.ok and name in self._failing:
            self._failing.discard(name)
            log.info("health: %s is fine again", name)
        return check


def _lister(path: os.PathLike[str] | str) -> Callable[[], None]:
    def run() -> None:
        with os.scandir(path) as entries:
            next(entries, None)

    return run


def _in_daemon_thread(work: Callable[[], None], name: str) -> asyncio.Future[None]:
    """``work`` in a daemon thread (never joined at exit, unlike an executor's), as a future."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def settle(exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is None:
            future.set_result(None)
        else:
            future.set_exception(exc)

    def run() -> None:
        error: BaseException | None = None
        try:
            work()
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed while this ran
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=run, name=f"openflr-health {name}", daemon=True).start()
    future.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved even if given up on
    return future
