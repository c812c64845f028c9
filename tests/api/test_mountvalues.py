"""Listing values: the fast ``ModifiedDateUTC`` text and the JSON fast path of paged listings give
exactly what the general renderer gives."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openflr.api import emtypes
from openflr.api.mountvalues import Listing, time_of, time_text
from openflr.api.render import JsonItems, format_time, json_document, json_object, json_text, xml_document
from openflr.guestfs.filesystems.base import Entry
from openflr.guestfs.view import GuestView, Located, open_view
from tests.guestfs.test_view import _vm
from tests.imagebuilder import Fixtures

# 1601 (the NTFS epoch) to 9999, in nanoseconds from 1970.
_NS = st.integers(min_value=-11_644_473_600 * 10**9, max_value=253_402_300_799 * 10**9)


@given(_NS)
def test_time_text_matches_format_time(ns: int) -> None:
    when = time_of(ns)
    assert when is not None
    assert time_text(ns) == format_time(when)


def test_time_text_edges() -> None:
    assert time_text(None) is None
    assert time_text(0) == "1970-01-01T00:00:00Z"
    assert time_text(1_500_000_000) == "1970-01-01T00:00:01.5Z"
    assert time_text(86_399_999_999_999) == "1970-01-01T23:59:59.999Z"
    assert time_text(-1) == "1969-12-31T23:59:59.999Z"


# --- the JSON fast path of paged listings ------------------------------------------------------------


NAMES = [
    "plain.txt",
    "with space.doc",
    "naïve ünïcode.txt",
    "per%cent#hash?.bin",
    "日本語.txt",
    "a+b=c;d.txt",
]


@pytest.fixture(scope="module")
def windows_view(fixtures: Fixtures) -> Iterator[GuestView]:
    _folder, vm = _vm(fixtures, "vmware", 0)
    point = vm["points"][0]
    view = open_view([[fixtures.datastore("vmware") / f for f in disk] for disk in point["disks"]])
    yield view
    view.close()


def _entries() -> list[Entry]:
    out = []
    for i, name in enumerate(NAMES):
        mtime = None if i == 2 else 1_700_000_000_123_000_000 + i * 10**9
        owner = None if i == 3 else "BUILTIN\\Administrators"
        out.append(Entry(name, False, i * 1000, mtime, owner))
    out.append(Entry("folder", True, 0, None, None))
    return out


def _listings(view: GuestView) -> list[Listing]:
    mount = SimpleNamespace(
        family="replica", point_id="0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", mount_id=3, view=view
    )
    out = []
    for path in ("C:/Data", "C:/"):
        out.append(Listing("https://flr.example:9398/api", mount, view.locate(path)))  # type: ignore[arg-type]
    out.append(Listing("https://flr.example:9398/api", mount, Located(None, [])))  # type: ignore[arg-type]
    return out


def test_file_json_is_what_the_renderer_makes_of_file(windows_view: GuestView) -> None:
    for listing in _listings(windows_view):
        for e in _entries():
            if not e.is_dir:
                want = orjson.dumps(json_object(emtypes.FILE_ENTRY, listing.file(e)))
                assert orjson.dumps(listing.file_json(e)) == want, e.name


def test_a_json_page_is_the_same_bytes_either_way(windows_view: GuestView) -> None:
    for listing in _listings(windows_view):
        pages = []
        for fast in (False, True):
            files, dirs = listing.split(_entries(), json=fast)
            assert isinstance(files, JsonItems) is fast
            value = {"Href": "x", "Links": [listing.parent_link()], "Files": files, "Directories": dirs}
            pages.append(json_document(emtypes.FILE_SYSTEM_ENTRIES, value))
        assert pages[0] == pages[1]


def test_json_ready_items_are_refused_by_xml(windows_view: GuestView) -> None:
    listing = _listings(windows_view)[0]
    files, dirs = listing.split(_entries(), json=True)
    with pytest.raises(TypeError):
        xml_document(emtypes.FILE_SYSTEM_ENTRIES, {"Href": "x", "Files": files, "Directories": dirs})


_NAMES = st.text(min_size=1, max_size=40).filter(lambda s: "/" not in s) | st.sampled_from(
    ['quote"d', "back\\slash", "tab\there", "nul\x00", "lone\ud800surrogate", "émoji 😀", "a" * 300]
)


@given(_NAMES, st.one_of(st.none(), st.text(max_size=20)), st.one_of(st.none(), _NS), st.integers(0, 2**63))
def test_file_json_holds_for_any_name_owner_and_time(
    name: str, owner: str | None, mtime: int | None, size: int
) -> None:
    view = SimpleNamespace(path_of=lambda root, parts: "C:/" + "/".join(parts) if root else "")
    mount = SimpleNamespace(family="replica", point_id="p", mount_id=1, view=view)
    where = Located(object(), ['odd "folder"\\'])  # type: ignore[arg-type]
    listing = Listing('https://h"x:1/api', mount, where)  # type: ignore[arg-type]
    e = Entry(name, False, size, mtime, owner)
    want = json_text(json_object(emtypes.FILE_ENTRY, listing.file(e)))  # what any document holds
    assert orjson.dumps(listing.file_json(e)).decode() == want
