"""Every image of the hostile corpus (tests/imagebuilder/hostile), scanned and opened through the engine
the way a mount does, then listed and walked, each in a child process under a time and a memory limit.

A case passes when it opens and lists (possibly partly: folders that cannot be read are reported) or
fails with one of openflr's own errors and a message; it fails on a hang, a crash, a ``MemoryError``,
or any other exception escaping the engine. Cases marked ``fail`` must be refused.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

from tests.imagebuilder import Fixtures
from tests.imagebuilder.hostile import CASE_NAMES, GOOD, Hostile, ensure_hostile

TIME_LIMIT = 20.0
"""Seconds one case may take (scan, open, list, walk)."""
MEMORY_LIMIT = 1536 * 1024 * 1024
"""Address space of a worker process (``RLIMIT_AS``)."""
WORKERS = 2
WALK_LIMIT = 3000
"""Items walked per case (a walk that loops would never end; one that works ends well before)."""
REPO = Path(__file__).resolve().parents[2]


# --- what runs in the child ----------------------------------------------------------------------------


def open_case(folder: str, datastore: str, start: str = "") -> dict[str, Any]:
    """Scan one VM folder like the inventory does, open its point like a mount does, then list every
    root (or the folder ``start``) and walk it, reading the start of some files. Returns what happened."""
    from openflr.config import DatastoreSettings
    from openflr.errors import OpenflrError
    from openflr.guestfs.view import open_view
    from openflr.inventory import manifest
    from openflr.inventory.points import ScanContext, ScanError
    from openflr.restore.items import Problem, item_of, read_chunks, walk

    out: dict[str, Any] = {"stage": "scan"}
    try:
        ctx = ScanContext(DatastoreSettings(name="hostile", path=Path(datastore)))
        try:
            _meta, points, _access = manifest.scan(ctx, Path(folder))
        except ScanError as exc:
            return {**out, "outcome": "refused", "error": "ScanError", "message": str(exc)}
        out["stage"] = "open"
        view = open_view([d.files for d in points[0].disks])
        out.update(outcome="opened", roots=[], notes=view.notes)
        try:
            out["stage"] = "walk"
            listed = read = 0
            problems: list[Problem] = []
            tops = (
                [start] if start else [view.path_of(root, []) for root in view.roots if root.fs is not None]
            )
            out["roots"] = [{"name": r.name, "problem": r.problem} for r in view.roots if r.fs is None]
            for top in tops:
                shown: dict[str, Any] = {"name": top, "items": 0}
                out["roots"].append(shown)
                try:
                    where = view.locate(top)
                    for item in walk(view, item_of(view, where), problems):
                        listed += 1
                        shown["items"] += 1
                        if not item.is_dir and read < 50:
                            read += 1
                            try:
                                for _chunk in read_chunks(view, item, 0, 65536):
                                    pass
                            except OpenflrError as exc:
                                problems.append(Problem(item.rel, exc.message))
                        if listed >= WALK_LIMIT:
                            break
                except OpenflrError as exc:
                    shown["error"] = f"{type(exc).__name__}: {exc.message}"
            out["listed"] = listed
            out["problems"] = [f"{'/'.join(p.rel)}: {p.reason}" for p in problems][:20]
        finally:
            view.close()
        return out
    except OpenflrError as exc:
        return {**out, "outcome": "refused", "error": type(exc).__name__, "message": exc.message}
    except BaseException as exc:  # anything else escaped the engine: a bug
        return {
            **out,
            "outcome": "leaked",
            "error": type(exc).__name__,
            "message": str(exc)[:500],
            "traceback": traceback.format_exc()[-3000:],
        }


def worker_main() -> None:
    """Serve ``open_case`` requests, one JSON line in, one JSON line out, under a memory limit."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    for line in sys.stdin:
        request = json.loads(line)
        start = time.monotonic()
        result = open_case(request["folder"], request["datastore"], request.get("walk", ""))
        result["secs"] = round(time.monotonic() - start, 3)
        result["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        sys.stdout.write(json.dumps(result, default=str) + "\n")
        sys.stdout.flush()


# --- the parent: a small pool of worker processes ------------------------------------------------------


class _Worker:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from tests.guestfs.test_hostile_images import worker_main; worker_main()",
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=dict(os.environ, PYTHONFAULTHANDLER="1"),
        )

    def run(self, folder: Path, datastore: Path, walk: str = "") -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None
        start = time.monotonic()
        request = {"folder": str(folder), "datastore": str(datastore), "walk": walk}
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], TIME_LIMIT + 5.0)  # + interpreter start
        if not ready:
            self.stop()
            return {"outcome": "hang", "secs": round(time.monotonic() - start, 1)}
        line = proc.stdout.readline()
        if not line:
            code = proc.wait()
            self.proc = None
            name = signal.Signals(-code).name if code < 0 else str(code)
            return {"outcome": "crash", "error": f"worker died ({name})"}
        result: dict[str, Any] = json.loads(line)
        if result["secs"] > TIME_LIMIT:
            result["outcome"] = "slow"
        return result

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def run_corpus(hostile: Hostile, names: list[str]) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    todo = list(names)
    lock = threading.Lock()

    def drain() -> None:
        worker = _Worker()
        try:
            while True:
                with lock:
                    if not todo:
                        return
                    name = todo.pop(0)
                walk = hostile.cases.get(name, {}).get("walk", "")
                result = worker.run(hostile.datastore / name, hostile.datastore, walk)
                with lock:
                    results[name] = result
        finally:
            worker.stop()

    threads = [threading.Thread(target=drain) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# --- the tests -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile(fixtures: Fixtures) -> Hostile:
    return ensure_hostile(fixtures)


@pytest.fixture(scope="module")
def outcomes(hostile: Hostile) -> dict[str, dict[str, Any]]:
    start = time.monotonic()
    results = run_corpus(hostile, list(hostile.cases))
    secs = time.monotonic() - start
    report = REPO / ".cache" / "hostile-report.json"
    report.write_text(json.dumps({"secs": round(secs, 1), "results": results}, indent=1, default=str))
    return results


@pytest.mark.parametrize("name", CASE_NAMES)
def test_hostile_image(name: str, hostile: Hostile, outcomes: dict[str, dict[str, Any]]) -> None:
    case, result = hostile.cases[name], outcomes[name]
    shown = json.dumps(result, indent=1, default=str)[:4000]
    assert result["outcome"] in ("opened", "refused"), f"{name} ({case['kind']}): {shown}"
    if result["outcome"] == "refused":
        assert result["message"].strip(), shown
    if case["expect"] == "degraded":  # e.g. a GPT read from its backup, one entry skipped
        assert result["outcome"] == "opened", f"{name} should open, without the damaged entry: {shown}"
        assert any(n.startswith("disk 0: ") for n in result["notes"]), shown
    elif case["expect"] == "fail":
        assert result["outcome"] == "refused", f"{name} should be refused: {shown}"
    if case["expect"] == "open" or name == GOOD:
        assert result["outcome"] == "opened" and result["listed"] > 3 and not result["problems"], shown
    if case["loop"]:  # the walk met the folder again, said so, and went on (it ended: we got here)
        assert result["outcome"] == "opened", shown
        assert any("already visited" in p for p in result["problems"]), shown
