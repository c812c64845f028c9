"""Readiness checks are bounded in time: a check that hangs (a dead NFS server) fails after the
timeout, and while it still hangs the next probe fails at once instead of piling up threads."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from openflr.config import load_settings
from openflr.core.health import Health
from openflr.store.db import Database


def test_a_hung_check_fails_in_time_and_is_not_started_twice(tmp_path: Path) -> None:
    settings = load_settings(env={"OPENFLR_DATA_DIR": str(tmp_path)})
    db = Database(settings.database_url)
    health = Health(settings, db, timeout=0.2)
    release = threading.Event()
    started: list[int] = []

    def hang() -> None:
        started.append(1)
        release.wait(10)

    async def probe() -> tuple[str, str, str]:
        first = await health._check("store", hang, "cannot be listed")
        second = await health._check("store", hang, "cannot be listed")
        release.set()
        await asyncio.sleep(0.1)
        third = await health._check("store", lambda: None, "cannot be listed")
        return first.reason, second.reason, "ok" if third.ok else third.reason

    try:
        first, second, third = asyncio.run(probe())
    finally:
        release.set()
        db.close()
    assert first == "cannot be listed (no answer in 0.2 s)"
    assert second == "cannot be listed (an earlier check has not returned)"
    assert third == "ok"
    assert len(started) == 1
