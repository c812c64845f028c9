"""Monitoring resources on the wire: summary reports, repositories, job sessions, agents.

The shared servers serve the vmware, hyperv and qcow2 fixture datastores: 6 replicas with 18 points,
made by 3 replication jobs. openflr runs no jobs, so session lists are empty.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, overload

import pytest
from lxml import etree
from starlette.testclient import TestClient

from openflr.api.app import create_app
from tests.imagebuilder import Fixtures
from tests.support import (
    FIXTURE_DATASTORES,
    NS,
    SHARED_SERVER,
    Api,
    attr,
    datastore_config,
    find,
    local,
    make_service,
    text,
    xml,
)

TOKEN = "X-RestSvcSessionId"
JSON = {"Accept": "application/json"}
TAIL = ["Links", "Href", "Type"]


@overload
def get(api: Api, token: str, path: str, json: Literal[False] = False) -> etree._Element: ...
@overload
def get(api: Api, token: str, path: str, json: Literal[True]) -> Any: ...
def get(api: Api, token: str, path: str, json: bool = False) -> Any:
    """The XML document at ``path``, or with ``json`` its JSON (parsed, so of no fixed type)."""
    r = api.get(path, headers={TOKEN: token, **(JSON if json else {})})
    assert r.status_code == 200, r.text
    return r.json() if json else xml(r)


def texts(root: object) -> dict[str, str]:
    return {local(c.tag): c.text for c in root}  # type: ignore[attr-defined]


def folder_bytes(folders: list[Path]) -> int:
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder in folders:
        for root, _dirs, files in os.walk(folder):
            for name in files:
                st = os.stat(Path(root) / name, follow_symlinks=False)
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
    return total


def test_summary_links_to_the_reports(api: Api, token: str) -> None:
    root = get(api, token, "/api/reports/summary")
    assert local(root.tag) == "SummaryReport"
    links = find(root, "em:Links")
    assert [lk.get("Name") for lk in links] == [
        "Overview",
        "VmsOverview",
        "JobStatistics",
        "ProcessedVms",
        "Repository",
    ]
    for lk in links:
        assert attr(lk, "Rel") == "Down" and attr(lk, "Type") == "ReportFrame"
        assert api.get(attr(lk, "Href"), headers={TOKEN: token}).status_code == 200


def test_overview(api: Api, token: str) -> None:
    root = get(api, token, "/api/reports/summary/overview")
    assert local(root.tag) == "OverviewReportFrame"
    assert texts(root) == {
        "BackupServers": "1",
        "ProxyServers": "0",
        "RepositoryServers": "3",
        "RunningJobs": "0",
        "ScheduledJobs": "3",
        "SuccessfulVmLastestStates": "6",
        "WarningVmLastestStates": "0",
        "FailedVmLastestStates": "0",
    }
    body = get(api, token, "/api/reports/summary/overview", json=True)
    assert body == {
        "BackupServers": 1,
        "ProxyServers": 0,
        "RepositoryServers": 3,
        "RunningJobs": 0,
        "ScheduledJobs": 3,
        "SuccessfulVmLastestStates": 6,
        "WarningVmLastestStates": 0,
        "FailedVmLastestStates": 0,
        "Links": None,
        "Href": None,
        "Type": None,
    }
    assert list(body)[-3:] == TAIL


def test_vms_overview(api: Api, token: str, fixtures: Fixtures) -> None:
    root = get(api, token, "/api/reports/summary/vms_overview")
    assert local(root.tag) == "VmsOverviewReportFrame"
    assert [local(c.tag) for c in root] == [
        "ProtectedVms",
        "BackedUpVms",
        "ReplicatedVms",
        "RestorePoints",
        "FullBackupPointsSize",
        "IncrementalBackupPointsSize",
        "ReplicaRestorePointsSize",
        "SourceVmsSize",
        "SuccessBackupPercents",
        "ProtectedVmsReportLink",
    ]
    body = get(api, token, "/api/reports/summary/vms_overview", json=True)
    assert {k: body[k] for k in ("ProtectedVms", "BackedUpVms", "ReplicatedVms", "RestorePoints")} == {
        "ProtectedVms": 6,
        "BackedUpVms": 0,
        "ReplicatedVms": 6,
        "RestorePoints": 18,
    }
    assert body["FullBackupPointsSize"] == body["IncrementalBackupPointsSize"] == 0
    assert body["SuccessBackupPercents"] == 0
    # Every fixture datastore holds nothing but its two replica folders.
    assert body["ReplicaRestorePointsSize"] == folder_bytes(
        [fixtures.datastore(n) for n in FIXTURE_DATASTORES]
    )
    assert body["SourceVmsSize"] > 0
    assert texts(root)["SourceVmsSize"] == str(body["SourceVmsSize"])
    assert list(body)[-3:] == TAIL


def test_job_statistics(api: Api, token: str) -> None:
    root = get(api, token, "/api/reports/summary/job_statistics")
    assert local(root.tag) == "JobStatisticsReportFrame"
    values = texts(root)
    assert values["ScheduledJobs"] == values["ScheduledReplicaJobs"] == "3"
    assert values["ScheduledBackupJobs"] == values["RunningJobs"] == "0"
    body = get(api, token, "/api/reports/summary/job_statistics", json=True)
    assert list(body) == [
        "RunningJobs",
        "ScheduledJobs",
        "ScheduledBackupJobs",
        "ScheduledReplicaJobs",
        "TotalJobRuns",
        "SuccessfulJobRuns",
        "WarningsJobRuns",
        "FailedJobRuns",
        "MaxJobDuration",
        "MaxBackupJobDuration",
        "MaxReplicaJobDuration",
        "MaxDurationBackupJobName",
        "MaxDurationReplicaJobName",
        "BackupJobStatusReportLink",
        *TAIL,
    ]
    assert body["ScheduledReplicaJobs"] == 3
    runs = ("TotalJobRuns", "SuccessfulJobRuns", "WarningsJobRuns", "FailedJobRuns", "MaxJobDuration")
    assert all(body[k] == 0 for k in runs)


def test_repositories(api: Api, token: str, fixtures: Fixtures) -> None:
    refs = get(api, token, "/api/repositories").findall("em:Ref", NS)
    assert sorted(attr(r, "Name") for r in refs) == sorted(FIXTURE_DATASTORES)
    ref = next(r for r in refs if attr(r, "Name") == "qcow2")
    assert attr(ref, "Type") == "RepositoryReference"
    assert attr(ref, "UID") == "urn:veeam:Repository:" + attr(ref, "Href").rsplit("/", 1)[1]
    assert [(lk.get("Rel"), lk.get("Type")) for lk in find(ref, "em:Links")] == [
        ("Up", "BackupServerReference"),
        ("Alternate", "Repository"),
    ]
    ent = get(api, token, attr(ref, "Href") + "?format=Entity")
    assert local(ent.tag) == "Repository" and attr(ent, "Name") == "qcow2"
    assert [local(c.tag) for c in ent] == ["Links", "Capacity", "FreeSpace", "Kind"]
    assert text(ent, "em:Kind") == "Datastore"
    vfs = os.statvfs(fixtures.datastore("qcow2"))
    capacity = int(text(ent, "em:Capacity"))
    assert capacity == vfs.f_blocks * vfs.f_frsize
    assert 0 <= int(text(ent, "em:FreeSpace")) <= capacity
    single = get(api, token, attr(ref, "Href"))
    assert local(single.tag) == "EntityRef" and attr(single, "UID") == attr(ref, "UID")
    by_urn = api.get("/api/repositories/" + attr(ref, "UID"), headers={TOKEN: token})
    assert by_urn.status_code == 200

    body = get(api, token, "/api/repositories?format=Entity", json=True)
    assert len(body["Repositories"]) == 3
    one = body["Repositories"][0]
    assert list(one) == ["Capacity", "FreeSpace", "Kind", "Name", "UID", *TAIL]
    assert one["Type"] == "Repository" and one["Href"].endswith("?format=Entity")
    assert one["Links"][0]["Type"] == "BackupServerReference"


@pytest.mark.parametrize(
    ("path", "root", "key"),
    [
        ("/api/backupSessions", "BackupJobSessions", "BackupJobSessions"),
        ("/api/replicaSessions", "ReplicaJobSessions", "ReplicaJobSessions"),
        ("/api/agents/discoveredComputers", "DiscoveredComputers", "DiscoveredComputers"),
    ],
)
def test_session_and_agent_lists_are_empty(api: Api, token: str, path: str, root: str, key: str) -> None:
    ent = get(api, token, path + "?format=Entity")
    assert local(ent.tag) == root and len(ent) == 0
    assert get(api, token, path + "?format=entity", json=True) == {key: []}
    refs = get(api, token, path)
    assert local(refs.tag) == "EntityReferences" and len(refs) == 0
    assert get(api, token, path, json=True) == {"Refs": []}


@pytest.mark.parametrize(
    "path",
    [
        "/api/backupSessions/45f138d9-7e5e-4140-bd33-088cc207a0f9/taskSessions?format=entity",
        "/api/backupSessions/urn:veeam:BackupJobSession:45f138d9-7e5e-4140-bd33-088cc207a0f9",
        "/api/replicaSessions/0bcf5a1e-866c-4b40-8bc3-ce64753b9a6b?format=Entity",
        "/api/agents/discoveredComputers/535612d0-3406-4afc-90ad-1200fdf493e3",
        "/api/repositories/00000000-0000-0000-0000-000000000000?format=Entity",
    ],
)
def test_unknown_ids_are_404(api: Api, token: str, path: str) -> None:
    r = api.get(path, headers={TOKEN: token})
    assert r.status_code == 404
    err = xml(r)
    assert local(err.tag) == "Error" and err.get("StatusCode") == "404" and err.get("Status") == "NotFound"
    j = api.get(path, headers={TOKEN: token, **JSON})
    assert j.status_code == 404 and j.json()["StatusCode"] == 404 and "does not exist" in j.json()["Message"]


def test_monitoring_needs_a_session(api: Api) -> None:
    for path in (
        "/api/reports/summary",
        "/api/reports/summary/overview",
        "/api/reports/summary/vms_overview",
        "/api/reports/summary/job_statistics",
        "/api/repositories?format=Entity",
        "/api/backupSessions?format=Entity",
        "/api/backupSessions/45f138d9-7e5e-4140-bd33-088cc207a0f9/taskSessions",
        "/api/replicaSessions",
        "/api/agents/discoveredComputers?format=Entity",
    ):
        r = api.get(path)
        assert r.status_code == 401, path
        assert local(xml(r).tag) == "Error"


def test_scoped_user_sees_only_its_datastores(tmp_path: Path, fixtures: Fixtures) -> None:
    empty = tmp_path / "empty-datastore"
    empty.mkdir()
    config = (
        SHARED_SERVER + datastore_config(fixtures) + f'[[datastores]]\nname = "empty"\npath = "{empty}"\n'
    )
    (tmp_path / "data").mkdir()
    service = make_service(tmp_path / "data", config)
    service.users.set_restrictions("viewer", scope=["lin*"])
    with TestClient(create_app(service), base_url="https://testserver") as client:
        api = Api(client, "https://testserver", "inproc")
        everyone, scoped = api.logon("flrop"), api.logon("viewer")
        full = get(api, everyone, "/api/reports/summary/overview", json=True)
        assert (full["RepositoryServers"], full["ScheduledJobs"], full["SuccessfulVmLastestStates"]) == (
            4,
            3,
            6,
        )
        names = {
            r["Name"]
            for r in get(api, everyone, "/api/repositories?format=Entity", json=True)["Repositories"]
        }
        assert names == {*FIXTURE_DATASTORES, "empty"}

        part = get(api, scoped, "/api/reports/summary/overview", json=True)
        assert (part["RepositoryServers"], part["ScheduledJobs"], part["SuccessfulVmLastestStates"]) == (
            3,
            3,
            3,
        )
        vms = get(api, scoped, "/api/reports/summary/vms_overview", json=True)
        assert (vms["ProtectedVms"], vms["RestorePoints"]) == (3, 9)
        refs = get(api, scoped, "/api/repositories", json=True)["Refs"]
        assert {r["Name"] for r in refs} == set(FIXTURE_DATASTORES)
        empty_id = next(
            r["UID"]
            for r in get(api, everyone, "/api/repositories", json=True)["Refs"]
            if r["Name"] == "empty"
        )
        assert api.get(f"/api/repositories/{empty_id}", headers={TOKEN: scoped}).status_code == 404
