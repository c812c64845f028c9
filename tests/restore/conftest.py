"""Fixtures for the restore target tests: a real smbd and sshd on loopback, started once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import support
from tests.restore import services
from tests.restore.services import SambaServer, SshServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _require_servers() -> None:
    assert support.SERVERS_ALLOWED, (
        "this test starts smbd or sshd but is not marked `server` (tests/conftest.py)"
    )
    missing = services.missing_tools()
    if missing:
        pytest.fail(
            f"the restore target tests need {', '.join(missing)}: run scripts/setup-test-deps", pytrace=False
        )
    if os.geteuid() != 0:
        pytest.fail(
            "the restore target tests run smbd, sshd and tmpfs mounts: run them as root", pytrace=False
        )


@pytest.fixture(scope="session")
def server_dir() -> Iterator[Path]:
    """This session's folder for server state, share folders and tmpfs mounts (needs root)."""
    _require_servers()
    with services.run_dir() as folder:
        yield folder


@pytest.fixture
def own_server_dir() -> Iterator[Path]:
    """A run folder of the test's own, for servers it starts and stops itself."""
    _require_servers()
    with services.run_dir() as folder:
        yield folder


@pytest.fixture(scope="session")
def samba_server(server_dir: Path) -> Iterator[SambaServer]:
    """smbd serving ``data`` (acl_xattr) and ``full`` (a 4 MiB tmpfs) to the test user."""
    with services.run_samba(server_dir) as server:
        yield server


@pytest.fixture(scope="session")
def ssh_server(server_dir: Path) -> Iterator[SshServer]:
    """sshd (internal-sftp only, password logons) with known_hosts files for its host key."""
    with services.run_sshd(server_dir) as server:
        yield server
