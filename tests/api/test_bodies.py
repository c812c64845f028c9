"""Request bodies: tolerant shapes, strict safety."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from openflr.api import emtypes
from openflr.api.bodies import parse_body
from openflr.api.schema import EmType, text
from openflr.errors import BadRequestError, UnsupportedMediaTypeError
from tests.api.flr import headers, mount, point_href
from tests.support import Api, RunningServer, plain_client

SPEC = emtypes.FILE_RESTORE_SPEC


def test_xml_attribute_or_element_and_username_spellings() -> None:
    a = parse_body(
        SPEC,
        b'<FileRestoreSpec xmlns="http://www.veeam.com/ent/v1.0"><ToOriginalLocation Overwrite="true">'
        b"<GuestCredentials><Username>FS01\\Administrator</Username><Password>p</Password>"
        b"</GuestCredentials></ToOriginalLocation></FileRestoreSpec>",
        "application/xml",
    )
    assert a == {
        "ToOriginalLocation": {
            "Overwrite": True,
            "GuestCredentials": {"UserName": "FS01\\Administrator", "Password": "p"},
        }
    }
    b = parse_body(
        SPEC,
        b"<FileRestoreSpec><ToOriginalLocation><Overwrite>false</Overwrite>"
        b"<Unknown>x</Unknown></ToOriginalLocation></FileRestoreSpec>",
        None,
    )
    assert b == {"ToOriginalLocation": {"Overwrite": False}}


def test_json_tolerant() -> None:
    assert parse_body(SPEC, b'{"ForDirectDownload": {"FileName": "x.txt"}}', "application/json") == {
        "ForDirectDownload": {"FileName": "x.txt"}
    }
    assert parse_body(SPEC, b'{"toOriginalLocation": {"overwrite": "true", "extra": 1}}', None) == {
        "ToOriginalLocation": {"Overwrite": True}
    }
    assert parse_body(SPEC, b"  ", "application/json") == {}


@pytest.mark.parametrize(
    "body",
    [
        b'{"ToOriginalLocation": {"Overwrite": 3}}',
        b'{"ToOriginalLocation": "yes"}',
        b'{"ToOriginalLocation": {"GuestCredentials": {"UserName": 5}}}',
        b"[1, 2]",
        b"{not json",
    ],
)
def test_json_wrong_types_are_400(body: bytes) -> None:
    with pytest.raises(BadRequestError):
        parse_body(SPEC, body, "application/json")


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><FileRestoreSpec>&a;</FileRestoreSpec>',
        b'<!DOCTYPE x SYSTEM "http://example.com/x.dtd"><FileRestoreSpec/>',
        b"<FileRestoreSpec><ForDirectDownload></FileRestoreSpec>",
        b"<a>" * 40 + b"</a>" * 40,
    ],
)
def test_hostile_or_broken_xml_is_400(body: bytes) -> None:
    with pytest.raises(BadRequestError):
        parse_body(SPEC, body, "application/xml")


def test_deep_json_is_400() -> None:
    with pytest.raises(BadRequestError):
        parse_body(SPEC, b'{"a":' * 50 + b"1" + b"}" * 50, "application/json")


# --- hostile XML: refused at the DOCTYPE, before any declaration in it is read ---------------------------

LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>\n<FileRestoreSpec><ForDirectDownload><FileName>&lol9;</FileName>"
    + b"</ForDirectDownload></FileRestoreSpec>"
)
QUADRATIC = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "'
    + b"a" * 50_000
    + b'">]><FileRestoreSpec><ForDirectDownload><FileName>'
    + b"&a;" * 10_000
    + b"</FileName></ForDirectDownload></FileRestoreSpec>"
)
HOSTILE_XML = {
    "billion-laughs": LAUGHS,
    "quadratic-blowup": QUADRATIC,
    "xxe-file": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    b"<FileRestoreSpec><ForDirectDownload><FileName>&e;</FileName></ForDirectDownload></FileRestoreSpec>",
    "xxe-network": b'<!DOCTYPE x [<!ENTITY e SYSTEM "http://127.0.0.1:9/x">]><FileRestoreSpec>&e;</FileRestoreSpec>',
    "parameter-entity": b'<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><FileRestoreSpec/>',
    "external-dtd": b'<!DOCTYPE FileRestoreSpec SYSTEM "http://127.0.0.1:9/x.dtd"><FileRestoreSpec/>',
    "public-dtd": b'<!DOCTYPE FileRestoreSpec PUBLIC "-//X//Y" "file:///etc/passwd"><FileRestoreSpec/>',
    "empty-doctype": b"<!DOCTYPE FileRestoreSpec><FileRestoreSpec/>",
    "doctype-after-bom-and-comment": b"\xef\xbb\xbf<!-- x --><!DOCTYPE a []><FileRestoreSpec/>",
    "utf16-doctype": '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'.encode(
        "utf-16"
    ),
    "doctype-past-4k": b"<!--" + b" " * 8192 + b"-->" + b"<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>",
}


@pytest.mark.parametrize("body", HOSTILE_XML.values(), ids=HOSTILE_XML.keys())
def test_dtds_are_refused(body: bytes) -> None:
    with pytest.raises(BadRequestError, match="DTDs are not accepted"):
        parse_body(SPEC, body, "application/xml")
    with pytest.raises(BadRequestError, match="DTDs are not accepted"):
        parse_body(SPEC, body, None)  # sniffed as XML


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<FileRestoreSpec>&undeclared;</FileRestoreSpec>", "not well-formed"),
        (b"<a>" * 33 + b"</a>" * 33, "nested deeper than 32"),
        (b"<a>" * 300_000 + b"</a>" * 300_000, "nested deeper than 32"),
        (b"<FileRestoreSpec>" + b"<x/>" * 1_001 + b"</FileRestoreSpec>", "more than 1000 elements"),
        (b'<?xml version="1.0" encoding="no-such-codec"?><a/>', "not well-formed"),
        (b"<a/><b/>", "not well-formed"),
        (b"\xff\xfe\x00<", "not well-formed"),
    ],
    ids=[
        "undeclared-entity",
        "depth-33",
        "depth-300000",
        "wide",
        "codec",
        "two-roots",
        "junk",
    ],
)
def test_broken_or_oversized_xml_is_400(body: bytes, message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        parse_body(SPEC, body, "application/xml")


def test_xinclude_is_not_processed() -> None:
    body = (
        b'<FileRestoreSpec xmlns:xi="http://www.w3.org/2001/XInclude"><ForDirectDownload>'
        b'<FileName><xi:include href="file:///etc/passwd" parse="text"/></FileName>'
        b"</ForDirectDownload></FileRestoreSpec>"
    )
    assert parse_body(SPEC, body, "application/xml") == {"ForDirectDownload": {"FileName": ""}}


def test_character_references_and_cdata_still_work() -> None:
    body = (
        b"<FileRestoreSpec><ForDirectDownload><FileName>a&amp;b&#x263A;<![CDATA[<c>]]></FileName>"
        b"</ForDirectDownload></FileRestoreSpec>"
    )
    assert parse_body(SPEC, body, "application/xml") == {"ForDirectDownload": {"FileName": "a&b\u263a<c>"}}


# --- JSON: wrong types name the member ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "member"),
    [
        (b'{"ToOriginalLocation": {"Overwrite": 3}}', "FileRestoreSpec.ToOriginalLocation.Overwrite"),
        (b'{"ToOriginalLocation": {"Overwrite": "maybe"}}', "FileRestoreSpec.ToOriginalLocation.Overwrite"),
        (b'{"ToOriginalLocation": []}', "FileRestoreSpec.ToOriginalLocation"),
        (b'{"ForDirectDownload": {"FileName": 7}}', "FileRestoreSpec.ForDirectDownload.FileName"),
        (b'{"ForDirectDownload": {"FileName": ["a"]}}', "FileRestoreSpec.ForDirectDownload.FileName"),
        (
            b'{"ToOriginalLocation": {"GuestCredentials": {"Password": {"x": 1}}}}',
            "FileRestoreSpec.ToOriginalLocation.GuestCredentials.Password",
        ),
    ],
)
def test_json_wrong_types_name_the_member(body: bytes, member: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_body(SPEC, body, "application/json")
    assert caught.value.message.startswith(member + " must be")


@pytest.mark.parametrize("value", ["\u00b2", "1_000", "--5", "9" * 5000, "\u0663", "1e3", " "])
def test_integer_strings_are_plain_ascii_digits(value: str) -> None:
    spec = EmType("Spec", (text("Count", int),), links_first=False)
    with pytest.raises(BadRequestError, match=r"Spec\.Count must be an integer"):
        parse_body(spec, orjson.dumps({"Count": value}), "application/json")
    assert parse_body(spec, b'{"Count": " -12 "}', "application/json") == {"Count": -12}


@pytest.mark.parametrize(
    "body",
    [b"[" * 1_000_000, b'{"a":' * 200_000 + b"1" + b"}" * 200_000, b"\xff\xfe", b'"\\ud800"', b"1e400"],
    ids=["deep-array", "deep-object", "not-utf8", "lone-surrogate", "infinity"],
)
def test_hostile_json_is_400(body: bytes) -> None:
    with pytest.raises(BadRequestError):
        parse_body(SPEC, body, "application/json")


# --- the real server: refused with 400 and without memory growth --------------------------------------


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_bombs_are_400_without_memory_growth(http_server: RunningServer) -> None:
    """Billion laughs, quadratic blowup and 1 MiB deeply nested XML and JSON documents, each sent 10
    times to the real server: every one is a 400 Error, and the server's RSS grows < 20 MiB."""
    limit = 1024 * 1024
    deep_xml = b"<a>" * (limit // 7) + b"</a>" * (limit // 7)
    deep_json = b"[" * (limit // 2) + b"]" * (limit // 2)
    wide_xml = b"<a>" + b"<b/>" * ((limit - 7) // 4) + b"</a>"
    bombs = [
        (LAUGHS, "application/xml", "DTDs are not accepted"),
        (QUADRATIC, "application/xml", "DTDs are not accepted"),
        (deep_xml, "application/xml", "nested deeper"),
        (wide_xml, "application/xml", "more than 1000 elements"),
        (deep_json, "application/json", "not valid JSON"),
    ]
    assert all(len(b) <= limit for b, _, _ in bombs)
    pid = http_server.process.pid
    with plain_client() as client:
        r = client.post(http_server.base + "/api/sessionMngr/?v=latest", auth=("flrop", "Secret1"))
        token = r.headers["X-RestSvcSessionId"]
        url = http_server.base + "/api/vmReplicaPoints/no-such-point/mounts"

        def send(body: bytes, content_type: str) -> Any:
            return client.post(
                url,
                content=body,
                headers={
                    "X-RestSvcSessionId": token,
                    "Content-Type": content_type,
                    "Accept": "application/json",
                },
            )

        send(b"{}", "application/json")  # warm up: first request paths, allocator arenas
        before = _rss_kib(pid)
        for _ in range(10):
            for body, content_type, message in bombs:
                r = send(body, content_type)
                assert r.status_code == 400, r.text[:300]
                assert message in r.json()["Message"]
        grown = _rss_kib(pid) - before
    assert grown < 20 * 1024, f"RSS grew by {grown} KiB"


@pytest.mark.parametrize(
    ("body", "content_type", "twice"),
    [
        (b'{"ToOriginalLocation": {"Overwrite": true, "Overwrite": false}}', "application/json", "Overwrite"),
        (
            b'{"ToOriginalLocation": {}, "toOriginalLocation": {"Overwrite": true}}',
            None,
            "ToOriginalLocation",
        ),
        (
            b'<FileRestoreSpec><ToOriginalLocation Overwrite="true"><Overwrite>false</Overwrite>'
            b"</ToOriginalLocation></FileRestoreSpec>",
            "application/xml",
            "Overwrite",
        ),
        (
            b"<FileRestoreSpec><ForDirectDownload/><fordirectdownload/></FileRestoreSpec>",
            "text/xml",
            "fordirectdownload",
        ),
    ],
)
def test_a_member_given_twice_is_400(body: bytes, content_type: str | None, twice: str) -> None:
    with pytest.raises(BadRequestError, match=f"'{twice}'.*twice"):
        parse_body(SPEC, body, content_type)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "image/png"],
)
def test_bodies_that_are_neither_json_nor_xml_are_415(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaTypeError, match=r"JSON .* or XML"):
        parse_body(SPEC, b'{"ForDirectDownload": {}}', content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/json; charset=utf-8",
        "application/xml; charset=utf-8",
        "text/xml",
        "Application/JSON",
    ],
)
def test_what_real_clients_send_is_accepted(content_type: str | None) -> None:
    body = b"<FileRestoreSpec><ForDirectDownload/></FileRestoreSpec>"
    if content_type is None or "json" in content_type.lower():
        body = b'{"ForDirectDownload": {}}'
    assert parse_body(SPEC, body, content_type) == {"ForDirectDownload": {}}


def test_a_form_post_gets_415_with_an_em_error(api: Api) -> None:
    """What a cross-origin page can send without a preflight never reaches a restore."""
    token = api.logon("flrop")
    item = mount(api, token, point_href(api, token, "KVM", "lin-web01")) + "/etc/hostname?action=restore"
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        r = api.post(
            item,
            content=b'{"ForDirectDownload": {}}',
            headers={**headers(token), "Content-Type": content_type},
        )
        assert r.status_code == 415, r.text
        assert r.json()["Status"] == "UnsupportedMediaType" and "application/json" in r.json()["Message"]
    ok = api.post(item, content=b'{"ForDirectDownload": {}}', headers=headers(token))
    assert ok.status_code == 202, ok.text
