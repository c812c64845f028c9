"""Names as the API shows them and takes them back (docs/STORAGE-NOTES.md, "Names").

File-system engines give each name as text with the escape of ``guestfs/filesystems/names.py``: a
byte that is not UTF-8, and a control character, is the private-use character ``U+EF00 + byte``.
``shown`` applies the control-character part of that escape to any name or path: on the way out it
makes sure no control character reaches XML, JSON, a header or a target's message; on the way in it
turns a control character a URL spelled as itself (``%0A``) into the escape, so that every engine is
asked for the shown name (an engine that reads names as bytes finds the same bytes either way).
"""

from __future__ import annotations

import re

from openflr.guestfs.filesystems.names import ESCAPE_BASE

_CONTROL = re.compile("[\x01-\x1f\x7f]")


def shown(name: str) -> str:
    """``name`` (or a path) with any control character escaped as ``U+EF00 + byte``."""
    if _CONTROL.search(name) is None:
        return name
    return _CONTROL.sub(lambda m: chr(ESCAPE_BASE + ord(m.group())), name)
