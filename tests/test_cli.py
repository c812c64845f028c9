"""The `openflr` command line, run as a real process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

from lxml import etree

from openflr.config import load_settings
from openflr.core.service import Service
from tests.imagebuilder import Fixtures
from tests.support import OPENFLR, cli, datastore_config, demo_password, free_port, plain_client, run_server


def test_users_lifecycle(tmp_path: Path) -> None:
    out = cli(tmp_path, "users", "add", "Alice", "--role", "RestoreOperator", stdin="pw-1\nignored\n")
    assert "added user Alice" in out.stdout
    cli(tmp_path, "users", "add", "bob", "--role", "portaluser", stdin="pw-2\n")
    listing = cli(tmp_path, "users", "list").stdout
    assert re.search(r"Alice\s+│\s+RestoreOperator", listing)
    assert re.search(r"bob\s+│\s+PortalUser", listing)
    assert "pw-1" not in listing
    cli(tmp_path, "users", "passwd", "alice", stdin="pw-3\n")
    service = Service(load_settings(env={"OPENFLR_DATA_DIR": str(tmp_path)}))
    assert service.users.authenticate("alice", "pw-1") is None
    assert service.users.authenticate("alice", "pw-3") is not None
    cli(tmp_path, "users", "remove", "ALICE")
    assert "Alice" not in cli(tmp_path, "users", "list").stdout


def test_users_errors(tmp_path: Path) -> None:
    bad_role = cli(tmp_path, "users", "add", "x", "--role", "God", stdin="pw\n", check=False)
    assert bad_role.returncode == 2 and "unknown role" in bad_role.stderr
    cli(tmp_path, "users", "add", "x", "--role", "PortalUser", stdin="pw\n")
    dup = cli(tmp_path, "users", "add", "X", "--role", "PortalUser", stdin="pw\n", check=False)
    assert dup.returncode == 1 and "already exists" in dup.stderr
    missing = cli(tmp_path, "users", "remove", "nobody", check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    empty = cli(tmp_path, "users", "add", "y", "--role", "PortalUser", stdin="", check=False)
    assert empty.returncode == 1 and "no password" in empty.stderr


def test_users_set_changes_role_and_restrictions(tmp_path: Path) -> None:
    cli(tmp_path, "users", "add", "carol", "--role", "RestoreOperator", "--scope", "fs*,web*", stdin="pw\n")
    out = cli(tmp_path, "users", "set", "carol", "--inplace-only", "--extensions", "docx", "--scope", "sql*")
    assert "in-place restore only; extensions: docx; scope: sql*" in out.stdout
    out = cli(
        tmp_path, "users", "set", "carol", "--downloads-allowed", "--extensions", "", "--role", "PortalUser"
    )
    assert out.stdout.strip() == "carol: PortalUser; scope: sql*"
    cli(tmp_path, "users", "set", "carol", "--scope", "")
    (user,) = json.loads(cli(tmp_path, "users", "list", "--json").stdout)
    assert user == {
        **user,
        "role": "PortalUser",
        "inplace_only": False,
        "allowed_extensions": [],
        "restore_scope": [],
    }
    missing = cli(tmp_path, "users", "set", "nobody", "--inplace-only", check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_audit_prints_and_filters(tmp_path: Path) -> None:
    from openflr.core.audit import FAILED, SUCCESS, AuditLog
    from openflr.store.db import Database

    settings = load_settings(env={"OPENFLR_DATA_DIR": str(tmp_path)})
    tmp_path.mkdir(exist_ok=True)
    log = AuditLog(Database(settings.database_url))
    a = log.start(
        user="alice", client="10.1.1.1", action="download", vm="fs01", path="C:/Budget.xlsx", target="HTTP"
    )
    log.finish(a, SUCCESS, bytes_done=48000, items=1)
    b = log.start(
        user="bob", client="10.1.1.2", action="restore", vm="web01", path="/etc/hosts", target="sftp://w/"
    )
    log.finish(b, FAILED, message="the target is full")
    everything = json.loads(cli(tmp_path, "audit", "--json").stdout)
    assert [r["user"] for r in everything] == ["bob", "alice"]
    only = json.loads(cli(tmp_path, "audit", "--json", "--user", "alice").stdout)
    assert [(r["path"], r["bytes"], r["result"]) for r in only] == [("C:/Budget.xlsx", 48000, "success")]
    assert [r["user"] for r in json.loads(cli(tmp_path, "audit", "--json", "--result", "failed").stdout)] == [
        "bob"
    ]
    assert json.loads(cli(tmp_path, "audit", "--json", "--since", "2999-01-01").stdout) == []
    table = cli(tmp_path, "audit", "--action", "restore").stdout
    assert "bob" in table and "alice" not in table
    bad = cli(tmp_path, "audit", "--result", "maybe", check=False)
    assert bad.returncode == 2


def test_config_file_option_and_env(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'data_dir = "{other}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENFLR_")}
    subprocess.run(
        [*OPENFLR, "users", "add", "z", "--role", "PortalUser", "--config", str(cfg)],
        input="pw\n",
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    assert (other / "openflr.db").exists()
    # the environment wins over the file
    cli(tmp_path, "users", "add", "w", "--role", "PortalUser", "--config", str(cfg), stdin="pw\n")
    assert (tmp_path / "openflr.db").exists()
    bad = cli(tmp_path, "users", "list", "--config", str(tmp_path / "none.toml"), check=False)
    assert bad.returncode == 1 and "does not exist" in bad.stderr


def test_demo_prints_a_working_password(tmp_path: Path) -> None:
    with run_server(tmp_path, https=False, command="demo") as server, plain_client() as c:
        password = demo_password(server)
        base = server.base
        r = c.post(base + "/api/sessionMngr/?v=latest", auth=("demo", password))
        assert r.status_code == 201
        token = r.headers["X-RestSvcSessionId"]
        assert c.post(base + "/api/sessionMngr/", auth=("demo", "wrong")).status_code == 401
        query = (
            "/api/query?type=VmReplicaPoint&format=Entities&filter=VmDisplayName==%22Win%20File%20Server%22"
            "&sortDesc=CreationTime"
        )
        x = c.get(base + query, headers={"X-RestSvcSessionId": token})
        root = etree.fromstring(x.content)
        times = [e.text for e in root.iter("{http://www.veeam.com/ent/v1.0}CreationTimeUTC")]
        assert times == ["2026-11-03T21:00:12.407Z", "2026-11-02T21:00:00Z", "2026-11-01T21:00:00Z"]
        j = c.get(base + query, headers={"X-RestSvcSessionId": token, "Accept": "application/json"}).json()
        points = j["Entities"]["VmReplicaPoints"]["VmReplicaPoints"]
        assert [p["CreationTimeUTC"] for p in points] == times
        assert {p["VmDisplayName"] for p in points} == {"Win File Server"}
        page = c.get(base + "/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert (tmp_path / "openflr.db").exists()


def test_demo_listens_on_loopback_unless_told(tmp_path: Path) -> None:
    """The demo prints its password: it must not be reachable from the network by default."""
    port = free_port()
    env = dict(os.environ, OPENFLR_DATA_DIR=str(tmp_path))
    proc = subprocess.Popen(
        [*OPENFLR, "demo", "--http", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while not any("Uvicorn running" in line for line in lines) and time.monotonic() < deadline:
            lines.append(proc.stdout.readline())
        assert f"Uvicorn running on http://127.0.0.1:{port}" in "".join(lines), "".join(lines)
        assert f"web page: http://127.0.0.1:{port}/" in "".join(lines), "".join(lines)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_other_commands_see_the_demo_configuration(tmp_path: Path) -> None:
    """After `openflr demo`, scan, users and audit work on the demo without being told where it is."""
    with run_server(tmp_path, https=False, command="demo") as server:
        printed = server.log()
    config = tmp_path / "openflr.toml"
    assert f"configuration: {config}" in printed
    assert f"restores to the original location land in: {tmp_path / 'restored'}" in printed
    scanned = cli(tmp_path, "scan", "--json")
    names = sorted(r["display_name"] for r in json.loads(scanned.stdout)["replicas"])
    assert names == ["Win File Server", "lin-web01"]
    assert json.loads(cli(tmp_path, "users", "list", "--json").stdout)[0]["name"] == "demo"
    assert cli(tmp_path, "audit", "--json").stdout.strip() == "[]"
    settings = load_settings(env={"OPENFLR_DATA_DIR": str(tmp_path)})
    (store,) = settings.datastores
    assert {g.vm: sorted(g.targets) for g in store.guests} == {
        "Win File Server": ["C:", "S:"],
        "lin-web01": ["/"],
    }


def test_the_demo_keeps_a_configuration_of_the_users_own(tmp_path: Path) -> None:
    own = "[server]\nport = 9555\n"
    (tmp_path / "openflr.toml").write_text(own)
    with run_server(tmp_path, https=False, command="demo") as server:
        assert "is your own configuration" in server.log()
    assert (tmp_path / "openflr.toml").read_text() == own


def test_version() -> None:
    out = subprocess.run([*OPENFLR, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("openflr, version ")


def test_scan_prints_vms_points_and_problems(tmp_path: Path, fixtures: Fixtures) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(datastore_config(fixtures, ("vmware", "broken")))
    out = cli(tmp_path, "scan", "--config", str(cfg), check=False)
    assert out.returncode == 1  # problems were found
    assert "lin-web01" in out.stdout and "Win File Server" in out.stdout
    assert "3 VMs, 7 points, 3 problems" in out.stdout
    assert "Corrupt VM.vmdk" in out.stderr and "parent dangling.vhdx not found" in out.stderr
    doc = json.loads(cli(tmp_path, "scan", "--json", "--config", str(cfg), check=False).stdout)
    assert sorted(r["display_name"] for r in doc["replicas"]) == ["Good VM", "Win File Server", "lin-web01"]
    assert len(doc["problems"]) == 3
    none = cli(tmp_path, "scan", check=False)
    assert none.returncode == 1 and "no datastores configured" in none.stderr


def _lock_out(data_dir: Path, name: str, address: str) -> None:
    """Fail logons of ``name`` from ``address`` until the pair is locked, as the server would."""
    from openflr.core.throttle import LogonThrottle
    from openflr.store.db import Database

    settings = load_settings(env={"OPENFLR_DATA_DIR": str(data_dir)})
    db = Database(settings.database_url)
    throttle = LogonThrottle(db, settings.security)
    for _ in range(settings.security.lock_after):
        throttle.failed(throttle.begin(name, address))
    db.close()


def test_users_list_shows_locks_and_unlock_lifts_them(tmp_path: Path) -> None:
    cli(tmp_path, "users", "add", "alice", "--role", "RestoreOperator", stdin="pw\n")
    cli(tmp_path, "users", "add", "bob", "--role", "RestoreOperator", stdin="pw\n")
    _lock_out(tmp_path, "alice", "192.0.2.5")
    _lock_out(tmp_path, "ALICE", "192.0.2.6")
    listing = cli(tmp_path, "users", "list").stdout
    assert re.search(r"alice\s+│.*locked from 192\.0\.2\.5 until .*; locked from 192\.0\.2\.6 until", listing)
    assert re.search(r"bob\s+│.*│\s+ok\s+│", listing)
    users = {u["name"]: u for u in json.loads(cli(tmp_path, "users", "list", "--json").stdout)}
    assert users["alice"]["locked"] is True
    assert [lock["address"] for lock in users["alice"]["locks"]] == ["192.0.2.5", "192.0.2.6"]
    assert users["bob"] == {**users["bob"], "locked": False, "locks": []}
    one = cli(tmp_path, "users", "unlock", "alice", "--address", "192.0.2.5").stdout
    assert one.strip() == "unlocked account 'alice' from 192.0.2.5"
    (left,) = json.loads(cli(tmp_path, "users", "locks", "--json").stdout)
    assert (left["kind"], left["account"], left["address"], left["failures"]) == (
        "pair",
        "alice",
        "192.0.2.6",
        10,
    )
    rest = cli(tmp_path, "users", "unlock", "Alice").stdout
    assert rest.strip() == "unlocked account 'alice' from 192.0.2.6"
    assert "no logon locks on account 'alice'" in cli(tmp_path, "users", "unlock", "alice").stdout
    assert cli(tmp_path, "users", "locks").stdout.strip() == "no logon locks"
    assert json.loads(cli(tmp_path, "users", "list", "--json").stdout)[0]["locked"] is False
    bare = cli(tmp_path, "users", "unlock", check=False)
    assert bare.returncode == 2 and "name a user, an --address, or both" in bare.stderr


def test_the_data_directory_is_private(tmp_path: Path) -> None:
    """Password hashes and the audit log: no other account may read them."""
    fresh = tmp_path / "fresh"
    cli(fresh, "users", "add", "x", "--role", "PortalUser", stdin="pw\n")
    assert fresh.stat().st_mode & 0o777 == 0o700
    for name in ("openflr.db", "openflr.db-wal", "openflr.db-shm"):
        if (fresh / name).exists():
            assert (fresh / name).stat().st_mode & 0o777 == 0o600, name
    assert (fresh / "openflr.db").exists()

    loose = tmp_path / "loose"
    cli(loose, "users", "add", "y", "--role", "PortalUser", stdin="pw\n")
    loose.chmod(0o755)
    (loose / "openflr.db").chmod(0o644)
    with run_server(loose, https=False) as server:
        log = server.log()
    assert loose.stat().st_mode & 0o777 == 0o700
    assert (loose / "openflr.db").stat().st_mode & 0o777 == 0o600
    assert f"data directory {loose} was readable by other accounts (mode 755): now 700" in log
    assert f"{loose / 'openflr.db'} was readable by other accounts (mode 644): now 600" in log
