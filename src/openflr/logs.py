"""Server log lines that cannot be forged: characters that are not printable are escaped.

Logged values come from clients (URL paths, user names) and from guests (file names): a newline in
one would start a forged line, a NUL or a terminal escape would hide or repaint what an operator
reads. Every message is escaped as it is formatted, whichever logger wrote it; a traceback keeps its
line breaks and loses every other control character.

With ``[server] log_format = "json"`` each record is one JSON object on one line (``JsonFormatter``):
the same escaped message, with the request's fields as members where the access log has them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

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


REQUEST_FIELDS = ("client", "method", "path", "route", "status", "duration_ms", "bytes")
"""What the access log (``openflr.api.middleware``) passes as ``extra``: members of a JSON line."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record and line: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message`` (escaped as in text lines), the request fields a record carries and ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": escape_unprintable(record.getMessage()),
        }
        for name in REQUEST_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                out[name] = escape_unprintable(value) if isinstance(value, str) else value
        if record.exc_info:
            out["exception"] = escape_unprintable(self.formatException(record.exc_info), keep_newlines=True)
        if record.stack_info:
            out["stack"] = escape_unprintable(self.formatStack(record.stack_info), keep_newlines=True)
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(level: str = "info", log_format: str = "text") -> None:
    """Log to standard error at ``level``: one escaped line per record (tracebacks excepted), or with
    ``log_format="json"`` one JSON object per line."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(EscapingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])
