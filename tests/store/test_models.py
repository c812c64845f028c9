"""Text columns take whatever a client sends: a NUL (which PostgreSQL refuses in text) is no error."""

from __future__ import annotations

from openflr.config import SecuritySettings
from openflr.core.audit import AuditFilter, AuditLog
from openflr.core.throttle import LogonThrottle
from openflr.core.users import UserStore
from openflr.store.db import Database


def test_a_nul_in_a_name_or_a_path_is_stored_or_looked_up_without_error(database_url: str) -> None:
    db = Database(database_url)
    assert UserStore(db).authenticate("ali\x00ce", "pw") is None
    throttle = LogonThrottle(db, SecuritySettings(lock_after=1, lock_seconds=60))
    throttle.failed(throttle.begin("ali\x00ce", "10.0.0.1"))
    [lock] = throttle.locks()
    shown = "ali\x00ce" if db.dialect == "sqlite" else "ali\ufffdce"  # PostgreSQL: U+FFFD for NUL
    assert lock.account == shown
    audit = AuditLog(db)
    record = audit.start(user="alice", action="download", path="C:/a\x00b")
    assert audit.get(record).path == ("C:/a\x00b" if db.dialect == "sqlite" else "C:/a\ufffdb")  # type: ignore[union-attr]
    assert audit.count(AuditFilter(vm="x\x00")) == 0
