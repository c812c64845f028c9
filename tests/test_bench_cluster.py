"""The scale-out benchmark's plumbing (bench/cluster.py), without running it: the HAProxy
configuration it writes is valid, rows come out of measured and of failed figures, and (with real
processes) three nodes on one PostgreSQL database answer through HAProxy."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx2 as httpx
import pytest
from bench import cluster, concurrency
from bench.cluster import Figures

needs_haproxy = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")


@needs_haproxy
@pytest.mark.parametrize("backend_tls", [True, False], ids=["tls", "plain"])
@pytest.mark.parametrize("balance", cluster.BALANCES)
def test_the_haproxy_config_is_valid(tmp_path: Path, balance: str, backend_tls: bool) -> None:
    cert, key = cluster.self_signed(tmp_path)
    pem = tmp_path / "front.pem"
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    text = cluster.haproxy_config(8443, pem, cert, [9001, 9002, 9003], balance, backend_tls)
    assert f"balance {cluster.BALANCE_LINES.get(balance, balance)}\n" in text
    assert ("ca-file" in text) == backend_tls  # TLS to the nodes, checked, or plain HTTP
    assert "cookie" not in text  # no stickiness: only the balance decides
    assert text.count("server flr") == 3
    config = tmp_path / "haproxy.cfg"
    config.write_text(text)
    run = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "[WARNING]" not in run.stdout + run.stderr, run.stdout + run.stderr


def test_the_default_is_deployments_choice_for_speed_and_others_are_refused(tmp_path: Path) -> None:
    assert (cluster.BALANCE, cluster.BACKEND_TLS) == ("uri", False)  # docs/DEPLOYMENT.md's two choices
    with pytest.raises(ValueError, match="balance"):
        cluster.haproxy_config(8443, tmp_path / "p.pem", tmp_path / "c.pem", [9001], "random; evil")
    assert "single-node pinning" in cluster.describe("source")
    assert "pinning" not in cluster.describe("roundrobin")


def _tally(errors: int, elapsed: float, mib: int, listings: list[float]) -> concurrency.Tally:
    tally = concurrency.Tally()
    tally.errors = [f"GET x: 401 {i}" for i in range(errors)]
    tally.elapsed = elapsed
    tally.downloaded = mib * 1024 * 1024
    tally.listing_s = listings
    return tally


def _one() -> Figures:
    return Figures(
        entries=100_000,
        listing_rate=50_000.0,
        download_mbps=600.0,
        sessions=_tally(0, 20.0, 2500, [0.05] * 990 + [0.3] * 10),
        probe_ok=cluster.PROBES,
        served=[1200],
    )


def test_rows_of_a_cluster_that_keeps_up() -> None:
    many = Figures(
        entries=100_000,
        listing_rate=48_000.0,
        download_mbps=400.0,
        sessions=_tally(0, 21.0, 2500, [0.06] * 990 + [0.4] * 10),
        probe_ok=cluster.PROBES,
        served=[400, 401, 399],
    )
    rows = cluster.rows(_one(), many, "roundrobin")
    by = {r.figure.split(":")[0].split(",")[0]: r for r in rows}
    assert by["listAll pageSize=1000"].ratio == "0.96x" and by["listAll pageSize=1000"].met is True
    download = next(r for r in rows if r.figure.startswith("download"))
    assert download.ratio == "0.67x" and download.met is False  # a loss is a row not met
    assert download.baseline == "one node 600 MB/s"
    assert all(r.met is not False for r in rows if r is not download), [r for r in rows if not r.met]
    assert rows[-1].value == "400 / 401 / 399"
    assert "balance roundrobin" in rows[0].figure and "pinning" not in rows[0].figure


def test_rows_of_a_cluster_whose_nodes_do_not_share_sessions() -> None:
    """What main gives with round robin: every figure that needs a session is a failed row."""
    many = Figures(
        entries=100_000,
        sessions=_tally(50, 0.8, 0, []),
        probe_ok=4,
        probe_other=["401"] * 8,
        served=[30, 30, 29],
        errors={"listing": "401 on GET /api/query", "download": "401 on POST /api/vmReplicaPoints/1/mounts"},
    )
    rows = cluster.rows(_one(), many, "roundrobin")
    assert rows[0].value == f"4 of {cluster.PROBES} answered 200 (others: 401)" and rows[0].met is False
    listing = next(r for r in rows if r.figure.startswith("listAll"))
    assert (listing.value, listing.met, listing.note) == (
        "failed: 401 on GET /api/query",
        False,
        "401 on GET /api/query",
    )
    assert listing.baseline == "one node 50,000/s"
    errors = next(r for r in rows if r.figure.endswith("errors"))
    assert errors.value == "50 errors in 0.8 s (first: GET x: 401)" and errors.met is False
    latency = next(r for r in rows if r.figure.startswith("listing latency"))
    assert (latency.value, latency.ratio, latency.met) == ("nan / nan ms", "—", False)
    assert sum(r.met is False for r in rows) == 6


def test_a_failed_request_is_a_failure_not_the_end_of_the_run() -> None:
    request = httpx.Request("GET", "https://127.0.0.1:1/api/query?type=VmReplicaPoint")
    answer = httpx.Response(401, request=request)

    def refused() -> None:
        answer.raise_for_status()

    got = cluster.attempt(refused)
    assert isinstance(got, cluster.Failed) and str(got) == "401 on GET /api/query"
    empty: dict[str, int] = {}
    assert str(cluster.attempt(lambda: empty["Entities"])) == "KeyError: 'Entities'"
    assert cluster.attempt(lambda: 7) == 7


def test_rows_when_the_sessions_could_not_run_at_all() -> None:
    many = Figures(entries=100_000, errors={"sessions": "ConnectError: refused"})
    rows = cluster.rows(_one(), many, "source")
    sessions = next(r for r in rows if r.figure.startswith(f"{cluster.SESSIONS} concurrent"))
    assert (sessions.value, sessions.met) == ("failed: ConnectError: refused", False)
    assert "single-node pinning" in rows[0].figure


@pytest.mark.server
@pytest.mark.slow  # initdb, four servers and HAProxy: about 25 s
@needs_haproxy
def test_three_nodes_answer_through_haproxy(tmp_path: Path) -> None:
    """The group's setups on an empty datastore, balance source (every request to one node, which
    works whether or not nodes share sessions): logons through HAProxy hold, the single node too."""
    datastore = tmp_path / "datastore"
    datastore.mkdir()
    cert, key = cluster.self_signed(tmp_path)
    with (
        cluster.single_node(tmp_path / "single", datastore, cert, key) as one,
        cluster.cluster(tmp_path / "cluster", datastore, cert, key, balance="source") as many,
    ):
        assert many.base.startswith("https://") and len(many.servers) == cluster.NODES
        assert cluster.probe(one.base) == (cluster.PROBES, [])
        assert cluster.probe(many.base) == (cluster.PROBES, [])
        served = many.served()
        assert max(served) >= cluster.PROBES + 1  # the logon and the probes, on one node
        assert "postgresql" in (many.servers[0].data_dir / "openflr.toml").read_text()


def test_sessions_take_the_best_round_with_every_rounds_errors() -> None:
    slow, fast = _tally(0, 40.0, 2500, [0.1]), _tally(2, 20.0, 2500, [0.05])
    best = cluster.best_sessions([slow, fast])
    assert best is fast and len(best.errors) == 2
    merged = cluster.best_sessions([_tally(1, 20.0, 2500, [0.05]), _tally(0, 40.0, 2500, [0.1])])
    assert isinstance(merged, concurrency.Tally)
    assert (merged.elapsed, len(merged.errors)) == (20.0, 1)  # the faster round, with its own error
    failed = cluster.best_sessions([fast, cluster.Failed("ConnectError: refused")])
    assert isinstance(failed, concurrency.Tally)
    assert failed.errors[-1] == "ConnectError: refused"  # a round that could not run is an error too
    assert str(cluster.best_sessions([cluster.Failed("refused")])) == "refused"


def test_hop_rows_part_the_balancers_cost_from_the_nodes() -> None:
    hop = Figures(
        entries=100_000,
        listing_rate=45_000.0,
        download_mbps=450.0,
        sessions=_tally(0, 25.0, 2500, [0.05]),
    )
    many = Figures(entries=100_000, listing_rate=40_500.0, download_mbps=None, sessions=None)
    rows = cluster.rows(_one(), many, "uri", hop=hop)
    alone = next(r for r in rows if r.figure.startswith("the balancer's hop alone"))
    assert alone.ratio == "0.90x / 0.75x / 0.80x"
    assert alone.value == "45,000/s / 450 MB/s / 105 MB/s"
    added = next(r for r in rows if r.figure.startswith("what the nodes add"))
    assert added.ratio == "0.90x / — / —" and added.value.endswith("failed / failed")
    assert not any(r.figure.startswith("the balancer's hop") for r in cluster.rows(_one(), many, "uri"))


def test_cpu_per_gb_row_and_process_cpu() -> None:
    one = Figures(download_cpu=cluster.Cpu(nodes=1.2, client=0.6))
    many = Figures(download_cpu=cluster.Cpu(nodes=0.9, balancer=1.1, client=0.6), download_mbps=1.0)
    row = next(r for r in cluster.rows(one, many, "uri") if r.figure.startswith("CPU seconds"))
    assert (row.value, row.baseline, row.ratio) == (
        "0.90 + 1.10 + 0.60 s",
        "one node 1.20 + curl 0.60 s",
        "nodes 0.75x",
    )
    spent = cluster.Cpu(3.0, 2.0, 1.0) - cluster.Cpu(1.0, 1.0, 1.0)
    assert spent.per(2.0) == cluster.Cpu(1.0, 0.5, 0.0)
    before = cluster.cpu_seconds(os.getpid())
    sum(i * i for i in range(2_000_000))  # burn some CPU in this process
    assert cluster.cpu_seconds(os.getpid()) > before
    assert cluster.cpu_seconds(2**22 + 12345) == 0.0  # no such process
