"""What a person sees when the command line is given something it cannot use: one clear line and a
failing exit status, never a traceback; and data printed as it is, never read as Rich markup."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openflr.config import load_settings
from tests.imagebuilder import Fixtures
from tests.support import cli, free_port

# The commands that keep their state in the data directory, with the arguments they need to get to it.
DATA_DIR_COMMANDS = [
    ("serve", "--http", "--host", "127.0.0.1"),
    ("demo", "--http", "--host", "127.0.0.1"),
    ("users", "list"),
    ("users", "add", "alice", "--role", "RestoreOperator"),
    ("users", "locks"),
    ("audit",),
]


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


# --- ports -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["serve", "demo"])
@pytest.mark.parametrize("port", ["99999", "-1", "0", "65536"])
def test_port_options_outside_1_to_65535_are_refused(tmp_path: Path, command: str, port: str) -> None:
    proc = cli(tmp_path / "data", command, "--http", "--port", port, check=False)
    assert proc.returncode == 2, proc.stderr
    assert f"Invalid value for '--port': {port} is not in the range 1<=x<=65535." in proc.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was done


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_ports_from_the_environment_or_the_file_outside_1_to_65535_are_refused(
    tmp_path: Path, port: str
) -> None:
    from_env = cli(tmp_path, "serve", "--http", env={"OPENFLR_SERVER_PORT": port}, check=False)
    assert one_error_line(from_env) == (
        f"Error: environment variable OPENFLR_SERVER_PORT: expected a TCP port from 1 to 65535, got {port}"
    )
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[server]\nport = {port}\n")
    from_file = cli(tmp_path, "demo", "--http", "--config", str(cfg), check=False)
    assert one_error_line(from_file) == (
        f"Error: {cfg} [server].port: expected a TCP port from 1 to 65535, got {port}"
    )


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_port_in_use_is_one_line_before_any_start_up_work(
    tmp_path: Path, command: str, taken_port: int
) -> None:
    started = time.monotonic()
    proc = cli(tmp_path, command, "--http", "--host", "127.0.0.1", "--port", str(taken_port), check=False)
    assert one_error_line(proc) == f"Error: port {taken_port} on 127.0.0.1 is already in use"
    assert proc.stdout == ""  # the demo printed no password for a server that never ran
    assert not (tmp_path / "openflr.db").exists()  # no start-up work was done
    assert time.monotonic() - started < 30


def test_a_port_in_use_given_by_the_environment(tmp_path: Path, taken_port: int) -> None:
    env = {"OPENFLR_SERVER_PORT": str(taken_port), "OPENFLR_SERVER_HOST": "127.0.0.1"}
    proc = cli(tmp_path, "serve", "--http", env=env, check=False)
    assert one_error_line(proc) == f"Error: port {taken_port} on 127.0.0.1 is already in use"


def test_an_address_that_is_not_this_machines_is_one_line(tmp_path: Path) -> None:
    proc = cli(tmp_path, "serve", "--http", "--host", "192.0.2.1", "--port", str(free_port()), check=False)
    assert one_error_line(proc).startswith("Error: cannot listen on 192.0.2.1 port ")


# --- the data directory -----------------------------------------------------------------------------


@pytest.mark.parametrize("args", DATA_DIR_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_data_directory_that_cannot_be_made_is_one_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    for data_dir, problem in [
        (Path("/proc/openflr"), "cannot create it: No such file or directory"),
        (a_file / "data", "cannot create it: Not a directory"),
        (a_file, "it is a file, not a directory"),
    ]:
        proc = cli(data_dir, *_with_port(args), stdin="pw\n", check=False)
        assert one_error_line(proc) == f"Error: cannot use data directory {data_dir}: {problem}"


def _with_port(args: tuple[str, ...]) -> tuple[str, ...]:
    return (*args, "--port", str(free_port())) if args[0] in ("serve", "demo") else args


def _can_drop_file_permission_override() -> bool:
    """Root may write anywhere; without CAP_DAC_OVERRIDE it obeys file modes like anyone else."""
    if shutil.which("setpriv") is None:
        return False
    probe = subprocess.run(
        ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "true"], capture_output=True
    )
    return probe.returncode == 0


@pytest.mark.parametrize("args", DATA_DIR_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_data_directory_without_write_permission_is_one_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    import os

    if os.geteuid() == 0 and not _can_drop_file_permission_override():
        pytest.skip("running as root and setpriv cannot drop CAP_DAC_OVERRIDE: modes do not stop root")
    data_dir = tmp_path / "read-only"
    data_dir.mkdir()
    data_dir.chmod(0o555)
    from tests.support import OPENFLR

    prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    proc = subprocess.run(
        [*prefix, *OPENFLR, *_with_port(args)],
        input="pw\n",
        capture_output=True,
        text=True,
        env=dict(os.environ, OPENFLR_DATA_DIR=str(data_dir)),
        timeout=120,
    )
    assert one_error_line(proc) == (
        f"Error: cannot use data directory {data_dir}: cannot create files in it: Permission denied"
    )


def test_an_unusable_database_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "openflr.db").mkdir()  # where the database file should be
    proc = cli(tmp_path, "users", "list", check=False)
    line = one_error_line(proc)
    assert line.startswith(f"Error: cannot use the database {tmp_path / 'openflr.db'}: "), line


# --- Rich markup --------------------------------------------------------------------------------------

MARKUP = "[[datastores.guests]] has no [restore] table; [bold]x[/bold]"


def test_audit_prints_messages_and_paths_as_they_are(tmp_path: Path) -> None:
    from openflr.core.audit import FAILED, AuditLog
    from openflr.store.db import Database

    settings = load_settings(env={"OPENFLR_DATA_DIR": str(tmp_path)})
    log = AuditLog(Database(settings.database_url))
    record = log.start(
        user="[red]eve",
        client="10.0.0.9",
        action="restore",
        vm="[b]web01",
        path="/srv/[x]/a",
        target="sftp://w/",
    )
    log.finish(record, FAILED, message=MARKUP)
    table = cli(tmp_path, "audit").stdout
    for text in (MARKUP, "[red]eve", "[b]web01", "/srv/[x]/a"):
        assert text in table, table


def test_users_and_locks_are_printed_as_they_are(tmp_path: Path) -> None:
    from openflr.core.throttle import LogonThrottle
    from openflr.store.db import Database

    cli(tmp_path, "users", "add", "[bold]carol", "--role", "RestoreOperator", stdin="pw\n")
    out = cli(
        tmp_path, "users", "set", "[bold]carol", "--scope", "[ab]*,[restore]", "--extensions", "[x]"
    ).stdout
    assert out.strip() == "[bold]carol: RestoreOperator; extensions: [x]; scope: [ab]*, [restore]"
    listing = cli(tmp_path, "users", "list").stdout
    assert "[bold]carol" in listing and "[ab]*, [restore]" in listing, listing
    settings = load_settings(env={"OPENFLR_DATA_DIR": str(tmp_path)})
    db = Database(settings.database_url)
    throttle = LogonThrottle(db, settings.security)
    for _ in range(settings.security.lock_after):
        throttle.failed(throttle.begin("[i]mallory", "192.0.2.7"))
    db.close()
    assert "account '[i]mallory' from 192.0.2.7: 10 failed logons" in cli(tmp_path, "users", "locks").stdout
    lifted = cli(tmp_path, "users", "unlock", "[i]mallory").stdout
    assert lifted.strip() == "unlocked account '[i]mallory' from 192.0.2.7"


# --- scan -------------------------------------------------------------------------------------------


def test_scan_prints_names_as_they_are_counts_in_words_and_fails_on_problems(
    tmp_path: Path, fixtures: Fixtures
) -> None:
    store = tmp_path / "[restore] store"
    store.mkdir()
    broken = fixtures.datastore("broken")
    shutil.copytree(broken / "Good VM", store / "[bold]Good[/bold] VM")
    shutil.copytree(broken / "Corrupt VM", store / "[[datastores.guests]] Corrupt")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[[datastores]]\nname = "[b]ds"\npath = "{store}"\n')
    out = cli(tmp_path, "scan", "--config", str(cfg), check=False)
    assert out.returncode == 1, out.stderr
    assert "[bold]Good[/bold] VM" in out.stdout, out.stdout
    assert f"datastore [b]ds, {store / '[bold]Good[/bold] VM'})" in out.stdout, out.stdout
    assert "1 VM, 1 point, 1 problem\n" in out.stdout, out.stdout
    (problem,) = [line for line in out.stderr.splitlines() if line.startswith("problem")]
    assert problem.startswith(f"problem [b]ds: {store / '[[datastores.guests]] Corrupt'}: "), problem
    as_json = cli(tmp_path, "scan", "--json", "--config", str(cfg), check=False)
    assert as_json.returncode == 1
    assert len(json.loads(as_json.stdout)["problems"]) == 1
    shutil.rmtree(store / "[[datastores.guests]] Corrupt")
    clean = cli(tmp_path, "scan", "--config", str(cfg))
    assert "1 VM, 1 point, 0 problems\n" in clean.stdout
    assert clean.returncode == 0
