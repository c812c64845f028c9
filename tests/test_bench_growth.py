"""The growth benchmark (bench/growth.py): its judging and formatting, and one run end to end at tiny
sizes (1,000 entries, chains of 1 and 2 layers, a 1 GiB disk) without the plot's virtualenv."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
from bench import growth
from bench import growthdata as gd


def test_sizes_stop_at_each_maximum() -> None:
    s = growth.sizes(10_000, 4, 16 * gd.GiB)
    assert s.entries == (1_000, 10_000)
    assert s.depths == (1, 2, 4)
    assert s.disks == (gd.GiB, 16 * gd.GiB)
    full = growth.sizes()
    assert full.entries[-1] == 1_000_000 and full.depths[-1] == 64 and full.disks[-1] == 16 * gd.TiB
    assert growth.parse_size("16TiB") == growth.parse_size("16T") == 16 * gd.TiB
    assert growth.parse_size("1GiB") == gd.GiB
    assert gd.size_text(16 * gd.TiB) == "16TiB" and gd.size_text(256 * gd.GiB) == "256GiB"


def test_exponent_of_a_power_law() -> None:
    xs = [1, 10, 100, 1000]
    assert growth.exponent(xs, [x**0.5 for x in xs]) == pytest.approx(0.5)
    assert growth.exponent(xs, [3.0] * 4) == pytest.approx(0.0)
    assert growth.exponent([5], [2.0]) == 0.0
    assert [growth.shape(k) for k in (0.05, -0.5, 0.5, 1.0, 2.0)] == [
        "flat",
        "falling",
        "sub-linear",
        "linear",
        "super-linear",
    ]


def test_judge_costs_rates_and_floors() -> None:
    xs = [1, 2, 4, 8]
    flat = growth.judge(growth.MOUNT, xs, [10, 12, 11, 19])
    assert flat.met is True and flat.factors[-1] == pytest.approx(1.9)
    grown = growth.judge(growth.MOUNT, xs, [10, 12, 11, 21])
    assert grown.met is False  # 2.1x the smallest's
    rate = growth.METRICS["chain"][2]
    assert growth.judge(rate, xs, [1000, 900, 600, 400]).met is False  # 0.4x
    assert growth.judge(rate, xs, [1000, 900, 600, 500]).met is True
    linear = growth.METRICS["chain"][0]
    assert growth.judge(linear, xs, [1, 2, 4, 8]).met is True
    assert growth.judge(linear, xs, [1, 4, 16, 64]).met is False  # exponent 2
    # RSS growth below the floor counts as the floor: 0.5 -> 6 MiB is noise, not 12x.
    assert growth.judge(growth.RSS, xs, [0.5, 1, 3, 6]).factors == [1.0, 1.0, 1.0, 1.0]
    assert growth.judge(growth.MOUNT, [1], [10]).met is None


def test_axis_table_shows_values_factors_and_targets() -> None:
    doc = growth.axis_doc(
        "disk", [gd.GiB, 16 * gd.TiB], {"mount_ms": [10, 30], "first_page_ms": [5.5, 6], "rss_mib": [1, 2]}
    )
    text = growth.axis_table("disk", doc)
    assert "| 1GiB | 10 ms (1.00x) | 5.5 ms (1.00x) | 1.0 MiB (1.00x) |" in text
    assert "| 16TiB | 30 ms (3.00x) |" in text
    assert "growth over 16,384x" in text
    assert "flat: <= 2x the smallest's: **no**" in text  # the mount time
    assert "flat: <= 2x the smallest's: yes" in text  # first page and memory
    rows = growth.rows_of({"axes": {"disk": doc}})
    assert [r.met for r in rows] == [False, True, True]
    assert rows[0].figure == "disk size 1GiB -> 16TiB: mount time (p50)"


@pytest.mark.server
@pytest.mark.slow
def test_growth_bench_tiny_sizes(tmp_path: Path) -> None:
    results = tmp_path / "results"
    lines: list[str] = []
    rows = growth.run(tmp_path / "data", growth.sizes(1_000, 2, gd.GiB), lines.append, results, rounds=1)
    doc = json.loads((results / "growth.json").read_text())
    assert set(doc["axes"]) == {"folder", "chain", "disk"}
    assert doc["axes"]["folder"]["x"] == [1_000]
    assert doc["axes"]["chain"]["x"] == [1, 2]
    assert doc["axes"]["disk"]["x"] == [gd.GiB]
    for axis, got in doc["axes"].items():
        assert list(got["metrics"]) == [m.key for m in growth.METRICS[axis]]
        for m in got["metrics"].values():
            assert len(m["values"]) == len(got["x"]) and all(v >= 0 and math.isfinite(v) for v in m["values"])
            assert m["factors"][0] == 1.0
            if len(got["x"]) == 1:
                assert m["met"] is None and m["shape"] == "flat"  # nothing to compare
    chain = doc["axes"]["chain"]["metrics"]
    assert all(v > 0 for v in chain["read_mbps"]["values"])
    assert all(isinstance(m["met"], bool) for m in chain.values())
    assert doc["axes"]["folder"]["metrics"]["list_rate"]["values"][0] > 0
    assert len(rows) == 4 + 4 + 3
    assert [r["figure"] for r in doc["rows"]] == [r.figure for r in rows]
    assert any("**Chain depth**" in line for line in lines)
    block = growth.docs_block("Run of the test.", results)
    assert block.startswith("Run of the test.\n\n**Folder size**") and "| 1,000 |" in block


def test_every_layer_writes_inside_the_file_and_apart() -> None:
    spans = sorted((gd.layer_offset(i), gd.layer_offset(i) + gd.LAYER_WRITE) for i in range(1, 64))
    assert spans[0][0] > 0 and spans[-1][1] <= gd.FILE_SIZE
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    assert len({gd.layer_bytes(i) for i in range(1, 64)}) == 63
