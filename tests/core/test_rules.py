"""Per-user restore rules (docs/RESTORE.md) and how they are stored: scope, in-place only, extensions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from openflr.core import rules
from openflr.core.roles import Role
from openflr.core.users import User, UserStore
from openflr.errors import ForbiddenError, NotFoundError
from openflr.inventory.model import Replica
from openflr.store.db import Database


def user(**kw: object) -> User:
    return User(1, "alice", Role.RESTORE_OPERATOR, datetime.now(UTC), **kw)  # type: ignore[arg-type]


def replica(display: str, vm: str) -> Replica:
    return Replica("r", "ds", "job", vm, display, "VMware", Path("/x"), ())


@pytest.mark.parametrize(
    ("scope", "visible"),
    [
        ((), {"fs01", "web01", "SQL-02"}),
        (("fs*",), {"fs01"}),
        (("FS01",), {"fs01"}),  # case-insensitive
        (("web01_replica",), {"web01"}),  # the replica's own name counts too
        (("sql-*", "web?1"), {"SQL-02", "web01"}),
        (("nothing",), set()),
    ],
)
def test_scope_patterns(scope: tuple[str, ...], visible: set[str]) -> None:
    who = user(restore_scope=scope)
    replicas = [replica(n, f"{n}_replica") for n in ("fs01", "web01", "SQL-02")]
    assert {r.display_name for r in replicas if rules.in_scope(who, r)} == visible


@pytest.mark.parametrize(
    ("allowed", "name", "ok"),
    [
        ((), "anything.exe", True),
        (("docx", "xlsx"), "Budget 2026.XLSX", True),
        (("docx",), "report.txt", False),
        (("docx",), "archive.tar.docx", True),
        (("docx",), "no_extension", False),
        (("docx",), "docx", False),
    ],
)
def test_extensions(allowed: tuple[str, ...], name: str, ok: bool) -> None:
    who = user(allowed_extensions=allowed)
    assert rules.extension_allowed(who, name) is ok
    if ok:
        rules.check_file(who, name)
    else:
        with pytest.raises(ForbiddenError, match="may only restore files of these types"):
            rules.check_file(who, name)


def test_inplace_only() -> None:
    rules.check_download(user())
    with pytest.raises(ForbiddenError, match="only restore to the original location"):
        rules.check_download(user(inplace_only=True))


def test_restrictions_are_stored(tmp_path: Path) -> None:
    store = UserStore(Database(f"sqlite:///{tmp_path / 'u.db'}"))
    store.add("alice", "pw", Role.RESTORE_OPERATOR)
    got = store.set_restrictions(
        "Alice", inplace_only=True, extensions=[".DOCX, xlsx", "docx"], scope=["fs*", " "]
    )
    assert (got.inplace_only, got.allowed_extensions, got.restore_scope) == (True, ("docx", "xlsx"), ("fs*",))
    again = UserStore(Database(f"sqlite:///{tmp_path / 'u.db'}")).get("alice")
    assert again is not None and again.allowed_extensions == ("docx", "xlsx") and again.inplace_only
    # None leaves a setting as it is; an empty list clears it.
    got = store.set_restrictions("alice", extensions=[])
    assert got.allowed_extensions == () and got.restore_scope == ("fs*",) and got.inplace_only
    with pytest.raises(NotFoundError):
        store.set_restrictions("nobody", inplace_only=False)
