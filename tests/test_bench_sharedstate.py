"""Smoke test of the shared-state benchmark (bench/sharedstate.py): every figure comes out, for memory,
SQLite and a real PostgreSQL, and a session shared by two nodes costs a request only microseconds more
than one kept in memory (the database is read every recheck_seconds, in the sweeps, not per request)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import sharedstate

pytestmark = [pytest.mark.server, pytest.mark.slow]  # starts a PostgreSQL cluster; 10-20 s


def test_shared_state_bench(tmp_path: Path) -> None:
    rows = sharedstate.shared_state(tmp_path, tmp_path)
    assert [r.figure.split(", ")[1] for r in rows] == [
        "memory only (one node)",
        "SQLite shared by 2 nodes",
        "PostgreSQL shared by 2 nodes",
    ]
    for row in rows:
        assert {"p50", "p99", "mean", "first"} <= set(row.data), row
        assert row.data["p50"] < 1000  # a request reads no database: well under a millisecond
