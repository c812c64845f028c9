"""The README's curl walkthrough, pasted in order into one shell against a real `openflr demo`.

The shell blocks from "Log on with curl" to "Datastores" run as written in one ``bash`` with ``-e``
(each command must succeed), after the two things the text asks a person to fill in: ``PASSWORD`` (the
demo prints it) and the port in ``API=…`` (the demo here runs on a free port, not 9398).
"""

from __future__ import annotations

import re
import subprocess
import zipfile
from pathlib import Path

from tests.support import demo_password, run_server

README = Path(__file__).resolve().parents[1] / "README.md"
FIRST, END = "## Log on with curl", "## Datastores"
API_LINE = "API=https://127.0.0.1:9398/api"


def walkthrough() -> str:
    """The README's shell blocks between ``FIRST`` and ``END``, one script."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(FIRST) : text.index(END)]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 8, "the walkthrough's shell blocks were not found"
    return "\n".join(blocks)


def test_walkthrough_runs_as_written_against_the_demo(tmp_path: Path) -> None:
    script = walkthrough()
    assert script.count(API_LINE) == 1 and "PASSWORD" in script
    work = tmp_path / "shell"
    work.mkdir()
    with run_server(tmp_path / "data", https=True, command="demo") as server:
        filled = script.replace(API_LINE, f"API=https://127.0.0.1:{server.port}/api").replace(
            "PASSWORD", demo_password(server)
        )
        run = subprocess.run(
            ["bash", "-e", "-c", filled], cwd=work, capture_output=True, text=True, timeout=300
        )
        log = server.log_when(lambda text: bool(re.search(r"DELETE /api/logonSessions/\S+ \d{3}", text)))
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{log}"
    requests = re.findall(r"openflr\.access: \S+ (\w+) (\S+) (\d{3}) ", log)
    failed = [r for r in requests if int(r[2]) >= 400]
    assert not failed, failed
    assert ("DELETE", "204") in {(m, s) for m, _, s in requests if "/mounts/" in _}
    assert any(m == "DELETE" and "/logonSessions/" in p and s == "204" for m, p, s in requests)

    report = (work / "report.txt").read_bytes()
    assert len(report) == 6450
    assert (work / "partial.txt").read_bytes() == report
    assert "resumed: partial.txt is complete" in run.stdout
    with zipfile.ZipFile(work / "Documents.zip") as archive:
        assert archive.read("Documents/report.txt") == report
    restored = tmp_path / "data" / "restored" / "win-file-server" / "C" / "Documents" / "report.txt"
    assert restored.read_bytes() == report
    assert f"Restored 1 item(s) (6.3 KiB) to {restored.as_uri()}." in run.stdout
    assert "HTTP/1.1 201 Created" in run.stdout and "<State>Finished</State>" in run.stdout
