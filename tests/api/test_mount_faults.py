"""Mounts that fail or lose their point, sessions that expire, volumes that cannot be read — each
in-process and against a real server over HTTP, with the server healthy afterwards."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from openflr.api.app import create_app
from openflr.core.service import Service
from tests.api.flr import headers, mount, point_href, wait_task
from tests.imagebuilder import Fixtures
from tests.inventory.test_scanner import _clone
from tests.support import (
    Api,
    RunningServer,
    add_users,
    cli,
    find,
    make_service,
    plain_client,
    run_server,
    xml,
)


@pytest.fixture(params=["inproc", "http"])
def faulty(
    request: pytest.FixtureRequest, tmp_path: Path, fixtures: Fixtures
) -> Iterator[tuple[Api, Path, object]]:
    """A server over a private copy of the qcow2 and broken datastores, with a 2 s idle timeout."""
    ds = tmp_path / "ds"
    ds.mkdir()
    for name in ("qcow2", "broken"):
        _clone(fixtures.datastore(name), ds / name)
    shutil.copytree(
        fixtures.datastore("vmware") / "Win File Server_replica",
        ds / "vmware" / "Win File Server_replica",
        copy_function=lambda s, d: (
            Path(d).hardlink_to(s) if not s.endswith((".vmsd", ".vmx")) else shutil.copy2(s, d)
        ),
    )
    config = "".join(
        f'[[datastores]]\nname = "{n}"\npath = "{ds / n}"\n\n' for n in ("qcow2", "broken", "vmware")
    )
    config += "[sessions]\nidle_timeout = 2\nsweep_interval = 0.2\n[inventory]\nrescan_interval = 0\n"
    data = tmp_path / "data"
    data.mkdir()
    if request.param == "inproc":
        service = make_service(data, config)
        with TestClient(create_app(service), base_url="https://testserver") as client:
            yield Api(client, "https://testserver", "inproc"), ds, service
        return
    add_users(data)
    with run_server(data, https=False, config=config) as server, plain_client() as client:
        yield Api(client, server.base, "http"), ds, server


def test_corrupt_image_fails_the_mount_task_only(faulty: tuple[Api, Path, object]) -> None:
    api, ds, _ = faulty
    token = api.logon("flrop")
    point = point_href(api, token, "KVM", "Win File Server")  # the newest: disk0-p3.qcow2 on top
    top = ds / "qcow2" / "Win File Server" / "disk0-p3.qcow2"
    top.unlink()  # the clone hard-links images: replace, never write through
    top.write_bytes(b"QFI\xfb" + b"\xff" * 508)
    r = api.post(point + "/mounts", headers=headers(token))
    assert r.status_code == 202
    task = wait_task(api, token, r.json()["Href"])
    assert task["Result"]["Success"] is False
    message = task["Result"]["Message"]
    assert "disk0-p3.qcow2" in message and ("truncated" in message or "version" in message), message
    assert not [lk for lk in task["Links"] if lk["Rel"] == "Related"]
    x = xml(api.get(r.json()["Href"], headers={"X-RestSvcSessionId": token}))
    assert find(x, "em:Result").get("Success") == "false"
    # the server is healthy: another point mounts and browses
    other = mount(api, token, point_href(api, token, "KVM", "lin-web01"))
    assert api.get(other + "/etc/hostname", headers=headers(token)).status_code == 200


def test_missing_image_names_the_file(faulty: tuple[Api, Path, object]) -> None:
    api, ds, _ = faulty
    token = api.logon("flrop")
    point = point_href(api, token, "KVM", "lin-web01", 0)
    (ds / "qcow2" / "lin-web01" / "disk1.qcow2").unlink()
    task = wait_task(api, token, api.post(point + "/mounts", headers=headers(token)).json()["Href"])
    assert task["Result"]["Success"] is False
    assert "disk1.qcow2" in task["Result"]["Message"] and "not found" in task["Result"]["Message"]


def test_unreadable_volume_is_listed_with_its_reason(faulty: tuple[Api, Path, object]) -> None:
    api, ds, _ = faulty
    # Good VM's disk is all zeros; a pattern where a file system would begin makes it an unknown one.
    image = ds / "broken" / "Good VM" / "disk0.qcow2"
    times = image.stat()
    shutil.copy2(image, image.with_suffix(".copy"))  # the datastore's images are hard links
    image.with_suffix(".copy").replace(image)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 64k", str(image)], check=True)
    os.utime(image, ns=(times.st_atime_ns, times.st_mtime_ns))
    token = api.logon("flrop")
    point = point_href(api, token, "KVM", "Good VM")
    r = api.post(point + "/mounts", headers=headers(token))
    task = wait_task(api, token, r.json()["Href"])
    assert task["Result"]["Success"] is True
    assert "Volume$0: cannot be read: unknown file system" in task["Result"]["Message"]
    href = next(lk["Href"] for lk in task["Links"] if lk["Rel"] == "Related")
    roots = api.get(href, headers=headers(token)).json()["FSRoots"]["DirectoryEntries"]
    assert [r["Path"] for r in roots] == ["Volume$0:"]
    listing = api.get(roots[0]["Href"] + "?action=listAll", headers=headers(token))
    assert listing.status_code == 501 and "unknown file system" in listing.json()["Message"]


def test_an_empty_volume_is_no_root_and_the_task_says_so(faulty: tuple[Api, Path, object]) -> None:
    api, _ds, _ = faulty
    token = api.logon("flrop")
    point = point_href(api, token, "KVM", "Good VM")  # its disk is all zeros: it holds no files
    task = wait_task(api, token, api.post(point + "/mounts", headers=headers(token)).json()["Href"])
    assert task["Result"]["Success"] is True
    assert "volume 0 is not a root: empty" in task["Result"]["Message"]
    href = next(lk["Href"] for lk in task["Links"] if lk["Rel"] == "Related")
    # no roots at all: the empty list renders as null
    assert api.get(href, headers=headers(token)).json()["FSRoots"] is None


def test_removed_point_fails_its_mounts_cleanly(faulty: tuple[Api, Path, object]) -> None:
    api, ds, _ = faulty
    admin = api.logon("admin")
    point = point_href(api, admin, "VMware", "Win File Server", 0)
    mnt = mount(api, admin, point)
    assert api.get(mnt + "/C:?action=listAll", headers=headers(admin)).status_code == 200
    vmsd = ds / "vmware" / "Win File Server_replica" / "Win File Server_replica.vmsd"
    vmsd.write_text(vmsd.read_text().replace('snapshot0.uid = "1"', 'snapshotX.uid = "1"'))
    assert api.post("/api/openflr/rescan", headers=headers(admin)).status_code == 200
    r = api.get(mnt + "/C:?action=listAll", headers=headers(admin))
    assert r.status_code == 404 and "no longer" in r.json()["Message"]
    assert api.delete(mnt, headers=headers(admin)).status_code in (204, 404)
    assert api.get(point, headers=headers(admin)).status_code == 404


def test_idle_expiry_unmounts(faulty: tuple[Api, Path, object], caplog: pytest.LogCaptureFixture) -> None:
    api, _ds, owner = faulty
    caplog.set_level(logging.INFO, logger="openflr.core.sessions")
    token = api.logon("flrop")
    mnt = mount(api, token, point_href(api, token, "KVM", "lin-web01"))
    if isinstance(owner, Service):
        assert len(owner.mounts.all()) == 1
    time.sleep(3)
    assert api.get(mnt, headers=headers(token)).status_code == 401
    if isinstance(owner, Service):
        assert owner.mounts.all() == []
        assert all(o.users == 0 for o in owner.mounts._opened.values())
    again = api.logon("flrop")
    assert api.get(mnt, headers=headers(again)).status_code == 404
    # The session ended because it was idle (not at log-off): the server's log says so, in-process
    # through logging, a real server in its log file.
    if isinstance(owner, RunningServer):
        log = owner.log_when(lambda text: "of flrop ended (expired)" in text)
    else:
        assert isinstance(owner, Service), owner
        log = caplog.text
    assert "of flrop ended (expired)" in log, log


def test_image_that_shrinks_while_mounted_never_serves_zeros(fixtures: Fixtures, tmp_path: Path) -> None:
    """A replica file truncated or replaced under an open mount (a consolidation, an NFS hiccup):
    reads past its new end fail the request; they never come back as zeros."""
    vm = tmp_path / "ds" / "shrinking"
    vm.mkdir(parents=True)
    disk = vm / "disk0.raw"
    subprocess.run(
        ["cp", "--sparse=always", str(fixtures.root / "raw" / "lin-disk0-p3.raw"), str(disk)], check=True
    )
    (vm / "openflr-vm.toml").write_text(
        'name = "shrinking"\nos = "Linux"\n\n[[points]]\nname = "p3"\n'
        'time = 2026-11-03T21:00:00Z\ndisks = ["disk0.raw"]\n'
    )
    data = tmp_path / "data"
    add_users(data)
    config = f'[[datastores]]\nname = "ds"\npath = "{tmp_path / "ds"}"\njob = "DS"\n'
    with run_server(data, https=False, config=config) as server, plain_client() as client:
        api = Api(client, server.base, "http")
        token = api.logon("flrop")
        mnt = mount(api, token, point_href(api, token, "Other", "shrinking"))
        # Look the file up first (its folder and inode are then cached): the download itself starts,
        # and its data reads are what meet the shortened file.
        item = api.get(f"{mnt}/data/medium.bin", headers=headers(token))
        assert item.status_code == 200
        os.truncate(disk, 1024 * 1024)
        url = api.url(f"{mnt}/data/medium.bin?action=download")
        complete = False
        with client.stream("GET", url, headers={"X-RestSvcSessionId": token}) as r:
            if r.status_code == 200:
                expected = int(r.headers["Content-Length"])
                got = 0
                try:
                    for chunk in r.iter_bytes():
                        got += len(chunk)
                    complete = got == expected
                except httpx.HTTPError:
                    complete = False  # the stream was cut: the client knows the file is incomplete
            else:
                r.read()
                assert r.status_code >= 400 and b"<Error" in r.content
        assert not complete
        assert api.get("/api/", headers=headers(token)).status_code == 200  # still serving
        records = json.loads(cli(data, "audit", "--json", "--action", "download").stdout)
        results = [x["result"] for x in records if x["path"].endswith("data/medium.bin")]
        assert results in ([], ["failed"]), results  # refused before streaming, or audited as failed


@pytest.fixture
def closing_server(tmp_path: Path, fixtures: Fixtures) -> Iterator[tuple[Api, RunningServer]]:
    """A real server that closes a point's files as soon as its last mount goes (keep_idle = 0)."""
    config = (
        f'[[datastores]]\nname = "vmware"\npath = "{fixtures.datastore("vmware")}"\n\n'
        "[mounts]\nkeep_idle = 0\n[inventory]\nrescan_interval = 0\n"
    )
    data = tmp_path / "data"
    data.mkdir()
    add_users(data)
    with run_server(data, https=False, config=config) as server, plain_client() as client:
        yield Api(client, server.base, "http"), server


def test_unmount_while_a_folder_is_still_being_read_keeps_the_server_up(
    closing_server: tuple[Api, RunningServer],
) -> None:
    """A paged listing reads the folder in a background thread that outlives the first page; an
    unmount meanwhile must not close the file system under it (it used to crash the server)."""
    api, server = closing_server
    token = api.logon("flrop")
    point = point_href(api, token, "VMware", "lin-web01")
    for _ in range(6):
        m = mount(api, token, point)
        first = api.get(f"{m}/var/many?action=listAll&pageSize=10&page=1", headers=headers(token))
        assert first.status_code == 200, first.text
        assert api.delete(m, headers=headers(token)).status_code == 204
    m = mount(api, token, point)
    last = api.get(f"{m}/var/many?action=listAll&pageSize=1000&page=10", headers=headers(token))
    assert last.status_code == 200, last.text
    assert len(last.json()["Files"]["FileEntries"]) == 1000
    assert server.process.poll() is None, server.log()
    assert "cannot be read" not in server.log()  # no read of a closed file system
