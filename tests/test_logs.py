"""Log lines cannot be forged: what a client sends is escaped in the server log."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from openflr.logs import EscapingFormatter, JsonFormatter, escape_unprintable
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


def test_json_lines_carry_the_escaped_message_and_the_exception() -> None:
    formatter = JsonFormatter()
    try:
        raise ValueError("bad\x1b[2Jname")
    except ValueError:
        record = logging.makeLogRecord(
            {"name": "openflr.x", "levelname": "WARNING", "msg": "user %s", "args": ("eve\nforged\x7f",)}
        )
        record.exc_info = sys.exc_info()
    line = formatter.format(record)
    assert "\n" not in line and "\x1b" not in line and "\x7f" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "user eve\\x0aforged\\x7f"
    assert parsed["level"] == "WARNING" and parsed["logger"] == "openflr.x"
    assert parsed["time"].endswith("+00:00")
    assert parsed["exception"].startswith("Traceback (most recent call last):\n")
    assert "bad\\x1b[2Jname" in parsed["exception"]


def test_a_server_with_json_logs_writes_one_object_per_line(tmp_path: Path) -> None:
    config = '[server]\nlog_format = "json"\n'
    hostile = "/api/x%0a2026-12-01 INFO forged%1b[31m"
    with run_server(tmp_path, https=False, config=config) as server, plain_client() as client:
        assert client.get(server.base + "/api/").status_code == 200
        assert client.get(server.base + hostile).status_code == 404
        logon = client.post(server.base + "/api/sessionMngr/?v=latest", auth=("nobody", "x"))
        assert logon.status_code == 401
        text = server.log_when(lambda t: t.count('"openflr.access"') >= 4)
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    access = [line for line in lines if line["logger"] == "openflr.access"]
    entry = next(line for line in access if line["route"] == "/api")
    assert entry["method"] == "GET" and entry["status"] == 200 and entry["client"] == "127.0.0.1"
    assert entry["path"] == "/api/" or entry["path"] == "/api"
    assert isinstance(entry["duration_ms"], float)
    forged = next(line for line in access if line["path"].startswith("/api/x"))
    assert forged["path"] == "/api/x\\x0a2026-12-01 INFO forged\\x1b[31m"
    assert forged["route"] == "unmatched" and forged["status"] == 404
    assert any(line["route"] == "/api/sessionMngr" and line["status"] == 401 for line in access)
    assert any("failed logon for 'nobody'" in line["message"] for line in lines)
    assert any(line["logger"].startswith("uvicorn") for line in lines)
