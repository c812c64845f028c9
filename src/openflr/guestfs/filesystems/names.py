"""Lossless file names: the one reversible escape for name bytes a file system's encoding does not allow.

A Linux file system stores a name as bytes (anything but ``/`` and NUL), and NTFS as UTF-16 units
that need not pair up. openflr shows every name as Unicode text that JSON, XML 1.0, URLs, HTTP
headers, ZIP and SMB can all carry, so a byte that is not part of valid UTF-8, and a control
character (0x01-0x1F, 0x7F: XML 1.0 cannot hold most of them), is shown as the private-use character
``U+EF00 + byte`` (invalid bytes land in ``U+EF80``-``U+EFFF``, the range MirOS's OPTU-8 uses for
the same purpose). A name that really holds a character of ``U+EF00``-``U+EFFF`` has each of that
character's UTF-8 bytes escaped the same way, so the escape is one-to-one and
``name_to_bytes(name_from_bytes(raw)) == raw`` for every ``raw``.
NTFS names are read as WTF-8 first (an unpaired surrogate becomes the three bytes UTF-8 would give
it, which are not valid UTF-8 and so are escaped). docs/STORAGE-NOTES.md ("Names") describes it for
users.
"""

from __future__ import annotations

import re

ESCAPE_BASE = 0xEF00
"""An escaped byte ``b`` is the character ``ESCAPE_BASE + b``."""
_TO_ESCAPE = re.compile("[\x01-\x1f\x7f\uef00-\uefff]")
"""Characters a shown name holds only in escaped form."""
_ESCAPES = re.compile("[\uef00-\uefff]")
_FROM_SURROGATES = {0xDC00 + b: ESCAPE_BASE + b for b in range(0x80, 0x100)}
_UNESCAPE = {ESCAPE_BASE + b: b if b < 0x80 else 0xDC00 + b for b in range(0x100)}
"""Escaped bytes to themselves (ASCII) or to the surrogates ``surrogateescape`` turns into them."""


def _escape_each_byte(match: re.Match[str]) -> str:
    return "".join(chr(ESCAPE_BASE + b) for b in match.group().encode("utf-8"))


def name_from_bytes(raw: bytes) -> str:
    """The shown name of the on-disk name ``raw``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "surrogateescape")
        if _TO_ESCAPE.search(text):
            text = _TO_ESCAPE.sub(_escape_each_byte, text)
        return text.translate(_FROM_SURROGATES)
    if _TO_ESCAPE.search(text):
        return _TO_ESCAPE.sub(_escape_each_byte, text)
    return text


def name_to_bytes(name: str) -> bytes:
    """The on-disk bytes of the shown name ``name`` (the inverse of ``name_from_bytes``)."""
    if not _ESCAPES.search(name):
        return name.encode("utf-8", "surrogatepass")
    return name.translate(_UNESCAPE).encode("utf-8", "surrogateescape")


def name_to_utf16(name: str) -> bytes:
    """The UTF-16LE units of a shown NTFS name (the inverse of ``name_from_utf16``)."""
    return name_to_bytes(name).decode("utf-8", "surrogatepass").encode("utf-16-le", "surrogatepass")


def name_from_utf16(units: bytes) -> str:
    """The shown name of an NTFS name, ``units`` as UTF-16LE; unpaired surrogates survive."""
    # surrogatepass keeps each unpaired unit; its UTF-8 form (WTF-8) is then escaped bytewise.
    return name_from_text(units.decode("utf-16-le", "surrogatepass"))


_TEXT_TO_ESCAPE = re.compile("[\x01-\x1f\x7f\uef00-\uefff\ud800-\udfff]")


def name_from_text(text: str) -> str:
    """The shown name of a name an engine already decoded to text (NTFS through libfsntfs): control
    characters and the escape's own range are escaped, and a lone surrogate as its WTF-8 bytes."""
    if _TEXT_TO_ESCAPE.search(text) is None:
        return text
    return name_from_bytes(text.encode("utf-8", "surrogatepass"))


def is_escaped(name: str) -> bool:
    """Whether ``name`` holds escaped bytes (its on-disk form is not the UTF-8 of its text)."""
    return _ESCAPES.search(name) is not None


_CONTROL = re.compile("[\x01-\x1f\x7f]")


def shown(name: str) -> str:
    """``name`` (or a path) with any control character escaped as ``U+EF00 + byte``: the control-
    character part of the escape, for text that did not come through ``name_from_bytes`` (a volume
    label, an fstab mount point, a name a URL spelled with ``%0A``)."""
    if _CONTROL.search(name) is None:
        return name
    return _CONTROL.sub(lambda m: chr(ESCAPE_BASE + ord(m.group())), name)
