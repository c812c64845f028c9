"""Open a restore target by its URL scheme."""

from __future__ import annotations

import logging

from openflr.restore.targets.base import Credentials, Target, TargetAddress, TargetAuthError
from openflr.restore.targets.local import LocalTarget
from openflr.restore.targets.options import ConnectOptions
from openflr.restore.targets.sftp import open_sftp_target
from openflr.restore.targets.smb import open_smb_target

__all__ = ["ConnectOptions", "connect"]

log = logging.getLogger(__name__)


async def connect(address: TargetAddress, credentials: Credentials | None, options: ConnectOptions) -> Target:
    """An open target; raises a ``TargetError`` subclass that says what went wrong."""
    if address.scheme == "file":
        return LocalTarget(address)
    if credentials is None:
        raise TargetAuthError(f"{address.url}: no credentials to log on with")
    if address.scheme == "smb":
        return await open_smb_target(address, credentials, options)
    return await open_sftp_target(address, credentials, options)
