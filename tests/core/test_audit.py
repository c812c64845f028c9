"""The audit log on real SQLite and PostgreSQL databases: records, filters, interrupted work, restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from openflr.core.audit import CANCELLED, FAILED, INTERRUPTED, RUNNING, SUCCESS, AuditFilter, AuditLog
from openflr.store.db import Database


def log_at(url: str) -> AuditLog:
    return AuditLog(Database(url))


def test_start_finish_and_filters(database_url: str) -> None:
    log = log_at(database_url)
    when = datetime(2026, 11, 1, 21, tzinfo=UTC)
    a = log.start(
        user="alice",
        client="10.0.0.5",
        action="download",
        vm="fs01",
        point_id="p1",
        point_time=when,
        path="C:/a.txt",
        target="HTTP",
    )
    b = log.start(
        user="bob", client="10.0.0.6", action="restore", vm="web01", path="/etc", target="sftp://web01/"
    )
    assert log.get(a) is not None and log.get(a).result == RUNNING  # type: ignore[union-attr]
    log.finish(a, SUCCESS, bytes_done=123, items=1)
    log.finish(b, FAILED, items=3, failed_items=2, message="x" * 5000, target="sftp://web01/etc")
    rec = log.get(a)
    assert rec is not None
    assert (rec.user, rec.client, rec.action, rec.vm, rec.point_time, rec.bytes, rec.items, rec.result) == (
        "alice",
        "10.0.0.5",
        "download",
        "fs01",
        when,
        123,
        1,
        SUCCESS,
    )
    assert rec.ended_at is not None and rec.ended_at >= rec.started_at
    failed = log.get(b)
    assert failed is not None and len(failed.message) == 4000 and failed.target == "sftp://web01/etc"
    assert [r.id for r in log.query()] == [b, a]  # newest first
    assert [r.id for r in log.query(AuditFilter(user="ALICE"))] == [a]
    assert [r.id for r in log.query(AuditFilter(action="restore"))] == [b]
    assert [r.id for r in log.query(AuditFilter(result=FAILED))] == [b]
    assert [r.id for r in log.query(AuditFilter(vm="web"))] == [b]
    assert log.query(AuditFilter(since=datetime.now(UTC) + timedelta(minutes=1))) == []
    assert len(log.query(AuditFilter(until=datetime.now(UTC) + timedelta(minutes=1)))) == 2
    assert len(log.query(limit=1)) == 1
    assert [r.id for r in log.query(limit=1, offset=1)] == [a]
    assert log.count() == 2 and log.count(AuditFilter(action="restore")) == 1
    assert log.query(AuditFilter(vm="%")) == [] and log.query(AuditFilter(user="_lice")) == []  # literal
    assert rec.as_dict()["user"] == "alice"


def test_records_survive_restarts_and_running_ones_become_interrupted(database_url: str) -> None:
    first = log_at(database_url)
    done = first.start(user="alice", action="download", path="C:/a")
    first.finish(done, CANCELLED)
    cut = first.start(user="alice", action="restore", path="C:/b")
    second = log_at(database_url)  # a new process on the same database
    assert second.interrupt_running("the server stopped") == 1
    assert second.get(done).result == CANCELLED  # type: ignore[union-attr]
    rec = second.get(cut)
    assert rec is not None and rec.result == INTERRUPTED and rec.message == "the server stopped"
    assert second.interrupt_running("again") == 0
