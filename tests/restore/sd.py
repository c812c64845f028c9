"""Read NTFS security descriptors in tests (owner, group, allowed ACEs) with smbprotocol's parser."""

from __future__ import annotations

from smbprotocol.security_descriptor import AccessAllowedAce, SMB2CreateSDBuffer


def allowed_aces(descriptor: bytes) -> dict[str, int]:
    parsed = SMB2CreateSDBuffer()
    parsed.unpack(descriptor)
    return {
        str(ace["sid"].get_value()): int(ace["mask"].get_value())
        for ace in parsed.get_dacl()["aces"].get_value()
        if isinstance(ace, AccessAllowedAce)
    }


def owner_and_group(descriptor: bytes) -> tuple[str, str]:
    parsed = SMB2CreateSDBuffer()
    parsed.unpack(descriptor)
    return str(parsed.get_owner()), str(parsed.get_group())
