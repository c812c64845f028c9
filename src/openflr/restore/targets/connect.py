"""Open a restore target by its URL scheme."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from openflr.restore.targets.base import Credentials, Target, TargetAddress, TargetAuthError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectOptions:
    timeout: float = 15.0
    """Seconds to wait for a connection and for each reply."""
    known_hosts: Path | None = None
    """OpenSSH known_hosts file SFTP host keys are checked against."""
    check_host_keys: bool = True
    """False accepts any SSH host key (logged as a warning on every connection)."""


async def connect(address: TargetAddress, credentials: Credentials | None, options: ConnectOptions) -> Target:
    """An open target; raises a ``TargetError`` subclass that says what went wrong."""
    if address.scheme == "file":
        from openflr.restore.targets.local import LocalTarget

        return LocalTarget(address)
    if credentials is None:
        raise TargetAuthError(f"{address.url}: no credentials to log on with")
    if address.scheme == "smb":
        from openflr.restore.targets.smb import open_smb_target

        return await open_smb_target(address, credentials, options)
    from openflr.restore.targets.sftp import open_sftp_target

    return await open_sftp_target(address, credentials, options)
