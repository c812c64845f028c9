"""One description per type renders XML and JSON consistently, streamed or whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from lxml import etree

from openflr.api import emtypes
from openflr.api.render import format_time, json_document, render_json, render_xml, xml_document
from openflr.api.schema import Link, camel

NS = "{http://www.veeam.com/ent/v1.0}"


def entry(i: int) -> dict[str, object]:
    return {
        "Href": f"https://h/api/x/C:/f{i}",
        "Type": "FileEntry",
        "Path": f"C:/f{i}",
        "Name": f"f{i} & <co>",
        "Size": i,
        "Owner": "BUILTIN\\Administrators",
        "ModifiedDateUTC": datetime(2025, 7, 16, 13, 21, 29, 407000, tzinfo=UTC),
        "Links": [
            Link("Up", "https://h/api/x/C:?action=listAll&pageSize=100"),
            Link("Restore", "https://h/r"),
        ],
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("SessionId", "sessionId"),
        ("UID", "uid"),
        ("NASJobs", "nasJobs"),
        ("VAppCdpReplicas", "vAppCdpReplicas"),
        ("FSRoots", "fsRoots"),
        ("CreationTimeUTC", "creationTimeUTC"),
        ("Href", "href"),
    ],
)
def test_camel_case_matches_em13(name: str, expected: str) -> None:
    assert camel(name) == expected


def test_time_format() -> None:
    assert format_time(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02T03:04:05Z"
    assert format_time(datetime(2025, 1, 2, 3, 4, 5, 620000, tzinfo=UTC)) == "2025-01-02T03:04:05.62Z"
    tz = timezone(timedelta(hours=2))
    assert format_time(datetime(2025, 1, 2, 3, 4, 5, tzinfo=tz)) == "2025-01-02T01:04:05Z"


def test_xml_shape_order_and_escaping() -> None:
    value = {
        "Files": [entry(1)],
        "Links": [Link("Up", "https://h/up")],
        "Href": "https://h/x?a=1&b=2",
        "PagingInfo": {"PageNum": 1, "PageSize": 100, "PagesCount": 1, "Links": []},
    }
    doc = etree.fromstring(xml_document(emtypes.FILE_SYSTEM_ENTRIES, value))
    assert doc.tag == NS + "FileSystemEntries"
    assert [c.tag.removeprefix(NS) for c in doc] == ["Links", "Files", "PagingInfo"]
    fe = doc.find(f"{NS}Files/{NS}FileEntry")
    assert fe is not None
    assert [c.tag.removeprefix(NS) for c in fe] == [
        "Links",
        "Path",
        "Name",
        "Size",
        "Owner",
        "ModifiedDateUTC",
    ]
    assert fe.findtext(NS + "Name") == "f1 & <co>"
    assert fe.findtext(NS + "ModifiedDateUTC") == "2025-07-16T13:21:29.407Z"
    assert doc.get("Href") == "https://h/x?a=1&b=2"


def test_json_shape_has_nulls_and_wrappers() -> None:
    value = {"Files": [entry(1)], "Href": "https://h/x"}
    doc = orjson.loads(json_document(emtypes.FILE_SYSTEM_ENTRIES, value))
    assert list(doc) == ["Files", "Directories", "PagingInfo", "Links", "Href", "Type"]
    assert doc["Directories"] is None
    fe = doc["Files"]["FileEntries"][0]
    assert fe["Links"][0] == {
        "Rel": "Up",
        "Href": "https://h/api/x/C:?action=listAll&pageSize=100",
        "Name": None,
        "Type": None,
    }
    camel_doc = orjson.loads(json_document(emtypes.FILE_SYSTEM_ENTRIES, value, camel=True))
    assert camel_doc["files"]["fileEntries"][0]["modifiedDateUTC"] == "2025-07-16T13:21:29.407Z"


@pytest.mark.parametrize("count", [0, 1, 255, 256, 1000])
def test_streamed_equals_whole(count: int) -> None:
    items = [entry(i) for i in range(count)]

    def paging() -> dict[str, object]:
        return {"PageNum": 1, "PageSize": count, "PagesCount": 1}

    whole = {"Files": items, "PagingInfo": paging(), "Href": "h"}

    def lazy() -> dict[str, object]:
        return {"Files": iter(items), "PagingInfo": paging, "Href": "h"}

    assert "".join(render_xml(emtypes.FILE_SYSTEM_ENTRIES, lazy())).encode() == xml_document(
        emtypes.FILE_SYSTEM_ENTRIES, whole
    )
    assert orjson.loads(b"".join(render_json(emtypes.FILE_SYSTEM_ENTRIES, lazy()))) == orjson.loads(
        json_document(emtypes.FILE_SYSTEM_ENTRIES, whole)
    )


def test_characters_xml_cannot_carry_are_replaced_and_json_survives_surrogates() -> None:
    bad = {"Name": "a\x01b\ud800c", "Path": "p", "Href": "h", "Type": "DirectoryEntry"}
    doc = etree.fromstring(xml_document(emtypes.DIRECTORY_ENTRY, bad))
    assert doc.findtext(NS + "Name") == "a\ufffdb\ufffdc"
    assert orjson.loads(json_document(emtypes.DIRECTORY_ENTRY, bad))["Name"] == "a\x01b?c"


def test_error_type() -> None:
    doc = etree.fromstring(
        xml_document(emtypes.ERROR, {"Message": "m", "StatusCode": 403, "Status": "Forbidden"})
    )
    assert dict(doc.attrib.items()) == {"Message": "m", "StatusCode": "403", "Status": "Forbidden"}
    assert len(doc) == 0


@pytest.mark.parametrize("count", [0, 300])
def test_documents_end_with_one_newline(count: int) -> None:
    items = [entry(i) for i in range(count)]
    whole = {"Files": items, "Href": "h"}
    for xml_doc in (
        xml_document(emtypes.FILE_SYSTEM_ENTRIES, whole),
        "".join(render_xml(emtypes.FILE_SYSTEM_ENTRIES, {"Files": iter(items), "Href": "h"})).encode(),
    ):
        assert xml_doc.endswith(b"</FileSystemEntries>\n") or xml_doc.endswith(b"/>\n"), xml_doc[-60:]
    for json_doc in (
        json_document(emtypes.FILE_SYSTEM_ENTRIES, whole),
        b"".join(render_json(emtypes.FILE_SYSTEM_ENTRIES, {"Files": iter(items), "Href": "h"})),
    ):
        assert json_doc.endswith(b"}\n") and not json_doc.endswith(b"\n\n"), json_doc[-60:]
