"""The test servers end with their teardown: no process smbd or sshd caused outlives it.

Both start processes outside their own session: smbd starts ``samba-dcerpcd`` (a daemon with ``rpcd_*``
workers) the first time a client opens an RPC pipe, and sshd serves each connection in a new session.
Each test opens a connection of that kind, stops the server while it is still open, then looks in /proc.
"""

from __future__ import annotations

import asyncio
import subprocess
from contextlib import suppress
from pathlib import Path
from typing import Any

import asyncssh
import smbclient  # type: ignore[import-untyped,unused-ignore]

from tests.restore import services
from tests.restore.services import Proc


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def _describe(procs: set[Proc]) -> str:
    return "\n".join(f"  {pid}: {_cmdline(pid)}" for pid, _ in sorted(procs))


def _server_processes(folder: Path, name: str, home: Path) -> set[Proc]:
    """Everything the server started: the reaper's process tree, and whatever refers to its folder."""
    reaper = int((folder / f"{name}.server-pid").read_text())
    return services.process_tree(reaper) | services.processes_using(home)


def _assert_all_ended(started: set[Proc], home: Path) -> None:
    left = services.still_running(started) | services.processes_using(home)
    assert not left, f"still running after the teardown:\n{_describe(left)}"


def test_samba_teardown_stops_smbd_and_the_rpc_daemons_it_started(own_server_dir: Path) -> None:
    home = own_server_dir / "samba"
    cache: dict[str, Any] = {}
    try:
        with services.run_samba(own_server_dir) as server:
            smbclient.register_session(
                server.host,
                username=server.username,
                password=server.password,
                port=server.port,
                connection_cache=cache,
            )
            assert smbclient.listdir(rf"\\{server.host}\data", port=server.port, connection_cache=cache) == [
                "restore"
            ]
            # Listing the shares goes through the srvsvc pipe: smbd starts samba-dcerpcd for it.
            listing = subprocess.run(
                [
                    "smbclient",
                    "-L",
                    server.host,
                    "-p",
                    str(server.port),
                    "-U",
                    f"{server.username}%{server.password}",
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert listing.returncode == 0 and "data" in listing.stdout, listing.stdout + listing.stderr
            started = _server_processes(own_server_dir, "smbd", home)
            assert any("samba-dcerpcd" in _cmdline(pid) for pid, _ in started), _describe(started)
        _assert_all_ended(started, home)
    finally:
        with suppress(Exception):  # the server is gone: closing the open connection may fail
            smbclient.reset_connection_cache(connection_cache=cache)


def test_sshd_teardown_stops_the_sessions_it_started(own_server_dir: Path) -> None:
    home = own_server_dir / "ssh"
    loop = asyncio.new_event_loop()
    try:
        with services.run_sshd(own_server_dir) as server:
            conn = loop.run_until_complete(
                asyncssh.connect(
                    server.host,
                    port=server.port,
                    username=server.username,
                    password=server.password,
                    known_hosts=str(server.known_hosts),
                    client_keys=None,
                    agent_path=None,
                )
            )
            sftp = loop.run_until_complete(conn.start_sftp_client())
            assert loop.run_until_complete(sftp.listdir(str(server.folder))) is not None
            started = _server_processes(own_server_dir, "sshd", home)
            session = f"sshd: {services.USER}"
            assert any(_cmdline(pid).startswith(session) for pid, _ in started), _describe(started)
        _assert_all_ended(started, home)
        conn.close()
        with suppress(Exception):
            loop.run_until_complete(asyncio.wait_for(conn.wait_closed(), 5))
    finally:
        loop.close()
