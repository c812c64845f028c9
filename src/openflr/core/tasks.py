"""Asynchronous operations clients poll (EM ``Task``): ids ``task-N``, owned by one logon session."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from openflr.core.sessions import LogonSession
from openflr.errors import NotFoundError

RUNNING, FINISHED = "Running", "Finished"
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

    def finish(self, success: bool, message: str, related: list[dict[str, Any]] | None = None) -> None:
        if self.state == FINISHED:
            return
        self.related = related or []
        self.success = success
        self.message = message
        self.finished = datetime.now(UTC)
        self.state = FINISHED


class TaskManager:
    def __init__(self, limit_per_session: int = 1000) -> None:
        self._ids = itertools.count(1)
        self._tasks: dict[str, Task] = {}
        self._lock = threading.Lock()
        self.limit_per_session = limit_per_session

    def create(self, session: LogonSession, operation: str) -> Task:
        with self._lock:
            task = Task(f"task-{next(self._ids)}", session.session_id, operation)
            self._tasks[task.id] = task
            mine = [t for t in self._tasks.values() if t.session_id == session.session_id]
            if len(mine) > self.limit_per_session:  # forget the oldest finished ones
                for old in sorted((t for t in mine if t.state == FINISHED), key=lambda t: t.created)[
                    : len(mine) - self.limit_per_session
                ]:
                    self._tasks.pop(old.id, None)
        return task

    def get(self, session: LogonSession, task_id: str) -> Task:
        with self._lock:
            task = self._tasks.get(task_id.strip().lower())
        if task is None or task.session_id != session.session_id:
            raise NotFoundError(f"Task {task_id!r} does not exist in this logon session.")
        return task

    def list(self, session: LogonSession) -> list[Task]:
        with self._lock:
            return sorted(
                (t for t in self._tasks.values() if t.session_id == session.session_id),
                key=lambda t: int(t.id.split("-")[1]),
            )

    def delete(self, session: LogonSession, task_id: str) -> None:
        task = self.get(session, task_id)
        task.cancel.set()
        with self._lock:
            self._tasks.pop(task.id, None)

    def drop_session(self, session: LogonSession) -> None:
        with self._lock:
            for task in [t for t in self._tasks.values() if t.session_id == session.session_id]:
                task.cancel.set()
                self._tasks.pop(task.id, None)
