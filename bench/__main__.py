"""Run the benchmarks against a real ``openflr serve`` process and print every figure with its baseline.

python -m bench                 # everything
python -m bench --only mount    # one group: mount, list, memory, download, concurrency, sharedstate,
                                #   cluster, baselines, growth
python -m bench --only cluster --balance source   # the cluster's plumbing, every client on one node
python -m bench --update-docs   # also rewrite the results table in docs/BENCHMARKS.md
python -m bench --only catalog [--files N]   # the file catalog (opt-in: about 30 minutes for 1,000,000 files)
python -m bench --only growth [--max-entries N] [--max-depth N] [--max-disk SIZE]   # cost growth alone
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    baselines,
    catalog,
    cluster,
    concurrency,
    downloading,
    fixtures,
    growth,
    mounting,
    sharedstate,
)
from bench.common import Row

GROUPS = {
    "mount": mounting.mount_times,
    "list": mounting.listing_rates,
    "memory": mounting.listing_memory,
    "download": downloading.download_rates,
    "concurrency": concurrency.concurrency,
    "sharedstate": sharedstate.shared_state,
    "cluster": cluster.scale_out,
    "baselines": baselines.baselines,  # the kernel and peer tools on the same folders and file
    "growth": growth.group,  # how costs grow with folder size, chain depth and disk size (own VMs)
}
OPT_IN = ("catalog",)
"""Groups run only when named: they bring their own data (bench/catalog.py)."""
OWN_BLOCK = ("catalog", "cluster", "baselines", "growth")
"""Groups whose rows have a results block (and a results file) of their own in docs/BENCHMARKS.md:
their baselines are of another kind (the walk of the catalog's volume, one node against several, the
kernel and peer tools), and an ``--only`` run of one of them must not replace the main table."""
NO_DATASTORE = ("sharedstate", "growth")
"""Groups that need no bench datastore (bench/sharedstate.py works on logon sessions only;
bench/growth.py builds VMs of its own)."""
DOC = fixtures.REPO / "docs" / "BENCHMARKS.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def table(rows: list[Row]) -> str:
    lines = [
        "| figure | value | baseline (same run) | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        met = "—" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.figure} | {r.value} | {r.baseline} | {r.ratio} | {r.target} | {met} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", default="", help="comma-separated groups: " + ", ".join([*GROUPS, *OPT_IN]))
    parser.add_argument("--files", type=int, default=catalog.FILES, help="catalog: files in the volume")
    parser.add_argument(
        "--balance",
        default=cluster.BALANCE,
        choices=cluster.BALANCES,
        help="cluster: HAProxy's balance (source pins every client here to one node: a plumbing check)",
    )
    parser.add_argument(
        "--backend",
        default="tls" if cluster.BACKEND_TLS else "plain",
        choices=("tls", "plain"),
        help="cluster: HAProxy to the nodes over TLS (as docs/DEPLOYMENT.md) or plain HTTP (TLS offload)",
    )
    growth.add_arguments(parser)
    parser.add_argument("--update-docs", action="store_true")
    args = parser.parse_args()
    cluster.BALANCE = args.balance
    cluster.BACKEND_TLS = args.backend == "tls"
    growth.SIZES = growth.sizes(args.max_entries, args.max_depth, args.max_disk)
    groups = [g for g in args.only.split(",") if g] or list(GROUPS)
    start = time.perf_counter()
    print("building or reusing the bench datastore ...", flush=True)
    datastore = fixtures.ensure() if set(groups) - set(OPT_IN) - set(NO_DATASTORE) else fixtures.CACHE
    print(f"  {datastore} ({time.perf_counter() - start:.0f}s)", flush=True)
    rows: list[Row] = []
    opt_rows: dict[str, list[Row]] = {}
    for name in groups:
        t = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as data:
            if name == "catalog":
                got = opt_rows[name] = catalog.run(Path(data), args.files, lambda s: print(s, flush=True))
            else:
                got = GROUPS[name](datastore, Path(data))
                if name in OWN_BLOCK:
                    opt_rows[name] = got
                else:
                    rows += got
        print(f"\n[{name}] {time.perf_counter() - t:.0f}s\n" + table(got), flush=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"Run {stamp} on {platform.node()} ({platform.machine()}, Python {platform.python_version()}), "
        f"{time.perf_counter() - start:.0f} s in all."
    )
    print("\n" + header + "\n\n" + table([*rows, *(r for got in opt_rows.values() for r in got)]))
    out = fixtures.REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    if rows:  # opt-in groups save their own results (bench/results/catalog-<files>.json)
        (out / "latest.json").write_text(
            json.dumps({"when": stamp, "rows": [r.__dict__ for r in rows]}, indent=1, default=str)
        )
    for name in ("cluster", "baselines"):
        if name in opt_rows:
            extra = {"balance": args.balance} if name == "cluster" else {}
            (out / f"{name}.json").write_text(
                json.dumps(
                    {"when": stamp, **extra, "rows": [r.__dict__ for r in opt_rows[name]]},
                    indent=1,
                    default=str,
                )
            )
    if args.update_docs and DOC.exists():
        text = DOC.read_text()
        blocks = [(BEGIN, END, rows, header)] if rows else []
        for name, got in opt_rows.items():
            detail = {"catalog": f" {args.files:,} files.", "cluster": f" {cluster.describe(args.balance)}"}
            blocks.append(
                (f"<!-- {name}:begin -->", f"<!-- {name}:end -->", got, f"{header}{detail.get(name, '')}")
            )
        for begin, end, got, head_line in blocks:
            head, found, rest = text.partition(begin)
            if found:
                _, _, tail = rest.partition(end)
                body = growth.docs_block(head_line) if "growth" in begin else f"{head_line}\n\n{table(got)}"
                text = f"{head}{begin}\n{body}\n{end}{tail}"
        DOC.write_text(text)
    rows += [r for got in opt_rows.values() for r in got]
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
