"""Helpers for the third-party client tests: each client's own virtualenv and the server it is pointed at.

Each PyPI client runs in its own virtualenv (they pin old libraries), cached in
``.cache/client-venvs/<name>`` and rebuilt when its pinned requirement changes.
"""

from __future__ import annotations

import subprocess
import venv
from dataclasses import dataclass
from pathlib import Path

from tests.support import RunningServer

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / ".cache" / "client-venvs"


def client_venv(name: str, *requirements: str) -> Path:
    """A virtualenv with ``requirements`` installed; returns its ``bin`` folder."""
    home = VENVS / name
    stamp = home / "openflr-requirements.txt"
    wanted = "\n".join(requirements) + "\n"
    if not (stamp.is_file() and stamp.read_text() == wanted):
        venv.EnvBuilder(clear=True, with_pip=True).create(home)
        subprocess.run(
            [str(home / "bin" / "python"), "-m", "pip", "install", "-q", *requirements],
            check=True,
            timeout=600,
        )
        stamp.write_text(wanted)
    return home / "bin"


@dataclass(frozen=True)
class ClientTarget:
    """A server a client is pointed at, with the ids a client script needs."""

    server: RunningServer
    user: str
    password: str
    point_id: str
    """Newest point of ``Win File Server`` on the qcow2 datastore."""

    @property
    def base(self) -> str:
        return self.server.base
