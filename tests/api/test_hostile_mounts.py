"""A real ``openflr serve`` over the hostile corpus (tests/imagebuilder/hostile): every hostile VM is
refused at scan, or its mount task fails cleanly, or it mounts and its listings answer with an EM
``Error`` where they cannot be read; the good VM mounts and lists all along; the server stays up with
bounded memory. And the mount timeout: a point too slow to open fails its task with a timeout message,
the opening thread is told to stop, and the server serves others meanwhile."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from openflr.core.mounts import MountManager
from openflr.errors import UnavailableError
from openflr.guestfs.errors import OpenCancelledError
from openflr.inventory.model import DiskChain, Replica, ReplicaPoint
from tests.api.flr import headers, roots, wait_task
from tests.imagebuilder import Fixtures
from tests.imagebuilder.hostile import GOOD, SLOW, Hostile, ensure_hostile
from tests.support import Api, RunningServer, add_users, plain_client, run_server

TASK_BOUND = 30.0
"""Seconds within which every mount task must finish (the server's mount timeout is 20 s)."""
RSS_BOUND_MIB = 1536


@pytest.fixture(scope="module")
def hostile(fixtures: Fixtures) -> Hostile:
    return ensure_hostile(fixtures)


def _config(hostile: Hostile, mount_timeout: float) -> str:
    return (
        f'[[datastores]]\nname = "hostile"\npath = "{hostile.datastore}"\njob = "Hostile Replication"\n\n'
        "[sessions]\nmax_per_user = 1000\n[inventory]\nrescan_interval = 0\n"
        f"[limits]\nmount_timeout = {mount_timeout}\n"
    )


@pytest.fixture(scope="module")
def server(hostile: Hostile, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("hostile-server")
    add_users(data)
    with run_server(data, https=False, config=_config(hostile, 20)) as running:
        yield running


def _rss_mib(pid: int) -> tuple[int, int]:
    """(current, peak) resident memory of a process, MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


def _points(api: Api, token: str) -> dict[str, str]:
    """VM name -> href of its (only) point."""
    out = {}
    for replica in api.get("/api/replicas?format=Entity", headers=headers(token)).json()["Replicas"]:
        down = next(lk["Href"] for lk in replica["Links"] if lk["Type"] == "VmReplicaPointReferenceList")
        refs = api.get(down + "?format=Entity", headers=headers(token)).json()["VmReplicaPoints"]
        out[replica["Name"]] = str(refs[0]["Href"]).split("?")[0]
    return out


def _answer(api: Api, token: str, href: str) -> tuple[int, str]:
    """(status, what went wrong or "") of one GET that must answer: a complete document or an EM Error."""
    try:
        r = api.get(href, headers=headers(token))
    except httpx.HTTPError as exc:  # a dropped connection or a truncated body: not an answer
        return -1, f"no answer ({type(exc).__name__}: {exc})"
    try:
        body = r.json()
    except json.JSONDecodeError:
        return r.status_code, f"not a JSON document: {r.text[:200]!r}"
    if r.status_code >= 400 and not str(body.get("Message", "")).strip():
        return r.status_code, f"an error without a message: {body}"
    return r.status_code, ""


@dataclass
class Outcome:
    name: str
    task_secs: float
    total_secs: float = 0.0
    success: bool | None = None
    message: str = ""
    listings: list[tuple[str, int]] | None = None
    failures: list[str] | None = None


def _try(api: Api, token: str, name: str, point: str) -> Outcome:
    start = time.monotonic()
    r = api.post(point + "/mounts", headers=headers(token))
    if r.status_code != 202:
        return Outcome(
            name, 0.0, success=None, message=f"POST mounts answered {r.status_code}: {r.text[:300]}"
        )
    task = wait_task(api, token, r.json()["Href"], timeout=TASK_BOUND)
    out = Outcome(
        name, time.monotonic() - start, success=task["Result"]["Success"], message=task["Result"]["Message"]
    )
    out.listings, out.failures = [], []
    if not out.success:
        return out
    related = [lk["Href"] for lk in task["Links"] if lk["Rel"] == "Related"]
    if not related:
        out.failures.append(f"a successful mount task without a link to the mount: {task}")
        return out
    href = related[0]
    body = api.get(href, headers=headers(token)).json()
    found = (body.get("FSRoots") or {}).get("DirectoryEntries") or []
    for path, root in ((r["Path"], r["Href"]) for r in found):
        for query in ("?action=listAll&pageSize=50", "?action=listAll"):
            status, problem = _answer(api, token, root + query)
            out.listings.append((path + query, status))
            if problem:
                out.failures.append(f"{path}{query}: {problem}")
    api.delete(href, headers=headers(token))
    out.total_secs = time.monotonic() - start
    return out


def _good_vm_works(api: Api, token: str, point: str) -> None:
    r = api.post(point + "/mounts", headers=headers(token))
    task = wait_task(api, token, r.json()["Href"], timeout=TASK_BOUND)
    assert task["Result"]["Success"], task
    href = next(lk["Href"] for lk in task["Links"] if lk["Rel"] == "Related")
    (root,) = roots(api, token, href).values()
    body = api.get(root + "/tmp?action=listAll", headers=headers(token)).json()
    files = [f["Name"] for f in (body["Files"] or {}).get("FileEntries", [])]
    assert files == ["scratch.txt"], body
    data = api.get(root + "/tmp/scratch.txt?action=download", headers={"X-RestSvcSessionId": token})
    assert data.status_code == 200 and data.content, data.text[:300]
    api.delete(href, headers=headers(token))


def test_every_hostile_vm_fails_cleanly_and_the_server_serves_on(
    server: RunningServer, hostile: Hostile
) -> None:
    api = Api(plain_client(timeout=60), server.base, "http")
    token = api.logon("admin")
    points = _points(api, token)
    assert GOOD in points
    # Folders the scan refused are reported (and skipped), never fatal to the scan.
    log = server.log()
    for name in hostile.cases:
        if name not in points:
            assert f"skipped VM folder {hostile.datastore / name}" in log, name

    stop = threading.Event()
    good_errors: list[str] = []

    def keep_checking_good_vm() -> None:
        client = Api(plain_client(timeout=60), server.base, "http")
        own = client.logon("flrop")
        while not stop.is_set():
            try:
                _good_vm_works(client, own, points[GOOD])
            except (AssertionError, httpx.HTTPError, KeyError) as exc:
                good_errors.append(repr(exc)[:500])
            stop.wait(0.5)

    checker = threading.Thread(target=keep_checking_good_vm)
    checker.start()
    try:
        todo = sorted(n for n in points if n != GOOD)

        local = threading.local()

        def one(name: str) -> Outcome:
            if not hasattr(local, "api"):  # one client and logon session per worker thread
                local.api = Api(plain_client(timeout=60), server.base, "http")
                local.token = local.api.logon("flrop")
            return _try(local.api, local.token, name, points[name])

        with ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(one, todo))
    finally:
        stop.set()
        checker.join()

    summary = {
        o.name: {
            "success": o.success,
            "message": o.message,
            "secs": round(o.task_secs, 2),
            "total": round(o.total_secs, 2),
            "failures": o.failures,
        }
        for o in outcomes
    }
    (server.data_dir / "hostile-mounts.json").write_text(json.dumps(summary, indent=1))
    assert server.process.poll() is None, server.log()[-5000:]
    problems = []
    for out in outcomes:
        case = hostile.cases[out.name]
        if out.success is None:
            problems.append(f"{out.name}: {out.message}")
        elif out.success is False and not out.message.strip():
            problems.append(f"{out.name}: failed without a message")
        elif case["expect"] == "fail" and out.success:
            problems.append(f"{out.name}: mounted, but must be refused")
        elif case["expect"] == "degraded" and not out.success:
            problems.append(f"{out.name}: refused, but must mount without the damaged part")
        if out.failures:
            problems.append(f"{out.name}: {out.failures}")
        if out.task_secs > TASK_BOUND:
            problems.append(f"{out.name}: the mount task took {out.task_secs:.1f} s")
    assert not problems, "\n".join(problems)
    assert not good_errors, good_errors
    assert any(not o.success for o in outcomes) and any(o.success for o in outcomes)
    _good_vm_works(api, token, points[GOOD])
    # No request ended in an unhandled error, no mount in an "internal error", nothing was logged
    # with a stack trace: every hostile input met a typed error with a message.
    assert "Traceback" not in server.log(), server.log()[-5000:]
    current, peak = _rss_mib(server.process.pid)
    (server.data_dir / "hostile-rss.json").write_text(json.dumps({"current_mib": current, "peak_mib": peak}))
    assert peak < RSS_BOUND_MIB, (current, peak)


def test_mount_timeout_fails_the_task_and_frees_the_server(
    hostile: Hostile, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = tmp_path_factory.mktemp("timeout-server")
    add_users(data)
    with run_server(data, https=False, config=_config(hostile, 0.5)) as server:
        api = Api(plain_client(timeout=60), server.base, "http")
        token = api.logon("flrop")
        points = _points(api, token)
        start = time.monotonic()
        r = api.post(points[SLOW] + "/mounts", headers=headers(token))
        task = wait_task(api, token, r.json()["Href"], timeout=15)
        took = time.monotonic() - start
        assert task["Result"]["Success"] is False, task
        assert "took longer than the mount timeout (0.5 s)" in task["Result"]["Message"], task
        assert took < 5, took
        # The server serves others at once, and the opening thread noticed the cancel flag and ended.
        _good_vm_works(api, token, points[GOOD])
        deadline = time.monotonic() + 15
        while "finished after all" not in server.log():
            assert time.monotonic() < deadline, server.log()[-3000:]
            time.sleep(0.1)
        assert server.process.poll() is None


# --- the mount manager's own bounds (in-process) -------------------------------------------------------


def _point(n: int) -> tuple[Replica, ReplicaPoint]:
    point = ReplicaPoint(f"p{n}", "r", datetime.now(UTC), (DiskChain("disk0", (Path("x"),), "raw", 1),))
    replica = Replica("r", "ds", "job", "vm", "vm", "KVM", Path("."), (point,))
    return replica, point


def test_stuck_openings_are_bounded() -> None:
    """Openings that ignore the cancel flag (a read blocked on a dead share) stay bounded."""
    release = threading.Event()
    calls: list[str] = []

    def opener(point: ReplicaPoint, _os: str) -> Any:
        calls.append(point.id)
        release.wait(30)
        return _FakeView()

    manager = MountManager(opener=opener, open_timeout=0.2, max_stuck=2)
    with pytest.raises(OpenCancelledError, match="took longer than the mount timeout"):
        manager._acquire(*_point(1))
    with pytest.raises(UnavailableError, match="still running"):  # the same point: not again
        manager._acquire(*_point(1))
    with pytest.raises(OpenCancelledError):
        manager._acquire(*_point(2))
    with pytest.raises(UnavailableError, match="2 earlier mounts timed out"):  # the cap on stuck threads
        manager._acquire(*_point(3))
    assert calls == ["p1", "p2"] and sorted(manager.stuck()) == ["p1", "p2"]
    release.set()
    deadline = time.monotonic() + 10
    while manager.stuck():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert _FakeView.closed == 2  # the late views were closed, not leaked
    assert isinstance(manager._acquire(*_point(3)), _FakeView)


class _FakeView:
    closed = 0

    def close(self) -> None:
        _FakeView.closed += 1
