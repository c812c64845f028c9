"""Scale-out: three ``openflr serve`` nodes on one PostgreSQL database behind HAProxy, against one
node on SQLite, in the same run.

- baseline: one node on SQLite (the default store), clients talking to it directly over HTTPS;
- the balancer's hop: one node on SQLite behind the same HAProxy configuration, which parts what the
  hop costs from what the nodes sharing state cost;
- cluster: ``NODES`` nodes, each with ``[store] url`` naming one database of a throw-away PostgreSQL
  cluster (``initdb``/``pg_ctl`` in a temporary directory, tests/store/postgres.py) and the same
  datastore, behind HAProxy (``haproxy -db -f haproxy.cfg``), which terminates the clients' TLS and
  speaks plain HTTP (``BACKEND_TLS``) to the nodes, with ``balance BALANCE`` and no stickiness (no
  cookie), so any node may serve any request.

Figures, each next to the single node's: the listing rate of a 100,000-entry folder through the API
(bench/mounting.py's measure), the download rate of a 2 GiB file (bench/downloading.py's) with the
CPU seconds per GB it cost the nodes, HAProxy and curl, and bench/concurrency.py's 50 sessions
(errors, listing p50/p99, total throughput). Rounds of the setups alternate, for every figure, so
load from other work on the machine falls on all alike. First a probe: one logon through the
balancer, then requests with its token; a setup that loses sessions between nodes shows there, and
every figure it fails is a row that says so (``met`` False), not a crash.

``BALANCE`` is ``uri``, the setting docs/DEPLOYMENT.md recommends; ``roundrobin`` spreads every
request; ``source`` checks the plumbing with one node doing all the work: every client here comes
from 127.0.0.1, so a hash of the source address pins them all to one node
(``python -m bench --only cluster --balance source``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import re
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx2 as httpx
import psycopg
from tests.store.postgres import run_postgres
from tests.support import USERS, RunningServer, cli, free_port, plain_client, run_server

from bench import concurrency, downloading, mounting
from bench.common import JSON, TOKEN, Client, Row

T = TypeVar("T")

BALANCE = "uri"
"""HAProxy's ``balance`` for the cluster: docs/DEPLOYMENT.md's choice for speed (below);
``roundrobin`` spreads every request; ``source`` pins every client here to one node."""
BALANCES = ("roundrobin", "uri", "source", "leastconn")
BALANCE_LINES = {"uri": "uri depth 3"}
"""``uri``: the first three path segments pick the node (``/api/vmReplicaPoints/<id>``), so every
request for one point goes to one node while it is up, whatever the session: that node's opened point
and listing cache serve them all. Any node can still serve any request (consistent hashing moves a
stopped node's share to the others)."""
BACKEND_TLS = False
"""False: plain HTTP from HAProxy to the nodes, the balancer's TLS alone (offload on a private network,
docs/DEPLOYMENT.md's choice for speed), which saves a decryption and an encryption of every byte on
the cores the nodes share here; True: TLS to the nodes, as DEPLOYMENT's example."""
NODES = 3
NO_LOSS = 0.9
"""A cluster figure meets its target at this fraction of the single node's or better."""
LISTED = ("many-ext4", "many:/many", "ext4")
ROUNDS = 3
DOWNLOADS = 2
SESSION_ROUNDS = 2
"""Rounds of the sessions, alternating between the setups like the listings: the best counts."""
SESSIONS = 50
PROBES = 12
DATABASE = "openflr"
FILE_SIZE = 2 * 1024 * 1024 * 1024
"""bench/fixtures.py's ``two-gib.bin``."""

ACCESS_LINE = re.compile(r" (?:GET|POST|PUT|PATCH|DELETE|HEAD) /\S* \d{3} [\d.]+ms")
"""An access-log line of a node (``127.0.0.1 GET /api/query 200 2.8ms``); health checks log at debug."""


@dataclass
class Setup:
    """Where clients talk to (``base``, no ``/api``) and the servers behind it."""

    name: str
    base: str
    servers: list[RunningServer] = field(default_factory=list)
    balancer: int | None = None
    """HAProxy's process id, when there is one."""

    def served(self) -> list[int]:
        """Requests each node has logged so far (access-log lines)."""
        return [len(ACCESS_LINE.findall(s.log())) for s in self.servers]

    def cpu(self) -> Cpu:
        """CPU seconds used so far by the nodes, the balancer and this process's waited children
        (the clients: curl)."""
        nodes = sum(cpu_seconds(s.process.pid) for s in self.servers)
        balancer = cpu_seconds(self.balancer) if self.balancer else 0.0
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return Cpu(nodes, balancer, children.ru_utime + children.ru_stime)


@dataclass(frozen=True)
class Cpu:
    """CPU seconds by role; a difference of two is what one measure cost."""

    nodes: float = 0.0
    balancer: float = 0.0
    client: float = 0.0

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.nodes - other.nodes, self.balancer - other.balancer, self.client - other.client)

    def per(self, amount: float) -> Cpu:
        return Cpu(self.nodes / amount, self.balancer / amount, self.client / amount)


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of ``pid`` and of the children it has waited for
    (``/proc/PID/stat``), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def self_signed(folder: Path, name: str = "node") -> tuple[Path, Path]:
    """A self-signed certificate and its key: every node serves it and HAProxy trusts it (``ca-file``)."""
    key, cert = folder / f"{name}.key", folder / f"{name}.crt"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=flr.example.com", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def node_config(datastore: Path, cert: Path, key: Path, store_url: str = "", public_url: str = "") -> str:
    """One node's configuration: the bench datastore, the shared certificate, cold mounts
    (``keep_idle = 0``, as the listing bench), no catalog builds (each node would catalogue the whole
    datastore on the two cores: three builds against one)."""
    server = f'[server]\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
    if public_url:
        server += f'public_url = "{public_url}"\ntrusted_proxies = "127.0.0.1"\n'
    store = f'[store]\nurl = "{store_url}"\n' if store_url else ""
    return (
        server
        + store
        + f'[[datastores]]\nname = "bench"\npath = "{datastore}"\n'
        + "[sessions]\nmax_per_user = 100000\n[inventory]\nrescan_interval = 0\n"
        + "[mounts]\nkeep_idle = 0\n[catalog]\nenabled = false\n"
    )


def haproxy_config(
    front: int, pem: Path, ca: Path, ports: list[int], balance: str, backend_tls: bool = True
) -> str:
    """docs/DEPLOYMENT.md's example without its stickiness (no cookie; ``balance`` as given), on
    127.0.0.1: TLS from the clients ends here, TLS to the nodes is checked against ``ca``."""
    if balance not in BALANCES:
        raise ValueError(f"balance {balance!r}: one of {', '.join(BALANCES)}")
    servers = "".join(f"    server flr{i} 127.0.0.1:{port}\n" for i, port in enumerate(ports, 1))
    hashing = "    hash-type consistent\n" if balance in ("source", "uri") else ""
    return (
        "global\n"
        "    maxconn 4096\n"
        "\n"
        "defaults\n"
        "    mode http\n"
        "    timeout connect 5s\n"
        "    timeout client 5m\n"
        "    timeout server 1h\n"
        "\n"
        "frontend openflr\n"
        f"    bind 127.0.0.1:{front} ssl crt {pem}\n"
        "    option forwardfor\n"
        "    default_backend openflr_nodes\n"
        "\n"
        "backend openflr_nodes\n"
        f"    balance {BALANCE_LINES.get(balance, balance)}\n"
        f"{hashing}"
        "    option httpchk GET /api/openflr/health\n"
        "    http-check expect status 200\n"
        f"    default-server {f'ssl verify required ca-file {ca} ' if backend_tls else ''}"
        "check inter 2s fall 2 rise 2\n"
        f"{servers}"
    )


@contextlib.contextmanager
def single_node(data: Path, datastore: Path, cert: Path, key: Path) -> Iterator[Setup]:
    """The baseline: one node on SQLite (its data directory's ``openflr.db``), over HTTPS."""
    config = node_config(datastore, cert, key)
    data.mkdir(parents=True, exist_ok=True)
    (data / "openflr.toml").write_text(config)  # what `openflr users` reads; run_server writes it too
    _add_users(data)
    with run_server(data, https=True, config=config) as srv:
        yield Setup("one node, SQLite", srv.base, [srv])


@contextlib.contextmanager
def one_behind_haproxy(
    data: Path, datastore: Path, cert: Path, key: Path, balance: str = BALANCE, backend_tls: bool = True
) -> Iterator[Setup]:
    """One node on SQLite behind the cluster's HAProxy configuration: the balancer's hop alone, with
    no shared store and no other node, to tell what the hop costs from what the nodes share."""
    front = free_port()
    base = f"https://127.0.0.1:{front}"
    config = node_config(datastore, cert, key, public_url=base)
    data.mkdir(parents=True, exist_ok=True)
    (data / "openflr.toml").write_text(config)
    _add_users(data)
    with run_server(data, https=backend_tls, config=config) as srv:
        with _front(data, front, cert, key, [srv.port], balance, backend_tls) as proxy:
            yield Setup("one node, SQLite, behind HAProxy", base, [srv], proxy.pid)


@contextlib.contextmanager
def _front(
    data: Path, front: int, cert: Path, key: Path, ports: list[int], balance: str, backend_tls: bool
) -> Iterator[subprocess.Popen[bytes]]:
    """HAProxy on ``front`` in front of ``ports``, with the nodes' certificate as its own."""
    pem = data / "front.pem"
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    config = haproxy_config(front, pem, cert, ports, balance, backend_tls)
    with haproxy(data, config, f"https://127.0.0.1:{front}") as proc:
        yield proc


def _add_users(data: Path) -> None:
    """The bench's users, into the store the data directory's ``openflr.toml`` names."""
    for name, (password, role) in USERS.items():
        cli(data, "users", "add", name, "--role", role, stdin=password + "\n")


@contextlib.contextmanager
def haproxy(folder: Path, config: str, base: str) -> Iterator[subprocess.Popen[bytes]]:
    """``haproxy -db -f haproxy.cfg`` in ``folder``, until it stops; waits until ``base`` answers."""
    cfg = folder / "haproxy.cfg"
    cfg.write_text(config)
    with open(folder / "haproxy.log", "wb") as log:
        proc = subprocess.Popen(
            ["haproxy", "-db", "-f", str(cfg)], cwd=folder, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError("haproxy exited:\n" + (folder / "haproxy.log").read_text())
            try:
                if httpx.get(base + "/api/", verify=False, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("haproxy did not answer:\n" + (folder / "haproxy.log").read_text())
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def cluster(
    data: Path,
    datastore: Path,
    cert: Path,
    key: Path,
    nodes: int = NODES,
    balance: str = BALANCE,
    backend_tls: bool = True,
) -> Iterator[Setup]:
    """``nodes`` nodes on one PostgreSQL database behind HAProxy; clients talk to HAProxy."""
    with run_postgres() as pg_url:
        with psycopg.connect(pg_url.replace("+psycopg", "", 1), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        store_url = pg_url.rsplit("/", 1)[0] + "/" + DATABASE
        front = free_port()
        base = f"https://127.0.0.1:{front}"
        config = node_config(datastore, cert, key, store_url, public_url=base)
        dirs = [data / f"node{i}" for i in range(1, nodes + 1)]
        for d in dirs:
            d.mkdir(parents=True)
            (d / "openflr.toml").write_text(config)
        cli(dirs[0], "db", "upgrade")  # once, before the nodes start (each would otherwise race to)
        _add_users(dirs[0])  # the accounts are in the shared database: every node knows them
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(run_server(d, https=backend_tls, config=config)) for d in dirs]
            ports = [s.port for s in servers]
            proxy = stack.enter_context(_front(data, front, cert, key, ports, balance, backend_tls))
            hop = "TLS" if backend_tls else "plain HTTP"
            name = f"{nodes} nodes, PostgreSQL, HAProxy balance {balance}, {hop} to the nodes"
            yield Setup(name, base, servers, proxy.pid)


# --- measures: each raises on a failed request; ``attempt`` turns that into a failed row -----------


def probe(base: str, requests: int = PROBES) -> tuple[int, list[str]]:
    """One logon, then ``requests`` calls with its token: how many answered 200, and what the others
    answered (a node that does not know the session says 401)."""
    http = plain_client()
    try:
        r = http.post(base + "/api/sessionMngr/?v=latest", auth=("flrop", USERS["flrop"][0]))
        r.raise_for_status()
        headers = {TOKEN: r.headers[TOKEN], **JSON}
        ok, other = 0, []
        for _ in range(requests):
            r = http.get(base + "/api/logonSessions", headers=headers)
            if r.status_code == 200:
                ok += 1
            else:
                other.append(str(r.status_code))
        return ok, other
    finally:
        http.close()


def entries(base: str, vm: str, folder: str) -> int:
    """How many entries ``folder`` holds (one entry per page with ``pageSize=1``)."""
    client = Client(base)
    mount, _ = client.mount(client.point(vm))
    body = client.get(f"{mount}/{folder}?action=listAll&pageSize=1").json()
    client.unmount(mount)
    client.close()
    return int(body["PagingInfo"]["PagesCount"])


def listing_seconds(base: str, vm: str, folder: str, count: int, out: Path) -> float:
    """Seconds to page through ``folder`` (pageSize=1000) with one curl, on a fresh (cold) mount;
    every entry must come back."""
    client = Client(base)
    try:
        mount, _ = client.mount(client.point(vm))
        pages = -(-count // 1000)
        url = f"{mount}/{folder}?action=listAll&pageSize=1000&page="
        for old in out.glob("page_*.json"):
            old.unlink()
        seconds = mounting._curl_pages(url, client.token, pages, out)
        seen = mounting._entries(out)
        if seen != count:
            raise RuntimeError(f"{seen:,} of {count:,} entries came back")
        client.unmount(mount)
        return seconds
    finally:
        with contextlib.suppress(Exception):  # the logout, through a balancer that may lose it
            client.close()


def download_rate(base: str) -> float:
    """MB/s of one curl download of the 2 GiB file, on a fresh mount; every byte must come back."""
    client = Client(base)
    try:
        mount, _ = client.mount(client.point(downloading.VM))
        rate, got = downloading.curl(f"{mount}/{downloading.FILE}?action=download", client.token)
        if got != FILE_SIZE:
            raise RuntimeError(f"{got:,} of {FILE_SIZE:,} bytes")
        client.unmount(mount)
        return rate
    finally:
        with contextlib.suppress(Exception):  # the logout, through a balancer that may lose it
            client.close()


class Failed(Exception):
    """What a measure failed with, kept as its result."""


def attempt(fn: Callable[[], T]) -> T | Failed:
    """``fn()``, or what it failed with: a failed request through the balancer is a figure's
    failure, not the run's."""
    try:
        return fn()
    except httpx.HTTPStatusError as exc:
        path = exc.request.url.path
        return Failed(f"{exc.response.status_code} on {exc.request.method} {path[:70]}")
    except Exception as exc:  # reported in the row
        text = str(exc).strip().splitlines()
        return Failed(f"{type(exc).__name__}: {text[0][:160] if text else ''}")


@dataclass
class Figures:
    """What one setup measured; ``None`` where every attempt failed (``errors`` says why)."""

    entries: int = 0
    listing_rate: float | None = None
    download_mbps: float | None = None
    download_cpu: Cpu | None = None
    """CPU seconds per GB of the best download, by role."""
    sessions: concurrency.Tally | None = None
    probe_ok: int = 0
    probe_other: list[str] = field(default_factory=list)
    served: list[int] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def best(self, name: str, results: list[float | Failed]) -> float | None:
        """The highest of ``results`` that did not fail; else None, and the first failure noted."""
        good = [r for r in results if not isinstance(r, Failed)]
        if good:
            return max(good)
        self.errors[name] = str(results[0]) if results else "not measured"
        return None


def measure(setups: list[Setup], work: Path) -> list[Figures]:
    """The probe, then rounds of listings, of downloads and of the sessions, each alternating between
    the setups. The first setup must list (it is the baseline)."""
    figures = [Figures() for _ in setups]
    for setup, fig in zip(setups, figures, strict=True):
        got = attempt(functools.partial(probe, setup.base))
        if isinstance(got, Failed):
            fig.probe_other = [str(got)]
        else:
            fig.probe_ok, fig.probe_other = got
    vm, folder, _ = LISTED
    count = entries(setups[0].base, vm, folder)
    listings: list[list[float | Failed]] = [[] for _ in setups]
    downloads: list[list[float | Failed]] = [[] for _ in setups]
    for _ in range(ROUNDS):
        for i, setup in enumerate(setups):
            seconds = attempt(
                functools.partial(listing_seconds, setup.base, vm, folder, count, work / f"pages-{i}")
            )
            listings[i].append(seconds if isinstance(seconds, Failed) else count / seconds)
    for _ in range(DOWNLOADS):
        for i, setup in enumerate(setups):
            before = setup.cpu()
            rate = attempt(functools.partial(download_rate, setup.base))
            downloads[i].append(rate)
            if not isinstance(rate, Failed) and rate >= max(map(_value, downloads[i])):
                figures[i].download_cpu = (setup.cpu() - before).per(FILE_SIZE / 1e9)
    sessions: list[list[concurrency.Tally | Failed]] = [[] for _ in setups]
    for _ in range(SESSION_ROUNDS):
        for i, setup in enumerate(setups):
            sessions[i].append(attempt(functools.partial(concurrency.run_sessions, setup.base, SESSIONS)))
    for i, (setup, fig) in enumerate(zip(setups, figures, strict=True)):
        fig.entries = count
        fig.listing_rate = fig.best("listing", listings[i])
        fig.download_mbps = fig.best("download", downloads[i])
        tally = best_sessions(sessions[i])
        if isinstance(tally, Failed):
            fig.errors["sessions"] = str(tally)
        else:
            fig.sessions = tally
        fig.served = setup.served()
    return figures


def _value(result: float | Failed) -> float:
    return -1.0 if isinstance(result, Failed) else result


def best_sessions(rounds: list[concurrency.Tally | Failed]) -> concurrency.Tally | Failed:
    """The round with the highest throughput, carrying every round's errors (an error in any round
    counts), or the first failure when no round ran."""
    ran = [r for r in rounds if not isinstance(r, Failed)]
    if not ran:
        return rounds[0] if rounds else Failed("not measured")
    best = max(ran, key=lambda t: t.mbps)
    errors = [e for r in ran for e in r.errors] + [str(r) for r in rounds if isinstance(r, Failed)]
    if errors != best.errors:
        merged = concurrency.Tally()
        merged.errors, merged.listing_s = errors, best.listing_s
        merged.downloaded, merged.elapsed = best.downloaded, best.elapsed
        return merged
    return best


# --- rows --------------------------------------------------------------------------------------------


def _no_loss(
    figure: str, one: float | None, many: float | None, unit: str, error: str = "", fmt: str = ",.0f"
) -> Row:
    base = "one node: failed" if one is None else f"one node {one:{fmt}}{unit}"
    if many is None:
        value = f"failed: {error}" if error else "failed"
        return Row(figure, value, base, target=f"no loss: >= {NO_LOSS}x one node", met=False, note=error)
    ratio = many / one if one else float("nan")
    return Row(
        figure,
        f"{many:{fmt}}{unit}",
        base,
        f"{ratio:.2f}x",
        f"no loss: >= {NO_LOSS}x one node",
        ratio >= NO_LOSS,
        data={"value": many, "baseline": one},
    )


def _short(error: str) -> str:
    """A session's error up to its status (``GET …/api/query: 401``), without the answer's text."""
    found = re.match(r"(.*?: \d{3})\b", error)
    return found.group(1) if found else error[:80]


def _why(one: Figures, many: Figures, name: str) -> str:
    """Why a figure failed: the cluster's error, or the single node's."""
    if name in many.errors:
        return many.errors[name]
    return f"one node: {one.errors[name]}" if name in one.errors else ""


def rows(
    one: Figures, many: Figures, balance: str = BALANCE, nodes: int = NODES, hop: Figures | None = None
) -> list[Row]:
    """The figures of the cluster (``many``) against the single node's (``one``); with ``hop`` (one
    node behind the same HAProxy), two more rows part the balancer's cost from the nodes'."""
    pinned = " (single-node pinning: every client here is 127.0.0.1)" if balance == "source" else ""
    out = [
        Row(
            f"{nodes} nodes behind HAProxy balance {balance}{pinned}: one logon, then {PROBES} requests "
            "with its token",
            f"{many.probe_ok} of {PROBES} answered 200"
            + (f" (others: {', '.join(sorted(set(many.probe_other)))})" if many.probe_other else ""),
            f"one node {one.probe_ok} of {PROBES}",
            target="all: any node knows the session",
            met=many.probe_ok == PROBES,
            note="; ".join(many.probe_other[:1]),
        )
    ]
    count = one.entries or many.entries
    fs = LISTED[2]
    out.append(
        _no_loss(
            f"listAll pageSize=1000, {count:,} entries, {fs}: entries/s through the API "
            f"(cold mount, best of {ROUNDS})",
            one.listing_rate,
            many.listing_rate,
            "/s",
            _why(one, many, "listing"),
        )
    )
    out.append(
        _no_loss(
            f"download of a 2 GiB file over HTTPS (raw disk), best of {DOWNLOADS}",
            one.download_mbps,
            many.download_mbps,
            " MB/s",
            _why(one, many, "download"),
        )
    )
    if one.download_cpu and many.download_cpu:
        out.append(_cpu_row(one.download_cpu, many.download_cpu))
    a, b = one.sessions, many.sessions
    label = f"{SESSIONS} concurrent sessions (logon, mount, 20 listings, 5 x 10 MiB, unmount, logout)"
    if b is None:
        why = many.errors.get("sessions", "")
        out.append(Row(label, f"failed: {why}", target="0 errors", met=False, note=why))
    else:
        out.append(
            Row(
                f"{label}: errors",
                f"{len(b.errors)} errors in {b.elapsed:.1f} s"
                + (f" (first: {_short(b.errors[0])})" if b.errors else ""),
                "one node: failed" if a is None else f"one node {len(a.errors)} errors in {a.elapsed:.1f} s",
                target="0 errors",
                met=not b.errors,
                note="; ".join(b.errors[:3]),
            )
        )
        out.append(
            _no_loss(
                "total throughput of those sessions (bytes downloaded / wall time)",
                None if a is None else a.mbps,
                b.mbps if b.downloaded else None,
                " MB/s",
                "no bytes came back" if not b.downloaded else "",
            )
        )
        p50, p99 = b.listing_ms(50), b.listing_ms(99)
        base_p99 = a.listing_ms(99) if a else float("nan")
        bound = max(1000.0, base_p99 / NO_LOSS) if a else 1000.0
        out.append(
            Row(
                "listing latency under that load: p50 / p99",
                f"{p50:.0f} / {p99:.0f} ms",
                "one node: failed" if a is None else f"one node {a.listing_ms(50):.0f} / {base_p99:.0f} ms",
                f"p99 {p99 / base_p99:.2f}x" if a and not math.isnan(p99 / base_p99) else "—",
                f"p99 <= 1 s, or no loss (<= one node's / {NO_LOSS})",
                p99 <= bound,  # NaN (no listing answered) is not met
            )
        )
    if hop is not None:
        out.extend(_hop_rows(one, many, hop, nodes))
    out.append(
        Row(
            "requests per node over the run (access-log lines)",
            " / ".join(f"{n:,}" for n in many.served) or "—",
            f"one node {sum(one.served):,}",
            target="reported",
        )
    )
    return out


def _cpu_row(one: Cpu, many: Cpu) -> Row:
    """Where that download's CPU went, per GB: on machines of their own the nodes' share is what
    limits them, the balancer's runs on its own cores."""
    return Row(
        "CPU seconds per GB of that download: nodes + HAProxy + curl",
        f"{many.nodes:.2f} + {many.balancer:.2f} + {many.client:.2f} s",
        f"one node {one.nodes:.2f} + curl {one.client:.2f} s",
        f"nodes {many.nodes / one.nodes:.2f}x" if one.nodes else "—",
        "reported",
    )


def _rates(fig: Figures) -> list[float | None]:
    """Listing, download and sessions' throughput, the figures the hop rows compare."""
    return [fig.listing_rate, fig.download_mbps, fig.sessions.mbps if fig.sessions else None]


def _ratios(top: Figures, bottom: Figures) -> str:
    def one(a: float | None, b: float | None) -> str:
        return f"{a / b:.2f}x" if a is not None and b else "—"

    return " / ".join(one(a, b) for a, b in zip(_rates(top), _rates(bottom), strict=True))


def _shown(fig: Figures) -> str:
    listing, download, sessions = _rates(fig)
    return " / ".join(
        "failed" if v is None else f"{v:,.0f}{unit}"
        for v, unit in ((listing, "/s"), (download, " MB/s"), (sessions, " MB/s"))
    )


def _hop_rows(one: Figures, many: Figures, hop: Figures, nodes: int) -> list[Row]:
    """Where a loss comes from: the balancer's hop (one node behind HAProxy against one node) and
    what the nodes add behind it (``nodes`` nodes against that one node behind HAProxy)."""
    what = "listing / download / sessions' throughput"
    return [
        Row(
            f"the balancer's hop alone: one node on SQLite behind the same HAProxy ({what})",
            _shown(hop),
            f"one node {_shown(one)}",
            _ratios(hop, one),
            target="reported",
        ),
        Row(
            f"what the nodes add: {nodes} nodes on PostgreSQL against that one node behind HAProxy ({what})",
            _shown(many),
            f"one node behind HAProxy {_shown(hop)}",
            _ratios(many, hop),
            target="reported",
        ),
    ]


def describe(balance: str = BALANCE, nodes: int = NODES, backend_tls: bool | None = None) -> str:
    """The line a results block of this group starts with, after the run's."""
    backend_tls = BACKEND_TLS if backend_tls is None else backend_tls
    how = "no stickiness" if balance != "source" else "no cookie"
    hop = "TLS from HAProxy to the nodes" if backend_tls else "plain HTTP from HAProxy to the nodes"
    setup = (
        f"{nodes} nodes on one PostgreSQL database behind HAProxy `balance {balance}` ({how}) "
        f"against one node on SQLite; clients speak HTTPS to both, {hop}."
    )
    if balance == "source":
        setup += (
            " **balance source (single-node pinning)**: every client here is 127.0.0.1, so one node "
            "served every request; a check of the plumbing, not the scale-out figures."
        )
    return setup


def scale_out(datastore: Path, data: Path, balance: str | None = None) -> list[Row]:
    """The ``cluster`` group of ``python -m bench``."""
    balance = balance or BALANCE
    if balance == "source":
        print(f"  [cluster] HAProxy balance {balance}: a plumbing check, not the figures", flush=True)
    cert, key = self_signed(data)
    with (
        single_node(data / "single", datastore, cert, key) as one,
        one_behind_haproxy(data / "hop", datastore, cert, key, balance, BACKEND_TLS) as hop,
        cluster(data / "cluster", datastore, cert, key, balance=balance, backend_tls=BACKEND_TLS) as many,
    ):
        fig_one, fig_hop, fig_many = measure([one, hop, many], data)
    return rows(fig_one, fig_many, balance, hop=fig_hop)


def main() -> None:
    from bench import fixtures
    from bench.__main__ import table

    parser = argparse.ArgumentParser(prog="python -m bench.cluster")
    parser.add_argument("--balance", default=BALANCE, choices=BALANCES)
    parser.add_argument("--backend", default="plain", choices=("tls", "plain"))
    args = parser.parse_args()
    global BACKEND_TLS
    BACKEND_TLS = args.backend == "tls"
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as data:
        print(table(scale_out(fixtures.ensure(), Path(data), args.balance)))


if __name__ == "__main__":
    main()
