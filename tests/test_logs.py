"""Log lines cannot be forged: what a client sends is escaped in the server log."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from openflr.logs import EscapingFormatter, escape_unprintable
from tests.support import plain_client, run_server


def test_escape_unprintable() -> None:
    assert escape_unprintable("a\nb\x00c\x1b[31md\x7f") == "a\\x0ab\\x00c\\x1b[31md\\x7f"
    assert escape_unprintable("C:\\Temp\\Café 報告 😀.txt") == "C:\\Temp\\Café 報告 😀.txt"
    assert escape_unprintable("\u2028\u200b\udce9") == "\\u2028\\u200b\\udce9"
    assert escape_unprintable("x\ny\rz", keep_newlines=True) == "x\ny\\x0dz"


def test_a_traceback_keeps_its_lines_and_loses_the_rest() -> None:
    formatter = EscapingFormatter("%(message)s")
    try:
        raise ValueError("bad\x1b[2Jname\nforged line")
    except ValueError:
        record = logging.makeLogRecord({"msg": "user %s", "args": ("eve\n2026-01-01 INFO forged",)})
        record.exc_info = sys.exc_info()
    text = formatter.format(record)
    first, *rest = text.split("\n")
    assert first == "user eve\\x0a2026-01-01 INFO forged"
    assert "\x1b" not in text and "bad\\x1b[2Jname" in text
    assert rest[0] == "Traceback (most recent call last):"


def test_hostile_paths_write_one_escaped_line_each(tmp_path: Path) -> None:
    paths = ["/api/x%0a2026-12-01 00:00:00,000 INFO forged", "/api/nul%00here", "/api/%1b[31mred"]
    with run_server(tmp_path, https=False) as server, plain_client() as client:
        for path in paths:
            assert client.get(server.base + path).status_code in (400, 401, 404)
        log = server.log_when(lambda text: text.count("openflr.access") >= 1 + len(paths))
    access = [line for line in log.splitlines() if "openflr.access" in line]
    assert len([line for line in access if "/api/x" in line]) == 1
    assert any("/api/x\\x0a2026-12-01 00:00:00,000 INFO forged" in line for line in access), access
    assert any("/api/nul\\x00here" in line for line in access), access
    assert any("/api/\\x1b[31mred" in line for line in access), access
    assert not any(line.startswith("2026-12-01 00:00:00,000 INFO forged") for line in log.splitlines())
    assert "\x00" not in log and "\x1b" not in log
