"""Load (docs/SECURITY.md, "Load"): over the server-wide budget of mounts being opened or downloads streaming,
requests get 503 with an ``Error`` and ``Retry-After`` at once, not a hang; browsing stays responsive
while downloads saturate the server. Against a real `openflr serve` process."""

from __future__ import annotations

import shutil
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.flr import TOKEN, headers, list_all, mount, wait_task
from tests.api.test_downloads import file_url, points_of
from tests.imagebuilder import Fixtures
from tests.imagebuilder.hostile import SLOW, ensure_hostile
from tests.imagebuilder.large import BIG_FILE, LARGE_VM
from tests.support import (
    SHARED_SERVER,
    Api,
    RunningServer,
    add_users,
    datastore_config,
    plain_client,
    run_server,
)

LIMITS = "[limits]\nmax_concurrent_downloads = 2\nmax_concurrent_mounts = 1\nmount_timeout = 600\n"


def slow_datastore(root: Path, fixtures: Fixtures) -> Path:
    """The hostile corpus's slowest VM to open (64 disks, each a 100-layer qcow2 chain): a mount that
    stays in flight for a second or more while the test asks for another."""
    shutil.copytree(ensure_hostile(fixtures).datastore / SLOW, root / SLOW)
    return root


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory: pytest.TempPathFactory, fixtures: Fixtures) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("load-server")
    add_users(data)
    slow = slow_datastore(data / "slow-store", fixtures)
    config = (
        SHARED_SERVER
        + LIMITS
        + datastore_config(fixtures, ("qcow2", "large"))
        + f'[[datastores]]\nname = "slow"\npath = "{slow}"\njob = "SLOW Replication"\n'
    )
    with run_server(data, https=False, config=config) as server:
        yield server


@pytest.fixture
def busy(busy_server: RunningServer) -> Iterator[Api]:
    with plain_client(timeout=60) as http:
        yield Api(http, busy_server.base, "http")


def assert_busy(api: Api, method: str, url: str, token: str) -> None:
    """``url`` is refused with 503 (streamed: a wrongly accepted download is not read into memory)."""
    with api.client.stream(method, api.url(url), headers=headers(token)) as r:
        assert r.status_code == 503, r.status_code
        assert int(r.headers["Retry-After"]) > 0
        r.read()
        body = r.json()
    assert body["StatusCode"] == 503 and "busy" in body["Message"]


def test_downloads_over_the_budget_get_503_then_succeed_when_one_ends(busy: Api) -> None:
    token = busy.logon("flrop")
    m = mount(busy, token, points_of(busy, token, "LARGE Replication", LARGE_VM)[0])
    url = busy.url(file_url(m, "big:/" + BIG_FILE))
    streams = []
    readers = []  # a dropped byte iterator closes its connection: keep them
    clients = [plain_client(timeout=60) for _ in range(2)]
    try:
        for client in clients:
            # Read one chunk and stop: the server is mid-stream, blocked on a full socket.
            s = client.stream("GET", url, headers={TOKEN: token})
            r = s.__enter__()
            assert r.status_code == 200
            readers.append(r.iter_bytes(65536))
            next(readers[-1])
            streams.append(s)
        started = time.monotonic()
        assert_busy(busy, "GET", url, token)
        assert time.monotonic() - started < 10  # refused at once, not queued
        # A ZIP of a folder counts against the same budget; browsing does not.
        assert_busy(busy, "GET", f"{m}/big:/data?action=download", token)
        files, _ = list_all(busy, token, f"{m}/big:/data")
        assert files
    finally:
        for s in streams:
            s.__exit__(None, None, None)
        for client in clients:
            client.close()
    deadline = time.monotonic() + 20
    while True:  # the server notices the closed connections
        r = busy.get(url, headers={**headers(token), "Range": "bytes=0-1023"})
        if r.status_code == 206 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 206 and len(r.content) == 1024


def test_mounts_over_the_budget_get_503_until_the_slow_one_ends(
    busy: Api, busy_server: RunningServer
) -> None:
    token = busy.logon("flrop")
    slow_point = points_of(busy, token, "SLOW Replication", SLOW)[0]
    good_point = points_of(busy, token, "LARGE Replication", LARGE_VM)[0]
    r = busy.post(slow_point + "/mounts", headers=headers(token))
    assert r.status_code == 202
    slow_task = r.json()["Href"]
    # While the slow mount is being opened, the budget of one is taken.
    assert_busy(busy, "POST", good_point + "/mounts", token)
    # XML clients get the same refusal as an EM Error document.
    xml_refusal = busy.post(good_point + "/mounts", headers={TOKEN: token})
    assert xml_refusal.status_code == 503 and b"<Error" in xml_refusal.content
    assert busy.get(slow_task, headers=headers(token)).json()["State"] == "Running"
    wait_task(busy, token, slow_task, timeout=120)
    good = mount(busy, token, good_point)
    assert busy.get(good, headers=headers(token)).status_code == 200


def test_browse_stays_responsive_while_downloads_saturate(
    tmp_path_factory: pytest.TempPathFactory, fixtures: Fixtures
) -> None:
    data = tmp_path_factory.mktemp("saturated-server")
    add_users(data)
    config = SHARED_SERVER + datastore_config(fixtures, ("qcow2", "large"))
    with run_server(data, https=False, config=config) as server, plain_client(timeout=60) as http:
        api = Api(http, server.base, "http")
        token = api.logon("flrop")
        big = mount(api, token, points_of(api, token, "LARGE Replication", LARGE_VM)[0])
        win = mount(api, token, points_of(api, token, "QCOW2 Replication", "Win File Server")[-1])
        url = api.url(file_url(big, "big:/" + BIG_FILE))
        stop = threading.Event()
        moved = [0] * 4
        errors: list[str] = []

        def download(slot: int) -> None:
            with plain_client(timeout=60) as client:
                while not stop.is_set():
                    with client.stream("GET", url, headers={TOKEN: token}) as r:
                        if r.status_code != 200:
                            errors.append(f"{r.status_code}")
                            return
                        for chunk in r.iter_bytes(1 << 20):
                            moved[slot] += len(chunk)
                            if stop.is_set():
                                break

        threads = [threading.Thread(target=download, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.0)
            times = []
            for n in range(30):
                folder = ("C:/Documents", "C:/Many", "C:/Windows")[n % 3]
                started = time.monotonic()
                r = api.get(f"{win}/{folder}?action=listAll&pageSize=200", headers=headers(token))
                times.append(time.monotonic() - started)
                assert r.status_code == 200
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        assert not errors
        assert min(moved) > 50 * 1024 * 1024, moved  # every download really was streaming
        # Responsive: nothing near a client's patience (the benchmark reports real figures).
        assert max(times) < 5.0, times
        assert statistics.median(times) < 1.0, times
