"""Our Postman collection (``postman/openflr-flr.postman_collection.json``) run by ``newman`` (npm).

newman drives the whole file-level restore flow against a real openflr server, over HTTP and HTTPS,
once with the default Accept (XML) and once with ``Accept: application/json``. Every check lives in
the collection's ``pm.test`` scripts; this side makes sure they ran, and that none failed.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.clients.support import ClientTarget
from tests.imagebuilder import Fixtures

ROOT = Path(__file__).resolve().parents[2]
NEWMAN_HOME = ROOT / ".cache" / "newman"
NEWMAN_VERSION = "6.2.2"
COLLECTION = Path(__file__).parent / "postman" / "openflr-flr.postman_collection.json"
REPORT = "Documents/report.txt"
DOWNLOAD = "Download Restored File"
NAVIGATED_DOWNLOAD = "Navigation Download File"
# Each mode runs 28 requests (more: the navigation folder repeats some per backup and restore point)
# and over 120 assertions (more when a task needs more than one poll).
MIN_ASSERTIONS = 120


def _need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.fail(
            f"`{tool}` is not installed: the newman acceptance test needs Debian packages nodejs and npm "
            "(scripts/setup-test-deps installs them)",
            pytrace=False,
        )
    return found


def _installed_version() -> str | None:
    package = NEWMAN_HOME / "node_modules" / "newman" / "package.json"
    if not package.is_file():
        return None
    version: str = json.loads(package.read_text())["version"]
    return version


@pytest.fixture(scope="session")
def newman() -> Path:
    """The pinned newman, installed once into ``.cache/newman``."""
    node, npm = _need("node"), _need("npm")
    major = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    if int(major.strip().lstrip("v").split(".")[0]) < 16:
        pytest.fail(f"newman {NEWMAN_VERSION} needs node 16 or newer, found {major.strip()}", pytrace=False)
    NEWMAN_HOME.mkdir(parents=True, exist_ok=True)
    with open(NEWMAN_HOME / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version() != NEWMAN_VERSION:
            package = f"newman@{NEWMAN_VERSION}"
            install = [
                "install",
                "--prefix",
                str(NEWMAN_HOME),
                "--no-fund",
                "--no-audit",
                "--save-exact",
                package,
            ]
            proc = subprocess.run([npm, *install], capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, f"npm install {package} failed:\n{proc.stdout}\n{proc.stderr}"
    assert _installed_version() == NEWMAN_VERSION
    return NEWMAN_HOME / "node_modules" / ".bin" / "newman"


def newest_point(fixtures: Fixtures, vm: str) -> dict[str, Any]:
    points: dict[str, dict[str, Any]] = fixtures.manifest["vms"][vm]
    return max(points.values(), key=lambda p: str(p["time"]))


def run_collection(
    newman: Path, target: ClientTarget, expected_sha256: str, mode: str, out: Path
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env_vars = {
        "vem-url": target.base,
        "vem-username": target.user,
        "vem-password": target.password,
        "vmRestorePointId": target.point_id,
        "vmReplicaPointId": target.point_id,
        "expectedSha256": expected_sha256,
    }
    if mode == "json":
        env_vars["accept"] = "application/json"
    report = out / "report.json"
    args = [str(newman), "run", str(COLLECTION), "--insecure", "--color", "off", "--timeout-request", "60000"]
    for key, value in env_vars.items():
        args += ["--env-var", f"{key}={value}"]
    args += ["--reporters", "cli,json", "--reporter-json-export", str(report)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=out)
    assert report.is_file(), f"newman wrote no report ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    run: dict[str, Any] = json.loads(report.read_text())["run"]
    return proc, run


def failures(run: dict[str, Any]) -> list[str]:
    return [
        f"{f['source'].get('name', '?')}: {f['error'].get('test') or f['error'].get('name')}: "
        f"{f['error'].get('message')}"
        for f in run["failures"]
    ]


@pytest.mark.parametrize("mode", ["xml", "json"])
def test_postman_collection_flr_flow(
    newman: Path, target: ClientTarget, fixtures: Fixtures, mode: str, tmp_path: Path
) -> None:
    expected = newest_point(fixtures, "Win File Server")["volumes"]["c"]["files"][REPORT]["sha256"]
    proc, run = run_collection(newman, target, expected, mode, tmp_path)
    detail = "\n".join(failures(run)) + f"\n--- newman output ---\n{proc.stdout[-6000:]}\n{proc.stderr}"
    assert proc.returncode == 0, detail
    assert run["failures"] == [], detail

    stats = run["stats"]
    assert stats["assertions"]["failed"] == 0 and stats["testScripts"]["failed"] == 0, detail
    assert stats["assertions"]["total"] >= MIN_ASSERTIONS, detail

    # Every request in the collection ran and answered; the download among them, with its checks.
    ran = {e["item"]["name"]: e for e in run["executions"]}
    items = json.loads(COLLECTION.read_text())["item"]
    names = {i["name"] for folder in items for i in folder["item"]}
    assert names <= ran.keys(), names - ran.keys()
    for name in (DOWNLOAD, NAVIGATED_DOWNLOAD):
        download = ran[name]
        assert download["response"]["code"] == 200, name
        checks = {a["assertion"]: a.get("error") for a in download["assertions"]}
        assert any(n.startswith("SHA-256") for n in checks) and not any(checks.values()), checks
    # The navigation folder walked every backup and reached the point through restore points.
    walked = [e["item"]["name"] for e in run["executions"]]
    assert walked.count("Navigation Get Backup") >= 1, walked
    assert walked.count("Navigation Get VM Restore Points") >= 1, walked

    # The server's own log has this run's download and logout (the server is shared with other clients).
    log = target.server.log()
    for name, answer in ((DOWNLOAD, 200), ("Session Logout Current Session", 204)):
        request = ran[name]["request"]
        path = "/" + "/".join(request["url"]["path"])
        query = "&".join(f"{q['key']}={q['value']}" for q in request["url"].get("query", []))
        line = f"{request['method']} {path}{'?' + query if query else ''} {answer} "
        assert line in log, (line, log[-3000:])
