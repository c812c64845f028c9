"""Server log lines that cannot be forged: characters that are not printable are escaped.

Logged values come from clients (URL paths, user names) and from guests (file names): a newline in
one would start a forged line, a NUL or a terminal escape would hide or repaint what an operator
reads. Every message is escaped as it is formatted, whichever logger wrote it; a traceback keeps its
line breaks and loses every other control character.
"""

from __future__ import annotations

import logging
import re
import sys

_SUSPECT = re.compile(r"[^\x20-\x7e]")
_SUSPECT_BUT_NEWLINE = re.compile(r"[^\x20-\x7e\n]")


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char.isprintable():  # letters, CJK, emoji: shown as they are
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape_unprintable(text: str, keep_newlines: bool = False) -> str:
    """``text`` with every control or other unprintable character written as ``\\xNN``/``\\uNNNN``."""
    return (_SUSPECT_BUT_NEWLINE if keep_newlines else _SUSPECT).sub(_escaped, text)


class EscapingFormatter(logging.Formatter):
    """A ``logging.Formatter`` whose messages hold no unprintable character."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_unprintable(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: object) -> str:
        return escape_unprintable(super().formatException(ei), keep_newlines=True)  # type: ignore[arg-type]

    def formatStack(self, stack_info: str) -> str:
        return escape_unprintable(super().formatStack(stack_info), keep_newlines=True)


def setup_logging(level: str = "info") -> None:
    """Log to standard error, one escaped line per record (tracebacks excepted), at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EscapingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])
