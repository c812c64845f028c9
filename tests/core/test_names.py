"""Names on their way out of and back into the API (``core/names.py``, docs/STORAGE-NOTES.md "Names")."""

from __future__ import annotations

import pytest

from openflr.core.names import shown
from openflr.guestfs.filesystems.names import name_from_bytes, name_to_bytes


@pytest.mark.parametrize("raw", [b"new\nline", b"ctl\x01\x1f\x7f", b"tab\tx", b"plain", b"caf\xc3\xa9"])
def test_shown_is_the_engines_escape_of_control_characters(raw: bytes) -> None:
    """A name spelled with its control characters, once ``shown``, is what the engines show; both
    spellings are the same bytes."""
    escaped = name_from_bytes(raw)
    assert shown(raw.decode()) == escaped
    assert shown(escaped) == escaped
    assert name_to_bytes(raw.decode()) == name_to_bytes(escaped) == raw


def test_shown_leaves_other_escapes_and_nul_alone() -> None:
    assert shown("caf\uefe9 \uef41") == "caf\uefe9 \uef41"
    assert shown("a\0b") == "a\0b"  # refused as a path by GuestView.parse, never escaped into a name
