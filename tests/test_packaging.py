"""What docs/DEPLOYMENT.md tells an operator to install: the systemd unit parses and is hardened as
the document says, every configuration snippet loads with openflr's own loader, and the HAProxy
example is a valid HAProxy configuration (each tool's check is skipped where the tool is missing)."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TypeVar

import pytest

from openflr.config import load_settings
from tests.api.flr import TOKEN
from tests.store.postgres import new_database, postgres_url  # noqa: F401 (fixture)
from tests.support import USERS, Api, RunningServer, cli, free_port, plain_client, run_server, until

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "packaging" / "openflr.service"
DEPLOYMENT = ROOT / "docs" / "DEPLOYMENT.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(kind: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(DEPLOYMENT.read_text()) if lang == kind]


def unit_settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_unit_is_hardened_as_documented() -> None:
    unit = unit_settings()
    assert unit["ExecStart"] == ["/opt/openflr/bin/openflr serve"]
    assert "OPENFLR_DATA_DIR=/var/lib/openflr" in unit["Environment"]
    assert unit["ReadWritePaths"] == ["/var/lib/openflr"]
    assert unit["StateDirectory"] == ["openflr"]
    for key, value in {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "Restart": "on-failure",
        "User": "openflr",
    }.items():
        assert unit[key] == [value], key
    assert unit["TimeoutStopSec"] == ["60s"]
    assert "TimeoutStopSec=60s" in DEPLOYMENT.read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify also wants ExecStart's program to exist: this venv's openflr stands in for /opt/openflr's.
    program = Path(sys.executable).parent / "openflr"
    assert program.exists()
    unit = tmp_path / "openflr.service"
    unit.write_text(UNIT.read_text().replace("/opt/openflr/bin/openflr", str(program)))
    run = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    complaints = [line for line in (run.stdout + run.stderr).splitlines() if "openflr.service" in line]
    assert run.returncode == 0 and not complaints, run.stdout + run.stderr
    broken = tmp_path / "broken" / "openflr.service"
    broken.parent.mkdir()
    broken.write_text(unit.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    run = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(broken)], capture_output=True, text=True
    )
    assert "openflr.service" in run.stderr  # the check above can fail


def test_every_toml_snippet_loads(tmp_path: Path) -> None:
    snippets = blocks("toml")
    assert len(snippets) >= 5
    loaded = []
    for i, text in enumerate(snippets):
        path = tmp_path / f"snippet-{i}.toml"
        path.write_text(text)
        loaded.append(load_settings(path, env={"OPENFLR_DATA_DIR": str(tmp_path)}))
    assert any(s.metrics.enabled and "192.0.2.50/32" in s.metrics.allow for s in loaded)
    assert any(s.server.log_format == "json" for s in loaded)
    assert any(s.server.tls_cert and s.server.tls_key for s in loaded)
    assert any(s.datastores and s.datastores[0].name == "replicas" for s in loaded)
    assert any(s.store.url.startswith("postgresql") for s in loaded)
    assert any(s.server.trusted_proxies and s.server.public_url for s in loaded)


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
def test_the_haproxy_example_is_valid(tmp_path: Path) -> None:
    (example,) = [b for b in blocks("") if "backend openflr_nodes" in b]
    assert "option httpchk GET /api/openflr/health" in example
    (tmp_path / "both.pem").write_bytes(self_signed(tmp_path, "front"))
    cert = tmp_path / "front.crt"
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        example.replace("/etc/haproxy/flr.example.com.pem", str(tmp_path / "both.pem")).replace(
            "/etc/haproxy/openflr-ca.pem", str(cert)
        )
    )
    run = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "[WARNING]" not in run.stdout + run.stderr, run.stdout + run.stderr


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
def test_two_nodes_behind_the_haproxy_example(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    """The example as written (addresses and files swapped for this machine's), in front of two nodes
    on one PostgreSQL database: a client's requests go to both nodes, and a node whose datastore
    goes away stops getting them."""
    nodes: list[RunningServer] = []
    self_signed(tmp_path, "node")  # one certificate for every node, as a real one would be
    tls = f'[server]\ntls_cert = "{tmp_path / "node.crt"}"\ntls_key = "{tmp_path / "node.key"}"\n'
    store = {"OPENFLR_STORE_URL": new_database(postgres_url)}
    for name, (password, role) in USERS.items():
        cli(tmp_path / "admin", "users", "add", name, "--role", role, stdin=password + "\n", env=store)
    with contextlib.ExitStack() as stack:
        for i in (1, 2):
            data = tmp_path / f"node{i}"
            (data / "replicas").mkdir(parents=True)
            config = (
                tls
                + f'[cluster]\nnode_name = "flr{i}"\n'
                + f'[[datastores]]\nname = "replicas"\npath = "{data / "replicas"}"\n'
            )
            nodes.append(stack.enter_context(run_server(data, https=True, config=config, env=store)))
        (example,) = [b for b in blocks("") if "backend openflr_nodes" in b]
        assert "cookie" not in example and "balance roundrobin" in example
        front = free_port()
        (tmp_path / "front.pem").write_bytes(self_signed(tmp_path, "front"))
        ca = tmp_path / "node.crt"
        config = (
            example.replace(
                "bind :443 ssl crt /etc/haproxy/flr.example.com.pem", "bind 127.0.0.1:%d ssl crt %s"
            )
            .replace("/etc/haproxy/openflr-ca.pem", str(ca))
            .replace("192.0.2.11:9398", f"127.0.0.1:{nodes[0].port}")
            .replace("192.0.2.12:9398", f"127.0.0.1:{nodes[1].port}")
            .replace("inter 5s", "inter 300ms")
        )
        (tmp_path / "haproxy.cfg").write_text(config % (front, tmp_path / "front.pem"))
        haproxy = subprocess.Popen(
            ["haproxy", "-db", "-f", str(tmp_path / "haproxy.cfg")],
            stdout=stack.enter_context(open(tmp_path / "haproxy.log", "wb")),
            stderr=subprocess.STDOUT,
        )
        stack.callback(haproxy.wait, 10)
        stack.callback(haproxy.terminate)
        base = f"https://127.0.0.1:{front}"
        script = stack.enter_context(plain_client())
        until(lambda: script.get(base + "/api/").is_success)
        api = Api(script, base, "https")
        token = until(lambda: api.logon("flrop"))

        def both_serve() -> bool:
            assert api.get("/api/logonSessions", headers={TOKEN: token}).status_code == 200
            return all(_sessions_served(n) > 0 for n in nodes)

        until(both_serve)  # one session, served by both nodes

        gone = nodes[0]
        (gone.data_dir / "replicas").rename(gone.data_dir / "gone")
        until(lambda: "health: datastore" in gone.log() and "failed" in gone.log())
        time.sleep(1.5)  # a few failed health checks: HAProxy takes the node out
        before = _sessions_served(gone)
        for _ in range(6):
            assert api.get("/api/logonSessions", headers={TOKEN: token}).status_code == 200
        assert _sessions_served(gone) == before


def _sessions_served(node: RunningServer) -> int:
    """How many ``GET /api/logonSessions`` the node has answered (its access log)."""
    return node.log().count("GET /api/logonSessions 200")


def self_signed(tmp_path: Path, name: str) -> bytes:
    key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.crt"
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
    subprocess.run(
        [*openssl, "-subj", "/CN=flr.example.com", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert.read_bytes() + key.read_bytes()
