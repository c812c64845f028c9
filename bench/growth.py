"""How costs grow: folder size, chain depth and disk size, each against its smallest size, on a real
``openflr serve`` (keep_idle = 0, so every mount is cold).

- folder size (1,000 ... 1,000,000 entries in one XFS folder): mount time, first page (listAll
  pageSize=1000), listing rate (every page, one curl, as bench/mounting.py) and the server's peak
  RSS growth from the mount to the last page;
- chain depth (1 ... 64 qcow2 layers): mount time, first page of the root, read rate of a 256 MiB
  file (curl into /dev/null) and peak RSS growth over the three;
- disk size (1 GiB ... 16 TiB, sparse qcow2, GPT, XFS): mount time, first page of the root and peak
  RSS growth over both.

Each figure is judged by its growth factor against the smallest size and by the exponent of a
power-law fit (value ~ size^k): docs/BENCHMARKS.md, "Cost growth". The numbers go to
``bench/results/growth.json``; bench/growthplot.py draws them.

python -m bench                  # every group, this one included (about 2.5 minutes of it)
python -m bench --only growth [--max-entries N] [--max-depth N] [--max-disk SIZE]
python -m bench.growth --max-entries 1000 --max-depth 2 --max-disk 1GiB   # a quick run
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from bench import growthdata as gd
from bench import mounting
from bench.common import Client, Row, median, reset_peak, rss_kib, server
from bench.downloading import curl
from bench.fixtures import REPO

ROUNDS = 5
"""Cold mounts per VM for the mount time (median)."""
DETAIL_ROUNDS = 2
"""Cold mounts per VM for the other figures (best rate, fastest first page, largest RSS growth)."""
ENTRIES = (1_000, 10_000, 100_000, 1_000_000)
DEPTHS = (1, 2, 4, 8, 16, 32, 64)
DISKS = (gd.GiB, 16 * gd.GiB, 256 * gd.GiB, 4 * gd.TiB, 16 * gd.TiB)
FLAT = 2.0
"""A flat figure stays within this factor of its value at the smallest size."""
LINEAR = 1.1
"""At most linear: a power-law exponent no larger than this."""
PAGE = 1000

Log = Callable[[str], None]


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    kind: Literal["cost", "rate"]
    expect: Literal["flat", "linear"]
    floor: float = 0.0
    """Values below this count as this in the factors (RSS growth of a few MiB is allocator noise)."""


MOUNT = Metric("mount_ms", "mount time (p50)", "ms", "cost", "flat")
FIRST = Metric("first_page_ms", "first page", "ms", "cost", "flat")
RSS = Metric("rss_mib", "peak RSS growth", "MiB", "cost", "linear", floor=8.0)
METRICS = {
    "folder": (MOUNT, FIRST, Metric("list_rate", "listing rate", "entries/s", "rate", "flat"), RSS),
    "chain": (
        Metric("mount_ms", "mount time (p50)", "ms", "cost", "linear"),
        FIRST,
        Metric("read_mbps", "read rate", "MB/s", "rate", "flat"),
        RSS,
    ),
    "disk": (MOUNT, FIRST, Metric("rss_mib", "peak RSS growth", "MiB", "cost", "flat", floor=8.0)),
}
TITLES = {
    "folder": ("Folder size", "entries in one folder"),
    "chain": ("Chain depth", "qcow2 layers"),
    "disk": ("Disk size", "virtual disk size"),
}


@dataclass(frozen=True)
class Sizes:
    entries: tuple[int, ...]
    depths: tuple[int, ...]
    disks: tuple[int, ...]


def sizes(max_entries: int = ENTRIES[-1], max_depth: int = DEPTHS[-1], max_disk: int = DISKS[-1]) -> Sizes:
    """The standard sizes up to each maximum (the smallest of each axis always)."""
    return Sizes(
        tuple(n for n in ENTRIES if n <= max_entries) or (max_entries,),
        tuple(d for d in DEPTHS if d <= max_depth) or (1,),
        tuple(s for s in DISKS if s <= max_disk) or (DISKS[0],),
    )


def parse_size(text: str) -> int:
    """'16TiB', '16T', '1GiB' -> bytes."""
    text = text.strip().removesuffix("B").removesuffix("i")
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    if text and text[-1].upper() in units:
        return int(float(text[:-1]) * units[text[-1].upper()])
    return int(text)


# judging and formatting


@dataclass
class Judged:
    factors: list[float]
    exponent: float
    shape: str
    target: str
    met: bool | None


def exponent(xs: Sequence[float], ys: Sequence[float]) -> float:
    """k of the least-squares fit of log y = k log x + c (0 for fewer than two sizes)."""
    if len(xs) < 2:
        return 0.0
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    den = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / den if den else 0.0


def shape(k: float) -> str:
    if abs(k) <= 0.1:
        return "flat"
    if k < 0:
        return "falling"
    if k < 0.9:
        return "sub-linear"
    return "linear" if k <= LINEAR else "super-linear"


def judge(metric: Metric, xs: Sequence[float], values: Sequence[float]) -> Judged:
    """Growth factors against the smallest size, the fit's exponent and whether the metric's
    expectation holds (None with one size: nothing to compare)."""
    clipped = [max(v, metric.floor, 1e-9) for v in values]
    factors = [v / clipped[0] for v in clipped]
    k = exponent(xs, factors)
    if metric.expect == "flat":
        if metric.kind == "rate":
            target = f"flat: >= {1 / FLAT:.1f}x the smallest's"
            met = min(factors) >= 1 / FLAT
        else:
            target = f"flat: <= {FLAT:.0f}x the smallest's"
            met = max(factors) <= FLAT
    else:
        target = f"at most linear (exponent <= {LINEAR})"
        met = k <= LINEAR
    return Judged(factors, k, shape(k), target, met if len(xs) > 1 else None)


def value_text(metric: Metric, v: float) -> str:
    if metric.unit == "ms":
        return f"{v:,.0f} ms" if v >= 10 else f"{v:.1f} ms"
    if metric.unit == "entries/s":
        return f"{v:,.0f}/s"
    return f"{v:,.0f} {metric.unit}" if v >= 10 else f"{v:.1f} {metric.unit}"


def x_text(axis: str, x: int) -> str:
    if axis == "disk":
        return gd.size_text(x)
    return f"{x:,}"


def axis_table(axis: str, doc: dict[str, Any]) -> str:
    """The markdown table of one axis: each size's values with their factor against the smallest,
    then each metric's shape (exponent) and target."""
    metrics = METRICS[axis]
    title, unit = TITLES[axis]
    xs = doc["x"]
    head = f"| {unit} | " + " | ".join(m.label for m in metrics) + " |"
    lines = [head, "|" + " --- |" * (len(metrics) + 1)]
    for i, x in enumerate(xs):
        cells = []
        for m in metrics:
            got = doc["metrics"][m.key]
            cells.append(f"{value_text(m, got['values'][i])} ({got['factors'][i]:.2f}x)")
        lines.append(f"| {x_text(axis, x)} | " + " | ".join(cells) + " |")
    span = f"{xs[-1] / xs[0]:,.0f}x" if len(xs) > 1 else "—"
    shapes = [
        f"{doc['metrics'][m.key]['shape']} (k = {doc['metrics'][m.key]['exponent']:.2f})" for m in metrics
    ]
    lines.append(f"| growth over {span} | " + " | ".join(shapes) + " |")
    met = []
    for m in metrics:
        got = doc["metrics"][m.key]
        flag = "—" if got["met"] is None else ("yes" if got["met"] else "**no**")
        met.append(f"{got['target']}: {flag}")
    lines.append("| target | " + " | ".join(met) + " |")
    return f"**{title}**\n\n" + "\n".join(lines)


def tables(doc: dict[str, Any]) -> str:
    return "\n\n".join(axis_table(axis, got) for axis, got in doc["axes"].items())


def axis_doc(axis: str, xs: Sequence[int], measured: dict[str, list[float]]) -> dict[str, Any]:
    """The JSON of one axis: its sizes and, per metric, values, factors, exponent, shape, target, met."""
    metrics: dict[str, Any] = {}
    for m in METRICS[axis]:
        j = judge(m, xs, measured[m.key])
        metrics[m.key] = {
            "label": m.label,
            "unit": m.unit,
            "kind": m.kind,
            "values": measured[m.key],
            "factors": j.factors,
            "exponent": j.exponent,
            "shape": j.shape,
            "target": j.target,
            "met": j.met,
        }
    title, unit = TITLES[axis]
    return {"title": title, "x_label": unit, "x": list(xs), "metrics": metrics}


def rows_of(doc: dict[str, Any]) -> list[Row]:
    """One row per axis and metric for bench's summary table."""
    rows = []
    for axis, got in doc["axes"].items():
        xs = got["x"]
        for m in METRICS[axis]:
            g = got["metrics"][m.key]
            first, last = value_text(m, g["values"][0]), value_text(m, g["values"][-1])
            rows.append(
                Row(
                    f"{got['title'].lower()} {x_text(axis, xs[0])} -> {x_text(axis, xs[-1])}: {m.label}",
                    f"{last} ({g['factors'][-1]:.2f}x)",
                    f"at {x_text(axis, xs[0])}: {first}",
                    f"{g['shape']}, k = {g['exponent']:.2f}",
                    g["target"],
                    g["met"],
                    data={"values": g["values"], "factors": g["factors"]},
                )
            )
    return rows


# measuring


@dataclass
class Probe:
    """The server under test: its address, its pid (for RSS) and a scratch folder."""

    base: str
    pid: int
    work: Path

    def mount_seconds(self, vm: str) -> float:
        """One cold mount of ``vm``, POST to task Finished (then unmounted)."""
        client = Client(self.base)
        href, seconds = client.mount(client.point(vm))
        client.unmount(href)
        client.close()
        return seconds


def _growth_mib(pid: int, before: int) -> float:
    _, peak = rss_kib(pid)
    return (peak - before) / 1024


@contextmanager
def _cold(probe: Probe, vm: str) -> Iterator[tuple[Client, str, int]]:
    """A fresh client, the server's RSS before (its peak reset) and a cold mount of ``vm``,
    unmounted and logged off afterwards."""
    client = Client(probe.base)
    point = client.point(vm)
    before, _ = rss_kib(probe.pid)
    if not reset_peak(probe.pid):
        raise RuntimeError("cannot reset the server's peak RSS (/proc/PID/clear_refs)")
    mount, _ = client.mount(point)
    try:
        yield client, mount, before
    finally:
        client.unmount(mount)
        client.close()


def folder_round(probe: Probe, entries: int, r: int) -> dict[str, float]:
    """Cold mount, first page, then the other pages; RSS growth from the mount to the last page."""
    pages = -(-entries // PAGE)
    with _cold(probe, gd.folder_name(entries)) as (client, mount, before):
        url = f"{mount}/{gd.FOLDER}?action=listAll&pageSize={PAGE}&page="
        out = probe.work / f"pages-{entries}-{r}"
        first = mounting._curl_pages(url, client.token, 1, out)
        rest = mounting._curl_pages(url, client.token, pages, out, first=2) if pages > 1 else 0.0
        growth = _growth_mib(probe.pid, before)
    seen = mounting._entries(out)
    shutil.rmtree(out)
    if seen != entries:
        raise RuntimeError(f"listed {seen:,} of {entries:,} entries")
    return {"first_page_ms": first * 1000, "list_rate": entries / (first + rest), "rss_mib": growth}


def _root_page(client: Client, mount: str, out: Path) -> float:
    url = f"{mount}/{gd.LABEL}:?action=listAll&pageSize={PAGE}&page="
    seconds = mounting._curl_pages(url, client.token, 1, out)
    if mounting._entries(out) == 0:
        raise RuntimeError("the root's first page is empty")
    shutil.rmtree(out)
    return seconds


def _check_layer(client: Client, mount: str, depth: int) -> None:
    """The bytes the chain's top layer wrote are what the file reads there (the base's, at depth 1)."""
    layer = depth - 1
    start = gd.layer_offset(layer) if layer else 0
    r = client.http.get(
        f"{mount}/{gd.BIG_FILE}?action=download",
        headers={**client.headers, "Range": f"bytes={start}-{start + 4095}"},
    )
    r.raise_for_status()
    if layer and r.content != gd.layer_bytes(layer)[:4096]:
        raise RuntimeError(f"depth {depth}: the top layer's bytes do not read back")
    if not layer and r.content[:8] != (0).to_bytes(8, "little"):
        raise RuntimeError("depth 1: the file's first bytes are not the base's")


def chain_round(probe: Probe, depth: int, r: int) -> dict[str, float]:
    """Cold mount, first page of the root, the 256 MiB file by curl; RSS growth over the three."""
    with _cold(probe, gd.chain_name(depth)) as (client, mount, before):
        first = _root_page(client, mount, probe.work / f"root-{depth}-{r}")
        rate, size = curl(f"{mount}/{gd.BIG_FILE}?action=download", client.token)
        growth = _growth_mib(probe.pid, before)
        if size != gd.FILE_SIZE:
            raise RuntimeError(f"downloaded {size:,} of {gd.FILE_SIZE:,} bytes")
        _check_layer(client, mount, depth)
    return {"first_page_ms": first * 1000, "read_mbps": rate, "rss_mib": growth}


def disk_round(probe: Probe, size: int, r: int) -> dict[str, float]:
    """Cold mount and first page of the root; RSS growth over both."""
    with _cold(probe, gd.disk_name(size)) as (client, mount, before):
        first = _root_page(client, mount, probe.work / f"disk-{size}-{r}")
        growth = _growth_mib(probe.pid, before)
    return {"first_page_ms": first * 1000, "rss_mib": growth}


BEST = {"first_page_ms": min, "list_rate": max, "read_mbps": max, "rss_mib": max}
"""How rounds combine: the fastest first page, the best rate, the largest RSS growth."""
ROUND = {"folder": folder_round, "chain": chain_round, "disk": disk_round}
NAME = {"folder": gd.folder_name, "chain": gd.chain_name, "disk": gd.disk_name}


def measure_axis(probe: Probe, axis: str, xs: Sequence[int], rounds: int, log: Log) -> dict[str, list[float]]:
    """Every figure of one axis at each size. Rounds go across the sizes in turn (smallest to
    largest, then again), so load from elsewhere on the machine falls on every size alike."""
    mounts: dict[int, list[float]] = {x: [] for x in xs}
    for _ in range(ROUNDS):
        for x in xs:
            mounts[x].append(probe.mount_seconds(NAME[axis](x)))
    detail: dict[int, list[dict[str, float]]] = {x: [] for x in xs}
    for r in range(rounds):
        for x in xs:
            detail[x].append(ROUND[axis](probe, x, r))
    out: dict[str, list[float]] = {"mount_ms": [median(mounts[x]) * 1000 for x in xs]}
    for key, best in BEST.items():
        if key in detail[xs[0]][0]:
            out[key] = [best(d[key] for d in detail[x]) for x in xs]
    for i, x in enumerate(xs):
        log(f"  {NAME[axis](x)}: " + ", ".join(f"{k} {v[i]:,.1f}" for k, v in out.items()))
    return out


def build(s: Sizes, log: Log) -> dict[str, dict[int, Path]]:
    """The VMs of every axis, built or taken from the cache."""
    return {
        "folder": {n: gd.folder_vm(n, log) for n in s.entries},
        "chain": gd.chain_vms(list(s.depths), log),
        "disk": {n: gd.disk_vm(n, log) for n in s.disks},
    }


def measure(data: Path, s: Sizes, log: Log = print, rounds: int = DETAIL_ROUNDS) -> dict[str, Any]:
    """Build (or reuse) the VMs, measure every axis on one server and return the results' JSON."""
    t0 = time.perf_counter()
    vms = build(s, log)
    built = {
        axis: {str(x): gd.build_seconds(_cache_dir(p)) for x, p in got.items()} for axis, got in vms.items()
    }
    linked = {NAME[axis](x): p for axis, got in vms.items() for x, p in got.items()}
    datastore = gd.link_datastore(linked, data / "datastore")
    xs_of = {"folder": s.entries, "chain": s.depths, "disk": s.disks}
    measured = {}
    load = [os.getloadavg()[0]]
    with server(data / "server", datastore, extra="[mounts]\nkeep_idle = 0\n") as srv:
        probe = Probe(srv.base, srv.process.pid, data / "work")
        for axis in METRICS:
            log(f"  {TITLES[axis][0].lower()} ...")
            measured[axis] = measure_axis(probe, axis, xs_of[axis], rounds, log)
            load.append(os.getloadavg()[0])
    return {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.perf_counter() - t0,
        "rounds": {"mount": ROUNDS, "detail": rounds},
        "load_average": load,
        "build_seconds": built,
        "axes": {axis: axis_doc(axis, xs_of[axis], measured[axis]) for axis in METRICS},
    }


def _cache_dir(vm: Path) -> Path:
    """The cached ``vm`` folder a VM lives in (chain VMs are one level below it)."""
    return vm if (vm.parent / "done").exists() else vm.parent


RESULTS = REPO / "bench" / "results"


def run(
    data: Path,
    s: Sizes | None = None,
    log: Log = print,
    results: Path | None = None,
    plot: Path | None = None,
    rounds: int = DETAIL_ROUNDS,
) -> list[Row]:
    """Measure, print each axis's table, save ``growth.json`` in ``results`` (``bench/results/``)
    and, when ``plot`` is given, draw it there with the plot's own virtualenv (bench/growthplot.py)."""
    doc = measure(data, s or sizes(), log, rounds)
    log("\n" + tables(doc))
    out = results or RESULTS
    out.mkdir(parents=True, exist_ok=True)
    saved = save(doc, out)
    if plot is not None:
        from bench import growthplot

        why = growthplot.draw(saved, plot, log)
        if why:
            log(f"  no plot: {why}")
    return rows_of(doc)


def save(doc: dict[str, Any], out: Path) -> Path:
    """``out/growth.json``: the axes, and the summary rows as the other groups keep theirs."""
    saved = out / "growth.json"
    rows = [r.__dict__ for r in rows_of(doc)]
    saved.write_text(orjson.dumps({**doc, "rows": rows}, option=orjson.OPT_INDENT_2).decode())
    return saved


SIZES = sizes()
"""What ``group`` measures (``python -m bench`` sets it from --max-entries, --max-depth, --max-disk)."""


def group(_datastore: Path, data: Path) -> list[Row]:
    """The ``growth`` group of ``python -m bench``: ``SIZES``, with the plot (it needs no bench
    datastore: its VMs are its own)."""
    from bench import growthplot

    return run(data, SIZES, lambda s: print(s, flush=True), plot=growthplot.IMAGE)


def docs_block(header: str, results: Path | None = None) -> str:
    """What goes between ``<!-- growth:begin -->`` and ``<!-- growth:end -->``: the run's header and
    a table per axis, from the saved ``growth.json``."""
    doc = orjson.loads(((results or RESULTS) / "growth.json").read_bytes())
    return f"{header}\n\n{tables(doc)}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-entries", type=int, default=ENTRIES[-1], help="growth: largest folder")
    parser.add_argument("--max-depth", type=int, default=DEPTHS[-1], help="growth: deepest chain")
    parser.add_argument("--max-disk", type=parse_size, default=DISKS[-1], help="growth: largest disk (16TiB)")


def main(argv: list[str] | None = None) -> int:
    from bench.__main__ import table

    parser = argparse.ArgumentParser(prog="python -m bench.growth")
    add_arguments(parser)
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    from bench import growthplot

    with tempfile.TemporaryDirectory(prefix="bench-growth-") as data:
        rows = run(
            Path(data),
            sizes(args.max_entries, args.max_depth, args.max_disk),
            lambda t: print(t, flush=True),
            plot=None if args.no_plot else growthplot.IMAGE,
        )
    print("\n" + table(rows))
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
