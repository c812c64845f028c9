"""UserStore against real SQLite and PostgreSQL databases: names, roles, hashes, constant-time checks."""

from __future__ import annotations

import statistics
import time

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from openflr.core.roles import Permission, Role, allows
from openflr.core.users import UserStore, account_key
from openflr.errors import BadRequestError, ConflictError, NotFoundError
from openflr.store.db import Database


@pytest.fixture
def store(database_url: str) -> UserStore:
    return UserStore(Database(database_url))


@pytest.mark.parametrize(
    ("login", "key"),
    [("Alice", "alice"), ("CORP\\Alice", "alice"), ("alice@corp.example", "alice"), (" ALICE ", "alice")],
)
def test_account_key(login: str, key: str) -> None:
    assert account_key(login) == key


def test_add_list_passwd_remove(store: UserStore) -> None:
    store.add("Alice", "pw1", Role.RESTORE_OPERATOR)
    store.add("bob", "pw2", Role.PORTAL_USER)
    assert [(u.name, u.role) for u in store.list()] == [
        ("Alice", Role.RESTORE_OPERATOR),
        ("bob", Role.PORTAL_USER),
    ]
    with pytest.raises(ConflictError):
        store.add("ALICE", "x", Role.PORTAL_USER)
    assert store.authenticate("corp\\alice", "pw1") is not None
    store.set_password("alice", "new")
    assert store.authenticate("alice", "pw1") is None
    assert store.authenticate("alice", "new") is not None
    store.remove("Alice")
    assert store.authenticate("alice", "new") is None
    with pytest.raises(NotFoundError):
        store.remove("alice")


def test_passwords_are_hashed_with_argon2(store: UserStore, database_url: str) -> None:
    store.add("carol", "plain-text-secret", Role.PORTAL_ADMINISTRATOR)
    with Database(database_url).engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users WHERE name = 'carol'")).scalar_one()
    assert "plain-text-secret" not in stored
    assert stored.startswith("$argon2id$")


@pytest.mark.parametrize("name", ["", "a\\b", "a@b", "a:b", "a/b", " lead", "bad\x01", "x" * 129])
def test_invalid_names(store: UserStore, name: str) -> None:
    with pytest.raises(BadRequestError):
        store.add(name, "pw", Role.PORTAL_USER)


def test_empty_password_refused(store: UserStore) -> None:
    with pytest.raises(BadRequestError):
        store.add("dave", "", Role.PORTAL_USER)


def test_unknown_name_takes_as_long_as_a_wrong_password(store: UserStore) -> None:
    store.add("erin", "right-password", Role.RESTORE_OPERATOR)
    store.authenticate("nobody", "x")  # builds the dummy hash once

    def median_time(name: str, password: str) -> float:
        samples = []
        for _ in range(7):
            start = time.perf_counter()
            assert store.authenticate(name, password) is None
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    wrong_password = median_time("erin", "wrong-password")
    unknown_user = median_time("nobody-here", "wrong-password")
    # argon2 dominates both paths; a shortcut for unknown names would be ~1000x faster.
    assert 0.5 < unknown_user / wrong_password < 2.0
    assert wrong_password > 0.005


def test_rehash_on_parameter_change(database_url: str) -> None:
    db = Database(database_url)
    weak = UserStore(db, PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))
    weak.add("frank", "pw", Role.PORTAL_USER)
    strong = UserStore(db)
    assert strong.authenticate("frank", "pw") is not None
    assert strong.authenticate("frank", "pw") is not None


@pytest.mark.parametrize(
    ("text", "role"),
    [
        ("RestoreOperator", Role.RESTORE_OPERATOR),
        ("File Restore Operator", Role.RESTORE_OPERATOR),
        ("portaladministrator", Role.PORTAL_ADMINISTRATOR),
        ("PortalUser", Role.PORTAL_USER),
    ],
)
def test_role_names(text: str, role: Role) -> None:
    assert Role.parse(text) is role


def test_role_unknown() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        Role.parse("Superuser")


def test_portal_user_may_not_mount_or_restore() -> None:
    assert allows(Role.PORTAL_USER, Permission.BROWSE_FILES)
    assert not allows(Role.PORTAL_USER, Permission.MOUNT)
    assert not allows(Role.PORTAL_USER, Permission.RESTORE)
    assert all(allows(Role.RESTORE_OPERATOR, p) for p in Permission if p is not Permission.ADMINISTER)
    assert not allows(Role.RESTORE_OPERATOR, Permission.ADMINISTER)
    assert all(allows(Role.PORTAL_ADMINISTRATOR, p) for p in Permission)
