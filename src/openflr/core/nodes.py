"""The nodes sharing one database (the ``nodes`` table): heartbeats, and noticing a node that stopped.

Each node writes its heartbeat every ``[cluster] heartbeat_seconds``. A node whose heartbeat is older
than ``dead_after_seconds`` is claimed by the first other node to notice, with a conditional update,
so that what the stopped node left running is closed once (``Service`` fails its tasks and marks its
audit records interrupted).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from openflr.store.db import Database
from openflr.store.models import NodeRow

RUNNING, STOPPED, DEAD = "running", "stopped", "dead"


@dataclass(frozen=True)
class NodeRecord:
    name: str
    started_at: float
    heartbeat_at: float
    state: str


def stopped_message(node: str) -> str:
    """What a task or audit record cut short by a node's stop says."""
    return f"The openflr node {node} stopped while this was running: it did not finish. Start it again."


class Nodes:
    def __init__(
        self,
        db: Database,
        name: str,
        dead_after_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self.name = name
        self.dead_after_seconds = dead_after_seconds
        self._clock = clock

    def register(self) -> None:
        """This node starts (again): running, heartbeat now."""
        now = self._clock()
        values = {"started_at": now, "heartbeat_at": now, "state": RUNNING}
        with self._db.session() as s, s.begin():
            res = s.execute(update(NodeRow).where(NodeRow.name == self.name).values(**values))
            if getattr(res, "rowcount", 0):
                return
        try:
            with self._db.session() as s, s.begin():
                s.add(NodeRow(name=self.name, **values))
        except IntegrityError:  # another process of the same name registered meanwhile
            self.beat()

    def beat(self) -> None:
        """This node is alive."""
        with self._db.session() as s, s.begin():
            s.execute(
                update(NodeRow)
                .where(NodeRow.name == self.name)
                .values(heartbeat_at=self._clock(), state=RUNNING)
            )

    def stopped(self) -> None:
        """This node stops gracefully (what it ran is closed by itself)."""
        with self._db.session() as s, s.begin():
            s.execute(update(NodeRow).where(NodeRow.name == self.name).values(state=STOPPED))

    def claim_dead(self) -> list[str]:
        """Other nodes whose heartbeat is older than ``dead_after_seconds``, now marked dead; each is
        returned to exactly one caller across all nodes."""
        cutoff = self._clock() - self.dead_after_seconds
        with self._db.session() as s:
            late = list(
                s.scalars(
                    select(NodeRow.name).where(
                        NodeRow.state == RUNNING, NodeRow.heartbeat_at < cutoff, NodeRow.name != self.name
                    )
                )
            )
        claimed = []
        for name in late:
            with self._db.session() as s, s.begin():
                res = s.execute(
                    update(NodeRow)
                    .where(NodeRow.name == name, NodeRow.state == RUNNING, NodeRow.heartbeat_at < cutoff)
                    .values(state=DEAD)
                )
                if getattr(res, "rowcount", 0):
                    claimed.append(name)
        return claimed

    def all(self) -> list[NodeRecord]:
        with self._db.session() as s:
            rows = s.scalars(select(NodeRow).order_by(NodeRow.name))
            return [NodeRecord(r.name, r.started_at, r.heartbeat_at, r.state) for r in rows]
