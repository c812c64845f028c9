"""Three real nodes on one PostgreSQL database behind HAProxy round-robin, no stickiness: a client's
requests land on every node in turn and the flow works as on one server; the real ``veeam-em`` client
runs through the balancer; a node killed mid-flow leaves the others serving and its running restore
failed; a node stopped with SIGTERM lets its download finish and fails its restore with a message."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import text

from openflr.store.db import Database
from tests.clients.support import ClientTarget, client_venv
from tests.clients.test_veeam_em import run_flow
from tests.cluster.support import SERVED_BY, TOKEN, WIN, Cluster, run_cluster
from tests.imagebuilder import Fixtures
from tests.store.postgres import new_database
from tests.support import USERS, RunningServer, cli, plain_client, until

LIN = "lin-web01"
REPORT = "Documents/report.txt"
MEDIUM = "Data/medium.bin"


@pytest.fixture
def cluster(tmp_path: Path, fixtures: Fixtures, postgres_url: str) -> Iterator[Cluster]:
    with run_cluster(tmp_path, fixtures, new_database(postgres_url)) as running:
        yield running


class Client:
    """One client of the balancer (no cookies: only the token carries the session), noting which node
    served each request."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = plain_client(timeout=60)
        self.token = ""
        self.session = ""
        self.served: list[str] = []

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        headers = {"Accept": "application/json", **kw.pop("headers", {})}
        if self.token:
            headers[TOKEN] = self.token
        r = self.http.request(
            method, url if url.startswith("http") else self.base + url, headers=headers, **kw
        )
        self.served.append(r.headers.get(SERVED_BY, "?"))
        return r

    def logon(self, user: str = "flrop") -> None:
        r = self.request("POST", "/api/sessionMngr/?v=latest", auth=(user, USERS[user][0]))
        assert r.status_code == 201, r.text
        self.token, self.session = r.headers[TOKEN], r.headers["Location"]

    def newest_point(self, vm: str) -> str:
        r = self.request(
            "GET",
            "/api/query",
            params={
                "type": "VmReplicaPoint",
                "format": "Entities",
                "filter": f'VmName=="{vm}"',
                "sortDesc": "CreationTime",
            },
        )
        assert r.status_code == 200, r.text
        point = r.json()["Entities"]["VmReplicaPoints"]["VmReplicaPoints"][0]
        return str(point["Href"]).split("?")[0]

    def task(self, href: str, timeout: float = 60) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            r = self.request("GET", href)
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            return body if body["State"] == "Finished" else None

        return until(finished, timeout=timeout, every=0.1)

    def mount(self, point: str) -> str:
        r = self.request("POST", point + "/mounts")
        assert r.status_code == 202, r.text
        task = self.task(r.json()["Href"])
        assert task["Result"]["Success"], task
        (link,) = [lk["Href"] for lk in task["Links"] if lk["Rel"] == "Related"]
        return str(link)

    def restore(self, item: str) -> str:
        r = self.request("POST", item + "?action=restore", json={"ToOriginalLocation": {"Overwrite": False}})
        assert r.status_code == 202, r.text
        return str(r.json()["Href"])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def audit(cluster: Cluster, tmp_path: Path) -> list[dict[str, Any]]:
    out = cli(tmp_path / "admin", "audit", "--json", env={"OPENFLR_STORE_URL": cluster.database_url}).stdout
    records: list[dict[str, Any]] = json.loads(out)
    return records


def running_restores(cluster: Cluster) -> list[str]:
    """The nodes of the audit records of restores running now."""
    query = text("SELECT node FROM audit WHERE action = 'restore' AND result = 'running'")
    with Database(cluster.database_url).engine.connect() as conn:
        return list(conn.execute(query).scalars())


def test_a_client_flow_crosses_every_node(cluster: Cluster, fixtures: Fixtures, tmp_path: Path) -> None:
    files = fixtures.manifest["vms"][WIN]["p3"]["volumes"]["c"]["files"]
    client = Client(cluster.base)
    client.logon()
    for _ in range(3):  # the token made on one node is known to all
        assert client.request("GET", "/api/logonSessions").status_code == 200
    point = client.newest_point(WIN)
    mount = client.mount(point)
    r = client.request("GET", mount)
    assert r.status_code == 200 and "C:" in r.text
    for _ in range(3):  # browsed through every node, each opening the point on first use
        r = client.request("GET", mount + "/C:/Documents", params={"action": "listAll"})
        assert r.status_code == 200 and "report.txt" in r.text, r.text
        r = client.request("GET", f"{mount}/C:/{REPORT}", params={"action": "download"})
        assert r.status_code == 200 and sha256(r.content) == files[REPORT]["sha256"]
    task = client.task(client.restore(f"{mount}/C:/{REPORT}"))
    assert task["Result"]["Success"], task
    assert sha256((cluster.restored / REPORT).read_bytes()) == files[REPORT]["sha256"]
    tasks = client.request("GET", "/api/tasks").json()["Tasks"]
    assert [t["Operation"] for t in tasks] == ["MountRestorePoint", "FileRestoreFromMountPoint"]
    assert client.request("DELETE", mount).status_code == 204
    # every node forgets the mount within [sessions] recheck_seconds (1 s here)
    time.sleep(1.2)
    for _ in range(3):
        assert client.request("GET", mount).status_code == 404
    assert client.request("DELETE", client.session).status_code == 204
    time.sleep(1.2)
    for _ in range(3):
        assert client.request("GET", "/api/logonSessions").status_code == 401
    assert set(client.served) == set(cluster.nodes), client.served  # every node served this client
    records = audit(cluster, tmp_path)
    assert {(r["action"], r["result"]) for r in records} == {("download", "success"), ("restore", "success")}


def test_the_veeam_em_client_through_the_balancer(cluster: Cluster, tmp_path: Path) -> None:
    client = Client(cluster.base)
    client.logon()
    point = client.newest_point(WIN).rsplit("/", 1)[1]
    haproxy = RunningServer(cluster.base, None, tmp_path, cluster.haproxy_log, 0)  # type: ignore[arg-type]
    target = ClientTarget(haproxy, "flrop", USERS["flrop"][0], point)
    seen = run_flow(client_venv("veeam-em", "veeam-em==2022.11.0"), target, "json")
    assert seen["mount_task"] == ["MountRestorePoint", True]
    assert seen["restore_task"] == ["FileRestoreFromMountPoint", True]
    assert seen["unmount"] == 204 and seen["logout"] == 204 and seen["sha256"]
    # Its check right after the logout may land on a node whose copy of the session is younger than
    # [sessions] recheck_seconds (1 s here); past that every node refuses the token.
    # (test_a_client_flow_crosses_every_node shows that); the database has it ended.
    assert seen["after_logout"] in (200, 401)
    with Database(cluster.database_url).engine.connect() as conn:
        ended = conn.execute(text("SELECT end_reason FROM logon_sessions WHERE ended")).scalars().all()
    assert ended == ["logout"]


def test_a_killed_node_leaves_the_others_serving_and_its_restore_failed(
    cluster: Cluster, fixtures: Fixtures, tmp_path: Path
) -> None:
    files = fixtures.manifest["vms"][WIN]["p3"]["volumes"]["c"]["files"]
    other = Client(cluster.base)  # a second client, in the middle of its own flow
    other.logon()
    mount = other.mount(other.newest_point(WIN))
    victim = cluster.nodes["node1"]
    # the restore runs on node1 (asked of it directly); its target never answers, so it stays Running
    client = Client(cluster.base)
    client.logon()
    lin_mount = client.mount(client.newest_point(LIN))
    item = lin_mount.replace(cluster.base, victim.server.base) + "/etc/hostname"
    task = client.restore(item)
    r = client.request("GET", task)
    assert r.json()["State"] == "Running", r.text
    until(lambda: running_restores(cluster) == ["node1"])  # its audit record is written
    victim.server.process.send_signal(signal.SIGKILL)
    victim.server.process.wait(10)
    for _ in range(6):  # the other client carries on, whichever node it lands on
        r = other.request("GET", f"{mount}/C:/{REPORT}", params={"action": "download"})
        assert r.status_code == 200 and sha256(r.content) == files[REPORT]["sha256"]
    done = client.task(task, timeout=30)
    message = done["Result"]["Message"]
    assert not done["Result"]["Success"] and "node1" in message and "stopped" in message, done
    records = audit(cluster, tmp_path)
    restores = [r for r in records if r["action"] == "restore"]
    assert [(r["result"], r["message"]) for r in restores] == [("interrupted", message)], records
    # the other nodes noticed once: one of them claimed node1
    logs = "".join(node.server.log() for name, node in cluster.nodes.items() if name != "node1")
    assert logs.count("node node1 stopped sending heartbeats") == 1, logs[-3000:]
    assert client.request("GET", lin_mount).status_code == 200  # its sessions and mounts live on
    assert {"node2", "node3"} <= set(other.served)


def test_sigterm_lets_a_download_finish_and_fails_the_restore_it_cannot(
    cluster: Cluster, fixtures: Fixtures, tmp_path: Path
) -> None:
    files = fixtures.manifest["vms"][WIN]["p3"]["volumes"]["c"]["files"]
    node = cluster.nodes["node2"]
    client = Client(cluster.base)
    client.logon()
    lin_mount = client.mount(client.newest_point(LIN))
    task = client.restore(lin_mount.replace(cluster.base, node.server.base) + "/etc/hostname")
    until(lambda: running_restores(cluster) == ["node2"])
    win_mount = client.mount(client.newest_point(WIN))
    url = win_mount.replace(cluster.base, node.server.base) + f"/C:/{MEDIUM}?action=download"
    body = bytearray()
    with client.http.stream("GET", url, headers={TOKEN: client.token}) as download:
        assert download.status_code == 200
        chunks = download.iter_bytes(64 * 1024)
        body += next(chunks)
        node.server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(httpx.TransportError):  # no longer accepting
            httpx.get(node.server.base + "/api/", timeout=2)
        for chunk in chunks:
            body += chunk
            time.sleep(0.001)
    assert sha256(bytes(body)) == files[MEDIUM]["sha256"]
    assert node.server.process.wait(30) is not None
    done = client.task(task, timeout=30)  # read through the other nodes
    message = done["Result"]["Message"]
    assert not done["Result"]["Success"] and "node2 stopped" in message, done
    restores = [r for r in audit(cluster, tmp_path) if r["action"] == "restore"]
    assert [(r["result"], r["message"]) for r in restores] == [("failed", message)]
    downloads = [r for r in audit(cluster, tmp_path) if r["action"] == "download"]
    assert [r["result"] for r in downloads] == ["success"]
    with Database(cluster.database_url).engine.connect() as conn:
        assert conn.execute(text("SELECT state FROM nodes WHERE name = 'node2'")).scalar_one() == "stopped"
    assert os.path.exists(node.server.log_path)
