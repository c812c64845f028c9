"""What sharing logon sessions through the database adds to a request: ``SessionManager.resolve``
(every request makes one) with the activity it records, in memory only (one node, no database), on
SQLite and on PostgreSQL (a throw-away cluster, tests/store/postgres.py).

Two nodes share the database: node A logs the sessions on, node B serves the requests. A simulated
clock moves 2 ms per request (500 requests a second), so B reads each session again every
``recheck_seconds`` (5 s) and writes activity at each sweep (every 5 s), as a busy node would; the
sweeps' cost is spread over the requests between them.

python -m bench --only sharedstate
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Row, pct
from openflr.core.roles import Role
from openflr.core.sessions import SessionManager
from openflr.core.sessionstore import SessionStore
from openflr.core.users import User
from openflr.store.db import Database

SESSIONS = 200
REQUESTS = 20_000
STEP = 0.002
"""Simulated seconds between two requests."""
SWEEP = 5.0
USER = User(1, "bench", Role.RESTORE_OPERATOR, datetime.now(UTC))


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def measure(url: str | None, requests: int = REQUESTS) -> dict[str, float]:
    """Per-request microseconds (p50, p99, mean with the sweeps), and the first resolve on node B."""
    clock = _Clock()
    db = Database(url) if url else None
    made = SessionManager(3600, 100_000, clock=clock, store=SessionStore(db, "a") if db else None)
    serving = (
        SessionManager(
            3600, 100_000, clock=clock, store=SessionStore(db, "b"), recheck_seconds=5, sweep_interval=SWEEP
        )
        if db
        else made
    )
    tokens = [made.create(USER)[1] for _ in range(SESSIONS)]
    first: list[float] = []
    for token in tokens:
        t = time.perf_counter()
        assert serving.resolve(token) is not None
        first.append(time.perf_counter() - t)
    times: list[float] = []
    sweeps = 0.0
    next_sweep = clock.now + SWEEP
    for i in range(requests):
        clock.now += STEP
        t = time.perf_counter()
        assert serving.resolve(tokens[i % SESSIONS]) is not None
        times.append(time.perf_counter() - t)
        if clock.now >= next_sweep:
            t = time.perf_counter()
            serving.sweep()
            sweeps += time.perf_counter() - t
            next_sweep += SWEEP
    if db is not None:
        db.close()
    us = 1e6
    return {
        "p50": pct(times, 50) * us,
        "p99": pct(times, 99) * us,
        "mean": (sum(times) + sweeps) / requests * us,
        "first": pct(first, 50) * us,
    }


@contextlib.contextmanager
def _postgres() -> Iterator[str | None]:
    try:
        from tests.store.postgres import new_database, run_postgres

        with run_postgres() as cluster:
            yield new_database(cluster)
    except RuntimeError:  # PostgreSQL is not installed: that row says so
        yield None


def shared_state(_datastore: Path, data: Path) -> list[Row]:
    memory = measure(None)
    rows = [
        Row(
            "session resolve + activity, memory only (one node)",
            f"p50 {memory['p50']:.1f} µs, p99 {memory['p99']:.1f} µs",
            data=memory,
        )
    ]
    with _postgres() as pg:
        for name, url in (("SQLite", f"sqlite:///{data / 'openflr.db'}"), ("PostgreSQL", pg)):
            figure = f"session resolve + activity, {name} shared by 2 nodes"
            if url is None:
                rows.append(Row(figure, "not measured: PostgreSQL is not installed"))
                continue
            got = measure(url)
            rows.append(
                Row(
                    figure,
                    f"p50 {got['p50']:.1f} µs, p99 {got['p99']:.1f} µs; mean with sweeps "
                    f"{got['mean']:.1f} µs; first use on a node {got['first']:.0f} µs",
                    baseline=f"p50 {memory['p50']:.1f} µs, p99 {memory['p99']:.1f} µs",
                    ratio=(
                        f"{got['p50'] - memory['p50']:+.1f} µs p50, {got['p99'] - memory['p99']:+.1f} µs p99"
                    ),
                    data=got,
                )
            )
    return rows


if __name__ == "__main__":
    import tempfile

    from bench.__main__ import table

    with tempfile.TemporaryDirectory(prefix="bench-sharedstate-") as tmp:
        print(table(shared_state(Path(tmp), Path(tmp))))
