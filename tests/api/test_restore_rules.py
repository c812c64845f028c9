"""Restore rules on the wire (docs/RESTORE.md): users made with ``openflr users`` options, then held
to them by a real server: in-place only, allowed extensions (also inside folder ZIPs), restore scope."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests.api.flr import TOKEN, headers, mount, wait_task
from tests.api.test_downloads import audit_records, file_url, points_of
from tests.imagebuilder import Fixtures
from tests.support import (
    SHARED_SERVER,
    Api,
    RunningServer,
    add_users,
    cli,
    datastore_config,
    plain_client,
    run_server,
)

PASSWORD = "Rules!pass1"
WIN_POINTS = "QCOW2 Replication"


@pytest.fixture(scope="module")
def rules_server(tmp_path_factory: pytest.TempPathFactory, fixtures: Fixtures) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("rules-server")
    add_users(data)
    role = ("--role", "RestoreOperator")
    cli(data, "users", "add", "inplace", *role, "--inplace-only", stdin=PASSWORD + "\n")
    cli(data, "users", "add", "txtonly", *role, "--extensions", ".TXT, ini", stdin=PASSWORD + "\n")
    cli(data, "users", "add", "linonly", *role, "--scope", "lin*", stdin=PASSWORD + "\n")
    with run_server(
        data, https=False, config=SHARED_SERVER + datastore_config(fixtures, ("qcow2",))
    ) as server:
        yield server


@pytest.fixture(scope="module")
def rapi(rules_server: RunningServer) -> Iterator[Api]:
    with plain_client() as http:
        yield Api(http, rules_server.base, "http")


def logon(api: Api, name: str) -> str:
    return api.logon(name, PASSWORD)


def win_mount(api: Api, token: str) -> str:
    return mount(api, token, points_of(api, token, WIN_POINTS, "Win File Server")[-1])


def post_spec(api: Api, token: str, href: str, spec: dict[str, object]) -> int:
    r = api.post(f"{href}?action=restore", content=json.dumps(spec), headers=headers(token))
    return r.status_code


def test_users_list_shows_the_restrictions(rules_server: RunningServer) -> None:
    users = {u["name"]: u for u in json.loads(cli(rules_server.data_dir, "users", "list", "--json").stdout)}
    assert users["inplace"]["inplace_only"] is True
    assert users["txtonly"]["allowed_extensions"] == ["txt", "ini"]
    assert users["linonly"]["restore_scope"] == ["lin*"]
    assert users["flrop"] == {
        **users["flrop"],
        "inplace_only": False,
        "allowed_extensions": [],
        "restore_scope": [],
    }
    table = cli(rules_server.data_dir, "users", "list").stdout
    assert "lin*" in table and "txt,ini" in table


def test_inplace_only_user_may_not_download(rapi: Api) -> None:
    token = logon(rapi, "inplace")
    m = win_mount(rapi, token)
    item = f"{m}/C:/Documents/report.txt"
    r = rapi.post(f"{item}?action=restore", content=b'{"ForDirectDownload": {}}', headers=headers(token))
    assert r.status_code == 403
    assert "only restore to the original location" in r.json()["Message"]
    assert rapi.get(file_url(m, "C:/Documents/report.txt"), headers=headers(token)).status_code == 403
    assert rapi.get(f"{m}/C:/Documents?action=download", headers=headers(token)).status_code == 403
    # Restoring in place is allowed (this server has no targets, so the task itself fails, saying why).
    r = rapi.post(f"{item}?action=restore", content=b'{"ToOriginalLocation": {}}', headers=headers(token))
    assert r.status_code == 202
    task = wait_task(rapi, token, r.json()["Href"])
    assert "No restore target is configured" in task["Result"]["Message"]


def test_extension_rules_for_files(rapi: Api) -> None:
    token = logon(rapi, "txtonly")
    m = win_mount(rapi, token)
    assert rapi.get(file_url(m, "C:/Documents/report.txt"), headers={TOKEN: token}).status_code == 200
    assert rapi.get(file_url(m, "C:/Windows/win.ini"), headers={TOKEN: token}).status_code == 200
    budget = "C:/Users/alice/Documents/Budget 2026.xlsx"
    r = rapi.get(file_url(m, budget), headers=headers(token))
    assert r.status_code == 403
    assert "txt, ini" in r.json()["Message"]
    href = f"{m}/{quote(budget, safe='/:')}"
    assert post_spec(rapi, token, href, {"ForDirectDownload": {}}) == 403
    assert post_spec(rapi, token, href, {"ToOriginalLocation": {"Overwrite": True}}) == 403
    assert post_spec(rapi, token, f"{m}/C:/Documents/report.txt", {"ForDirectDownload": {}}) == 202


def test_extension_rules_inside_folder_zips(rapi: Api, rules_server: RunningServer) -> None:
    token = logon(rapi, "txtonly")
    m = win_mount(rapi, token)
    r = rapi.get(f"{m}/C:/Users?action=download", headers={TOKEN: token})
    assert r.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    names = archive.namelist()
    assert "Users/alice/Documents/Budget 2026.xlsx" not in names
    assert "Users/Public/Desktop/desktop.ini" in names
    skipped = archive.read("openflr-skipped.txt").decode()
    assert "Users/alice/Documents/Budget 2026.xlsx\ttxtonly may not download .xlsx files" in skipped
    assert b"left out" in archive.comment
    records = [r for r in audit_records(rules_server, "--user", "txtonly") if r["path"] == "C:/Users"]
    assert records and records[0]["failed_items"] == 1 and "left out" in records[0]["message"]


def test_scope_hides_other_vms(rapi: Api) -> None:
    token = logon(rapi, "linonly")
    replicas = rapi.get("/api/replicas?format=Entity", headers=headers(token)).json()["Replicas"]
    assert {r["Name"] for r in replicas} == {"lin-web01"}
    points = rapi.get("/api/query?type=VmReplicaPoint&format=Entities", headers=headers(token)).json()
    vms = {p["VmName"] for p in points["Entities"]["VmReplicaPoints"]["VmReplicaPoints"]}
    assert vms == {"lin-web01"}
    op = rapi.logon("flrop")
    win_point = points_of(rapi, op, WIN_POINTS, "Win File Server")[-1]
    assert rapi.get(win_point, headers=headers(token)).status_code == 404
    assert rapi.post(win_point + "/mounts", headers=headers(token)).status_code == 404
    assert rapi.get(win_point, headers=headers(op)).status_code == 200
