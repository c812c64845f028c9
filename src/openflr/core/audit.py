"""The audit log: every download and restore, recorded durably when it starts and when it ends."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select, update

from openflr.store.db import Database, aware_utc
from openflr.store.models import AuditRow

RUNNING, SUCCESS, FAILED, CANCELLED, INTERRUPTED = "running", "success", "failed", "cancelled", "interrupted"
RESULTS = (RUNNING, SUCCESS, FAILED, CANCELLED, INTERRUPTED)


@dataclass(frozen=True)
class AuditRecord:
    id: int
    started_at: datetime
    ended_at: datetime | None
    user: str
    client: str
    action: str
    vm: str
    point_id: str
    point_time: datetime | None
    path: str
    target: str
    bytes: int
    items: int
    failed_items: int
    result: str
    message: str
    task_id: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _record(row: AuditRow) -> AuditRecord:
    return AuditRecord(
        row.id,
        aware_utc(row.started_at) or datetime.now(UTC),
        aware_utc(row.ended_at),
        row.user,
        row.client,
        row.action,
        row.vm,
        row.point_id,
        aware_utc(row.point_time),
        row.path,
        row.target,
        row.bytes,
        row.items,
        row.failed_items,
        row.result,
        row.message,
        row.task_id,
    )


@dataclass(frozen=True)
class AuditFilter:
    """Which records to show: each field given narrows the selection."""

    user: str | None = None
    """A user name, exactly (any case)."""
    action: str | None = None
    result: str | None = None
    vm: str | None = None
    """Part of the VM's name (any case)."""
    since: datetime | None = None
    """Started at or after."""
    until: datetime | None = None
    """Started before."""

    def applied(self, stmt: Select[Any]) -> Select[Any]:
        if self.user:
            stmt = stmt.where(AuditRow.user.ilike(_literal(self.user), escape="\\"))
        if self.action:
            stmt = stmt.where(AuditRow.action == self.action)
        if self.result:
            stmt = stmt.where(AuditRow.result == self.result)
        if self.vm:
            stmt = stmt.where(AuditRow.vm.ilike(f"%{_literal(self.vm)}%", escape="\\"))
        if self.since:
            stmt = stmt.where(AuditRow.started_at >= self.since)
        if self.until:
            stmt = stmt.where(AuditRow.started_at < self.until)
        return stmt


EVERY_RECORD = AuditFilter()


class AuditLog:
    def __init__(self, db: Database, node: str = "") -> None:
        self._db = db
        self.node = node
        """This node's name: every record it starts names it."""

    def start(self, **fields: Any) -> int:
        with self._db.session() as s, s.begin():
            row = AuditRow(started_at=datetime.now(UTC), result=RUNNING, node=self.node, **fields)
            s.add(row)
            s.flush()
            return row.id

    def finish(
        self,
        record_id: int,
        result: str,
        *,
        bytes_done: int = 0,
        items: int = 0,
        failed_items: int = 0,
        message: str = "",
        target: str | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "ended_at": datetime.now(UTC),
            "result": result,
            "bytes": bytes_done,
            "items": items,
            "failed_items": failed_items,
            "message": message[:4000],
        }
        if target is not None:
            values["target"] = target
        with self._db.session() as s, s.begin():
            s.execute(update(AuditRow).where(AuditRow.id == record_id).values(**values))

    def interrupt_running(self, message: str, node: str | None = None) -> int:
        """Mark the records a node left ``running`` (it stopped mid-way) as interrupted: by default
        this node's (a previous run of it) and those of releases that did not name nodes, never
        another running node's; how many."""
        nodes = [self.node, ""] if node is None else [node]
        with self._db.session() as s, s.begin():
            res = s.execute(
                update(AuditRow)
                .where(AuditRow.result == RUNNING, AuditRow.node.in_(nodes))
                .values(ended_at=datetime.now(UTC), result=INTERRUPTED, message=message)
            )
            return int(getattr(res, "rowcount", 0) or 0)

    def query(
        self, where: AuditFilter = EVERY_RECORD, *, limit: int = 1000, offset: int = 0
    ) -> list[AuditRecord]:
        """The records ``where`` selects, newest first."""
        stmt = where.applied(select(AuditRow))
        stmt = stmt.order_by(AuditRow.started_at.desc(), AuditRow.id.desc()).limit(limit).offset(offset)
        with self._db.session() as s:
            return [_record(r) for r in s.scalars(stmt)]

    def count(self, where: AuditFilter = EVERY_RECORD) -> int:
        """How many records ``where`` selects."""
        stmt = where.applied(select(func.count()).select_from(AuditRow))
        with self._db.session() as s:
            return int(s.scalar(stmt) or 0)

    def get(self, record_id: int) -> AuditRecord | None:
        with self._db.session() as s:
            row = s.get(AuditRow, record_id)
            return None if row is None else _record(row)


def _literal(text: str) -> str:
    """``text`` for a LIKE pattern that matches it literally (``%`` and ``_`` are not wildcards)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
