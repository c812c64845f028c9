"""Logon sessions in the database, shared by every node (the ``logon_sessions`` table).

``core/sessions.py`` keeps a node-local cache in front of this: a node reads a session here the first
time it sees its token and again every ``[sessions] recheck_seconds``, and writes last activity in
batches, not on every request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, bindparam, delete, func, select, update

from openflr.core.roles import Role
from openflr.core.users import User
from openflr.store.db import Database
from openflr.store.models import LogonSessionRow, MountRow, TaskRow


@dataclass(frozen=True)
class SessionRecord:
    """One row of ``logon_sessions``."""

    session_id: str
    token_hash: str
    user: User
    client: str
    created_at: datetime
    last_seen: float
    csrf: str
    ended: bool
    end_reason: str


def user_json(user: User) -> str:
    """The account as a session keeps it (the rules in force at logon)."""
    return json.dumps(
        {
            "id": user.id,
            "name": user.name,
            "role": user.role.value,
            "created_at": user.created_at.isoformat(),
            "inplace_only": user.inplace_only,
            "allowed_extensions": list(user.allowed_extensions),
            "restore_scope": list(user.restore_scope),
        }
    )


def user_of(text: str) -> User:
    data = json.loads(text)
    return User(
        id=int(data["id"]),
        name=str(data["name"]),
        role=Role(data["role"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        inplace_only=bool(data["inplace_only"]),
        allowed_extensions=tuple(data["allowed_extensions"]),
        restore_scope=tuple(data["restore_scope"]),
    )


def _record(row: LogonSessionRow) -> SessionRecord:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return SessionRecord(
        row.id,
        row.token_hash,
        user_of(row.user_json),
        row.client,
        created,
        row.last_seen,
        row.csrf,
        bool(row.ended),
        row.end_reason,
    )


class SessionStore:
    """The database side of the logon sessions; every method is one short transaction."""

    def __init__(self, db: Database, node: str) -> None:
        self._db = db
        self.node = node

    def insert(self, record: SessionRecord) -> None:
        with self._db.session() as s, s.begin():
            s.add(
                LogonSessionRow(
                    id=record.session_id,
                    token_hash=record.token_hash,
                    user_id=record.user.id,
                    user_json=user_json(record.user),
                    client=record.client[:128],
                    created_at=record.created_at,
                    last_seen=record.last_seen,
                    csrf=record.csrf,
                    ended=False,
                    end_reason="",
                    node=self.node,
                )
            )

    def by_token(self, token_hash: str) -> SessionRecord | None:
        with self._db.session() as s:
            row = s.scalar(select(LogonSessionRow).where(LogonSessionRow.token_hash == token_hash))
            return None if row is None else _record(row)

    def by_id(self, session_id: str) -> SessionRecord | None:
        with self._db.session() as s:
            row = s.get(LogonSessionRow, session_id)
            return None if row is None else _record(row)

    def live_of_user(self, user_id: int, seen_since: float) -> list[SessionRecord]:
        """The user's sessions not ended and used at or after ``seen_since``, oldest first (the
        caller judges idleness finally: it may know of activity not written yet)."""
        stmt = (
            select(LogonSessionRow)
            .where(
                LogonSessionRow.user_id == user_id,
                LogonSessionRow.ended.is_(False),
                LogonSessionRow.last_seen >= seen_since,
            )
            .order_by(LogonSessionRow.created_at, LogonSessionRow.id)
        )
        with self._db.session() as s:
            return [_record(r) for r in s.scalars(stmt)]

    def count_live(self, user_id: int, seen_since: float) -> int:
        """How many of the user's sessions are not ended and were used at or after ``seen_since``."""
        stmt = select(func.count()).where(
            LogonSessionRow.user_id == user_id,
            LogonSessionRow.ended.is_(False),
            LogonSessionRow.last_seen >= seen_since,
        )
        with self._db.session() as s:
            return int(s.scalar(stmt) or 0)

    def states(self, session_ids: Iterable[str]) -> dict[str, tuple[bool, float]]:
        """``{id: (ended, last_seen)}`` of these sessions (a missing id is not in the answer)."""
        ids = list(session_ids)
        out: dict[str, tuple[bool, float]] = {}
        with self._db.session() as s:
            for start in range(0, len(ids), 500):
                stmt = select(LogonSessionRow.id, LogonSessionRow.ended, LogonSessionRow.last_seen).where(
                    LogonSessionRow.id.in_(ids[start : start + 500])
                )
                for sid, ended, seen in s.execute(stmt):
                    out[sid] = (bool(ended), float(seen))
        return out

    def touch(self, seen: dict[str, float]) -> None:
        """Record activity: each session's ``last_seen`` moves forward to the time given (never back)."""
        if not seen:
            return
        table = cast(Table, LogonSessionRow.__table__)
        stmt = (
            update(table)
            .where(table.c.id == bindparam("sid"), table.c.last_seen < bindparam("seen"))
            .values(last_seen=bindparam("seen"))
        )
        with self._db.session() as s, s.begin():
            s.connection().execute(stmt, [{"sid": sid, "seen": when} for sid, when in seen.items()])

    def end(self, session_id: str, reason: str) -> bool:
        """End a session; False when it had already ended (by this node or another)."""
        with self._db.session() as s, s.begin():
            res = s.execute(
                update(LogonSessionRow)
                .where(LogonSessionRow.id == session_id, LogonSessionRow.ended.is_(False))
                .values(ended=True, end_reason=reason[:64])
            )
            return bool(getattr(res, "rowcount", 0))

    def expire(self, seen_before: float) -> list[str]:
        """End every session last used before ``seen_before`` (on any node); the ids this call ended."""
        with self._db.session() as s:
            candidates = list(
                s.scalars(
                    select(LogonSessionRow.id).where(
                        LogonSessionRow.ended.is_(False), LogonSessionRow.last_seen < seen_before
                    )
                )
            )
        ended = []
        for sid in candidates:
            with self._db.session() as s, s.begin():
                res = s.execute(
                    update(LogonSessionRow)
                    .where(
                        LogonSessionRow.id == sid,
                        LogonSessionRow.ended.is_(False),
                        LogonSessionRow.last_seen < seen_before,
                    )
                    .values(ended=True, end_reason="expired")
                )
                if getattr(res, "rowcount", 0):
                    ended.append(sid)
        return ended

    def purge(self, seen_before: float) -> int:
        """Forget sessions that ended and were last used before ``seen_before``, with their mounts and
        tasks; how many sessions went."""
        with self._db.session() as s, s.begin():
            gone = list(
                s.scalars(
                    select(LogonSessionRow.id).where(
                        LogonSessionRow.ended.is_(True), LogonSessionRow.last_seen < seen_before
                    )
                )
            )
            for start in range(0, len(gone), 500):
                part = gone[start : start + 500]
                s.execute(delete(MountRow).where(MountRow.session_id.in_(part)))
                s.execute(delete(TaskRow).where(TaskRow.session_id.in_(part)))
                s.execute(delete(LogonSessionRow).where(LogonSessionRow.id.in_(part)))
            return len(gone)
