"""Asynchronous operations clients poll (EM ``Task``): ids ``task-N``, owned by one logon session.

With a ``TaskStore`` (every running server has one) tasks are in the database: the node that runs a
task keeps it in memory and writes its outcome, every node reads it (core/taskstore.py).
"""

from __future__ import annotations

import builtins
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from openflr.core.sessions import LogonSession
from openflr.core.taskstore import FINISHED, RUNNING, TaskRecord, TaskStore
from openflr.errors import NotFoundError

__all__ = ["FILE_RESTORE", "FINISHED", "MOUNT", "RUNNING", "Task", "TaskManager"]

MOUNT, FILE_RESTORE = "MountRestorePoint", "FileRestoreFromMountPoint"


@dataclass
class Task:
    id: str
    session_id: str
    operation: str
    state: str = RUNNING
    success: bool | None = None
    message: str | None = None
    related: list[dict[str, Any]] = field(default_factory=list)
    """What the task produced, as plain data the API turns into links (a mount, a download)."""
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished: datetime | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: dict[str, Any] = field(default_factory=dict)
    on_finish: Callable[[Task], None] | None = field(default=None, repr=False, compare=False)
    """Writes the outcome to the database (set by the TaskManager that made the task)."""

    def finish(self, success: bool, message: str, related: list[dict[str, Any]] | None = None) -> None:
        if self.state == FINISHED:
            return
        self.related = related or []
        self.success = success
        self.message = message
        self.finished = datetime.now(UTC)
        self.state = FINISHED
        if self.on_finish is not None:
            self.on_finish(self)

    @property
    def number(self) -> int:
        return int(self.id.split("-")[1])


def _of_record(record: TaskRecord) -> Task:
    """A snapshot of a task another node runs (or ran)."""
    return Task(
        f"task-{record.number}",
        record.session_id,
        record.kind,
        state=record.state,
        success=record.success,
        message=record.message,
        related=record.related,
        created=record.created,
        finished=record.finished,
    )


def _number(task_id: str) -> int | None:
    text = task_id.strip().lower()
    digits = text[5:]  # ASCII only: str.isdigit also takes digits int() refuses, such as "¹"
    if not text.startswith("task-") or not (digits.isascii() and digits.isdigit()) or len(text) > 24:
        return None
    return int(text[5:])


class TaskManager:
    def __init__(self, limit_per_session: int = 1000, store: TaskStore | None = None) -> None:
        self._ids = itertools.count(1)
        self._tasks: dict[str, Task] = {}
        self._lock = threading.Lock()
        self._store = store
        self.limit_per_session = limit_per_session

    def create(self, session: LogonSession, operation: str) -> Task:
        created = datetime.now(UTC)
        if self._store is not None:
            number = self._store.insert(session.session_id, operation, created)
        else:
            number = next(self._ids)
        task = Task(f"task-{number}", session.session_id, operation, created=created)
        if self._store is not None:
            task.on_finish = self._written
        with self._lock:
            self._tasks[task.id] = task
            mine = [t for t in self._tasks.values() if t.session_id == session.session_id]
            if len(mine) > self.limit_per_session:  # forget the oldest finished ones
                for old in sorted((t for t in mine if t.state == FINISHED), key=lambda t: t.created)[
                    : len(mine) - self.limit_per_session
                ]:
                    self._tasks.pop(old.id, None)
        return task

    def _written(self, task: Task) -> None:
        assert self._store is not None and task.finished is not None
        self._store.finish(task.number, bool(task.success), task.message or "", task.related, task.finished)

    def get(self, session: LogonSession, task_id: str) -> Task:
        with self._lock:
            task = self._tasks.get(task_id.strip().lower())
        if task is None and self._store is not None:
            number = _number(task_id)
            record = None if number is None else self._store.get(session.session_id, number)
            task = None if record is None else _of_record(record)
        if task is None or task.session_id != session.session_id:
            raise NotFoundError(f"Task {task_id!r} does not exist in this logon session.")
        return task

    def list(self, session: LogonSession) -> list[Task]:
        with self._lock:
            mine = {t.id: t for t in self._tasks.values() if t.session_id == session.session_id}
        if self._store is not None:
            for record in self._store.of_session(session.session_id):
                mine.setdefault(f"task-{record.number}", _of_record(record))
        return sorted(mine.values(), key=lambda t: t.number)

    def local(self) -> builtins.list[Task]:
        """The tasks this node made (and runs)."""
        with self._lock:
            return list(self._tasks.values())

    def delete(self, session: LogonSession, task_id: str) -> None:
        task = self.get(session, task_id)
        task.cancel.set()
        with self._lock:
            self._tasks.pop(task.id, None)
        if self._store is not None:
            self._store.delete([task.number])

    def cancel_deleted(self) -> int:
        """Cancel this node's running tasks that a client deleted through another node; how many."""
        if self._store is None:
            return 0
        with self._lock:
            running = {t.number: t for t in self._tasks.values() if t.state == RUNNING}
        gone = self._store.deleted(running)
        for number in gone:
            running[number].cancel.set()
            with self._lock:
                self._tasks.pop(running[number].id, None)
        return len(gone)

    def drop_session(self, session: LogonSession) -> None:
        with self._lock:
            for task in [t for t in self._tasks.values() if t.session_id == session.session_id]:
                task.cancel.set()
                self._tasks.pop(task.id, None)
