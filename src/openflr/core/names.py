"""Names as the API shows them and takes them back (docs/STORAGE-NOTES.md, "Names").

File-system engines give each name as text with the escape of ``guestfs/filesystems/names.py``: a
byte that is not UTF-8, and a control character, is the private-use character ``U+EF00 + byte``.
``shown`` applies the control-character part of that escape to any name or path: on the way out it
makes sure no control character reaches XML, JSON, a header or a target's message; on the way in it
turns a control character a URL spelled as itself (``%0A``) into the escape, so that every engine is
asked for the shown name (an engine that reads names as bytes finds the same bytes either way).
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from openflr.guestfs.filesystems.names import ESCAPE_BASE, shown

__all__ = ["from_url", "shown"]

_INVALID_BYTES = {0xDC00 + b: ESCAPE_BASE + b for b in range(0x80, 0x100)}
"""``surrogateescape``'s stand-ins for bytes that are not UTF-8 -> the name escape of those bytes."""


def from_url(segment: bytes) -> str:
    """A percent-encoded path segment of a URL as a shown name: bytes that are not UTF-8 and control
    characters become their name escape (an escape the client sends back stays as it is)."""
    data = unquote_to_bytes(segment)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "surrogateescape").translate(_INVALID_BYTES)
    return shown(text)
