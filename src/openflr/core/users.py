"""Local user accounts: names, argon2 password hashes, roles."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select

from openflr.core.roles import Role
from openflr.errors import BadRequestError, ConflictError, NotFoundError
from openflr.store.db import Database
from openflr.store.models import UserRow

_NAME_RE = re.compile(r"^[^\\/@:\x00-\x1f\x7f]{1,128}$")


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    created_at: datetime
    inplace_only: bool = False
    """May restore to the original location but not download (EM's "in-place restore only")."""
    allowed_extensions: tuple[str, ...] = ()
    """Lower-case extensions without the dot this user may restore or download; empty: any."""
    restore_scope: tuple[str, ...] = ()
    """VM name patterns (fnmatch, case-insensitive) whose points this user sees; empty: all."""


def account_key(login_name: str) -> str:
    """Reduce ``NAME``, ``DOMAIN\\NAME`` or ``NAME@DOMAIN`` to the case-folded lookup key of NAME."""
    name = login_name.strip()
    if "\\" in name:
        name = name.rsplit("\\", 1)[1]
    if "@" in name:
        name = name.split("@", 1)[0]
    return name.casefold()


def validate_name(name: str) -> str:
    if not _NAME_RE.match(name) or name != name.strip():
        raise BadRequestError(
            f"invalid user name {name!r}: 1-128 characters, no \\ / @ : or control characters, "
            "no leading or trailing spaces"
        )
    return name


def validate_password(password: str) -> str:
    if not password:
        raise BadRequestError("the password must not be empty")
    if len(password) > 1024:
        raise BadRequestError("the password is longer than 1024 characters")
    return password


class UserStore:
    """CRUD for accounts plus password checks that take the same time whether or not the name exists."""

    def __init__(self, db: Database, hasher: PasswordHasher | None = None) -> None:
        self._db = db
        self._hasher = hasher or PasswordHasher()
        self._dummy_hash_lock = threading.Lock()
        self._dummy_hash: str | None = None

    def add(self, name: str, password: str, role: Role) -> User:
        validate_name(name)
        validate_password(password)
        with self._db.session() as s, s.begin():
            if s.scalar(select(UserRow).where(UserRow.name_key == account_key(name))) is not None:
                raise ConflictError(f"user {name!r} already exists")
            row = UserRow(
                name=name,
                name_key=account_key(name),
                password_hash=self._hasher.hash(password),
                role=role.value,
                created_at=datetime.now(UTC),
            )
            s.add(row)
            s.flush()
            return _user(row)

    def remove(self, name: str) -> None:
        with self._db.session() as s, s.begin():
            row = s.scalar(select(UserRow).where(UserRow.name_key == account_key(name)))
            if row is None:
                raise NotFoundError(f"user {name!r} does not exist")
            s.delete(row)

    def set_password(self, name: str, password: str) -> None:
        validate_password(password)
        with self._db.session() as s, s.begin():
            row = s.scalar(select(UserRow).where(UserRow.name_key == account_key(name)))
            if row is None:
                raise NotFoundError(f"user {name!r} does not exist")
            row.password_hash = self._hasher.hash(password)

    def set_role(self, name: str, role: Role) -> None:
        with self._db.session() as s, s.begin():
            row = s.scalar(select(UserRow).where(UserRow.name_key == account_key(name)))
            if row is None:
                raise NotFoundError(f"user {name!r} does not exist")
            row.role = role.value

    def set_restrictions(
        self,
        name: str,
        inplace_only: bool | None = None,
        extensions: list[str] | None = None,
        scope: list[str] | None = None,
    ) -> User:
        """Change a user's restore restrictions (None leaves a setting as it is)."""
        with self._db.session() as s, s.begin():
            row = s.scalar(select(UserRow).where(UserRow.name_key == account_key(name)))
            if row is None:
                raise NotFoundError(f"user {name!r} does not exist")
            if inplace_only is not None:
                row.inplace_only = inplace_only
            if extensions is not None:
                row.allowed_extensions = ",".join(normalise_extensions(extensions))
            if scope is not None:
                row.restore_scope = ",".join(p.strip() for p in scope if p.strip())
            s.flush()
            return _user(row)

    def list(self) -> list[User]:
        with self._db.session() as s:
            return [_user(r) for r in s.scalars(select(UserRow).order_by(UserRow.name_key))]

    def get(self, name: str) -> User | None:
        with self._db.session() as s:
            row = s.scalar(select(UserRow).where(UserRow.name_key == account_key(name)))
            return None if row is None else _user(row)

    def authenticate(self, login_name: str, password: str) -> User | None:
        """Return the user when the password matches, else None.

        An unknown name still costs one argon2 verification against a dummy hash, so response
        time does not tell an attacker which names exist.
        """
        with self._db.session() as s:
            row = s.scalar(select(UserRow).where(UserRow.name_key == account_key(login_name)))
            stored = row.password_hash if row is not None else self._dummy()
        try:
            self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if self._hasher.check_needs_rehash(stored):
            self.set_password(row.name, password)
        return _user(row)

    def _dummy(self) -> str:
        with self._dummy_hash_lock:
            if self._dummy_hash is None:
                self._dummy_hash = self._hasher.hash("openflr-no-such-user")
            return self._dummy_hash


def normalise_extensions(values: list[str]) -> list[str]:
    out = []
    for value in values:
        for part in value.split(","):
            ext = part.strip().lower().lstrip(".")
            if ext and ext not in out:
                out.append(ext)
    return out


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(p for p in (text or "").split(",") if p)


def _user(row: UserRow) -> User:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return User(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        created_at=created,
        inplace_only=bool(row.inplace_only),
        allowed_extensions=_split(row.allowed_extensions),
        restore_scope=_split(row.restore_scope),
    )
