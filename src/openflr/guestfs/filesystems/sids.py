"""NTFS owners: security descriptor -> owner SID -> an account name where the SID is well known."""

from __future__ import annotations

import struct

WELL_KNOWN = {
    "S-1-1-0": "Everyone",
    "S-1-3-0": "CREATOR OWNER",
    "S-1-5-18": "NT AUTHORITY\\SYSTEM",
    "S-1-5-19": "NT AUTHORITY\\LOCAL SERVICE",
    "S-1-5-20": "NT AUTHORITY\\NETWORK SERVICE",
    "S-1-5-32-544": "BUILTIN\\Administrators",
    "S-1-5-32-545": "BUILTIN\\Users",
    "S-1-5-32-546": "BUILTIN\\Guests",
    "S-1-5-32-551": "BUILTIN\\Backup Operators",
    "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464": "NT SERVICE\\TrustedInstaller",
}


def sid_string(data: bytes, offset: int = 0) -> str | None:
    if len(data) < offset + 8:
        return None
    revision, count = data[offset], data[offset + 1]
    if revision != 1 or count > 15 or len(data) < offset + 8 + 4 * count:
        return None
    authority = int.from_bytes(data[offset + 2 : offset + 8], "big")
    subs = struct.unpack_from(f"<{count}I", data, offset + 8)
    return f"S-{revision}-{authority}" + "".join(f"-{s}" for s in subs)


def owner_sid(descriptor: bytes) -> str | None:
    """Owner SID of a self-relative SECURITY_DESCRIPTOR."""
    if len(descriptor) < 20:
        return None
    offset = struct.unpack_from("<I", descriptor, 4)[0]
    return sid_string(descriptor, offset) if offset else None


def owner_name(descriptor: bytes | None, cache: dict[bytes, str | None]) -> str | None:
    if not descriptor:
        return None
    known = cache.get(descriptor)
    if known is None and descriptor not in cache:
        sid = owner_sid(descriptor)
        known = WELL_KNOWN.get(sid, sid) if sid else None
        if len(cache) < 4096:
            cache[descriptor] = known
    return known
