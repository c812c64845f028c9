"""Restores to the original location through the API (docs/RESTORE.md), into a real Samba server, a real
OpenSSH server and a local folder, checked on the target's disk: bytes, times, kept and replaced
items, permissions, and clear failures (credentials, unreachable, full, interrupted)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import pytest

from openflr.guestfs.view import open_view
from openflr.restore.targets.base import Credentials, TargetAddress
from openflr.restore.targets.connect import ConnectOptions, connect
from openflr.restore.targets.smb import get_security
from tests.api.flr import TOKEN, headers, mount, wait_task
from tests.api.test_downloads import points_of, sha
from tests.imagebuilder import Fixtures
from tests.imagebuilder.large import BIG_FILE, LARGE_VM
from tests.restore import services
from tests.restore.sd import allowed_aces, owner_and_group
from tests.restore.services import SambaServer, SshServer
from tests.support import (
    SHARED_SERVER,
    Api,
    RunningServer,
    add_users,
    cli,
    free_port,
    plain_client,
    run_server,
)

WIN, LIN = "Win File Server", "lin-web01"
RESTORED = re.compile(r"^RESTORED_\d{8}_\d{6}_(.+)$")
SMB_PASSWORD_ENV = "OPENFLR_TEST_SMB_PASSWORD"


@dataclass(frozen=True)
class Places:
    """Where each configured target writes, on the disk of this machine."""

    win_smb: Path
    nocreds_smb: Path
    lin_sftp: Path
    srv_local: Path
    big_local: Path
    smb_full: Path
    sftp_full: Path
    samba: SambaServer
    ssh: SshServer


def owned_folder(path: Path) -> Path:
    """An empty folder owned by the servers' test user."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    user = services.ensure_user()
    os.chown(path, user.pw_uid, user.pw_gid)
    return path


def empty(path: Path) -> Path:
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    return path


def config(fx: Fixtures, p: Places, closed_port: int, password_file: Path) -> str:
    smb = f"smb://127.0.0.1:{p.samba.port}/data/restore"
    sftp = f"sftp://127.0.0.1:{p.ssh.port}"
    user = services.USER
    return f"""{SHARED_SERVER}
[restore]
known_hosts = "{p.ssh.known_hosts}"
connect_timeout = 5

[[datastores]]
name = "qcow2"
path = "{fx.datastore("qcow2")}"
job = "QCOW2 Replication"

[[datastores.guests]]
vm = "{WIN}"
username = "WORKGROUP\\\\{user}"
password_env = "{SMB_PASSWORD_ENV}"
targets = {{ "C:" = "{smb}/{p.win_smb.name}" }}

[[datastores.guests]]
vm = "lin-*"
username = "{user}"
password_file = "{password_file}"
targets = {{ "/" = "{sftp}{p.lin_sftp}", "/srv" = "file://{p.srv_local}" }}

[[datastores]]
name = "vmware"
path = "{fx.datastore("vmware")}"
job = "VMWARE Replication"

[[datastores.guests]]
vm = "win*"
targets = {{ "C:" = "{smb}/{p.nocreds_smb.name}" }}

[[datastores.guests]]
vm = "lin*"
username = "{user}"
password = "not-the-password-123"
targets = {{ "/" = "{sftp}{p.lin_sftp}" }}

[[datastores]]
name = "hyperv"
path = "{fx.datastore("hyperv")}"
job = "HYPERV Replication"

[[datastores.guests]]
vm = "Win*"
username = "Administrator"
password = "whatever"
targets = {{ "C:" = "smb://127.0.0.1:{closed_port}/C$" }}

[[datastores.guests]]
vm = "lin*"
username = "{user}"
password_file = "{password_file}"
targets = {{ "/" = "{sftp}{p.sftp_full}" }}

[[datastores]]
name = "esxi"
path = "{fx.datastore("esxi")}"
job = "ESXI Replication"

[[datastores.guests]]
vm = "Win*"
username = "{user}"
password_file = "{password_file}"
targets = {{ "C:" = "{p.samba.full_url}" }}

[[datastores]]
name = "large"
path = "{fx.datastore("large")}"
job = "LARGE Replication"

[[datastores.guests]]
vm = "{LARGE_VM}"
targets = {{ "big:" = "file://{p.big_local}" }}
"""


@pytest.fixture(scope="module")
def places(
    samba_server: SambaServer, ssh_server: SshServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Places]:
    local = tmp_path_factory.mktemp("local-targets")
    yield Places(
        win_smb=owned_folder(samba_server.folder / "win"),
        nocreds_smb=owned_folder(samba_server.folder / "nocreds"),
        lin_sftp=owned_folder(ssh_server.folder / "lin"),
        srv_local=owned_folder(local / "srv"),
        big_local=owned_folder(local / "big"),
        smb_full=samba_server.full_folder,
        sftp_full=ssh_server.full_folder,
        samba=samba_server,
        ssh=ssh_server,
    )
    # The small file systems are shared with the target tests: leave them empty.
    empty(samba_server.full_folder)
    empty(ssh_server.full_folder)


@pytest.fixture(scope="module")
def restore_server(
    places: Places, fixtures: Fixtures, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("restore-server")
    add_users(data)
    cli(
        data,
        "users",
        "add",
        "txtonly",
        "--role",
        "RestoreOperator",
        "--extensions",
        "txt,ini",
        stdin="Txt!pass1\n",
    )
    secret = data / "guest-password"
    secret.write_text(places.ssh.password + "\n")
    secret.chmod(0o600)
    text = config(fixtures, places, free_port(), secret)
    env = {SMB_PASSWORD_ENV: places.samba.password}
    with run_server(data, https=False, config=text, env=env) as server:
        yield server


@pytest.fixture(scope="module")
def rapi(restore_server: RunningServer) -> Iterator[Api]:
    with plain_client(timeout=120) as http:
        yield Api(http, restore_server.base, "http")


@pytest.fixture(scope="module")
def token(rapi: Api) -> str:
    return rapi.logon("flrop")


@pytest.fixture(scope="module")
def mounts(rapi: Api, token: str) -> dict[str, str]:
    """Mounts of the newest point of each VM, by ``datastore/vm``."""
    out = {}
    for job, name, key in [
        ("QCOW2 Replication", WIN, "qcow2/win"),
        ("QCOW2 Replication", LIN, "qcow2/lin"),
        ("VMWARE Replication", f"{WIN}_replica", "vmware/win"),
        ("VMWARE Replication", f"{LIN}_replica", "vmware/lin"),
        ("HYPERV Replication", WIN, "hyperv/win"),
        ("HYPERV Replication", f"{LIN}_replica", "hyperv/lin"),
        ("ESXI Replication", f"{WIN}_replica", "esxi/win"),
        ("LARGE Replication", LARGE_VM, "large"),
    ]:
        out[key] = mount(rapi, token, points_of(rapi, token, job, name)[-1])
    return out


def restore(
    api: Api, token: str, mount_href: str, path: str, spec: dict[str, Any] | bytes, timeout: float = 120
) -> dict[str, Any]:
    """POST the restore, wait for its task, return the finished task."""
    body = spec if isinstance(spec, bytes) else json.dumps(spec).encode()
    r = api.post(
        f"{mount_href}/{quote(path, safe='/:$')}?action=restore", content=body, headers=headers(token)
    )
    assert r.status_code == 202, r.text
    task = r.json()
    assert task["Operation"] == "FileRestoreFromMountPoint"
    return wait_task(api, token, task["Href"], timeout)


def original(overwrite: bool | None = None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = dict(extra)
    if overwrite is not None:
        spec["Overwrite"] = overwrite
    return {"ToOriginalLocation": spec}


def truth(fx: Fixtures, vm: str, volume: str) -> dict[str, Any]:
    result: dict[str, Any] = fx.manifest["vms"][vm]["p3"]["volumes"][volume]
    return result


def assert_restored(path: Path, spec: dict[str, Any], precision_s: int = 1) -> None:
    assert path.is_file(), path
    assert sha(path.read_bytes()) == spec["sha256"], path
    assert abs(path.stat().st_mtime_ns // 1_000_000_000 - spec["mtime"]) < precision_s, path


def leftovers(folder: Path) -> list[Path]:
    return list(folder.rglob(".openflr-*"))


# --- SMB -------------------------------------------------------------------------------------------


def test_file_to_smb_with_overwrite_and_keep(
    rapi: Api, token: str, mounts: dict[str, str], places: Places, fixtures: Fixtures
) -> None:
    base = empty(places.win_smb)
    spec = truth(fixtures, WIN, "c")["files"]["Documents/report.txt"]
    docs = base / "Documents"
    docs.mkdir()
    (docs / "report.txt").write_bytes(b"the current version in the guest\n")
    shutil.chown(docs, services.USER)
    shutil.chown(docs / "report.txt", services.USER)
    # Overwrite as an XML attribute, EM's documented form.
    body = (
        b'<FileRestoreSpec xmlns="http://www.veeam.com/ent/v1.0"><ToOriginalLocation Overwrite="true">'
        b"</ToOriginalLocation></FileRestoreSpec>"
    )
    task = restore(rapi, token, mounts["qcow2/win"], "C:/Documents/report.txt", body)
    assert task["Result"]["Success"] is True, task
    assert "Restored 1 item(s)" in task["Result"]["Message"]
    assert_restored(docs / "report.txt", spec)
    assert sorted(p.name for p in docs.iterdir()) == ["report.txt"]
    # Keep (Overwrite as an element, false): the guest's file stays, the restored copy goes beside it.
    (docs / "report.txt").write_bytes(b"changed again in the guest\n")
    body = (
        b"<FileRestoreSpec><ToOriginalLocation><Overwrite>false</Overwrite>"
        b"</ToOriginalLocation></FileRestoreSpec>"
    )
    task = restore(rapi, token, mounts["qcow2/win"], "C:/Documents/report.txt", body)
    assert task["Result"]["Success"] is True, task
    assert (docs / "report.txt").read_bytes() == b"changed again in the guest\n"
    copies = [p for p in docs.iterdir() if p.name != "report.txt"]
    assert len(copies) == 1
    match = RESTORED.match(copies[0].name)
    assert match and match.group(1) == "report.txt", copies[0].name
    assert copies[0].name in task["Result"]["Message"]
    assert_restored(copies[0], spec)
    assert not leftovers(base)


def test_folder_to_smb_with_overwrite_and_keep(
    rapi: Api, token: str, mounts: dict[str, str], places: Places, fixtures: Fixtures
) -> None:
    base = empty(places.win_smb)
    volume = truth(fixtures, WIN, "c")
    files = {p: s for p, s in volume["files"].items() if p.startswith("Documents/")}
    task = restore(rapi, token, mounts["qcow2/win"], "C:/Documents", original(True))
    assert task["Result"]["Success"] is True, task
    assert f"Restored {len(files) + 2} item(s)" in task["Result"]["Message"]  # files, Documents, Mixed Case
    for rel, spec in files.items():
        assert_restored(base / rel, spec)
    folder_time = point_entry(fixtures, WIN, "C:/Documents").mtime_ns
    assert folder_time is not None and (base / "Documents").stat().st_mtime_ns // 100 == folder_time // 100
    # Keep: every file already there gets a RESTORED_ copy beside it; nothing is replaced.
    (base / "Documents" / "report.txt").write_bytes(b"edited in the guest")
    task = restore(rapi, token, mounts["qcow2/win"], "C:/Documents", original(False))
    assert task["Result"]["Success"] is True, task
    assert (base / "Documents" / "report.txt").read_bytes() == b"edited in the guest"
    for rel, spec in files.items():
        folder = (base / rel).parent
        copies = [
            p for p in folder.iterdir() if (m := RESTORED.match(p.name)) and m.group(1) == Path(rel).name
        ]
        assert len(copies) == 1, rel
        assert_restored(copies[0], spec)
    assert not leftovers(base)


def point_entry(fixtures: Fixtures, vm: str, path: str) -> Any:
    """What the engine itself reads for ``path`` in the newest point (the ground truth for folders,
    whose times the image builder's incremental writes move)."""
    view = open_view([[fixtures.root / p] for p in fixtures.manifest["raw"][vm]["p3"]])
    try:
        return view.locate(path).entry
    finally:
        view.close()


def test_folder_restore_skips_types_the_user_may_not_restore(
    rapi: Api, mounts: dict[str, str], places: Places, fixtures: Fixtures
) -> None:
    base = empty(places.win_smb)
    token = rapi.logon("txtonly", "Txt!pass1")
    m = mount(rapi, token, points_of(rapi, token, "QCOW2 Replication", WIN)[-1])
    budget = "C:/Users/alice/Documents/Budget 2026.xlsx"
    r = rapi.post(
        f"{m}/{quote(budget)}?action=restore", content=json.dumps(original(True)), headers=headers(token)
    )
    assert r.status_code == 403
    task = restore(rapi, token, m, "C:/Users", original(True))
    assert task["Result"]["Success"] is False
    message = task["Result"]["Message"]
    assert (
        "1 item(s) failed: Users/alice/Documents/Budget 2026.xlsx: txtonly may not restore .xlsx files"
        in message
    )
    assert not (base / "Users" / "alice" / "Documents" / "Budget 2026.xlsx").exists()
    spec = truth(fixtures, WIN, "c")["files"]["Users/Public/Desktop/desktop.ini"]
    assert_restored(base / "Users" / "Public" / "Desktop" / "desktop.ini", spec)


def test_guest_credentials_from_the_request(
    rapi: Api,
    token: str,
    mounts: dict[str, str],
    places: Places,
    fixtures: Fixtures,
    restore_server: RunningServer,
) -> None:
    base = empty(places.nocreds_smb)
    task = restore(rapi, token, mounts["vmware/win"], "C:/Windows/win.ini", original(True))
    assert task["Result"]["Success"] is False
    assert "No guest credentials" in task["Result"]["Message"]
    creds = {"UserName": f"WORKGROUP\\{places.samba.username}", "Password": places.samba.password}
    task = restore(
        rapi, token, mounts["vmware/win"], "C:/Windows/win.ini", original(True, GuestCredentials=creds)
    )
    assert task["Result"]["Success"] is True, task
    assert_restored(base / "Windows" / "win.ini", truth(fixtures, WIN, "c")["files"]["Windows/win.ini"])
    # `Username` (the field table's spelling) works as well as `UserName`.
    creds = {"Username": places.samba.username, "Password": places.samba.password}
    task = restore(
        rapi, token, mounts["vmware/win"], "C:/Windows/win.ini", original(False, GuestCredentials=creds)
    )
    assert task["Result"]["Success"] is True, task
    assert places.samba.password not in restore_server.log()


def test_permissions_only_writes_the_points_descriptor(
    rapi: Api, token: str, mounts: dict[str, str], places: Places, fixtures: Fixtures
) -> None:
    base = empty(places.win_smb)
    task = restore(rapi, token, mounts["qcow2/win"], "C:/Documents/Mixed Case", original(True))
    assert task["Result"]["Success"] is True, task
    target_url = f"smb://127.0.0.1:{places.samba.port}/data/restore/{base.name}"
    parts = ("Documents", "Mixed Case", "ReadMe.TXT")

    async def descriptor() -> bytes:
        creds = Credentials(places.samba.username, places.samba.password)
        async with await connect(TargetAddress.parse(target_url), creds, ConnectOptions()) as target:
            return await get_security(target, parts)

    before = anyio.run(descriptor)
    raw = fixtures.manifest["raw"][WIN]["p3"]
    view = open_view([[fixtures.root / p] for p in raw])
    try:
        where = view.locate("C:/" + "/".join(parts))
        assert where.root is not None and where.root.fs is not None
        wanted = where.root.fs.security_descriptor(where.node)
    finally:
        view.close()
    assert wanted is not None
    assert owner_and_group(before) != owner_and_group(wanted)
    task = restore(
        rapi, token, mounts["qcow2/win"], "C:/Documents/Mixed Case", original(PermissionsOnly=True)
    )
    assert task["Result"]["Success"] is True, task
    assert "Updated the permissions of 2 item(s)" in task["Result"]["Message"]
    after = anyio.run(descriptor)
    assert owner_and_group(after) == owner_and_group(wanted)
    assert allowed_aces(after) == allowed_aces(wanted)
    # An item that is not on the target cannot get permissions: that item fails, by name.
    task = restore(
        rapi, token, mounts["qcow2/win"], "C:/Documents/report.txt", original(PermissionsOnly=True)
    )
    assert task["Result"]["Success"] is False
    assert "report.txt: the item does not exist on the target" in task["Result"]["Message"]


def test_permissions_only_needs_an_smb_target(
    rapi: Api, token: str, mounts: dict[str, str], places: Places
) -> None:
    task = restore(
        rapi, token, mounts["qcow2/lin"], "/etc/hostname", {"ToOriginalLocation": {"PermissionsOnly": True}}
    )
    assert task["Result"]["Success"] is False
    assert "cannot write Windows permissions" in task["Result"]["Message"]


def test_unreachable_target_fails_clearly(rapi: Api, token: str, mounts: dict[str, str]) -> None:
    started = time.monotonic()
    task = restore(rapi, token, mounts["hyperv/win"], "C:/Windows/win.ini", original(True))
    assert task["Result"]["Success"] is False
    message = task["Result"]["Message"]
    assert message.startswith("The restore failed: ") and "127.0.0.1" in message, message
    assert "whatever" not in message
    assert time.monotonic() - started < 30


def test_full_smb_share_fails_and_leaves_nothing(
    rapi: Api, token: str, mounts: dict[str, str], places: Places
) -> None:
    empty(places.smb_full)
    task = restore(rapi, token, mounts["esxi/win"], "C:/Data/medium.bin", original(True))
    assert task["Result"]["Success"] is False
    assert "full" in task["Result"]["Message"], task
    assert not (places.smb_full / "Data" / "medium.bin").exists()
    assert not leftovers(places.smb_full)


def test_no_target_for_the_root(rapi: Api, token: str, mounts: dict[str, str]) -> None:
    task = restore(rapi, token, mounts["qcow2/win"], "S:/startup.nsh", original(True))
    assert task["Result"]["Success"] is False
    assert "No restore target is configured for 'S:/startup.nsh'" in task["Result"]["Message"]


# --- SFTP and local folders ------------------------------------------------------------------------


def test_file_and_folder_to_sftp(
    rapi: Api, token: str, mounts: dict[str, str], places: Places, fixtures: Fixtures
) -> None:
    base = empty(places.lin_sftp)
    volume = truth(fixtures, LIN, "root")
    task = restore(rapi, token, mounts["qcow2/lin"], "/data", original(True))
    assert task["Result"]["Success"] is True, task
    for rel, spec in volume["files"].items():
        if rel.startswith("data/"):
            assert_restored(base / rel, spec)
    for rel, link in volume["links"].items():
        if rel.startswith("data/"):
            assert (base / rel).is_symlink()
            assert os.readlink(base / rel) == link["target"]
    # The folder again, keeping what is there: every file gets a RESTORED_ copy beside it.
    task = restore(rapi, token, mounts["qcow2/lin"], "/data", original(False))
    assert task["Result"]["Success"] is True, task
    for rel, spec in volume["files"].items():
        if rel.startswith("data/"):
            name = Path(rel).name
            copies = [
                p for p in (base / "data").iterdir() if (m := RESTORED.match(p.name)) and m.group(1) == name
            ]
            assert len(copies) == 1, rel
            assert_restored(copies[0], spec)
    empty(base / "data")
    task = restore(rapi, token, mounts["qcow2/lin"], "/data", original(True))
    assert task["Result"]["Success"] is True, task
    # A single file, kept beside the existing one, then replaced.
    (base / "data" / "name with spaces.txt").write_bytes(b"edited")
    task = restore(rapi, token, mounts["qcow2/lin"], "/data/name with spaces.txt", original(False))
    assert task["Result"]["Success"] is True, task
    assert (base / "data" / "name with spaces.txt").read_bytes() == b"edited"
    copies = [p for p in (base / "data").iterdir() if RESTORED.match(p.name)]
    assert [RESTORED.match(p.name).group(1) for p in copies] == ["name with spaces.txt"]  # type: ignore[union-attr]
    assert_restored(copies[0], volume["files"]["data/name with spaces.txt"])
    task = restore(rapi, token, mounts["qcow2/lin"], "/data/name with spaces.txt", original(True))
    assert task["Result"]["Success"] is True, task
    assert_restored(base / "data" / "name with spaces.txt", volume["files"]["data/name with spaces.txt"])
    assert not leftovers(base)


def test_grafted_root_goes_to_its_own_target(
    rapi: Api, token: str, mounts: dict[str, str], places: Places, fixtures: Fixtures
) -> None:
    base = empty(places.srv_local)
    volume = truth(fixtures, LIN, "srv")
    task = restore(rapi, token, mounts["qcow2/lin"], "/srv/www", original(True))
    assert task["Result"]["Success"] is True, task
    for rel, spec in volume["files"].items():
        if rel.startswith("www/"):
            assert_restored(base / rel, spec)
    assert not (places.lin_sftp / "srv").exists()


def test_a_link_on_the_target_is_not_followed(
    rapi: Api,
    token: str,
    mounts: dict[str, str],
    places: Places,
    restore_server: RunningServer,
    tmp_path: Path,
) -> None:
    """An earlier restore (of another point) left ``www`` as a link to a folder outside the target; restores
    whose path goes through it fail, by name, and write nothing outside."""
    base = empty(places.srv_local)
    outside = owned_folder(tmp_path / "outside")
    os.symlink(outside, base / "www")
    for path in ("/srv/www/index.html", "/srv/www", "/srv"):
        task = restore(rapi, token, mounts["qcow2/lin"], path, original(True))
        assert task["Result"]["Success"] is False, task
        assert "www is a symbolic link on the target: not followed" in task["Result"]["Message"], task
        assert os.listdir(outside) == []
    assert os.readlink(base / "www") == str(outside)
    assert (base / "data" / "db.bin").is_file()  # the rest of /srv was restored
    records = json.loads(cli(restore_server.data_dir, "audit", "--json", "--result", "failed").stdout)
    refused = {r["path"]: r for r in records if "www is a symbolic link on the target" in r["message"]}
    assert set(refused) == {"/srv/www/index.html", "/srv/www", "/srv"}, records
    assert all(r["failed_items"] == 1 for r in refused.values()), refused
    empty(base)


def test_wrong_configured_password_fails_clearly(
    rapi: Api, token: str, mounts: dict[str, str], restore_server: RunningServer
) -> None:
    task = restore(rapi, token, mounts["vmware/lin"], "/etc/hostname", original(True))
    assert task["Result"]["Success"] is False
    message = task["Result"]["Message"]
    assert message.startswith("The restore failed: ") and "not-the-password-123" not in message, message
    assert "not-the-password-123" not in restore_server.log()


def test_full_sftp_folder_fails_and_leaves_nothing(
    rapi: Api, token: str, mounts: dict[str, str], places: Places, fixtures: Fixtures
) -> None:
    empty(places.sftp_full)
    task = restore(rapi, token, mounts["hyperv/lin"], "/", original(True))  # 10,000 files on a 4 MiB disk
    assert task["Result"]["Success"] is False
    assert "full" in task["Result"]["Message"], task
    volume = truth(fixtures, LIN, "root")
    written = [p for p in places.sftp_full.rglob("*") if p.is_file() and not p.is_symlink()]
    assert written, "nothing was written before the disk filled up"
    for path in written:  # whatever made it has its real name only when complete
        rel = str(path.relative_to(places.sftp_full))
        assert sha(path.read_bytes()) == volume["files"][rel]["sha256"], rel
    assert not leftovers(places.sftp_full)


def test_cancelled_restore_leaves_no_partial_file(
    rapi: Api, token: str, mounts: dict[str, str], places: Places
) -> None:
    base = empty(places.big_local)
    r = rapi.post(
        f"{mounts['large']}/big:/{BIG_FILE}?action=restore",
        content=json.dumps(original(True)),
        headers=headers(token),
    )
    assert r.status_code == 202
    href = r.json()["Href"]
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size > 0 for p in leftovers(base)):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert rapi.delete(href, headers={TOKEN: token}).status_code == 204
    deadline = time.monotonic() + 30
    while leftovers(base):
        assert time.monotonic() < deadline, leftovers(base)
        time.sleep(0.05)
    assert not (base / "data" / "sparse-2g.bin").exists()


def test_audit_records_every_restore(rapi: Api, token: str, restore_server: RunningServer) -> None:
    records = json.loads(cli(restore_server.data_dir, "audit", "--json", "--action", "restore").stdout)
    assert records, "no restore was audited"
    done = [r for r in records if r["result"] == "success" and r["path"] == "C:/Documents/report.txt"]
    assert done, records
    record = done[0]
    assert record["user"] == "flrop" and record["client"] == "127.0.0.1"
    assert record["vm"] == WIN and record["items"] == 1 and record["bytes"] > 0
    assert record["target"].startswith("smb://127.0.0.1:")
    assert record["ended_at"] and record["task_id"].startswith("task-")
    failed = json.loads(cli(restore_server.data_dir, "audit", "--json", "--result", "failed").stdout)
    assert any("full" in r["message"] for r in failed)
    cancelled = json.loads(cli(restore_server.data_dir, "audit", "--json", "--result", "cancelled").stdout)
    assert any(r["path"] == f"big:/{BIG_FILE}" for r in cancelled)


def _big_restore_under_way(api: Api, base: Path) -> tuple[str, str]:
    """Log on, mount the large VM and restore its 2 GiB file to its original location; returns the
    token and the task's Href once the temporary file on the target (under ``base``) holds data."""
    tok = api.logon("flrop")
    m = mount(api, tok, points_of(api, tok, "LARGE Replication", LARGE_VM)[-1])
    r = api.post(
        f"{m}/big:/{BIG_FILE}?action=restore", content=json.dumps(original(True)), headers=headers(tok)
    )
    assert r.status_code == 202
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size > 0 for p in leftovers(base)):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return tok, str(r.json()["Href"])


def test_killed_server_leaves_no_partial_file_and_audit_says_interrupted(
    places: Places, fixtures: Fixtures, tmp_path: Path
) -> None:
    base = empty(places.big_local)
    data = tmp_path / "server"
    add_users(data)
    secret = tmp_path / "pw"
    secret.write_text("x\n")
    # One node name for both runs (the default names the port, and the restart has another one), so
    # that the restarted server closes what the killed one left running.
    text = config(fixtures, places, free_port(), secret) + '\n[cluster]\nnode_name = "restore-test"\n'
    with run_server(data, https=False, config=text) as server, plain_client(timeout=60) as http:
        api = Api(http, server.base, "http")
        tok, task_href = _big_restore_under_way(api, base)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
    assert not (base / "data" / "sparse-2g.bin").exists()  # only the temporary name holds the partial bytes
    with run_server(data, https=False, config=text) as server:
        records = json.loads(cli(data, "audit", "--json").stdout)
        assert [r["result"] for r in records if r["path"] == f"big:/{BIG_FILE}"] == ["interrupted"]
        assert "cut short" in server.log()
        # Sessions and tasks are in the database (docs/DEPLOYMENT.md, "Several nodes"): the old token
        # goes on, and its task ended failed, saying that the node stopped.
        with plain_client() as http:
            assert http.get(f"{server.base}/api/logonSessions", headers={TOKEN: tok}).status_code == 200
            task_path = "/api/" + task_href.split("/api/", 1)[1]  # the restarted server has a new port
            got = http.get(server.base + task_path, headers={TOKEN: tok, "Accept": "application/json"})
            task = got.json()
            assert task["State"] == "Finished" and not task["Result"]["Success"], task
            assert "restore-test stopped" in task["Result"]["Message"]


def _kill_ssh_sessions(user: str) -> int:
    """SIGKILL every sshd process serving ``user`` (not the listening server): the connection drops."""
    killed = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            own_root = os.readlink(proc / "root") == os.readlink("/proc/self/root")
        except OSError:
            continue
        # not the sessions of another run in a chroot (scripts/fresh-machine-check shares /proc)
        if own_root and cmdline.startswith(f"sshd: {user}".encode()):
            try:
                os.kill(int(proc.name), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def test_target_that_disconnects_mid_file_fails_the_task_cleanly(
    places: Places, fixtures: Fixtures, tmp_path: Path
) -> None:
    base = owned_folder(places.ssh.folder / "cut")
    data = tmp_path / "server"
    add_users(data)
    secret = tmp_path / "pw"
    secret.write_text(places.ssh.password + "\n")
    secret.chmod(0o600)
    text = f"""{SHARED_SERVER}
[restore]
known_hosts = "{places.ssh.known_hosts}"
connect_timeout = 5

[[datastores]]
name = "large"
path = "{fixtures.datastore("large")}"
job = "LARGE Replication"

[[datastores.guests]]
vm = "{LARGE_VM}"
username = "{services.USER}"
password_file = "{secret}"
targets = {{ "big:" = "sftp://127.0.0.1:{places.ssh.port}{base}" }}
"""
    with run_server(data, https=False, config=text) as server, plain_client(timeout=60) as http:
        api = Api(http, server.base, "http")
        tok, task_href = _big_restore_under_way(api, base)
        assert _kill_ssh_sessions(services.USER) > 0
        task = wait_task(api, tok, task_href, timeout=120)
        assert task["Result"]["Success"] is False, task
        assert task["Result"]["Message"], task
        # The real name never holds a partial file; the temporary one is all that is left.
        assert not (base / "data" / "sparse-2g.bin").exists()
        records = json.loads(cli(data, "audit", "--json", "--action", "restore").stdout)
        assert [r["result"] for r in records if r["path"] == f"big:/{BIG_FILE}"] == ["failed"]
        assert api.get("/api/", headers={TOKEN: tok}).status_code == 200  # still serving
