"""Direct downloads (docs/RESTORE.md): the ForDirectDownload task, files with ranges, folders as ZIP archives.

Header and range behaviour runs in-process, over HTTP and over HTTPS; the byte-for-byte checks of
every fixture format and the streaming checks (cut connections, curl resuming, a 2 GiB file with flat
server memory) run against a real server process that serves every fixture datastore.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import stat
import struct
import subprocess
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest

from tests.api.flr import TOKEN, headers, list_all, mount, point_href, wait_task
from tests.guestfs.truth import EXPECTED_EXTRA_DIRS
from tests.imagebuilder import Fixtures
from tests.imagebuilder.large import BIG_FILE, BIG_SIZE, LARGE_VM
from tests.support import (
    SHARED_SERVER,
    Api,
    RunningServer,
    add_users,
    datastore_config,
    plain_client,
    run_server,
    xml,
)

ALL_DATASTORES = ("vmware", "hyperv", "qcow2", "esxi", "misc", "large")
REPORT = "Documents/report.txt"
BUDGET = "Users/alice/Documents/Budget 2026.xlsx"


def truth_of(fixtures: Fixtures, vm: str, point: str = "p3") -> dict[str, Any]:
    volumes: dict[str, Any] = fixtures.manifest["vms"][vm][point]["volumes"]
    return volumes


def file_url(mount_href: str, path: str) -> str:
    return f"{mount_href}/{quote(path, safe='/:$')}?action=download"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the restore request and its task ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (
            b'<?xml version="1.0" encoding="utf-8"?><FileRestoreSpec xmlns="http://www.veeam.com/ent/v1.0" '
            b'xmlns:xsd="http://www.w3.org/2001/XMLSchema"><ForDirectDownload/></FileRestoreSpec>',
            "application/xml",
        ),
        (b'{"ForDirectDownload": {}}', "application/json"),
        (b'{"ForDirectDownload": {"FileName": "report.txt", "Unknown": 1}}', "application/json"),
    ],
)
def test_direct_download_task_links_the_file(
    api: Api, op: str, win: str, fixtures: Fixtures, body: bytes, content_type: str
) -> None:
    r = api.post(
        f"{win}/C:/{quote(REPORT)}?action=restore",
        content=body,
        headers={**headers(op), "Content-Type": content_type},
    )
    assert r.status_code == 202, r.text
    task = r.json()
    assert task["Operation"] == "FileRestoreFromMountPoint"
    task = wait_task(api, op, task["Href"])
    assert task["Result"]["Success"] is True
    link = next(lk for lk in task["Links"] if lk["Rel"] == "Download")
    assert link["Href"].endswith("?action=download")
    got = api.get(link["Href"], headers={TOKEN: op})
    assert got.status_code == 200
    assert sha(got.content) == truth_of(fixtures, "Win File Server")["c"]["files"][REPORT]["sha256"]


def test_direct_download_task_in_xml(api: Api, op: str, win: str) -> None:
    r = api.post(
        f"{win}/C:/Documents?action=restore",
        content=b"<FileRestoreSpec><ForDirectDownload/></FileRestoreSpec>",
        headers={TOKEN: op},
    )
    assert r.status_code == 202
    doc = xml(r)
    href = doc.get("Href")
    assert href is not None
    task = wait_task(api, op, href)
    link = next(lk for lk in task["Links"] if lk["Rel"] == "Download")
    assert "/C:/Documents?action=download" in unquote(link["Href"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "neither"),
        (b"<FileRestoreSpec/>", "neither"),
        (b"{}", "neither"),
        (b'{"ForDirectDownload": {}, "ToOriginalLocation": {}}', "not both"),
        (b'{"ToOriginalLocation": {"GuestCredentials": {"Password": "x"}}}', "UserName"),
        (b'{"ToOriginalLocation": {"GuestCredentials": {"UserName": "a"}}}', "Password"),
        (b'{"ToOriginalLocation": {"Overwrite": "maybe"}}', "true or false"),
        (b"<FileRestoreSpec><ForDirectDownload>", "well-formed"),
        (b'{"ForDirectDownload": ', "JSON"),
    ],
)
def test_bad_restore_specs_are_400(api: Api, op: str, win: str, body: bytes, message: str) -> None:
    r = api.post(f"{win}/C:/{quote(REPORT)}?action=restore", content=body, headers=headers(op))
    assert r.status_code == 400, r.text
    assert message in r.json()["Message"]


def test_restore_needs_an_existing_item_and_an_action(api: Api, op: str, win: str) -> None:
    spec = b'{"ForDirectDownload": {}}'
    r = api.post(f"{win}/C:/no/such/file.txt?action=restore", content=spec, headers=headers(op))
    assert r.status_code == 404
    r = api.post(f"{win}/C:/{quote(REPORT)}", content=spec, headers=headers(op))
    assert r.status_code == 400
    assert "action=restore" in r.json()["Message"]
    r = api.get(f"{win}/C:/{quote(REPORT)}?action=restore", headers=headers(op))
    assert r.status_code == 400


def test_portal_user_may_not_restore_or_download(api: Api, op: str, win: str) -> None:
    viewer = api.logon("viewer")
    r = api.post(
        f"{win}/C:/{quote(REPORT)}?action=restore",
        content=b'{"ForDirectDownload": {}}',
        headers=headers(viewer),
    )
    assert r.status_code == 403
    assert r.json()["Status"] == "Forbidden"
    r = api.get(file_url(win, "C:/" + REPORT), headers=headers(viewer))
    assert r.status_code == 403


# --- a file: headers, ranges, conditional requests ------------------------------------------------------


def test_file_headers(api: Api, op: str, win: str, fixtures: Fixtures) -> None:
    truth = truth_of(fixtures, "Win File Server")["c"]["files"]
    r = api.get(file_url(win, "C:/" + BUDGET), headers={TOKEN: op})
    assert r.status_code == 200
    spec = truth[BUDGET]
    assert int(r.headers["content-length"]) == spec["size"] == len(r.content)
    assert sha(r.content) == spec["sha256"]
    assert r.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert r.headers["accept-ranges"] == "bytes"
    assert parsedate_to_datetime(r.headers["last-modified"]) == datetime.fromtimestamp(spec["mtime"], UTC)
    assert r.headers["etag"].startswith('"')
    assert r.headers["content-disposition"] == (
        "attachment; filename=\"Budget 2026.xlsx\"; filename*=UTF-8''Budget%202026.xlsx"
    )
    again = api.get(file_url(win, "C:/" + BUDGET), headers={TOKEN: op})
    assert again.headers["etag"] == r.headers["etag"]
    other = api.get(file_url(win, "C:/" + REPORT), headers={TOKEN: op})
    assert other.headers["etag"] != r.headers["etag"]
    assert other.headers["content-type"].startswith("text/plain")


def test_unicode_file_name_in_content_disposition(api: Api, op: str, win: str, fixtures: Fixtures) -> None:
    name = "Ünïcödé файл 文件.txt"
    r = api.get(file_url(win, f"C:/Documents/{name}"), headers={TOKEN: op})
    assert r.status_code == 200
    disposition = r.headers["content-disposition"]
    fallback, star = disposition.split("; filename*=UTF-8''")
    assert unquote(star) == name
    assert fallback.startswith('attachment; filename="') and fallback.isascii()
    assert (
        sha(r.content) == truth_of(fixtures, "Win File Server")["c"]["files"][f"Documents/{name}"]["sha256"]
    )


def test_etag_differs_between_points_of_a_changed_file(api: Api, op: str) -> None:
    tags = set()
    for index in (0, 1):
        m = mount(api, op, point_href(api, op, "KVM", "Win File Server", index))
        tags.add(
            api.get(file_url(m, "C:/" + REPORT), headers={TOKEN: op, "Range": "bytes=0-0"}).headers["etag"]
        )
    assert len(tags) == 2


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [
        ("bytes=0-0", 0, 1),
        ("bytes=1000-1999", 1000, 2000),
        ("bytes=-500", -500, None),
        ("bytes=5000-", 5000, None),
        ("bytes=47000-999999", 47000, None),
        ("bytes=-999999", 0, None),
    ],
)
def test_single_ranges(
    api: Api, op: str, win: str, fixtures: Fixtures, range_header: str, start: int, end: int | None
) -> None:
    whole = api.get(file_url(win, "C:/" + BUDGET), headers={TOKEN: op}).content
    size = len(whole)
    want = whole[start:end]
    r = api.get(file_url(win, "C:/" + BUDGET), headers={TOKEN: op, "Range": range_header})
    assert r.status_code == 206, r.text
    assert r.content == want
    first = start % size if start < 0 else start
    first = max(0, size - 999999) if range_header == "bytes=-999999" else first
    assert r.headers["content-range"] == f"bytes {first}-{first + len(want) - 1}/{size}"
    assert int(r.headers["content-length"]) == len(want)


@pytest.mark.parametrize("range_header", ["bytes=48000-", "bytes=99999-100000", "bytes=-0"])
def test_unsatisfiable_ranges_are_416(api: Api, op: str, win: str, range_header: str) -> None:
    r = api.get(file_url(win, "C:/" + BUDGET), headers=headers(op) | {"Range": range_header})
    assert r.status_code == 416
    assert r.headers["content-range"] == "bytes */48000"
    assert r.json()["StatusCode"] == 416


@pytest.mark.parametrize("range_header", ["bytes=0-1,5-9", "items=0-5", "bytes=9-3", "bytes=abc"])
def test_ranges_we_do_not_serve_get_the_whole_file(api: Api, op: str, win: str, range_header: str) -> None:
    r = api.get(file_url(win, "C:/" + BUDGET), headers={TOKEN: op, "Range": range_header})
    assert r.status_code == 200
    assert len(r.content) == 48000


def test_if_range_and_if_none_match(api: Api, op: str, win: str) -> None:
    first = api.get(file_url(win, "C:/" + BUDGET), headers={TOKEN: op, "Range": "bytes=0-9"})
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    for validator in (etag, modified):
        r = api.get(
            file_url(win, "C:/" + BUDGET), headers={TOKEN: op, "Range": "bytes=10-19", "If-Range": validator}
        )
        assert r.status_code == 206
        assert len(r.content) == 10
    for stale in ('"0000"', "Tue, 01 Jan 2019 00:00:00 GMT", "W/" + etag):
        r = api.get(
            file_url(win, "C:/" + BUDGET), headers={TOKEN: op, "Range": "bytes=10-19", "If-Range": stale}
        )
        assert r.status_code == 200
        assert len(r.content) == 48000
    r = api.get(file_url(win, "C:/" + BUDGET), headers={TOKEN: op, "If-None-Match": etag})
    assert r.status_code == 304
    assert r.content == b""


def test_head_sends_headers_only(api: Api, op: str, win: str) -> None:
    r = api.request("HEAD", file_url(win, "C:/Data/medium.bin"), headers={TOKEN: op})
    assert r.status_code == 200
    assert r.headers["content-length"] == str(5 * 1024 * 1024 + 123)
    assert r.content == b""


def test_post_download_is_accepted_too(api: Api, op: str, win: str, fixtures: Fixtures) -> None:
    r = api.post(file_url(win, "C:/" + REPORT), headers={TOKEN: op})
    assert r.status_code == 200
    assert sha(r.content) == truth_of(fixtures, "Win File Server")["c"]["files"][REPORT]["sha256"]


def test_alternate_data_streams(api: Api, op: str, win: str, fixtures: Fixtures) -> None:
    streams = truth_of(fixtures, "Win File Server")["c"]["streams"][BUDGET]
    for name, spec in streams.items():
        r = api.get(file_url(win, f"C:/{BUDGET}:{name}"), headers={TOKEN: op})
        assert r.status_code == 200, r.text
        assert sha(r.content) == spec["sha256"]
        assert len(r.content) == spec["size"]
    listed, _ = list_all(api, op, f"{win}/C:/Users/alice/Documents")
    assert [f["Name"] for f in listed] == ["Budget 2026.xlsx"]  # streams are listed nowhere
    r = api.get(file_url(win, f"C:/{BUDGET}:nosuchstream"), headers=headers(op))
    assert r.status_code == 404


def test_missing_file_is_404(api: Api, op: str, win: str) -> None:
    r = api.get(file_url(win, "C:/Documents/nothing-here.txt"), headers=headers(op))
    assert r.status_code == 404
    assert "does not exist" in r.json()["Message"]


# --- folders as ZIP ------------------------------------------------------------------------------------


def local_header_flags(data: bytes, info: zipfile.ZipInfo) -> int:
    signature, _version, flags = struct.unpack_from("<IHH", data, info.header_offset)
    assert signature == 0x04034B50
    return int(flags)


def unix_time(info: zipfile.ZipInfo) -> int | None:
    extra = info.extra
    while len(extra) >= 4:
        kind, length = struct.unpack_from("<HH", extra)
        if kind == 0x5455 and length >= 5:
            return int(struct.unpack_from("<l", extra, 5)[0])
        extra = extra[4 + length :]
    return None


def check_zip(
    data: bytes, top: str, volume: dict[str, Any], grafts: dict[str, dict[str, Any]] | None = None
) -> None:
    """The archive holds exactly the volume's files (bytes, sizes, times), folders and links."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    infos = {i.filename: i for i in archive.infolist()}
    want_files = {f"{top}/{p}": s for p, s in volume["files"].items()}
    want_links = {f"{top}/{p}": lk for p, lk in volume.get("links", {}).items()}
    want_dirs = {f"{top}/"} | {f"{top}/{d}/" for d in volume["dirs"]}
    for mount_at, graft in (grafts or {}).items():
        want_files |= {f"{top}/{mount_at}/{p}": s for p, s in graft["files"].items()}
        want_links |= {f"{top}/{mount_at}/{p}": lk for p, lk in graft.get("links", {}).items()}
        want_dirs |= {f"{top}/{mount_at}/"} | {f"{top}/{mount_at}/{d}/" for d in graft["dirs"]}
    got_dirs = {
        n for n in infos if n.endswith("/") and n.rstrip("/").rsplit("/", 1)[-1] not in EXPECTED_EXTRA_DIRS
    }
    got_dirs = {d for d in got_dirs if not any(f"/{x}/" in d for x in EXPECTED_EXTRA_DIRS)}
    assert got_dirs == want_dirs, sorted(got_dirs ^ want_dirs)[:5]
    got_files = {
        n for n in infos if not n.endswith("/") and not any(f"/{x}/" in n for x in EXPECTED_EXTRA_DIRS)
    }
    assert got_files == set(want_files) | set(want_links), sorted(
        got_files ^ (set(want_files) | set(want_links))
    )[:5]
    for name, info in infos.items():
        assert info.flag_bits & 0x800, name  # UTF-8 flag in the central directory ...
        assert local_header_flags(data, info) & 0x800, name  # ... and in the local header
        assert info.compress_type == zipfile.ZIP_STORED
    for name, spec in want_files.items():
        info = infos[name]
        assert info.file_size == spec["size"], name
        assert sha(archive.read(info)) == spec["sha256"], name
        assert unix_time(info) == spec["mtime"], name
        when = time.gmtime(spec["mtime"])
        assert info.date_time[:5] == (when.tm_year, when.tm_mon, when.tm_mday, when.tm_hour, when.tm_min), (
            name
        )
        assert info.date_time[5] == when.tm_sec - when.tm_sec % 2, name
    for name, link in want_links.items():
        info = infos[name]
        assert stat.S_ISLNK(info.external_attr >> 16), name
        assert archive.read(info).decode() == link["target"], name


def test_folder_zip_of_a_small_folder(api: Api, op: str, win: str, fixtures: Fixtures) -> None:
    volume = truth_of(fixtures, "Win File Server")["c"]
    r = api.get(f"{win}/C:/Documents?action=download", headers={TOKEN: op})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"].startswith('attachment; filename="Documents.zip"')
    sub = {
        "files": {
            p[len("Documents/") :]: s for p, s in volume["files"].items() if p.startswith("Documents/")
        },
        "dirs": [d[len("Documents/") :] for d in volume["dirs"] if d.startswith("Documents/")],
    }
    check_zip(r.content, "Documents", sub)
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert "Documents/emoji 😀 name.txt" in names
    assert "Documents/日本語のファイル.txt" in names


def test_empty_folder_zip(api: Api, op: str, win: str) -> None:
    r = api.get(f"{win}/C:/Empty%20Folder?action=download", headers={TOKEN: op})
    assert r.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(r.content)).namelist() == ["Empty Folder/"]


# --- every file of every format, against a real server --------------------------------------------------


@pytest.fixture(scope="module")
def dl_server(tmp_path_factory: pytest.TempPathFactory, fixtures: Fixtures) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("download-server")
    add_users(data)
    with run_server(
        data, https=False, config=SHARED_SERVER + datastore_config(fixtures, ALL_DATASTORES)
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def dl_api(dl_server: RunningServer) -> Iterator[Api]:
    with plain_client(timeout=120) as http:
        yield Api(http, dl_server.base, "http")


def points_of(api: Api, token: str, job: str, name: str) -> list[str]:
    replicas = api.get("/api/replicas?format=Entity", headers=headers(token)).json()["Replicas"]
    replica = next(r for r in replicas if r["JobName"] == job and r["Name"] == name)
    down = next(lk["Href"] for lk in replica["Links"] if lk["Type"] == "VmReplicaPointReferenceList")
    refs = api.get(down + "?format=Entity", headers=headers(token)).json()["VmReplicaPoints"]
    refs.sort(key=lambda p: p["CreationTimeUTC"])
    return [str(p["Href"]).split("?")[0] for p in refs]


def vm_cases(fixtures: Fixtures) -> list[tuple[str, str, str]]:
    cases = []
    for ds in ALL_DATASTORES:
        if ds == "large":
            continue
        for name, spec in fixtures.expected(ds).items():
            display = spec.get("display_name") or name.removesuffix("_replica")
            cases.append((ds, name, display))
    return cases


def crowded_folders(files: dict[str, Any]) -> set[str]:
    counts: dict[str, int] = {}
    for rel in files:
        folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
        counts[folder] = counts.get(folder, 0) + 1
    return {f for f, n in counts.items() if n > 1000}


def zip_top(root: str) -> str:
    if root == "/":
        return "root"
    return root.strip("/").rsplit("/", 1)[-1].rstrip(":")


@pytest.mark.slow
def test_every_file_of_every_format_downloads_exactly(dl_api: Api, fixtures: Fixtures) -> None:
    """Each point of each VM of each datastore: every volume as a ZIP (every file, folder, link, time),
    and every file outside the 10,000-file folder as its own download, compared with the ground truth."""
    token = dl_api.logon("flrop")
    checked_files = 0
    for ds, name, display in vm_cases(fixtures):
        job = f"{ds.upper()} Replication"
        for index, point in enumerate(points_of(dl_api, token, job, name)):
            volumes = fixtures.manifest["vms"][display][f"p{index + 1}"]["volumes"]
            m = mount(dl_api, token, point)
            linux_tree = any(v["guest_root"] == "/" for v in volumes.values())
            for volume in volumes.values():
                root = volume["guest_root"]
                if linux_tree and root != "/":
                    continue  # grafted below / and checked through it
                grafts = (
                    {v["guest_root"].strip("/"): v for v in volumes.values() if v["guest_root"] != "/"}
                    if root == "/"
                    else None
                )
                r = dl_api.get(
                    f"{m}/{quote(root.lstrip('/'), safe='/:$')}?action=download", headers={TOKEN: token}
                )
                assert r.status_code == 200, (ds, name, root, r.text[:300])
                check_zip(r.content, zip_top(root), volume, grafts)
            for volume in volumes.values():
                base = volume["guest_root"].rstrip("/")
                crowded = crowded_folders(volume["files"])
                for rel, spec in volume["files"].items():
                    if rel.rsplit("/", 1)[0] in crowded and zlib.crc32(rel.encode()) % 50:
                        continue  # one in fifty of the 10,000-file folders: all of them are in the ZIP above
                    got = dl_api.get(file_url(m, f"{base}/{rel}"), headers={TOKEN: token})
                    assert got.status_code == 200, (ds, name, rel, got.text[:300])
                    assert sha(got.content) == spec["sha256"], (ds, name, index, rel)
                    checked_files += 1
            dl_api.delete(m, headers={TOKEN: token})
    assert checked_files > 1000


def raw_get(
    server: RunningServer, path: str, token: str, extra: str = "", receive_buffer: int | None = None
) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(30)
    if receive_buffer is not None:
        # Set before connecting: it fixes the TCP window, so the kernel cannot take in the whole body.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", server.port))
    target = urlsplit(path)
    request = f"GET {target.path}?{target.query} HTTP/1.1\r\nHost: x\r\n{TOKEN}: {token}\r\n{extra}\r\n"
    sock.sendall(request.encode("latin-1"))
    return sock


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def test_resume_after_a_cut_connection(dl_server: RunningServer, dl_api: Api, fixtures: Fixtures) -> None:
    token = dl_api.logon("flrop")
    m = mount(dl_api, token, points_of(dl_api, token, "QCOW2 Replication", "Win File Server")[-1])
    url = file_url(m, "C:/Data/medium.bin")
    spec = truth_of(fixtures, "Win File Server")["c"]["files"]["Data/medium.bin"]
    # Loopback buffers can grow to hold this 5 MiB file whole (tcp_rmem max is 32 MiB here), and a
    # body the kernel has taken is, to the server, sent: a small window keeps most of it unsent.
    sock = raw_get(dl_server, url, token, receive_buffer=64 * 1024)
    head, got = read_head(sock)
    assert head.startswith(b"HTTP/1.1 200")
    while len(got) < 500_000:
        got += sock.recv(65536)
    sock.close()  # the connection breaks in the middle of the file
    rest = dl_api.get(url, headers={TOKEN: token, "Range": f"bytes={len(got)}-"})
    assert rest.status_code == 206
    assert sha(got + rest.content) == spec["sha256"]
    # The server noted the cut and keeps serving.
    audit = [r for r in audit_records(dl_server, "--action", "download") if r["path"] == "C:/Data/medium.bin"]
    cut = [r for r in audit if r["result"] == "interrupted"]
    assert cut and 500_000 <= cut[0]["bytes"] < spec["size"], audit
    assert any(r["result"] == "success" and r["target"].startswith("HTTP bytes") for r in audit), audit
    assert dl_api.get("/api/", headers={TOKEN: token}).status_code == 200


def audit_records(server: RunningServer, *args: str) -> list[dict[str, Any]]:
    """The server's audit log through ``openflr audit --json``, once nothing is running any more."""
    from tests.support import cli

    deadline = time.monotonic() + 10
    while True:
        records: list[dict[str, Any]] = json.loads(cli(server.data_dir, "audit", "--json", *args).stdout)
        if all(r["result"] != "running" for r in records) or time.monotonic() > deadline:
            return records


def test_curl_resumes_a_download(
    dl_server: RunningServer, dl_api: Api, fixtures: Fixtures, tmp_path: Path
) -> None:
    token = dl_api.logon("flrop")
    m = mount(dl_api, token, points_of(dl_api, token, "VMWARE Replication", "Win File Server_replica")[-1])
    url = dl_api.url(file_url(m, "C:/Data/medium.bin"))
    spec = truth_of(fixtures, "Win File Server")["c"]["files"]["Data/medium.bin"]
    target = tmp_path / "medium.bin"
    partial = dl_api.get(url, headers={TOKEN: token, "Range": "bytes=0-1048575"}).content
    target.write_bytes(partial)
    run = subprocess.run(
        ["curl", "-sS", "-f", "-C", "-", "-o", str(target), "-H", f"{TOKEN}: {token}", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert target.stat().st_size == spec["size"]
    assert hashlib.sha256(target.read_bytes()).hexdigest() == spec["sha256"]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def streamed_digest(api: Api, url: str, token: str, pid: int) -> tuple[str, int, int]:
    """(sha256, bytes, peak server RSS growth in KiB) of a streamed download."""
    base = rss_kib(pid)
    peak = base
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_kib(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    h = hashlib.sha256()
    total = 0
    try:
        with api.client.stream("GET", api.url(url), headers={TOKEN: token}) as r:
            assert r.status_code == 200
            for chunk in r.iter_bytes(1024 * 1024):
                h.update(chunk)
                total += len(chunk)
    finally:
        stop.set()
        sampler.join()
    return h.hexdigest(), total, peak - base


@pytest.mark.slow
def test_a_2_gib_file_streams_with_flat_server_memory(
    dl_server: RunningServer, dl_api: Api, fixtures: Fixtures
) -> None:
    token = dl_api.logon("flrop")
    m = mount(dl_api, token, points_of(dl_api, token, "LARGE Replication", LARGE_VM)[0])
    spec = fixtures.expected("large")[LARGE_VM]["files"][BIG_FILE]
    digest, total, growth = streamed_digest(
        dl_api, file_url(m, "big:/" + BIG_FILE), token, dl_server.process.pid
    )
    assert total == BIG_SIZE == spec["size"]
    assert digest == spec["sha256"]
    assert growth < 64 * 1024, f"server memory grew by {growth} KiB while streaming 2 GiB"


@pytest.mark.slow
def test_a_folder_zip_with_a_2_gib_file_uses_zip64_and_flat_memory(
    dl_server: RunningServer, dl_api: Api, fixtures: Fixtures, tmp_path: Path
) -> None:
    token = dl_api.logon("flrop")
    m = mount(dl_api, token, points_of(dl_api, token, "LARGE Replication", LARGE_VM)[0])
    files = fixtures.expected("large")[LARGE_VM]["files"]
    base = rss_kib(dl_server.process.pid)
    peak = base
    target = tmp_path / "data.zip"
    with dl_api.client.stream(
        "GET", dl_api.url(f"{m}/big:/data?action=download"), headers={TOKEN: token}
    ) as r:
        assert r.status_code == 200
        with open(target, "wb") as out:
            for chunk in r.iter_bytes(1024 * 1024):
                out.write(chunk)
                peak = max(peak, rss_kib(dl_server.process.pid))
    assert peak - base < 64 * 1024
    with zipfile.ZipFile(target) as archive:
        info = archive.getinfo(f"data/{BIG_FILE.split('/')[-1]}")
        assert info.file_size == BIG_SIZE
        h = hashlib.sha256()
        with archive.open(info) as f:
            while chunk := f.read(8 * 1024 * 1024):
                h.update(chunk)
        assert h.hexdigest() == files[BIG_FILE]["sha256"]
        small = archive.read("data/small.txt")
        assert sha(small) == files["data/small.txt"]["sha256"]
    raw = target.read_bytes()[info.header_offset : info.header_offset + 30 + 200]
    name_len, extra_len = struct.unpack_from("<HH", raw, 26)
    extra = raw[30 + name_len : 30 + name_len + extra_len]
    kinds = []
    while len(extra) >= 4:
        kind, length = struct.unpack_from("<HH", extra)
        kinds.append(kind)
        extra = extra[4 + length :]
    assert 0x0001 in kinds  # the ZIP64 extra field (sizes past 2 GiB), beside the Unix time (0x5455)
    assert 0x5455 in kinds


def test_complete_curl_downloads_are_audited_complete(
    dl_server: RunningServer, dl_api: Api, fixtures: Fixtures, tmp_path: Path
) -> None:
    """curl closes the connection as soon as it holds the last byte: the server may see that close
    before its own end of the response. A download whose every byte was sent is still complete."""
    from tests.support import cli

    cli(dl_server.data_dir, "users", "add", "curler", "--role", "RestoreOperator", stdin="Curl!pass1\n")
    token = dl_api.logon("curler", "Curl!pass1")
    m = mount(dl_api, token, points_of(dl_api, token, "VMWARE Replication", "Win File Server_replica")[-1])
    spec = truth_of(fixtures, "Win File Server")["c"]["files"][REPORT]
    url = dl_api.url(file_url(m, f"C:/{REPORT}"))

    def curl(n: int) -> subprocess.Popen[str]:
        out = tmp_path / f"report-{n}.txt"
        args = ["curl", "-sS", "-f", "-o", str(out), "-H", f"{TOKEN}: {token}", url]
        return subprocess.Popen(args, stderr=subprocess.PIPE, text=True)

    for n in range(30):  # one after the other
        proc = curl(n)
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    for wave in range(3):  # and ten at a time
        procs = [curl(100 + 10 * wave + i) for i in range(10)]
        for proc in procs:
            assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    for out in tmp_path.glob("report-*.txt"):
        assert sha(out.read_bytes()) == spec["sha256"], out
    records = audit_records(dl_server, "--user", "curler")
    assert len(records) == 60
    assert {(r["result"], r["bytes"], r["message"]) for r in records} == {("success", spec["size"], "")}


def test_a_curl_download_cut_short_is_audited_interrupted(
    dl_server: RunningServer, dl_api: Api, fixtures: Fixtures, tmp_path: Path
) -> None:
    from tests.support import cli

    cli(dl_server.data_dir, "users", "add", "quitter", "--role", "RestoreOperator", stdin="Quit!pass1\n")
    token = dl_api.logon("quitter", "Quit!pass1")
    m = mount(dl_api, token, points_of(dl_api, token, "LARGE Replication", LARGE_VM)[0])
    url = dl_api.url(file_url(m, "big:/" + BIG_FILE))
    # 2 GiB at 1 MB/s: curl gives up after a second, far from the end (no socket buffer holds it all).
    run = subprocess.run(
        [
            "curl",
            "-sS",
            "--limit-rate",
            "1M",
            "--max-time",
            "1",
            "-o",
            str(tmp_path / "big"),
            "-H",
            f"{TOKEN}: {token}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 28, run.stderr  # curl's "operation timed out"
    (record,) = audit_records(dl_server, "--user", "quitter")
    assert record["result"] == "interrupted", record
    assert 0 < record["bytes"] < BIG_SIZE
    assert record["message"] == "the client closed the connection before the end"
