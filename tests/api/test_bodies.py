"""Request bodies: tolerant shapes, strict safety."""

from __future__ import annotations

import pytest

from openflr.api import emtypes
from openflr.api.bodies import parse_body
from openflr.errors import BadRequestError

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
