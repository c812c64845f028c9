"""A cluster for the tests: real ``openflr serve`` nodes on one throw-away PostgreSQL database
(tests/store/postgres.py), behind HAProxy balancing round-robin without any stickiness, so that
consecutive requests of one client land on different nodes.

HAProxy names the node that answered each request in ``X-Served-By``; the tests use it to show that a
flow really crossed nodes.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx2 as httpx

from tests.imagebuilder import Fixtures
from tests.support import USERS, RunningServer, cli, free_port, run_server, until

T = TypeVar("T")
TOKEN = "X-RestSvcSessionId"
SERVED_BY = "X-Served-By"
WIN = "Win File Server"


@dataclass
class Node:
    name: str
    server: RunningServer
    stack: contextlib.ExitStack

    def stop(self) -> None:
        self.stack.close()


@dataclass
class Cluster:
    database_url: str
    base: str
    """The balancer's address (``http://127.0.0.1:PORT``)."""
    nodes: dict[str, Node]
    haproxy_log: Path
    restored: Path
    """The folder restores of ``Win File Server``'s ``C:`` write to (a file:// target)."""
    stalled: StalledTarget
    extra: dict[str, str] = field(default_factory=dict)


class StalledTarget:
    """A TCP port that accepts connections and never says anything: an SFTP restore target that
    hangs, so a restore stays Running for as long as a test needs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def node_config(
    fixtures: Fixtures, database_url: str, name: str, front: int, restored: Path, stalled: int, extra: str
) -> str:
    return f"""
[server]
public_url = "http://127.0.0.1:{front}"
trusted_proxies = "127.0.0.1"
grace_seconds = 3

[sessions]
max_per_user = 1000
recheck_seconds = 1

[cluster]
node_name = "{name}"
heartbeat_seconds = 0.5
dead_after_seconds = 3

[store]
url = "{database_url}"

[catalog]
enabled = false

[mounts]
folder_readers = 0

[restore]
connect_timeout = 120
known_hosts = "{restored.parent / "known_hosts"}"

[[datastores]]
name = "qcow2"
path = "{fixtures.datastore("qcow2")}"
job = "QCOW2 Replication"

[[datastores.guests]]
vm = "{WIN}"
targets = {{ "C:" = "file://{restored}" }}

[[datastores.guests]]
vm = "lin-*"
username = "restore"
password = "not-used-the-target-never-answers"
targets = {{ "/" = "sftp://127.0.0.1:{stalled}/" }}
{extra}"""


def haproxy_config(front: int, nodes: dict[str, int]) -> str:
    servers = "".join(f"    server {name} 127.0.0.1:{port}\n" for name, port in nodes.items())
    return f"""global
    maxconn 512

defaults
    mode http
    # a node that was killed: connections to it are refused, the request goes to another node
    retries 3
    option redispatch
    timeout connect 5s
    timeout client 5m
    timeout server 5m

frontend openflr
    bind 127.0.0.1:{front}
    option forwardfor
    default_backend openflr_nodes

backend openflr_nodes
    # No stickiness at all: every request goes to the next node.
    balance roundrobin
    http-response set-header {SERVED_BY} %s
    option httpchk GET /api/openflr/health
    http-check expect status 200
    default-server check inter 300ms fall 2 rise 2
{servers}"""


@contextlib.contextmanager
def run_cluster(
    tmp_path: Path, fixtures: Fixtures, database_url: str, count: int = 3, extra: str = ""
) -> Iterator[Cluster]:
    """``count`` nodes (``node1``...) on ``database_url`` behind HAProxy, with the test users."""
    front = free_port()
    restored = tmp_path / "restored"
    restored.mkdir()
    (tmp_path / "known_hosts").write_text("# the stalled target never shows a host key\n")
    stalled = StalledTarget()
    with contextlib.ExitStack() as stack:
        stack.callback(stalled.close)
        env = {"OPENFLR_STORE_URL": database_url}
        for user, (password, role) in USERS.items():
            cli(tmp_path / "admin", "users", "add", user, "--role", role, stdin=password + "\n", env=env)
        nodes: dict[str, Node] = {}
        for i in range(1, count + 1):
            name = f"node{i}"
            config = node_config(fixtures, database_url, name, front, restored, stalled.port, extra)
            node_stack = contextlib.ExitStack()
            server = node_stack.enter_context(run_server(tmp_path / name, https=False, config=config))
            stack.callback(node_stack.close)
            nodes[name] = Node(name, server, node_stack)
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(haproxy_config(front, {n: node.server.port for n, node in nodes.items()}))
        log = tmp_path / "haproxy.log"
        haproxy = subprocess.Popen(
            ["haproxy", "-db", "-f", str(cfg)],
            stdout=stack.enter_context(open(log, "wb")),
            stderr=subprocess.STDOUT,
        )
        stack.callback(haproxy.wait, 10)
        stack.callback(haproxy.terminate)
        base = f"http://127.0.0.1:{front}"
        cluster = Cluster(database_url, base, nodes, log, restored, stalled)
        served: set[str] = set()

        def all_up() -> bool:
            r = httpx.get(base + "/api/openflr/health?check=live", timeout=5)
            served.add(r.headers.get(SERVED_BY, ""))
            return served >= set(nodes)

        until(all_up, timeout=60)
        yield cluster
