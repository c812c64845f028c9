"""Names as the API shows them and as it hands them back to an engine (docs/STORAGE-NOTES.md, "Names").

File-system engines give each name as text with the escape of ``guestfs/filesystems/names.py``: a
byte that is not UTF-8, and a control character, is the private-use character ``U+EF00 + byte``.
An engine that still gives a control character as it is (NTFS through libfsntfs) has it escaped
here on the way out (``shown``), and an escaped control character from a URL is given back to it
as the character (``engine_form``); an engine that reads names as bytes finds the same bytes for
both spellings, so both are safe for every engine.
"""

from __future__ import annotations

import re

from openflr.guestfs.filesystems.names import ESCAPE_BASE

_CONTROL = re.compile("[\x01-\x1f\x7f]")
_ESCAPED_CONTROL = re.compile("[\uef01-\uef1f\uef7f]")


def shown(name: str) -> str:
    """``name`` (or a path) with any control character escaped as ``U+EF00 + byte``."""
    if _CONTROL.search(name) is None:
        return name
    return _CONTROL.sub(lambda m: chr(ESCAPE_BASE + ord(m.group())), name)


def engine_form(name: str) -> str:
    """``name`` with escaped control characters as the characters themselves (for a lookup)."""
    if _ESCAPED_CONTROL.search(name) is None:
        return name
    return _ESCAPED_CONTROL.sub(lambda m: chr(ord(m.group()) - ESCAPE_BASE), name)
