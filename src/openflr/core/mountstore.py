"""Mounts in the database (the ``mounts`` table): a mount made through one node is served by any."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update

from openflr.store.db import Database
from openflr.store.models import MountRow

MOUNTED, UNMOUNTED = "mounted", "unmounted"


@dataclass(frozen=True)
class MountRecord:
    number: int
    """The mount's id in its Href (unique across nodes and points)."""
    session_id: str
    point_id: str
    family: str
    created: datetime


def _record(row: MountRow) -> MountRecord:
    created = row.created if row.created.tzinfo else row.created.replace(tzinfo=UTC)
    return MountRecord(row.id, row.session_id, row.point_id, row.family, created)


class MountStore:
    """The database side of mounts; every method is one short transaction."""

    def __init__(self, db: Database, node: str) -> None:
        self._db = db
        self.node = node

    def insert(self, session_id: str, point_id: str, family: str, created: datetime) -> int:
        """A new mount; its number."""
        with self._db.session() as s, s.begin():
            row = MountRow(
                session_id=session_id,
                point_id=point_id,
                family=family,
                created=created,
                state=MOUNTED,
                node=self.node,
            )
            s.add(row)
            s.flush()
            return row.id

    def get(self, session_id: str, point_id: str, number: int) -> MountRecord | None:
        """The session's mount of that point, if it is still mounted."""
        with self._db.session() as s:
            row = s.get(MountRow, number)
            if (
                row is None
                or row.session_id != session_id
                or row.point_id != point_id
                or row.state != MOUNTED
            ):
                return None
            return _record(row)

    def of_point(self, session_id: str, point_id: str) -> list[MountRecord]:
        stmt = (
            select(MountRow)
            .where(
                MountRow.session_id == session_id, MountRow.point_id == point_id, MountRow.state == MOUNTED
            )
            .order_by(MountRow.id)
        )
        with self._db.session() as s:
            return [_record(r) for r in s.scalars(stmt)]

    def unmount(self, session_id: str, point_id: str, number: int) -> bool:
        """Unmount; False when there was no such mount (or it was unmounted already)."""
        with self._db.session() as s, s.begin():
            res = s.execute(
                update(MountRow)
                .where(
                    MountRow.id == number,
                    MountRow.session_id == session_id,
                    MountRow.point_id == point_id,
                    MountRow.state == MOUNTED,
                )
                .values(state=UNMOUNTED)
            )
            return bool(getattr(res, "rowcount", 0))

    def unmount_session(self, session_id: str) -> int:
        with self._db.session() as s, s.begin():
            res = s.execute(
                update(MountRow)
                .where(MountRow.session_id == session_id, MountRow.state == MOUNTED)
                .values(state=UNMOUNTED)
            )
            return int(getattr(res, "rowcount", 0) or 0)

    def mounted(self, numbers: Iterable[int]) -> set[int]:
        """Which of these mounts are still mounted (unmounted through any node, they are not)."""
        ids = list(numbers)
        out: set[int] = set()
        with self._db.session() as s:
            for start in range(0, len(ids), 500):
                stmt = select(MountRow.id).where(
                    MountRow.id.in_(ids[start : start + 500]), MountRow.state == MOUNTED
                )
                out.update(s.scalars(stmt))
        return out
