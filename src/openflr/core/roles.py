"""Enterprise Manager roles and what each may do (docs/SECURITY.md, "Authorisation")."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    PORTAL_ADMINISTRATOR = "PortalAdministrator"
    RESTORE_OPERATOR = "RestoreOperator"
    """EM's File Restore Operator: browse, mount, restore and download."""
    PORTAL_USER = "PortalUser"
    """May log on, list points and browse, but not mount or restore."""

    @classmethod
    def parse(cls, text: str) -> Role:
        """Accept the canonical names case-insensitively, plus EM's UI spellings."""
        key = text.replace(" ", "").replace("_", "").replace("-", "").lower()
        aliases = {"filerestoreoperator": cls.RESTORE_OPERATOR, "admin": cls.PORTAL_ADMINISTRATOR}
        for role in cls:
            if role.value.lower() == key:
                return role
        if key in aliases:
            return aliases[key]
        names = ", ".join(r.value for r in cls)
        raise ValueError(f"unknown role {text!r}; choose one of {names}")


class Permission(enum.Enum):
    BROWSE_INVENTORY = "browse inventory"
    MOUNT = "mount"
    BROWSE_FILES = "browse files"
    RESTORE = "restore"
    ADMINISTER = "administer the server"


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.PORTAL_ADMINISTRATOR: frozenset(Permission),
    Role.RESTORE_OPERATOR: frozenset(Permission) - {Permission.ADMINISTER},
    Role.PORTAL_USER: frozenset({Permission.BROWSE_INVENTORY, Permission.BROWSE_FILES}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in _GRANTS[role]
