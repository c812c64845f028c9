"""Names on their way out of and back into the API (``core/names.py``, docs/STORAGE-NOTES.md "Names")."""

from __future__ import annotations

import pytest

from openflr.core.names import engine_form, shown
from openflr.guestfs.filesystems.names import name_from_bytes, name_to_bytes


@pytest.mark.parametrize("raw", [b"new\nline", b"ctl\x01\x1f\x7f", b"tab\tx", b"plain", b"caf\xc3\xa9"])
def test_shown_is_the_engines_escape_of_control_characters(raw: bytes) -> None:
    """An engine giving control characters as they are, once ``shown``, shows what an engine that
    reads bytes shows; ``engine_form`` gives it its own spelling back; both are the same bytes."""
    escaped = name_from_bytes(raw)
    assert shown(raw.decode()) == escaped
    assert shown(escaped) == escaped
    assert engine_form(escaped) == raw.decode()
    assert name_to_bytes(engine_form(escaped)) == name_to_bytes(escaped) == raw


def test_engine_form_turns_only_escaped_control_characters_back() -> None:
    assert engine_form("a\uef0ab\uef7f") == "a\nb\x7f"
    assert engine_form("caf\uefe9 \uef41") == "caf\uefe9 \uef41"  # other escaped bytes stay
    assert engine_form("\uef00") == "\uef00"  # never a NUL
