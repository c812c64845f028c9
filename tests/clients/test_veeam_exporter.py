"""veeam-exporter 1.1.0 (PyPI; docs/COMPATIBILITY.md) runs its whole dry run against `openflr serve`.

Its dry run logs on, reads every summary report, the backup sessions, repositories, backup servers
and discovered agent computers, turns them into Prometheus metrics, then logs out through
``GET /api/logonSessions`` and ``DELETE /api/logonSessions/{id}``. With ``-v`` it prints the metrics
as log lines. (It asks for ``/backupSessions/{id}/taskSessions`` only for backup sessions of the
last day; openflr has none, so that call never comes.)
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.clients.support import ClientTarget, client_venv
from tests.support import plain_client

REQUIREMENT = "veeam-exporter==1.1.0"
TOKEN = "X-RestSvcSessionId"
READS = (
    "/api/reports/summary/job_statistics",
    "/api/reports/summary/vms_overview",
    "/api/reports/summary/overview",
    "/api/backupSessions?format=Entity",
    "/api/repositories?format=Entity",
    "/api/backupServers?format=Entity",
    "/api/agents/discoveredComputers?format=Entity",
)


@pytest.fixture(scope="session")
def exporter_bin() -> Path:
    return client_venv("veeam-exporter", REQUIREMENT)


def package_dir(bin_dir: Path) -> Path:
    out = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import os, veeam_exporter; print(os.path.dirname(veeam_exporter.__file__))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return Path(out.stdout.strip())


def write_config(path: Path, target: ClientTarget, log_file: Path) -> None:
    scheme = target.base.split("://", 1)[0]
    veeam = {
        "host": "127.0.0.1",
        "port": target.server.port,
        "user": target.user,
        "password": target.password,
        "protocol": scheme,
        "verify_ssl": False,
        "timeout": 20,
        "keep_session": False,
    }
    config = {
        "veeams": [veeam],
        "weblisten": {"address": "127.0.0.1", "port": 9247},
        "logger": {"level": "debug", "facility": str(log_file)},
        "metrics_file": "conf/metrics/*_metrics.yml",
    }
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML


def our_inventory(target: ClientTarget) -> tuple[int, int, int, list[str]]:
    """Replicas, replica points, replication jobs and datastore names, read through the API."""
    with plain_client() as http:
        r = http.post(
            f"{target.base}/api/sessionMngr/?v=latest",
            auth=(target.user, target.password),
            headers={"Accept": "application/json"},
        )
        headers = {TOKEN: r.headers[TOKEN], "Accept": "application/json"}
        replicas = http.get(f"{target.base}/api/replicas?format=Entity", headers=headers).json()["Replicas"]
        points = http.get(f"{target.base}/api/vmReplicaPoints", headers=headers).json()["Refs"]
        stores = http.get(f"{target.base}/api/repositories", headers=headers).json()["Refs"]
        bye = http.delete(f"{target.base}/api/logonSessions/{r.json()['SessionId']}", headers=headers)
        assert bye.status_code == 204
    jobs = {r["JobName"] for r in replicas}
    return len(replicas), len(points), len(jobs), [s["Name"] for s in stores]


def metric(output: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^.*- {re.escape(name + labels)} (\S+)$", output, re.MULTILINE)
    assert match, f"no {name}{labels} in the exporter output:\n{output}"
    return float(match.group(1))


def test_dry_run(target: ClientTarget, exporter_bin: Path, tmp_path: Path) -> None:
    replicas, points, jobs, stores = our_inventory(target)
    assert replicas > 0 and points > 0 and jobs > 0 and stores
    log_file = tmp_path / "veeam_exporter.log"
    config = tmp_path / "config.yml"
    write_config(config, target, log_file)
    time.sleep(0.3)  # let the access log catch up with the requests above
    server_log_start = len(target.server.log())

    started = time.monotonic()
    proc = subprocess.run(
        [
            str(exporter_bin / "veeam_exporter"),
            "-c",
            str(config),
            "-b",
            str(package_dir(exporter_bin)),
            "-n",
            "-v",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    took = time.monotonic() - started
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert took < 60, f"the dry run took {took:.1f}s"

    own_log = log_file.read_text()
    for bad in ("Traceback", "Exception", "exception", "level=ERROR", "level=WARNING", "Unable to access"):
        assert bad not in own_log, own_log
        assert bad not in output, output
    assert "Session Login Successful" in own_log

    # Metrics computed from our answers.
    assert metric(output, "veeam_em_up") == 1
    assert metric(output, "veeam_em_overview_vms_count", '{type="protected"}') == replicas
    assert metric(output, "veeam_em_overview_vms_count", '{type="replicated"}') == replicas
    assert metric(output, "veeam_em_overview_vms_count", '{type="restore_points"}') == points
    assert metric(
        output, "veeam_em_overview_element_count", '{count_type="server",type="repository"}'
    ) == len(stores)
    assert (
        metric(output, "veeam_em_overview_element_count", '{count_type="tasks",type="successful_vms"}')
        == replicas
    )
    assert metric(output, "veeam_em_overview_jobs_count", '{type="scheduled_replica"}') == jobs
    for store in stores:
        total = metric(
            output,
            "veeam_em_overview_repositories_capacity_total_bytes",
            f'{{name="{store}",type="Datastore"}}',
        )
        free = metric(
            output,
            "veeam_em_overview_repositories_capacity_free_bytes",
            f'{{name="{store}",type="Datastore"}}',
        )
        assert 0 <= free <= total and total > 0
    assert "veeam_em_backup_servers_config{" in output

    # What the server saw: one logon, every read answered 200, the logout 204.
    time.sleep(0.3)  # the access log line is written after the response
    seen = target.server.log()[server_log_start:]
    assert re.search(r" POST /api/sessionMngr\?v=latest 201 ", seen), seen
    for path in READS:
        assert f" GET {path} 200 " in seen, f"{path} not answered 200:\n{seen}"
    assert " GET /api/logonSessions 200 " in seen, seen
    assert re.search(r" DELETE /api/logonSessions/[0-9a-f-]{36} 204 ", seen), seen
    assert not re.search(r" (GET|POST|DELETE) \S+ [45]\d\d ", seen), seen
