"""Tasks in the database (the ``tasks`` table): any node reads any task; the node running one writes it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from openflr.store.db import Database, aware_utc
from openflr.store.models import TaskRow

RUNNING, FINISHED, DELETED = "Running", "Finished", "Deleted"


@dataclass(frozen=True)
class TaskRecord:
    number: int
    session_id: str
    kind: str
    state: str
    success: bool | None
    message: str | None
    related: list[dict[str, Any]]
    created: datetime
    finished: datetime | None
    node: str


def _record(row: TaskRow) -> TaskRecord:
    return TaskRecord(
        row.id,
        row.session_id,
        row.kind,
        row.state,
        row.success,
        row.message,
        json.loads(row.result_json or "[]"),
        aware_utc(row.created) or datetime.now(UTC),
        aware_utc(row.finished),
        row.node,
    )


class TaskStore:
    """The database side of tasks; every method is one short transaction."""

    def __init__(self, db: Database, node: str) -> None:
        self._db = db
        self.node = node

    def insert(self, session_id: str, kind: str, created: datetime) -> int:
        """A new running task of this node; its number (``task-<number>``, unique across nodes)."""
        with self._db.session() as s, s.begin():
            row = TaskRow(
                session_id=session_id,
                kind=kind,
                state=RUNNING,
                result_json="[]",
                progress_json="{}",
                created=created,
                node=self.node,
            )
            s.add(row)
            s.flush()
            return row.id

    def finish(
        self, number: int, success: bool, message: str, related: list[dict[str, Any]], when: datetime
    ) -> bool:
        """Record the outcome of a running task; False when it was no longer running (deleted by its
        client, or failed by a node that took this one for stopped)."""
        with self._db.session() as s, s.begin():
            res = s.execute(
                update(TaskRow)
                .where(TaskRow.id == number, TaskRow.state == RUNNING)
                .values(
                    state=FINISHED,
                    success=success,
                    message=message,
                    result_json=json.dumps(related),
                    finished=when,
                )
            )
            return bool(getattr(res, "rowcount", 0))

    def get(self, session_id: str, number: int) -> TaskRecord | None:
        """The session's task (not deleted), or None."""
        with self._db.session() as s:
            row = s.get(TaskRow, number)
            if row is None or row.session_id != session_id or row.state == DELETED:
                return None
            return _record(row)

    def of_session(self, session_id: str) -> list[TaskRecord]:
        stmt = (
            select(TaskRow)
            .where(TaskRow.session_id == session_id, TaskRow.state != DELETED)
            .order_by(TaskRow.id)
        )
        with self._db.session() as s:
            return [_record(r) for r in s.scalars(stmt)]

    def delete(self, numbers: Iterable[int]) -> None:
        """Deleted by their client: hidden, and their node cancels them if they still run."""
        ids = list(numbers)
        if not ids:
            return
        with self._db.session() as s, s.begin():
            s.execute(update(TaskRow).where(TaskRow.id.in_(ids)).values(state=DELETED))

    def deleted(self, numbers: Iterable[int]) -> set[int]:
        """Which of these tasks were deleted (from any node)."""
        ids = list(numbers)
        if not ids:
            return set()
        with self._db.session() as s:
            stmt = select(TaskRow.id).where(TaskRow.id.in_(ids), TaskRow.state == DELETED)
            return set(s.scalars(stmt))

    def fail_running(self, node: str, message: str) -> int:
        """Every task still running on ``node`` ends failed with ``message``; how many (a task already
        finished or failed is not written again)."""
        with self._db.session() as s, s.begin():
            res = s.execute(
                update(TaskRow)
                .where(TaskRow.node == node, TaskRow.state == RUNNING)
                .values(state=FINISHED, success=False, message=message, finished=datetime.now(UTC))
            )
            return int(getattr(res, "rowcount", 0) or 0)
