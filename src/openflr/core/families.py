"""Point families: the two ways the API addresses one replica point."""

from __future__ import annotations

from enum import StrEnum


class PointFamily(StrEnum):
    """As a replica point (``/vmReplicaPoints``) or, in the same shape, as a restore point
    (``/vmRestorePoints``, what clients written for backups ask for). A mount remembers the family
    it was made through and is found only through it."""

    REPLICA = "replica"
    RESTORE = "restore"
