"""Every file name round-trips (docs/STORAGE-NOTES.md, "Names"): listed in JSON and XML under its shown
name, and each entry's ``Href`` leads back to that same entry: browsing it, downloading it (whole and
by range, ``Content-Disposition`` naming it), zipping it. A percent-encoded ``%5C`` is a character of a
name; a raw ``\\`` in the request path separates (Windows-style paths). Against a real server over
small guests built here (``tests/api/odd_names.py``)."""

from __future__ import annotations

import http.client
import io
import zipfile
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from tests.api import odd_names
from tests.api.flr import TOKEN, headers, list_all, mount, roots
from tests.api.odd_names import LIN_VM, RAW_VM, WIN_VM, content, shown
from tests.api.test_downloads import points_of
from tests.support import (
    NS,
    SHARED_SERVER,
    Api,
    RunningServer,
    add_users,
    local,
    plain_client,
    run_server,
    xml,
)

JOB = "NAMES Replication"


@pytest.fixture(scope="module")
def names_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("names-server")
    add_users(data)
    store = odd_names.build_datastore(data / "store", data / "work")
    config = SHARED_SERVER + f'[[datastores]]\nname = "names"\npath = "{store}"\njob = "{JOB}"\n'
    with run_server(data, https=False, config=config) as server:
        yield server


@pytest.fixture(scope="module")
def napi(names_server: RunningServer) -> Iterator[Api]:
    with plain_client() as http:
        yield Api(http, names_server.base, "http")


@pytest.fixture(scope="module")
def token(napi: Api) -> str:
    return napi.logon("flrop")


@pytest.fixture(scope="module")
def tops(napi: Api, token: str) -> dict[str, str]:
    """Href of the folder ``n`` of each guest."""
    out = {}
    for vm in (LIN_VM, WIN_VM, RAW_VM):
        href = mount(napi, token, points_of(napi, token, JOB, vm)[-1])
        root = roots(napi, token, href)
        path = "/" if "/" in root else next(iter(root))
        out[vm] = root[path].rstrip("/") + "/n"
    return out


def expected(files: dict[bytes, bytes]) -> tuple[dict[str, bytes], set[str]]:
    """(shown file name -> content, shown folder names) directly in ``/n``."""
    top = {shown(rel): data for rel, data in files.items() if b"/" not in rel}
    folders = {shown(rel.split(b"/")[0]) for rel in files if b"/" in rel}
    return top, folders


FILES = {LIN_VM: odd_names.lin_files(), WIN_VM: odd_names.win_files(), RAW_VM: odd_names.raw_files()}
READABLE = [LIN_VM, WIN_VM]


def check_folder(api: Api, token: str, href: str, files: dict[bytes, bytes]) -> None:
    """The folder at ``href`` lists exactly ``files``' names; each entry's Href leads back to it."""
    want_files, want_dirs = expected(files)
    got_files, got_dirs = list_all(api, token, href)
    assert sorted(f["Name"] for f in got_files) == sorted(want_files)
    assert sorted(d["Name"] for d in got_dirs) == sorted(want_dirs)
    for entry in got_files:
        data = want_files[entry["Name"]]
        check_file(api, token, entry, data)
    for entry in got_dirs:
        again = api.get(entry["Href"], headers=headers(token))
        assert again.status_code == 200, (entry["Name"], again.text)
        folder = again.json()["DirectoryEntry"]
        assert (folder["Name"], folder["Href"]) == (entry["Name"], entry["Href"])
        raw = next(rel.split(b"/")[0] for rel in files if shown(rel.split(b"/")[0]) == entry["Name"])
        inside = {rel[len(raw) + 1 :]: d for rel, d in files.items() if rel.startswith(raw + b"/")}
        check_folder(api, token, entry["Href"], inside)


def check_file(api: Api, token: str, entry: dict[str, Any], data: bytes) -> None:
    name = entry["Name"]
    item = api.get(entry["Href"], headers=headers(token))
    assert item.status_code == 200, (name, item.text)
    again = item.json()["FileEntry"]
    assert (again["Name"], again["Href"], again["Path"]) == (name, entry["Href"], entry["Path"])
    got = api.get(entry["Href"] + "?action=download", headers=headers(token, json=False))
    assert got.status_code == 200, (name, got.text)
    assert got.content == data, name
    disposition = got.headers["Content-Disposition"]
    assert disposition.isascii()
    exact = disposition.split("filename*=UTF-8''", 1)[1]
    assert unquote(exact, errors="strict") == name.replace(":", "_")
    part = api.get(
        entry["Href"] + "?action=download", headers={**headers(token, json=False), "Range": "bytes=3-9"}
    )
    assert part.status_code == 206 and part.content == data[3:10], name


@pytest.mark.parametrize("vm", READABLE)
def test_every_name_is_listed_and_its_href_leads_back(
    napi: Api, token: str, tops: dict[str, str], vm: str
) -> None:
    check_folder(napi, token, tops[vm], FILES[vm])


def test_names_the_disk_holds_as_bytes_round_trip(napi: Api, token: str, tops: dict[str, str]) -> None:
    """Not UTF-8, or holding a character of the escape range (fails until the ext4 engine reads
    names as bytes: the current one leaves such names out or shows them unescaped)."""
    check_folder(napi, token, tops[RAW_VM], FILES[RAW_VM])


@pytest.mark.parametrize("vm", READABLE)
def test_names_in_xml(napi: Api, token: str, tops: dict[str, str], vm: str) -> None:
    want_files, want_dirs = expected(FILES[vm])
    body = xml(napi.get(tops[vm] + "?action=listAll", headers=headers(token, json=False)))
    names = {
        local(e.tag): sorted(x.findtext("em:Name", namespaces=NS) or "" for x in body.iter(e.tag))
        for e in body.iter()
        if local(e.tag) in ("FileEntry", "DirectoryEntry")
    }
    assert names == {"FileEntry": sorted(want_files), "DirectoryEntry": sorted(want_dirs)}
    for e in body.iter(f"{{{NS['em']}}}FileEntry"):
        again = napi.get(e.get("Href") or "", headers=headers(token, json=False))
        assert again.status_code == 200, again.text
        assert xml(again).findtext("em:FileEntry/em:Name", namespaces=NS) == e.findtext(
            "em:Name", namespaces=NS
        )


@pytest.mark.parametrize("vm", READABLE)
def test_zip_members_carry_the_shown_names(napi: Api, token: str, tops: dict[str, str], vm: str) -> None:
    r = napi.get(tops[vm] + "?action=download", headers=headers(token, json=False))
    assert r.status_code == 200, r.text
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    files = {"n/" + "/".join(shown(p) for p in rel.split(b"/")): d for rel, d in FILES[vm].items()}
    members = {i.filename: i for i in archive.infolist() if not i.is_dir()}
    assert sorted(members) == sorted(files)
    for name, info in members.items():
        assert info.flag_bits & 0x800, name
        assert archive.read(info) == files[name], name


def _raw_get(server_base: str, raw_path: bytes, token: str) -> tuple[int, bytes]:
    """GET with the request path exactly as given (HTTP clients would encode a ``\\``)."""
    where = urlsplit(server_base)
    conn = http.client.HTTPConnection(where.hostname or "", where.port, timeout=30)
    try:
        conn.putrequest("GET", raw_path.decode("latin-1"), skip_accept_encoding=True)
        conn.putheader(TOKEN, token)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("vm", READABLE)
def test_a_raw_backslash_separates_and_an_encoded_one_is_part_of_the_name(
    napi: Api, names_server: RunningServer, token: str, tops: dict[str, str], vm: str
) -> None:
    top = urlsplit(tops[vm]).path.encode()
    inner = content(b"dir\\x/a\\b")
    # %5C: characters of the names "dir\x" and "a\b".
    assert _raw_get(napi.base, top + b"/dir%5Cx/a%5Cb?action=download", token) == (200, inner)
    # A raw backslash: a separator, as Windows-style paths from EM clients have it.
    assert _raw_get(napi.base, top + b"\\sp%20dir%20\\f?action=download", token) == (
        200,
        content(b"sp dir /f"),
    )
    status, _ = _raw_get(napi.base, top + b"/dir\\x/a\\b?action=download", token)
    assert status == 404
    assert _raw_get(napi.base, top + b"/back%5Cslash?action=download", token) == (
        200,
        content(b"back\\slash"),
    )


@pytest.mark.parametrize("vm", READABLE)
def test_a_name_sent_with_its_control_character_finds_the_same_entry(
    napi: Api, token: str, tops: dict[str, str], vm: str
) -> None:
    """The shown name (``U+EF01``) and the character itself (``%01``) name the same file; the entry
    comes back under its shown name."""
    raw = b"ctl\x01x\x7f"
    got = napi.get(tops[vm] + "/ctl%01x%7F", headers=headers(token))
    assert got.status_code == 200, got.text
    assert got.json()["FileEntry"]["Name"] == shown(raw) == "ctl\uef01x\uef7f"


def test_a_byte_that_is_not_utf8_in_the_url_names_the_escaped_file(
    napi: Api, token: str, tops: dict[str, str]
) -> None:
    """``%E9`` (not UTF-8 on its own) and the shown name's ``U+EFE9`` name the same file."""
    got = napi.get(tops[RAW_VM] + "/caf%E9", headers=headers(token))
    assert got.status_code == 200, got.text
    assert got.json()["FileEntry"]["Name"] == shown(b"caf\xe9") == "caf\uefe9"


@pytest.mark.parametrize("vm", READABLE)
def test_direct_download_link_of_every_file(napi: Api, token: str, tops: dict[str, str], vm: str) -> None:
    """``ForDirectDownload``: the task's ``Download`` link leads to the same file."""
    files, _ = list_all(napi, token, tops[vm])
    want, _ = expected(FILES[vm])
    for entry in files:
        r = napi.post(
            entry["Href"] + "?action=restore", json={"ForDirectDownload": {}}, headers=headers(token)
        )
        assert r.status_code == 202, r.text
        link = next(lk["Href"] for lk in r.json()["Links"] if lk["Rel"] == "Download")
        got = napi.get(link, headers=headers(token, json=False))
        assert got.status_code == 200 and got.content == want[entry["Name"]], entry["Name"]
