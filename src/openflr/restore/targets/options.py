"""How targets are connected to: options shared by ``connect`` and the target modules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ConnectOptions:
    timeout: float = 15.0
    """Seconds to wait for a connection and for each reply."""
    known_hosts: Path | None = None
    """OpenSSH known_hosts file SFTP host keys are checked against."""
    check_host_keys: bool = True
    """False accepts any SSH host key (logged as a warning on every connection)."""
