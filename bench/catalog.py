"""The file catalog over a large volume: build rate, size per point, search, versions, diff, and
browsing latency while a catalog builds.

Data: one ext4 volume of ``--files`` files (default 1,000,000) in folders of 100, and 20 points, each
changing 1 % of the files (60 % modified, 20 % added, 20 % removed). The first point is ``mke2fs -d``
of a generated tree of empty files; each next one is the working raw image changed with
``debugfs -w -f`` and stored as a qcow2 layer over the one before (an overlay of the raw image
rebased onto the previous layer: only the changed 4 KiB clusters), so the cache stays small. The
points form a manifest VM (``openflr-vm.toml``), so a real ``openflr serve`` can browse them too.
Everything is cached in ``.cache/bench-catalog/<files>-<key>/``, keyed by the generator's parameters.

Catalogs are built in this process with ``build_point`` (as the worker does), against the engine's
own walk of the same point (``walk_entries`` over ``open_view``) as the baseline.

python -m bench --only catalog [--files 100000]
python -m bench.catalog [--files 2000]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Client, Row, median, pct, server
from openflr.catalog import queries
from openflr.catalog.build import build_point, walk_entries
from openflr.catalog.names import NameMatch
from openflr.catalog.store import CatalogFile, Kind
from openflr.guestfs.view import open_view

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "bench-catalog"
FILES = 1_000_000
POINTS = 20
CHANGE = 0.01
PER_FOLDER = 100
LABEL = "catalog"
SEED = 20261203
VERSION = "2"  # bump when the generator below changes
EXTS = ("txt",) * 10 + ("log",) * 4 + ("dat",) * 3 + ("jpg",) * 2 + ("pdf",)
START = datetime(2026, 11, 1, 21, 0, tzinfo=UTC)


def _run(*cmd: object, cwd: Path | None = None) -> None:
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True, cwd=cwd)


def _name(i: int) -> str:
    """File i's name: mostly common extensions; ``.cfg`` for about 0.1 % of them (a small set)."""
    ext = "cfg" if i % 997 == 0 else EXTS[(i * 7919) % len(EXTS)]
    return f"f{i:07d}.{ext}"


def _folder(i: int) -> str:
    leaf = i // PER_FOLDER
    return f"/data/d{leaf // 100:03d}/s{leaf % 100:02d}"


def _shown(path: str) -> str:
    """A path in the volume as the catalog shows it (the volume is a drive-style root)."""
    return f"{LABEL}:{path}"


@dataclass
class Volume:
    """The cached points: each one's qcow2 chain (top first) and creation time."""

    folder: Path
    files: int
    chains: list[list[Path]]
    created: list[str]
    changes: list[dict[str, int]]


def _key(files: int) -> str:
    text = json.dumps([VERSION, files, POINTS, CHANGE, PER_FOLDER, SEED, EXTS])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def ensure_volume(files: int, log: Callable[[str], None] = print) -> Volume:
    """The points of a ``files``-file volume, built on first use (a few minutes for a million)."""
    target = CACHE / f"{files}-{_key(files)}"
    if not (target / "done.json").exists():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        for old in CACHE.glob(f"{files}-*"):  # other generator versions of this size
            shutil.rmtree(old, ignore_errors=True)
        partial.mkdir(parents=True)
        t = time.perf_counter()
        changes = _generate(partial, files, log)
        (partial / "done.json").write_text(json.dumps({"changes": changes}))
        partial.rename(target)
        log(f"  generated {files:,} files x {POINTS} points in {time.perf_counter() - t:.0f} s")
    vm = target / "vm"
    chains = [[vm / f"layer{j:02d}.qcow2" for j in range(i, -1, -1)] for i in range(POINTS)]
    created = [(START + timedelta(days=i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(POINTS)]
    changes = json.loads((target / "done.json").read_text())["changes"]
    return Volume(vm, files, chains, created, changes)


def _generate(out: Path, files: int, log: Callable[[str], None]) -> list[dict[str, int]]:
    vm = out / "vm"
    vm.mkdir()
    # Scratch on /dev/shm when it has room (a million inodes on a disk file system is slow to create).
    shm = Path("/dev/shm")
    scratch_parent = shm if shm.is_dir() and shutil.disk_usage(shm).free > 8 * 2**30 else out
    scratch = Path(tempfile.mkdtemp(prefix="bench-catalog-", dir=scratch_parent))
    try:
        src = scratch / "src"
        live: dict[str, list[str]] = {}
        for i in range(files):
            folder = _folder(i)
            names = live.get(folder)
            if names is None:
                names = live[folder] = []
                (src / folder.lstrip("/")).mkdir(parents=True)
            names.append(_name(i))
            os.close(os.open(src / folder.lstrip("/") / names[-1], os.O_CREAT | os.O_WRONLY, 0o644))
        log(f"  tree of {files:,} files written")
        raw = scratch / "work.raw"
        inodes = int(files * 1.3) + 20_000
        size_mib = max(64, (inodes * 256 + len(live) * 2 * 4096 + files * 64) * 2 // 2**20)
        _run(
            "mkfs.ext4", "-q", "-F", "-L", LABEL, "-N", inodes, "-b", "4096", "-I", "256",
            "-d", src, raw, f"{size_mib}M",
        )  # fmt: skip
        shutil.rmtree(src)
        log("  point 0: mke2fs -d done")
        _run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, vm / "layer00.qcow2")
        rng = random.Random(SEED)
        folders = sorted(live)
        changes: list[dict[str, int]] = [{}]
        for p in range(1, POINTS):
            counts = _change(scratch, raw, live, folders, rng, p, max(3, round(files * CHANGE)))
            changes.append(counts)
            # An empty overlay of the raw image, rebased (safe mode) onto the point before: qemu-img
            # copies in exactly the clusters that differ, so each layer holds only the changes.
            top = f"layer{p:02d}.qcow2"
            _run(
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-o",
                "cluster_size=4096",
                "-b",
                raw,
                "-F",
                "raw",
                top,
                cwd=vm,
            )
            _run(
                "qemu-img",
                "rebase",
                "-f",
                "qcow2",
                "-b",
                f"layer{p - 1:02d}.qcow2",
                "-F",
                "qcow2",
                top,
                cwd=vm,
            )
            log(f"  point {p}: {counts}")
        points = "".join(
            f'[[points]]\nname = "p{i:02d}"\ntime = "{(START + timedelta(days=i)).isoformat()}"\n'
            f'disks = ["layer{i:02d}.qcow2"]\n\n'
            for i in range(POINTS)
        )
        (vm / "openflr-vm.toml").write_text(
            f'name = "catalog-bench"\nplatform = "KVM"\nos = "Linux"\n\n{points}'
        )
        return changes
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _change(
    scratch: Path,
    raw: Path,
    live: dict[str, list[str]],
    folders: list[str],
    rng: random.Random,
    point: int,
    count: int,
) -> dict[str, int]:
    """Change ``count`` files of the raw image with debugfs: 60 % modified, 20 % added, 20 % removed."""
    modified, added = count * 6 // 10, count // 5
    removed = count - modified - added
    stamp = int((START + timedelta(days=point)).timestamp())
    cmds: list[str] = []
    touched: set[tuple[str, str]] = set()
    for n in range(modified + removed):
        while True:
            folder = rng.choice(folders)
            names = live[folder]
            if names:
                name = rng.choice(names)
                if (folder, name) not in touched:
                    break
        touched.add((folder, name))
        path = f"{folder}/{name}"
        if n < modified:
            cmds.append(f"sif {path} mtime @{stamp + n}")
            if n % 2:
                cmds.append(f"sif {path} size {rng.randrange(1, 1 << 20)}")
        else:
            cmds.append(f"rm {path}")
            names.remove(name)
    for n in range(added):
        folder = rng.choice(folders)
        name = f"n{point:02d}_{n:06d}.{EXTS[n % len(EXTS)]}"
        cmds.append(f"cd {folder}\nwrite /dev/null {name}")
        live[folder].append(name)
    script = scratch / "changes.cmds"
    script.write_text("\n".join(cmds) + "\n")
    _run("debugfs", "-w", "-f", script, raw)
    return {"modified": modified, "added": added, "removed": removed}


# --- measurements -------------------------------------------------------------------------------------


@dataclass
class Timing:
    entries: int
    wall: float
    cpu: float
    """This process's CPU seconds: the fair figure on a machine shared with other work."""


def _timing(fn: Callable[[], int]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    entries = fn()
    return Timing(entries, time.perf_counter() - wall, time.process_time() - cpu)


def _walk(chain: list[Path]) -> Timing:
    def go() -> int:
        view = open_view([chain], "Linux")
        try:
            return sum(1 for _ in walk_entries(view))
        finally:
            view.close()

    return _timing(go)


def _build(file: Path, vol: Volume, i: int, point_id: str = "") -> Timing:
    cat = CatalogFile(file)
    pid = point_id or f"p{i:02d}"
    cat.queue(pid, vol.created[i])
    cat.close()
    return _timing(lambda: build_point(file, pid, [[str(f) for f in vol.chains[i]]], "Linux"))


def _file_size(file: Path) -> int:
    """The catalog file's size once its write-ahead log is folded in."""
    conn = sqlite3.connect(file)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return file.stat().st_size


def _profile(fn: Callable[[], Any], lines: int = 18) -> str:
    prof = cProfile.Profile()
    prof.enable()
    try:
        fn()
    finally:
        prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(lines)
    return "\n".join(line for line in out.getvalue().splitlines() if line.strip())


def _searches(vol: Volume) -> list[tuple[str, queries.Criteria]]:
    """About 20 searches of varied selectivity: rare substrings, globs of small sets, folders."""
    n = vol.files
    folder0, folder_mid = _shown(_folder(0)), _shown(_folder(n // 2))
    top_mid = folder_mid.rsplit("/", 1)[0]
    sub, glob, exact = NameMatch.SUBSTRING, NameMatch.GLOB, NameMatch.EXACT
    return [
        ("substring of one name", queries.Criteria(name=_name(n // 3)[1:8], match=sub)),
        ("substring of one name (2)", queries.Criteria(name=_name(n - 7)[1:8], match=sub)),
        ("substring of one name (3)", queries.Criteria(name=_name(n // 7)[2:8], match=sub)),
        ("substring '99999'", queries.Criteria(name="99999", match=sub)),
        ("substring '12345'", queries.Criteria(name="12345", match=sub)),
        ("substring of added files 'n05_0001'", queries.Criteria(name="n05_0001", match=sub)),
        ("substring of added files 'n19_'", queries.Criteria(name="n19_", match=sub)),
        ("exact name", queries.Criteria(name=_name(n // 5), match=exact)),
        ("exact name (2)", queries.Criteria(name=_name(n // 9), match=exact)),
        ("glob *.cfg (0.1 %)", queries.Criteria(name="*.cfg", match=glob)),
        ("glob f00012*.cfg", queries.Criteria(name="f00012*.cfg", match=glob)),
        ("glob n1?_00000*", queries.Criteria(name="n1?_00000*", match=glob)),
        ("glob *9999.pdf", queries.Criteria(name="*9999.pdf", match=glob)),
        (f"under={folder0}", queries.Criteria(under=folder0)),
        (f"under={folder_mid}", queries.Criteria(under=folder_mid)),
        (f"under={top_mid} (100 folders)", queries.Criteria(under=top_mid)),
        (f"*.cfg under={top_mid}", queries.Criteria(name="*.cfg", match=glob, under=top_mid)),
        ("substring '0424' under d004", queries.Criteria(name="0424", under=_shown("/data/d004"))),
        ("size >= 512 KiB (modified files)", queries.Criteria(min_size=1 << 19)),
        ("folders named s42", queries.Criteria(name="s42", match=exact, kinds=frozenset({Kind.DIR}))),
    ]


def _version_paths(vol: Volume) -> tuple[list[str], list[str]]:
    """Files spread over the volume, and folders: two of 100 files, one with 10,000 below it."""
    n = vol.files
    picks = [n // 2, n // 3, n // 4, n // 6, n // 8, n - 1, 1, n // 10]
    files = [_shown(f"{_folder(i)}/{_name(i)}") for i in picks]
    folders = [_folder(n // 2), _folder(n - 1), _folder(0).rsplit("/", 1)[0]]
    return files, [_shown(f) for f in folders]


def _browse(vol: Volume, data: Path, rounds: int) -> dict[str, Any]:
    """p50/p99 of a paged listing through a real server, alone and while a catalog build runs."""
    folder = _folder(vol.files // 2)
    url_tail = f"{LABEL}:{folder}?action=listAll&pageSize=50&page="
    with server(data / "server", vol.folder.parent) as srv:
        client = Client(srv.base)
        mount, _ = client.mount(client.point("catalog-bench"))

        def lap(page: int) -> float:
            start = time.perf_counter()
            r = client.get(f"{mount}/{url_tail}{page}")
            r.raise_for_status()
            return time.perf_counter() - start

        for page in (1, 2):
            lap(page)  # warm
        alone = [lap(1 + k % 2) for k in range(rounds)]
        file = data / "browse.catalog.sqlite"
        cat = CatalogFile(file)
        cat.queue("bg", vol.created[-1])
        cat.close()
        job = json.dumps({"disks": [[str(f) for f in vol.chains[-1]]], "os": "Linux"})
        proc = subprocess.Popen(
            [sys.executable, "-m", "openflr.catalog.build", str(file), "bg", job],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        busy: list[float] = []
        start = time.perf_counter()
        while proc.poll() is None or len(busy) < 20:
            busy.append(lap(1 + len(busy) % 2))
            if len(busy) >= 200 * rounds:
                break
        proc.wait()
        build_s = time.perf_counter() - start
        client.unmount(mount)
        client.close()
    return {"alone": alone, "busy": busy, "build_s": build_s}


def run(
    data: Path, files: int = FILES, log: Callable[[str], None] = print, results: Path | None = None
) -> list[Row]:
    """Every catalog figure, over a cached ``files``-file volume of 20 points; saved as
    ``catalog-<files>.json`` in ``results`` (``bench/results/``)."""
    t0 = time.perf_counter()
    vol = ensure_volume(files, log)
    log(f"  volume ready ({time.perf_counter() - t0:.0f} s): {vol.folder}")
    file = data / "catalog.sqlite"
    rows: list[Row] = []
    profiles: dict[str, str] = {}

    # Build every point in order; the engine's walk of the same point right before its build (first,
    # second, middle and last points) is the baseline. The target is judged on CPU time: other work
    # on this shared machine stretches wall time by up to 3x from one minute to the next.
    walked_points = (0, 1, POINTS // 2, POINTS - 1)
    walks: dict[int, Timing] = {}
    builds: list[Timing] = []
    sizes: list[int] = []
    for i in range(POINTS):
        if i in walked_points:
            walks[i] = _walk(vol.chains[i])
        builds.append(_build(file, vol, i))
        sizes.append(_file_size(file))
        b = builds[-1]
        log(
            f"  built p{i:02d}: {b.entries:,} entries in {b.wall:.1f} s ({b.cpu:.1f} s CPU), "
            f"file {sizes[-1] / 2**20:.1f} MiB"
            + (f"; walk {walks[i].wall:.1f} s ({walks[i].cpu:.1f} s CPU)" if i in walks else "")
        )
    for i in walked_points:
        # The build counts the volume's top folder too.
        assert abs(walks[i].entries - builds[i].entries) <= 1 + builds[i].entries // 1000
    for label, picked in (
        ("first point (every row new)", [0]),
        ("points 1, 10, 19 (1 % changed each): median", list(walked_points[1:])),
    ):
        ratios = sorted((walks[i].cpu / builds[i].cpu, i) for i in picked)
        _ratio, i = ratios[len(ratios) // 2]
        b, w = builds[i], walks[i]
        rows.append(
            Row(
                f"catalog build, {label}: {b.entries:,} entries, CPU time",
                f"{b.entries / b.cpu:,.0f}/s ({b.cpu:.1f} s; wall {b.wall:.1f} s)",
                f"engine walk {w.entries / w.cpu:,.0f}/s ({w.cpu:.1f} s; wall {w.wall:.1f} s)",
                f"{w.cpu / b.cpu:.0%} (wall {w.wall / b.wall:.0%})",
                ">= 50% of the walk",
                w.cpu / b.cpu >= 0.5,
                data={
                    "points": {j: {"build": builds[j].__dict__, "walk": walks[j].__dict__} for j in picked}
                },
            )
        )
    incremental = median([b.cpu for b in builds[1:]])
    rows.append(
        Row(
            f"catalog build, median of the {POINTS - 1} incremental points, CPU time",
            f"{builds[1].entries / incremental:,.0f}/s ({incremental:.1f} s)",
            f"engine walk {walks[1].entries / walks[1].cpu:,.0f}/s (point 1)",
            f"{walks[1].cpu / incremental:.0%}",
            ">= 50% of the walk",
            walks[1].cpu / incremental >= 0.5,
            data={"builds": [b.__dict__ for b in builds]},
        )
    )
    if rows[0].met is False:
        fresh = data / "profile-first.catalog.sqlite"
        profiles["build of the first point"] = _profile(lambda: _build(fresh, vol, 0))
    if any(r.met is False for r in rows[1:]):
        copy = data / "profile.catalog.sqlite"
        shutil.copyfile(file, copy)
        profiles["build (an incremental point again)"] = _profile(
            lambda: _build(copy, vol, POINTS - 1, "again")
        )

    full = sizes[0]
    per_point = (sizes[-1] - sizes[0]) / (POINTS - 1)
    rows.append(
        Row(
            f"catalog size per point, {CHANGE:.0%} of files changed "
            f"(file {sizes[-1] / 2**20:.1f} MiB for {POINTS})",
            f"{per_point / 2**10:,.0f} KiB",
            f"full copy (first point alone) {full / 2**20:.1f} MiB",
            f"{per_point / full:.1%}",
            "<= 10% of a full copy",
            per_point / full <= 0.10,
            data={"sizes": sizes},
        )
    )

    cat = CatalogFile(file)
    points = [f"p{i:02d}" for i in range(POINTS)]
    try:
        first_s = _timed_once(lambda: queries.search(cat, points, queries.Criteria(name="zzzz")))
        searches = _searches(vol)
        times: list[tuple[float, str, int]] = []
        for label, criteria in searches:
            start = time.perf_counter()
            hits = queries.search(cat, points, criteria)
            times.append((time.perf_counter() - start, label, len(hits)))
        secs = [t for t, _l, _n in times]
        p50, p95 = median(secs) * 1000, pct(secs, 95) * 1000
        worst = max(times)
        rows.append(
            Row(
                f"search across {POINTS} points of {files:,} files: p50 / p95 of {len(secs)} queries",
                f"{p50:.0f} / {p95:.0f} ms",
                f"first query (bitmaps loaded) {first_s * 1000:.0f} ms",
                f"slowest: {worst[1]} ({worst[2]:,} hits) {worst[0] * 1000:.0f} ms",
                "p50 < 300 ms",
                p50 < 300,
                data={"queries": [{"query": lbl, "ms": t * 1000, "hits": n} for t, lbl, n in times]},
            )
        )
        for t, lbl, n in times:
            log(f"    search {lbl}: {n:,} hits, {t * 1000:.0f} ms")
        if p50 >= 300:
            slow = dict(searches)[worst[1]]
            profiles[f"search: {worst[1]}"] = _profile(lambda: queries.search(cat, points, slow))

        files_, folders_ = _version_paths(vol)
        for what, paths in (("a file", files_), ("a folder (with its change summary)", folders_)):
            vtimes: list[tuple[float, str, int]] = []
            for path in paths:
                start = time.perf_counter()
                got = queries.versions(cat, points, path) or []
                vtimes.append((time.perf_counter() - start, path, len(got)))
                log(f"    versions {path}: {len(got)} points, {vtimes[-1][0] * 1000:.1f} ms")
            vsecs = [t for t, _p, _n in vtimes]
            vworst = max(vtimes)
            vp50 = median(vsecs) * 1000
            rows.append(
                Row(
                    f"versions of {what} across {POINTS} points: p50 / max of {len(vsecs)} paths",
                    f"{vp50:.1f} / {vworst[0] * 1000:.1f} ms",
                    f"slowest {vworst[1]} ({vworst[2]} points)",
                    "—",
                    "p50 < 50 ms",
                    vp50 < 50,
                    data={"paths": [{"path": p, "ms": t * 1000, "points": n} for t, p, n in vtimes]},
                )
            )
            if vp50 >= 50:
                profiles[f"versions: {vworst[1]}"] = _profile(
                    lambda slowest=vworst[1]: queries.versions(cat, points, slowest)  # type: ignore[misc]
                )

        start = time.perf_counter()
        changed = list(queries.diff(cat, points[0], points[-1]))
        diff_s = time.perf_counter() - start
        tally: dict[str, int] = {}
        for d in changed:
            tally[d.change.value] = tally.get(d.change.value, 0) + 1
        expected = sum(sum(c.values()) for c in vol.changes)
        rows.append(
            Row(
                f"diff of the first and last of {POINTS} points: {len(changed):,} changes",
                f"{diff_s:.2f} s",
                f"{expected:,} changes made over {POINTS - 1} points",
                ", ".join(f"{k} {v:,}" for k, v in sorted(tally.items())),
                "< 10 s",
                diff_s < 10,
            )
        )
        if diff_s >= 10:
            profiles["diff"] = _profile(lambda: list(queries.diff(cat, points[0], points[-1])))
    finally:
        cat.close()

    rounds = 200
    browse = _browse(vol, data, rounds)
    alone, busy = browse["alone"], browse["busy"]
    a50, a99 = median(alone) * 1000, pct(alone, 99) * 1000
    b50, b99 = median(busy) * 1000, pct(busy, 99) * 1000
    rows.append(
        Row(
            f"paged listing (50 of 100 entries) through openflr serve while a {vol.files:,}-entry "
            f"catalog builds ({browse['build_s']:.0f} s): p50 / p99 of {len(busy)}",
            f"{b50:.1f} / {b99:.1f} ms",
            f"no build: {a50:.1f} / {a99:.1f} ms ({len(alone)})",
            f"{b50 / a50:.2f}x / {b99 / a99:.2f}x",
            "reported (p99 <= 1 s)",
            b99 <= 1000,
        )
    )

    for name, text in profiles.items():
        log(f"\n  profile of {name} (cProfile, by own time):\n{text}")
    out = results or REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"catalog-{files}.json").write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "files": files,
                "seconds": time.perf_counter() - t0,
                "rows": [r.__dict__ for r in rows],
                "profiles": profiles,
            },
            indent=1,
            default=str,
        )
    )
    return rows


def _timed_once(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    from bench.__main__ import table

    parser = argparse.ArgumentParser(prog="python -m bench.catalog")
    parser.add_argument("--files", type=int, default=FILES)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as data:
        rows = run(Path(data), args.files, lambda s: print(s, flush=True))
    print("\n" + table(rows))
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
