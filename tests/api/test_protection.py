"""Jobs, backups, restore points, hierarchy roots and lookup on the wire, in XML and JSON.

The shared servers serve the vmware, hyperv and qcow2 fixture datastores: 3 replication jobs
("<NAME> Replication"), 6 replicas, 18 points. A client walking jobs -> backups -> restore points ->
VM restore points must reach exactly the points ``/vmRestorePoints`` serves.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from openflr.api.app import create_app
from openflr.api.routes.reports import processed_days
from openflr.inventory.model import BackupServer, Inventory, Replica, ReplicaPoint
from tests.imagebuilder import Fixtures
from tests.support import NS, SHARED_SERVER, Api, datastore_config, local, make_service, xml

TOKEN = "X-RestSvcSessionId"
JSON = {"Accept": "application/json"}
JOBS = {"VMWARE Replication", "HYPERV Replication", "QCOW2 Replication"}
ENTITY_TAIL = ["Name", "UID", "Links", "Href", "Type"]


def get(api: Api, token: str, path: str, json: bool = False) -> Any:
    r = api.get(path, headers={TOKEN: token, **(JSON if json else {})})
    assert r.status_code == 200, (path, r.text)
    return r.json() if json else xml(r)


def children(root: Any) -> list[str]:
    return [local(c.tag) for c in root]


def links(root: Any) -> list[tuple[str, str, str]]:
    """(Rel, Type, Href) of an XML element's links."""
    return [(lk.get("Rel"), lk.get("Type"), lk.get("Href")) for lk in root.find("em:Links", NS)]


def link(value: dict[str, Any], rel: str, type_: str) -> str:
    hrefs = [lk["Href"] for lk in value["Links"] if lk["Rel"] == rel and lk["Type"] == type_]
    assert len(hrefs) == 1, (rel, type_, value["Links"])
    return str(hrefs[0])


def error(r: Any, status: int) -> None:
    assert r.status_code == status, r.text
    if "json" in r.headers["content-type"]:
        assert r.json()["StatusCode"] == status and r.json()["Message"]
    else:
        root = xml(r)
        assert local(root.tag) == "Error" and root.get("StatusCode") == str(status)


# --- jobs --------------------------------------------------------------------------------------------


def test_jobs_as_refs_and_entities(api: Api, token: str) -> None:
    refs = get(api, token, "/api/jobs")
    assert local(refs.tag) == "EntityReferences"
    assert {r.get("Name") for r in refs} == JOBS
    for ref in refs:
        assert ref.get("Type") == "JobReference" and ref.get("UID").startswith("urn:veeam:Job:")
        assert [(rel, t) for rel, t, _ in links(ref)] == [
            ("Up", "BackupServerReference"),
            ("Alternate", "Job"),
        ]
        one = get(api, token, ref.get("Href"))
        assert local(one.tag) == "EntityRef" and one.get("Name") == ref.get("Name")

    jobs = get(api, token, "/api/jobs?format=Entity")
    assert local(jobs.tag) == "Jobs" and len(jobs) == 3
    for job in jobs:
        assert children(job) == [
            "Links",
            "JobType",
            "Platform",
            "Description",
            "ScheduleConfigured",
            "ScheduleEnabled",
        ]
        assert job.findtext("em:JobType", namespaces=NS) == "Replica"
        assert job.findtext("em:ScheduleEnabled", namespaces=NS) == "true"
        kinds = [(rel, t) for rel, t, _ in links(job)]
        assert kinds[:4] == [
            ("Up", "BackupServerReference"),
            ("Alternate", "JobReference"),
            ("Down", "BackupJobSessionReferenceList"),
            ("Down", "BackupReference"),
        ]
        assert kinds[4:] == [("Down", "ReplicaReference")] * 2

    body = get(api, token, "/api/jobs?format=Entity", json=True)
    first = body["Jobs"][0]
    assert list(first) == [
        "JobType",
        "Platform",
        "Description",
        "ScheduleConfigured",
        "ScheduleEnabled",
        "NextRun",
        *ENTITY_TAIL,
    ]
    assert {j["Platform"] for j in body["Jobs"]} == {"VMware", "HyperV", "KVM"}
    one = get(api, token, first["Href"], json=True)
    assert one["UID"] == first["UID"] and one["ScheduleConfigured"] is True
    sessions = get(
        api, token, link(first, "Down", "BackupJobSessionReferenceList") + "?format=Entity", json=True
    )
    assert sessions == {"BackupJobSessions": []}


def test_replicas_link_to_their_job_and_back(api: Api, token: str) -> None:
    replicas = get(api, token, "/api/replicas?format=Entity", json=True)["Replicas"]
    assert len(replicas) == 6
    for replica in replicas:
        job = get(api, token, link(replica, "Up", "JobReference") + "?format=Entity", json=True)
        assert job["Name"] == replica["JobName"]
        assert replica["Href"].split("?")[0] in [
            lk["Href"] for lk in job["Links"] if lk["Type"] == "ReplicaReference"
        ]
    ref = get(api, token, "/api/replicas").find("em:Ref", NS)
    assert ("Up", "JobReference") in [(rel, t) for rel, t, _ in links(ref)]


@pytest.mark.parametrize("request_", ["POST start", "POST stop", "POST retry", "PUT edit", "POST"])
def test_changing_a_job_is_not_supported(api: Api, token: str, request_: str) -> None:
    method, _, action = request_.partition(" ")
    href = get(api, token, "/api/jobs", json=True)["Refs"][0]["Href"]
    url = href + (f"?action={action}" if action else "")
    for accept in ({}, JSON):
        r = api.request(method, url, headers={TOKEN: token, **accept})
        error(r, 501)
    r = api.request(method, url, headers={TOKEN: token, **JSON})
    assert "openflr" in r.json()["Message"] and "runs no jobs" in r.json()["Message"]
    error(
        api.request(
            method, "/api/jobs/00000000-0000-0000-0000-000000000000?action=start", headers={TOKEN: token}
        ),
        404,
    )


# --- backups and restore points ----------------------------------------------------------------------


def test_backups(api: Api, token: str) -> None:
    refs = get(api, token, "/api/backups")
    assert {r.get("Name") for r in refs} == JOBS
    for ref in refs:
        assert ref.get("Type") == "BackupReference" and ref.get("UID").startswith("urn:veeam:Backup:")
        assert [(rel, t) for rel, t, _ in links(ref)] == [
            ("Up", "BackupServerReference"),
            ("Up", "RepositoryReference"),
            ("Alternate", "Backup"),
            ("Down", "RestorePointReferenceList"),
        ]
    backups = get(api, token, "/api/backups?format=Entity")
    for backup in backups:
        assert children(backup) == ["Links", "Platform", "BackupType"]
        assert backup.findtext("em:BackupType", namespaces=NS) == "Standard"
        assert [(rel, t) for rel, t, _ in links(backup)][:3] == [
            ("Up", "RepositoryReference"),
            ("Up", "BackupServerReference"),
            ("Alternate", "BackupReference"),
        ]
        repository = next(h for rel, t, h in links(backup) if t == "RepositoryReference")
        assert get(api, token, repository).get("Name") in {"vmware", "hyperv", "qcow2"}
    body = get(api, token, "/api/backups?format=Entity", json=True)
    assert list(body["Backups"][0]) == ["Platform", "BackupType", *ENTITY_TAIL]


@pytest.mark.parametrize("json", [False, True], ids=["xml", "json"])
def test_walk_jobs_backups_restore_points_to_vm_restore_points(api: Api, token: str, json: bool) -> None:
    """jobs -> backup -> restore points -> VM restore points reaches every point /vmRestorePoints has."""
    reached: list[str] = []
    if json:
        for job in get(api, token, "/api/jobs?format=Entity", json=True)["Jobs"]:
            backup = get(api, token, link(job, "Down", "BackupReference") + "?format=Entity", json=True)
            points = get(api, token, link(backup, "Down", "RestorePointReferenceList"), json=True)["Refs"]
            assert len(points) == 6
            for ref in points:
                assert [lk["Type"] for lk in ref["Links"]] == [
                    "BackupServerReference",
                    "BackupReference",
                    "RestorePoint",
                    "VmRestorePointReferenceList",
                ]
                vms = get(api, token, link(ref, "Down", "VmRestorePointReferenceList"), json=True)["Refs"]
                assert len(vms) == 1 and vms[0]["Type"] == "VmRestorePointReference"
                reached.append(vms[0]["UID"])
    else:
        for job in get(api, token, "/api/jobs?format=Entity"):
            backup_href = next(h for rel, t, h in links(job) if t == "BackupReference")
            backup = get(api, token, backup_href + "?format=Entity")
            rp_list = next(h for rel, t, h in links(backup) if t == "RestorePointReferenceList")
            for ref in get(api, token, rp_list + "?format=Entity"):
                assert local(ref.tag) == "RestorePoint" and children(ref) == ["Links", "BackupDateUTC"]
                vm_list = next(h for rel, t, h in links(ref) if t == "VmRestorePointReferenceList")
                vms = get(api, token, vm_list)
                assert len(vms) == 1
                reached.append(vms[0].get("UID"))
    served = [r["UID"] for r in get(api, token, "/api/vmRestorePoints", json=True)["Refs"]]
    assert sorted(reached) == sorted(served) and len(served) == 18


def test_restore_points(api: Api, token: str) -> None:
    body = get(api, token, "/api/restorePoints?format=Entity", json=True)
    points = body["RestorePoints"]
    assert len(points) == 18
    assert list(points[0]) == ["BackupDateUTC", *ENTITY_TAIL]
    for rp in points:
        created = datetime.fromisoformat(rp["BackupDateUTC"].replace("Z", "+00:00"))
        hour, half = created.hour % 12 or 12, "AM" if created.hour < 12 else "PM"
        assert rp["Name"] == f"{created:%b} {created.day:>2} {created.year} {hour:>2}:{created:%M}{half}"
    one = points[0]
    assert [lk["Type"] for lk in one["Links"]] == [
        "BackupReference",
        "BackupServerReference",
        "RestorePointReference",
        "VmRestorePointReferenceList",
    ]
    ref = get(api, token, link(one, "Alternate", "RestorePointReference"))
    assert local(ref.tag) == "EntityRef" and ref.get("Type") == "RestorePointReference"
    vm = get(api, token, link(one, "Down", "VmRestorePointReferenceList") + "?format=Entity", json=True)
    point = vm["VmRestorePoints"][0]
    assert link(point, "Up", "RestorePointReference") == one["Href"].split("?")[0]
    assert get(api, token, "/api/restorePoints", json=True)["Refs"][0]["Type"] == "RestorePointReference"


def test_vm_restore_point_carries_hierarchy_ref_and_restore_point(api: Api, token: str) -> None:
    refs = get(api, token, "/api/vmRestorePoints", json=True)["Refs"]
    entity = get(api, token, refs[0]["Href"] + "?format=Entity")
    assert children(entity) == [
        "Links",
        "CreationTimeUTC",
        "VmName",
        "Algorithm",
        "PointType",
        "HierarchyObjRef",
    ]
    assert [(rel, t) for rel, t, _ in links(entity)][:3] == [
        ("Up", "BackupServerReference"),
        ("Up", "RestorePointReference"),
        ("Up", "ReplicaReference"),
    ]
    ref = entity.findtext("em:HierarchyObjRef", namespaces=NS)
    items = get(api, token, f"/api/lookup?hierarchyRef={quote(ref)}", json=True)["HierarchyItems"]
    assert items == [
        {
            "ObjectRef": ref,
            "ObjectType": "Vm",
            "ObjectName": entity.get("VmDisplayName"),
            "Links": None,
            "Href": None,
            "Type": "HierarchyItem",
        }
    ]
    # The query service filters VM restore points by it: every point of that VM, no other.
    query = f'/api/query?type=VmRestorePoint&filter=HierarchyObjRef=="{ref}"'
    matched = get(api, token, query, json=True)["Refs"]["Refs"]
    names = {r["Name"].split("@")[0] for r in matched}
    assert len(matched) == 3 and names == {entity.get("VmDisplayName")}
    # Replica points do not carry it (only VM restore points do).
    replica_point = get(
        api, token, refs[0]["Href"].replace("vmRestorePoints", "vmReplicaPoints") + "?format=Entity"
    )
    assert "HierarchyObjRef" not in children(replica_point)


# --- hierarchy and lookup ----------------------------------------------------------------------------


def test_hierarchy_roots_and_lookup(api: Api, token: str) -> None:
    refs = get(api, token, "/api/hierarchyRoots")
    assert {r.get("Name") for r in refs} == {"VMware", "HyperV", "KVM"}
    for ref in refs:
        assert ref.get("Type") == "HierarchyRootReference"
        assert [(rel, t) for rel, t, _ in links(ref)] == [
            ("Up", "BackupServerReference"),
            ("Alternate", "HierarchyRoot"),
        ]
    roots = get(api, token, "/api/hierarchyRoots?format=Entity")
    for root in roots:
        assert children(root) == ["Links", "HierarchyRootId", "UniqueId", "HostType"]
        assert root.get("UID").endswith(root.findtext("em:HierarchyRootId", namespaces=NS))
    host_types = {
        r["Name"]: r["HostType"]
        for r in get(api, token, "/api/hierarchyRoots?format=Entity", json=True)["HierarchyRoots"]
    }
    assert host_types == {"VMware": "VC", "HyperV": "HvServer", "KVM": "KVM"}

    svc = get(api, token, "/api/lookupSvc")
    assert local(svc.tag) == "LookupSvc" and svc.get("Type") == "LookupService"
    kinds = links(svc)
    assert kinds[0][:2] == ("Up", "LogonSession")
    downs = [h for rel, t, h in kinds if rel == "Down" and t == "HierarchyItemList"]
    assert len(downs) == 3
    found: list[tuple[str, str]] = []
    for href in downs:
        items = get(api, token, href)
        assert local(items.tag) == "HierarchyItems"
        for item in items:
            assert children(item) == ["ObjectRef", "ObjectType", "ObjectName"]
            found.append(
                (item.findtext("em:ObjectName", namespaces=NS), item.findtext("em:ObjectRef", namespaces=NS))
            )
    assert len({ref for _n, ref in found}) == 6
    name, ref = found[0]
    root_uid = next(r.get("UID") for r in refs if ref.split(":")[1] == r.get("Name"))
    exact = get(api, token, f"/api/lookup?host={root_uid}&name={quote(name.upper())}&type=Vm", json=True)
    assert [i["ObjectRef"] for i in exact["HierarchyItems"]] == [ref]
    wild = get(api, token, f"/api/lookup?host={root_uid}&name={quote(name[:3])}*&type=Vm", json=True)
    assert ref in [i["ObjectRef"] for i in wild["HierarchyItems"]]
    assert get(api, token, f"/api/lookup?host={root_uid}&name=Host&type=Host", json=True) == {
        "HierarchyItems": []
    }
    bad = "urn:veeam:HierarchyRoot:00000000-0000-0000-0000-000000000000"
    error(api.get(f"/api/lookup?host={bad}&name=*&type=Vm", headers={TOKEN: token}), 404)
    error(api.get("/api/lookup?hierarchyRef=urn:VMware:Vm:nope.nope", headers={TOKEN: token, **JSON}), 404)


# --- errors ------------------------------------------------------------------------------------------

BAD = "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize(
    "path",
    [
        f"/api/jobs/{BAD}",
        f"/api/jobs/{BAD}?format=Entity",
        f"/api/jobs/{BAD}/backupSessions",
        f"/api/backups/{BAD}",
        f"/api/backups/urn:veeam:Backup:{BAD}/restorePoints",
        f"/api/restorePoints/{BAD}",
        f"/api/restorePoints/{BAD}/vmRestorePoints",
        f"/api/hierarchyRoots/{BAD}",
    ],
)
def test_unknown_ids_are_404_errors(api: Api, token: str, path: str) -> None:
    error(api.get(path, headers={TOKEN: token}), 404)
    error(api.get(path, headers={TOKEN: token, **JSON}), 404)


@pytest.mark.parametrize(
    "path",
    [
        "/api/jobs",
        "/api/backups",
        "/api/restorePoints",
        "/api/hierarchyRoots",
        "/api/lookupSvc",
        "/api/lookup?host=x",
    ],
)
def test_they_need_a_session(api: Api, path: str) -> None:
    error(api.get(path), 401)


# --- reports -----------------------------------------------------------------------------------------


def test_repository_report(api: Api, token: str) -> None:
    frame = get(api, token, "/api/reports/summary/repository")
    assert local(frame.tag) == "RepositoryReportFrame"
    assert children(frame) == ["Period"] * 3
    for period in frame:
        assert children(period) == ["Name", "Capacity", "FreeSpace", "BackupSize"]
        assert int(period.findtext("em:BackupSize", namespaces=NS)) > 0
    body = get(api, token, "/api/reports/summary/repository", json=True)
    assert list(body) == ["Periods", "CapacityPlanningReportLink", "Links", "Href", "Type"]
    repos = {
        r["Name"]: r for r in get(api, token, "/api/repositories?format=Entity", json=True)["Repositories"]
    }
    for period in body["Periods"]:
        assert list(period) == ["Name", "Capacity", "FreeSpace", "BackupSize"]
        assert period["Capacity"] == repos[period["Name"]]["Capacity"]


def test_processed_vms_report(api: Api, token: str) -> None:
    frame = get(api, token, "/api/reports/summary/processed_vms")
    assert local(frame.tag) == "ProcessedVmsReportFrame"
    assert children(frame) == ["Day"] * 7
    stamps = [d.get("Timestamp") for d in frame]
    assert stamps == sorted(stamps, reverse=True) and all(s.endswith("T00:00:00Z") for s in stamps)
    assert all(d.get("BackupedVms") == "0" for d in frame)
    body = get(api, token, "/api/reports/summary/processed_vms", json=True)
    assert list(body) == ["Days", "Links", "Href", "Type"]
    assert list(body["Days"][0]) == ["Timestamp", "ReplicatedVms", "BackupedVms"]


def test_processed_days_count_replicas_with_a_point_that_day() -> None:
    def point(rid: str, n: int, when: datetime) -> ReplicaPoint:
        return ReplicaPoint(f"{rid}-{n}", rid, when, ())

    def replica(rid: str, *points: ReplicaPoint) -> Replica:
        return Replica(rid, "ds", "job", rid, rid, "VMware", Path("/x"), points)

    inv = Inventory(BackupServer("s", "s", "", "1", 1))
    day = datetime(2026, 11, 30, 21, tzinfo=UTC)
    inv.add(replica("a", point("a", 1, day), point("a", 2, day.replace(hour=22))))
    inv.add(replica("b", point("b", 1, day), point("b", 2, datetime(2026, 11, 1, tzinfo=UTC))))
    days = processed_days(inv, date(2026, 12, 2))
    assert [(d["Timestamp"].day, d["ReplicatedVms"]) for d in days] == [
        (2, 0),
        (1, 0),
        (30, 2),
        (29, 0),
        (28, 0),
        (27, 0),
        (26, 0),
    ]


# --- queries and navigation --------------------------------------------------------------------------

CAPTURED_ENTITY_KEYS = [
    "Jobs", "FailoverPlans", "Backups", "Replicas", "Repositories", "RestorePoints", "VmRestorePoints",
    "VAppRestorePoints", "VmReplicaPoints", "BackupJobSessions", "ReplicaJobSessions", "ReplicaTaskSessions",
    "RestoreSessions", "HierarchyRoots", "BackupTaskSessions", "BackupServers", "ManagedServers",
    "EnterpiseRoles", "EnterpiseAccounts", "WanAccelerators", "CloudGateways", "CloudTenants",
    "CloudReplicas",
    "VCloudOrganizationConfigs", "BackupFiles", "VSphereSelfServiceConfigs", "CloudPublicIps",
    "CloudHardwarePlans", "CloudVmReplicaPoints", "AgentRestorePoints", "AgentBackupJob", "CloudGatewayPools",
    "CloudFailoverPlans", "ExternalRepositories", "VlanConfigurations", "CloudFailoverSessions",
    "AgentProtectionGroups", "DiscoveredComputers", "FileServers", "NASJobs", "CdpReplicas", "CdpReplicaVms",
    "CdpPolicies", "CdpReplicaSessions", "CdpReplicaTaskSessions", "VAppReplicaPoints", "VmCdpReplicas",
    "VAppCdpReplicas", "VAppCdpReplicaVms", "SystemSessions",
]  # fmt: skip
"""``QueryResult/Entities`` keys in the order a real EM 12 writes them."""


def test_every_query_type_answers(api: Api, token: str) -> None:
    svc = get(api, token, "/api/querySvc")
    hrefs = {lk.get("Name"): lk.get("Href") for lk in svc.find("em:Links", NS)}
    assert len(hrefs) == 50
    counts = {
        "Job": 3,
        "Backup": 3,
        "RestorePoint": 18,
        "Repository": 3,
        "HierarchyRoot": 3,
        "VmRestorePoint": 18,
    }
    for name, href in hrefs.items():
        refs = get(api, token, href, json=True)["Refs"]["Refs"]
        assert len(refs) == counts.get(name, len(refs)), name
        body = get(api, token, href + "&format=Entities", json=True)
        assert list(body["Entities"]) == CAPTURED_ENTITY_KEYS
        inner = [k for k, v in body["Entities"].items() if v is not None]
        assert len(inner) == 1
        if name not in counts and name not in ("VmReplicaPoint", "Replica", "BackupServer"):
            assert refs == [] and body["Entities"][inner[0]] == {inner[0]: []}, name
    xml_body = get(api, token, hrefs["Job"] + "&format=Entities")
    assert [local(j.tag) for j in xml_body.find("em:Entities/em:Jobs", NS)] == ["Job"] * 3


@pytest.mark.parametrize(
    "query",
    [
        'type=BackupJobSession&format=entities&filter=result=="Failed";creationtime>"2026-01-01T00:00:00Z"',
        "type=ReplicaJobSession&format=Entities&filter=CreationTime>=2026-11-27T05:00:00",
        'type=BackupJobSession&filter=JobName=="X"&sortDesc=EndTime&pageSize=1&format=entities',
        "type=job&filter=JobType==Replica&format=entities",
        "type=Repository&format=Entities&filter=CreationTime>=2026-11-27T05:00:00",
    ],
)
def test_monitoring_queries(api: Api, token: str, query: str) -> None:
    body = get(api, token, f"/api/query?{query}", json=True)
    found = [v for v in body["Entities"].values() if v is not None]
    assert len(found) == 1
    if "type=job" in query:
        assert len(found[0]["Jobs"]) == 3


def test_logon_session_links_reach_every_collection(api: Api, token: str) -> None:
    session = get(api, token, "/api/logonSessions", json=True)["LogonSessions"][0]
    downs = {lk["Type"]: lk["Href"] for lk in session["Links"] if lk["Rel"] == "Down"}
    for wanted in (
        "RestorePointReferenceList",
        "RepositoryReferenceList",
        "Report",
        "BackupJobSessionReferenceList",
        "ReplicaJobSessionReferenceList",
        "JobReferenceList",
        "BackupReferenceList",
        "HierarchyRootReferenceList",
        "LookupService",
        "QueryService",
        "VmRestorePointList",
    ):
        assert wanted in downs, wanted
    for href in downs.values():
        assert api.get(href, headers={TOKEN: token}).status_code == 200, href


# --- restore scope -----------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["viewer", "flrop"])
def test_a_scoped_user_sees_only_its_vms_jobs_backups_and_points(
    tmp_path: Path, fixtures: Fixtures, user: str
) -> None:
    service = make_service(tmp_path, SHARED_SERVER + datastore_config(fixtures))
    service.users.set_restrictions(user, scope=["lin*"])
    with TestClient(create_app(service), base_url="https://testserver") as client:
        api = Api(client, "https://testserver", "inproc")
        everyone, scoped = api.logon("admin"), api.logon(user)
        all_points = get(api, everyone, "/api/restorePoints", json=True)["Refs"]
        mine = get(api, scoped, "/api/restorePoints", json=True)["Refs"]
        assert len(all_points) == 18 and len(mine) == 9
        hidden = [r for r in all_points if r["UID"] not in {m["UID"] for m in mine}]
        for ref in hidden:
            error(api.get(ref["Href"], headers={TOKEN: scoped}), 404)
            error(api.get(ref["Href"] + "/vmRestorePoints", headers={TOKEN: scoped}), 404)

        jobs = get(api, scoped, "/api/jobs?format=Entity", json=True)["Jobs"]
        for job in jobs:
            names = [lk["Name"] for lk in job["Links"] if lk["Type"] == "ReplicaReference"]
            assert names and all(n.lower().startswith("lin") for n in names)
            backup = get(api, scoped, link(job, "Down", "BackupReference") + "/restorePoints", json=True)
            assert len(backup["Refs"]) == 3
        vm_points = get(api, scoped, "/api/vmRestorePoints", json=True)["Refs"]
        assert len(vm_points) == 9

        svc = get(api, everyone, "/api/lookupSvc", json=True)
        every_vm = [
            i
            for lk in svc["Links"]
            if lk["Rel"] == "Down"
            for i in get(api, everyone, lk["Href"], json=True)["HierarchyItems"]
        ]
        for item in every_vm:
            r = api.get(f"/api/lookup?hierarchyRef={quote(item['ObjectRef'])}", headers={TOKEN: scoped})
            assert r.status_code == (200 if item["ObjectName"].lower().startswith("lin") else 404)
        for qtype, count in (("RestorePoint", 9), ("VmRestorePoint", 9), ("Job", 3), ("Backup", 3)):
            body = get(api, scoped, f"/api/query?type={qtype}", json=True)
            assert len(body["Refs"]["Refs"]) == count, qtype
        processed = get(api, scoped, "/api/reports/summary/repository", json=True)["Periods"]
        assert len(processed) == 3


@pytest.mark.parametrize(
    ("path", "root"),
    [
        ("managedServers", "ManagedServers"),
        ("failoverPlans", "FailoverPlans"),
        ("vAppRestorePoints", "VAppRestorePoints"),
        ("restoreSessions", "RestoreSessions"),
        ("backupTaskSessions", "BackupTaskSessions"),
        ("replicaTaskSessions", "ReplicaTaskSessions"),
        ("wanAccelerators", "WanAccelerators"),
        ("backupFiles", "BackupFiles"),
        ("externalRepositories", "ExternalRepositories"),
        ("vAppReplicaPoints", "VAppReplicaPoints"),
    ],
)
def test_collections_openflr_has_nothing_in_are_empty(api: Api, token: str, path: str, root: str) -> None:
    refs = get(api, token, f"/api/{path}")
    assert local(refs.tag) == "EntityReferences" and len(refs) == 0
    assert get(api, token, f"/api/{path}?format=Entity", json=True) == {root: []}
    assert local(get(api, token, f"/api/{path}?format=Entity").tag) == root
    error(api.get(f"/api/{path}/{BAD}", headers={TOKEN: token}), 404)
    error(api.get(f"/api/{path}"), 401)
