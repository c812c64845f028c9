"""Per-user restore rules (docs/RESTORE.md): restore scope, in-place-only, allowed file extensions."""

from __future__ import annotations

import fnmatch
import posixpath

from openflr.core.users import User
from openflr.errors import ForbiddenError
from openflr.inventory.model import Replica


def in_scope(user: User, replica: Replica) -> bool:
    """Whether ``user`` may see ``replica``'s points (patterns match the source or the replica name)."""
    if not user.restore_scope:
        return True
    names = (replica.display_name.casefold(), replica.vm_name.casefold())
    return any(fnmatch.fnmatchcase(n, p.casefold()) for p in user.restore_scope for n in names)


def extension_of(name: str) -> str:
    _, ext = posixpath.splitext(name.rsplit("/", 1)[-1])
    return ext.lstrip(".").lower()


def extension_allowed(user: User, name: str) -> bool:
    return not user.allowed_extensions or extension_of(name) in user.allowed_extensions


def refusal(user: User, name: str, verb: str = "restore") -> str | None:
    """Why ``user`` may not ``verb`` the file ``name`` (inside a folder, where it is skipped), or None."""
    if extension_allowed(user, name):
        return None
    return f"{user.name} may not {verb} .{extension_of(name) or '(no extension)'} files"


def check_file(user: User, name: str) -> None:
    if not extension_allowed(user, name):
        allowed = ", ".join(user.allowed_extensions)
        raise ForbiddenError(f"Access denied: {user.name} may only restore files of these types: {allowed}.")


def check_download(user: User) -> None:
    if user.inplace_only:
        raise ForbiddenError(f"Access denied: {user.name} may only restore to the original location.")
