"""Smoke test of the catalog benchmark (bench/catalog.py) on a 2,000-file volume: every figure comes
out, and the figures that do not depend on the machine's speed hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench import catalog

pytestmark = [pytest.mark.server, pytest.mark.slow]  # starts `openflr serve`; 10-25 s


def test_catalog_bench_small_volume(tmp_path: Path) -> None:
    results = tmp_path / "results"
    rows = catalog.run(tmp_path / "data", 2000, log=lambda _s: None, results=results)
    figures = {r.figure.split(":")[0].split(",")[0]: r for r in rows}
    assert {
        "catalog build",
        "catalog size per point",
        "search across 20 points of 2",
        "diff of the first and last of 20 points",
    } <= set(figures)
    assert len(rows) == 9
    # 1 % changed per point costs far less than a copy of the point, whatever the machine.
    assert figures["catalog size per point"].met is True
    # Every change made shows in the diff of the first and last point (some files changed twice).
    diff = figures["diff of the first and last of 20 points"]
    assert "Added" in diff.ratio and "Removed" in diff.ratio and "Modified" in diff.ratio
    saved = json.loads((results / "catalog-2000.json").read_text())
    search = next(r for r in saved["rows"] if r["figure"].startswith("search across"))
    queries = search["data"]["queries"]
    assert len(queries) == 20
    assert next(q for q in queries if q["query"].startswith("glob *.cfg"))["hits"] >= 2
    assert any("listing" in r.figure and r.met is not None for r in rows)
