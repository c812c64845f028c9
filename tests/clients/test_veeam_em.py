"""The real ``veeam-em`` client (PyPI 2022.11.0) against a real openflr server, in JSON and in XML.

The flow runs in the client's own virtualenv (``veeam_em_flow.py``); this side checks what it saw
against the fixture manifest and the server's request log.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.clients.support import ClientTarget, client_venv
from tests.imagebuilder import Fixtures

FLOW = Path(__file__).with_name("veeam_em_flow.py")
REPORT = "Documents/report.txt"


@pytest.fixture(scope="module")
def veeam_em_bin() -> Path:
    return client_venv("veeam-em", "veeam-em==2022.11.0")


def run_flow(bin_dir: Path, target: ClientTarget, mode: str) -> dict[str, Any]:
    args = [target.base, target.user, target.password, target.point_id, mode]
    proc = subprocess.run(
        [str(bin_dir / "python"), str(FLOW), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"veeam-em flow failed:\n{proc.stdout}\n{proc.stderr}"
    seen: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return seen


@pytest.mark.parametrize("mode", ["json", "xml"])
def test_veeam_em_full_flr_flow(
    veeam_em_bin: Path, target: ClientTarget, fixtures: Fixtures, mode: str
) -> None:
    seen = run_flow(veeam_em_bin, target, mode)
    assert seen["token"] and seen["whoami"]
    assert target.user in seen["logon_sessions"]
    # One point per page, every page reached through its Next link, no point twice.
    assert seen["query_pages"] == seen["all_points"] == len(seen["query_uids"]) > 1
    assert len(set(seen["query_uids"])) == len(seen["query_uids"])
    assert seen["restore_point_listed"] and seen["mount_listed"]
    assert seen["mount_task"] == ["MountRestorePoint", True]
    assert "C:" in seen["roots"]
    volume = fixtures.manifest["vms"]["Win File Server"]["p3"]["volumes"]["c"]
    in_documents = [*volume["files"], *volume["dirs"]]
    expected = {p.split("/", 1)[1] for p in in_documents if p.startswith("Documents/") and p.count("/") == 1}
    assert sorted(seen["names"]) == sorted(expected)
    assert seen["pages"] == -(-len(expected) // 3) > 1
    assert seen["restore_task"] == ["FileRestoreFromMountPoint", True]
    assert seen["sha256"] == volume["files"][REPORT]["sha256"]
    assert seen["unmount"] == 204 and seen["logout"] == 204 and seen["after_logout"] == 401

    log = target.server.log()
    # veeam-em adds v=latest to every call and sends the token as header and cookie.
    assert re.search(r"GET /api/logonSessions\?v=latest 200", log), log[-2000:]
    assert re.search(r"DELETE /api/logonSessions/[^ ]+ 204", log)
