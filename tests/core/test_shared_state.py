"""Mounts, tasks and nodes shared through the database (two "nodes" on one real SQLite or PostgreSQL
database): ids unique across nodes, a mount made on one served and unmounted on the other, tasks
read anywhere, a node that stops noticed once, and each node closing only its own audit records."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from openflr.core.audit import INTERRUPTED, RUNNING, AuditLog
from openflr.core.families import PointFamily
from openflr.core.mounts import MountManager
from openflr.core.mountstore import MountStore
from openflr.core.nodes import DEAD, Nodes, stopped_message
from openflr.core.roles import Role
from openflr.core.sessions import SessionManager
from openflr.core.sessionstore import SessionStore
from openflr.core.tasks import FILE_RESTORE, FINISHED, MOUNT, TaskManager
from openflr.core.taskstore import TaskStore
from openflr.core.users import User
from openflr.errors import NotFoundError
from openflr.inventory.model import DiskChain, Replica, ReplicaPoint
from openflr.store.db import Database

ALICE = User(1, "alice", Role.RESTORE_OPERATOR, datetime.now(UTC))

POINT = ReplicaPoint("p1", "r", datetime.now(UTC), (DiskChain("disk0", (Path("x"),), "raw", 1),))
REPLICA = Replica("r", "ds", "job", "vm", "vm", "KVM", Path("."), (POINT,))


class FakeView:
    """Stands for an opened point (the disk stack is tested elsewhere): counts opens and closes."""

    def __init__(self, opened: list[str]) -> None:
        self.opened = opened
        self.closed = False

    def close(self) -> None:
        self.closed = True


def mount_manager(db: Database, node: str, opened: list[str]) -> MountManager:
    def opener(point: ReplicaPoint, _os: str) -> Any:
        opened.append(node)
        return FakeView(opened)

    manager = MountManager(opener=opener, idle_keep=0, store=MountStore(db, node), recheck_seconds=0)
    manager.locate = lambda point_id: (REPLICA, POINT) if point_id == POINT.id else None
    return manager


def two_sessions(db: Database) -> tuple[Any, Any]:
    a = SessionManager(900, 100, store=SessionStore(db, "a"))
    b = SessionManager(900, 100, store=SessionStore(db, "b"))
    session, token = a.create(ALICE)
    other = b.resolve(token)
    assert other is not None
    return session, other


def test_a_mount_made_on_one_node_is_served_and_unmounted_on_another(database_url: str) -> None:
    db = Database(database_url)
    opened: list[str] = []
    on_a, on_b = mount_manager(db, "a", opened), mount_manager(db, "b", opened)
    sa, sb = two_sessions(db)
    first = on_a.mount(sa, REPLICA, POINT, PointFamily.REPLICA)
    second = on_a.mount(sa, REPLICA, POINT, PointFamily.REPLICA)
    assert second.mount_id != first.mount_id and opened == ["a"]  # one opening per node and point
    assert on_b.cached(sb, POINT.id, str(first.mount_id)) is None  # B has not opened it yet
    served = on_b.get(sb, POINT.id, str(first.mount_id), PointFamily.REPLICA)
    assert (served.mount_id, served.point_id, served.family) == (first.mount_id, "p1", PointFamily.REPLICA)
    assert opened == ["a", "b"]  # B opened the point from the datastore on first use
    assert on_b.get(sb, POINT.id, str(first.mount_id)) is served
    with pytest.raises(NotFoundError):  # found only through the family it was made through
        on_b.get(sb, POINT.id, str(first.mount_id), PointFamily.RESTORE)
    assert [m.mount_id for m in on_b.of_point(sb, POINT.id)] == [first.mount_id, second.mount_id]
    on_b.unmount(sb, POINT.id, str(first.mount_id))
    with pytest.raises(NotFoundError):
        on_b.unmount(sb, POINT.id, str(first.mount_id))
    with pytest.raises(NotFoundError):
        on_a.get(sa, POINT.id, str(first.mount_id))  # A reads it again before trusting its copy
    assert on_a.recheck() == 0 and [m.mount_id for m in on_a.all()] == [second.mount_id]
    on_b.unmount(sb, POINT.id, str(second.mount_id))  # never opened on B: unmounted in the database
    assert on_a.recheck() == 1 and on_a.all() == []
    assert first.view.closed  # type: ignore[attr-defined]


def test_another_sessions_mount_is_not_found_on_any_node(database_url: str) -> None:
    db = Database(database_url)
    opened: list[str] = []
    on_a, on_b = mount_manager(db, "a", opened), mount_manager(db, "b", opened)
    sa, _sb = two_sessions(db)
    stranger, _ = SessionManager(900, 100, store=SessionStore(db, "b")).create(ALICE)
    mount = on_a.mount(sa, REPLICA, POINT)
    for manager in (on_a, on_b):
        with pytest.raises(NotFoundError):
            manager.get(stranger, POINT.id, str(mount.mount_id))
        with pytest.raises(NotFoundError):
            manager.unmount(stranger, POINT.id, str(mount.mount_id))
    assert opened == ["a"]


def test_a_session_that_ends_unmounts_everywhere_a_stopping_node_only_lets_go(database_url: str) -> None:
    db = Database(database_url)
    opened: list[str] = []
    on_a, on_b = mount_manager(db, "a", opened), mount_manager(db, "b", opened)
    sa, sb = two_sessions(db)
    mount = on_a.mount(sa, REPLICA, POINT)
    on_a.drop_session(sa, ended=False)  # A stops: the mount lives on for B
    assert on_b.get(sb, POINT.id, str(mount.mount_id)).mount_id == mount.mount_id
    sb.ended = True
    on_b.drop_session(sb, ended=True)
    with pytest.raises(NotFoundError):
        on_a.get(sa, POINT.id, str(mount.mount_id))


def test_tasks_are_read_on_every_node_and_deleted_ones_are_cancelled_where_they_run(
    database_url: str,
) -> None:
    db = Database(database_url)
    on_a, on_b = TaskManager(store=TaskStore(db, "a")), TaskManager(store=TaskStore(db, "b"))
    sa, sb = two_sessions(db)
    mount_task = on_a.create(sa, MOUNT)
    restore = on_b.create(sb, FILE_RESTORE)
    assert mount_task.id != restore.id
    seen = on_b.get(sb, mount_task.id.upper())
    assert (seen.state, seen.operation) == ("Running", MOUNT)
    mount_task.finish(
        True, "Ok", [{"kind": "mount", "point": "p1", "mount": 7, "family": PointFamily.REPLICA}]
    )
    seen = on_b.get(sb, mount_task.id)
    assert (seen.state, seen.success, seen.message) == (FINISHED, True, "Ok")
    assert seen.related == [{"kind": "mount", "point": "p1", "mount": 7, "family": "replica"}]
    assert [t.id for t in on_a.list(sa)] == [mount_task.id, restore.id]
    on_a.delete(sa, restore.id)  # deleted through A while B runs it
    assert not restore.cancel.is_set()
    assert on_b.cancel_deleted() == 1 and restore.cancel.is_set()
    for manager, session in ((on_a, sa), (on_b, sb)):
        with pytest.raises(NotFoundError):
            manager.get(session, restore.id)
    stranger, _ = SessionManager(900, 100, store=SessionStore(db, "a")).create(ALICE)
    with pytest.raises(NotFoundError):
        on_b.get(stranger, mount_task.id)
    for bad in ("task-", "task-x", "1", "task-99999999999999999999999"):
        with pytest.raises(NotFoundError):
            on_b.get(sb, bad)


def test_a_node_that_stops_is_claimed_once_and_only_its_work_is_closed(database_url: str) -> None:
    db = Database(database_url)
    now = [1_000_000.0]
    clock = lambda: now[0]  # noqa: E731
    a, b, c = (Nodes(db, name, 30, clock=clock) for name in ("a", "b", "c"))
    for node in (a, b, c):
        node.register()
    sa, _sb = two_sessions(db)
    tasks_a, tasks_b = TaskStore(db, "a"), TaskStore(db, "b")
    running_a = tasks_a.insert(sa.session_id, FILE_RESTORE, datetime.now(UTC))
    done_a = tasks_a.insert(sa.session_id, FILE_RESTORE, datetime.now(UTC))
    tasks_a.finish(done_a, True, "Restored", [], datetime.now(UTC))
    running_b = tasks_b.insert(sa.session_id, FILE_RESTORE, datetime.now(UTC))
    audit_a, audit_b = AuditLog(db, "a"), AuditLog(db, "b")
    rec_a, rec_b = (
        audit_a.start(user="alice", action="restore"),
        audit_b.start(user="alice", action="restore"),
    )
    now[0] += 31
    b.beat()
    c.beat()
    claims: list[str] = []
    barrier = threading.Barrier(2)

    def claim(node: Nodes) -> None:
        barrier.wait()
        claims.extend(node.claim_dead())

    threads = [threading.Thread(target=claim, args=(n,)) for n in (b, c)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert claims == ["a"]  # one of B and C, never both
    assert {n.name: n.state for n in b.all()}["a"] == DEAD
    message = stopped_message("a")
    assert "a" in message and "stopped" in message
    assert tasks_b.fail_running("a", message) == 1
    assert tasks_b.fail_running("a", message) == 0  # nothing written twice
    failed = tasks_b.get(sa.session_id, running_a)
    assert failed is not None and (failed.state, failed.success, failed.message) == (FINISHED, False, message)
    done = tasks_b.get(sa.session_id, done_a)
    assert done is not None and done.message == "Restored"
    still = tasks_b.get(sa.session_id, running_b)
    assert still is not None and still.state == "Running"
    assert audit_b.interrupt_running(message, node="a") == 1
    assert audit_b.interrupt_running(message, node="a") == 0
    assert (audit_b.get(rec_a).result, audit_b.get(rec_a).message) == (INTERRUPTED, message)  # type: ignore[union-attr]
    # B restarting closes its own records only
    assert audit_b.interrupt_running("restarted") == 1
    assert audit_b.get(rec_b).result == INTERRUPTED  # type: ignore[union-attr]
    rec_c = AuditLog(db, "c").start(user="bob", action="download")
    assert audit_b.interrupt_running("restarted") == 0
    assert audit_b.get(rec_c).result == RUNNING  # type: ignore[union-attr]
    a.register()  # A comes back
    assert {n.name: n.state for n in b.all()}["a"] == "running"
