"""Shared benchmark plumbing: a real server over the bench datastore, timing, result rows."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
from tests.support import RunningServer, add_users, plain_client, run_server

TOKEN = "X-RestSvcSessionId"
JSON = {"Accept": "application/json"}


@dataclass
class Row:
    figure: str
    value: str
    baseline: str = "—"
    ratio: str = "—"
    target: str = "—"
    met: bool | None = None
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values)


@contextmanager
def server(
    data: Path, datastore: Path, *, https: bool = False, extra: str = "", env: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    if not (data / "openflr.db").exists():
        add_users(data)
    # The file catalog is off unless a group asks for it: a build of the bench datastore in the
    # background would share the cores with what a group measures.
    catalog = "" if "[catalog]" in extra else "[catalog]\nenabled = false\n"
    config = (
        f'[[datastores]]\nname = "bench"\npath = "{datastore}"\n\n'
        "[sessions]\nmax_per_user = 100000\n[inventory]\nrescan_interval = 0\n" + catalog + extra
    )
    with run_server(data, https=https, config=config, env=env) as srv:
        yield srv


class Client:
    """A logged-on HTTP client with EM helpers."""

    def __init__(self, base: str, user: str = "flrop", password: str = "Secret1", **kw: Any) -> None:
        self.base = base
        self.http = plain_client(**kw)
        r = self.http.post(base + "/api/sessionMngr/?v=latest", auth=(user, password))
        r.raise_for_status()
        self.token = r.headers[TOKEN]
        self.headers = {TOKEN: self.token, **JSON}

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.http.get(url if url.startswith("http") else self.base + url, headers=self.headers, **kw)

    def point(self, vm: str) -> str:
        r = self.get(f"/api/query?type=VmReplicaPoint&format=Entities&filter=VmDisplayName=={vm}")
        body = r.raise_for_status().json()
        return str(body["Entities"]["VmReplicaPoints"]["VmReplicaPoints"][0]["Href"]).split("?")[0]

    def mount(self, point: str) -> tuple[str, float]:
        """Mount and wait; returns the mount href and the seconds from POST to Finished."""
        start = time.perf_counter()
        r = self.http.post(point + "/mounts", headers=self.headers)
        r.raise_for_status()
        task = r.json()
        while task["State"] != "Finished":
            time.sleep(0.002)
            task = self.get(task["Href"]).raise_for_status().json()
        elapsed = time.perf_counter() - start
        if not task["Result"]["Success"]:
            raise RuntimeError(task["Result"]["Message"])
        return next(lk["Href"] for lk in task["Links"] if lk["Rel"] == "Related"), elapsed

    def unmount(self, href: str) -> None:
        self.http.delete(href, headers=self.headers)

    def close(self) -> None:
        self.http.delete(
            self.get("/api/logonSessions").json()["LogonSessions"][0]["Href"], headers=self.headers
        )
        self.http.close()


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rss_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS since the last reset) of a process, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False
