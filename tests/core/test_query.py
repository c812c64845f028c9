"""The query filter grammar, sorting and paging (docs/COMPATIBILITY.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from openflr.core.query import INT, STR, TIME, UID, QueryType, enum, parse_filter, run_query
from openflr.errors import BadRequestError

T = QueryType(
    "Thing",
    {
        "UID": UID,
        "Name": STR,
        "CreationTime": TIME,
        "Size": INT,
        "Algorithm": enum("Full", "Incremental"),
        "VmDisplayName": STR,
    },
    default_sort="Name",
)


def rec(i: int, name: str, vm: str, day: int, algo: str = "Full") -> dict[str, object]:
    return {
        "UID": f"0000000{i}-0000-0000-0000-000000000000",
        "Name": name,
        "VmDisplayName": vm,
        "Size": i * 10,
        "CreationTime": datetime(2026, 11, day, 21, tzinfo=UTC),
        "Algorithm": algo,
    }


ROWS = [
    rec(1, "a@1", "Win File Server", 1),
    rec(2, "a@2", "Win File Server", 2, "Incremental"),
    rec(3, "b@1", "lin-web01", 1),
    rec(4, "b@3", "lin-web01", 3, "Incremental"),
    rec(5, 'q"uote', 'He said "hi"', 4),
]


def names(filter_text: str | None, sort: tuple[str, bool] | None = None) -> list[str]:
    return [str(r["Name"]) for r in run_query(T, ROWS, filter_text, sort, 100, 1).records]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('VmDisplayName=="Win File Server"', ["a@1", "a@2"]),
        ("vmdisplayname==win file server", ["a@1", "a@2"]),  # field and value case-insensitive, bare spaces
        ("VmDisplayName!=lin-web01", ["a@1", "a@2", 'q"uote']),
        ("Size>20", ["b@1", "b@3", 'q"uote']),
        ("Size>=20;Size<=30", ["a@2", "b@1"]),
        ("Name==a@1,Name==b@3", ["a@1", "b@3"]),
        ("VmDisplayName==lin-web01;(Name==b@1,Name==a@1)", ["b@1"]),
        ("Name==a@1,VmDisplayName==lin-web01;Size>30", ["a@1", "b@3"]),  # ; binds tighter than ,
        ('CreationTime>"2026-11-02T00:00:00Z"', ["a@2", "b@3", 'q"uote']),
        ("CreationTime>=2026-11-02T21:00:00", ["a@2", "b@3", 'q"uote']),  # no zone: UTC
        ("CreationTime<2026-11-02", ["a@1", "b@1"]),
        ("Algorithm>Full", ["a@2", "b@3"]),  # enums compare by declared order
        ('VmDisplayName=="He said ""hi"""', ['q"uote']),
        ("UID==urn:veeam:Thing:00000003-0000-0000-0000-000000000000", ["b@1"]),
        ("UID==00000003-0000-0000-0000-000000000000", ["b@1"]),
        (" ( Name == a@1 ) ", ["a@1"]),
    ],
)
def test_filters(text: str, expected: list[str]) -> None:
    assert names(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("   ", "empty"),
        ("Name", "expected an operator"),
        ("Name=a", "expected an operator"),
        ('Name=="open', "closing quote is missing"),
        ("(Name==a", "')' is missing"),
        ("Name==a)", "unexpected ')'"),
        ("Name==", "expected a value"),
        ("==a", "expected a field name"),
        ("Name==a;;Name==b", "expected a field name"),
        ("Bogus==1", "has no field 'Bogus'"),
        ("Size>big", "not a whole number"),
        ("CreationTime>yesterday", "not a date-time"),
        ("Algorithm==Weird", "not one of Full, Incremental"),
    ],
)
def test_malformed_filters_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(BadRequestError, match=re.escape(message)):
        run_query(T, ROWS, text, None, 100, 1)


def test_empty_filter_parameter_means_no_filter() -> None:
    assert len(names("")) == 5


def test_error_names_position() -> None:
    with pytest.raises(BadRequestError, match="position 5"):
        parse_filter("Name=x")


def test_sorting() -> None:
    assert names(None) == ["a@1", "a@2", "b@1", "b@3", 'q"uote']
    desc = names(None, ("creationtime", True))  # field names are case-insensitive
    assert desc[:3] == ['q"uote', "b@3", "a@2"]
    assert set(desc[3:]) == {"a@1", "b@1"}  # same time: order between them is unspecified
    assert names(None, ("Size", False)) == ["a@1", "a@2", "b@1", "b@3", 'q"uote']
    with pytest.raises(BadRequestError):
        names(None, ("Nope", False))


def test_paging() -> None:
    page = run_query(T, ROWS, None, ("Size", False), 2, 2)
    assert [r["Name"] for r in page.records] == ["b@1", "b@3"]
    assert (page.page, page.page_size, page.pages, page.total) == (2, 2, 3, 5)
    assert run_query(T, ROWS, None, None, 2, 9).records == []
    assert run_query(T, [], None, None, 2, 1).pages == 1
