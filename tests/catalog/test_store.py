"""The catalog file against the chain's truth: what each point holds, names kept exactly, garbage
collected when points are dropped, and a point's cost in rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pyroaring import BitMap

from openflr.catalog import queries
from openflr.catalog.names import NameMatch
from openflr.catalog.store import CatalogFile
from openflr.guestfs.filesystems.names import name_from_bytes, name_to_bytes
from tests.catalog.chain import POINTS, WEIRD_DIR, WEIRD_NAMES
from tests.catalog.conftest import Built
from tests.catalog.truth import catalog_row, expected_row


def held(catalog: CatalogFile, point: str) -> dict[str, tuple[str, int, int | None, str | None]]:
    """Everything a point holds, read back through a search with no criteria."""
    return {hit.path: catalog_row(hit.latest) for hit in queries.search(catalog, [point], queries.Criteria())}


@pytest.mark.parametrize("point", POINTS)
def test_each_point_holds_exactly_its_truth(built: Built, point: str) -> None:
    got = held(built.catalog, built.ids[point])
    want = {path: expected_row(item) for path, item in built.chain.truth(point).items()}
    assert sorted(set(want) - set(got)) == []
    assert sorted(set(got) - set(want)) == []
    assert {p: got[p] for p in want if got[p] != want[p]} == {}


@pytest.mark.parametrize("point", POINTS)
def test_each_point_has_its_bitmap_and_entry_count(built: Built, point: str) -> None:
    record = built.catalog.point(built.ids[point])
    assert record is not None and record.state == "Ready"
    assert record.entries == len(built.chain.truth(point))
    members = built.catalog.members(built.ids[point])
    assert members is not None and len(members) == len(built.chain.truth(point))


def test_every_escaped_name_is_stored_and_returned_as_the_engine_shows_it(built: Built) -> None:
    catalog, p1 = built.catalog, built.ids["p1"]
    for raw in [*WEIRD_NAMES, WEIRD_DIR, WEIRD_DIR + b"/inner.txt"]:
        shown = "/srv/" + "/".join(name_from_bytes(part) for part in raw.split(b"/"))
        assert name_to_bytes(shown.rsplit("/", 1)[1]) == raw.rsplit(b"/", 1)[-1]
        path_id = catalog.path_id(shown)
        assert path_id is not None, shown
        (version,) = catalog.versions_of_path(path_id)
        assert (version.path, version.name) == (shown, shown.rsplit("/", 1)[1])
        exact = queries.search(catalog, [p1], queries.Criteria(name=version.name, match=NameMatch.EXACT))
        assert [h.path for h in exact] == [shown]


def test_escapes_are_distinct_names(built: Built) -> None:
    """NFC and NFD spellings of one word are two files; an escaped private-use character is not the
    character itself."""
    catalog = built.catalog
    assert catalog.path_id("/srv/nfc-caf\u00e9.txt") is not None
    assert catalog.path_id("/srv/nfd-cafe\u0301-e\u0308.txt") is not None
    assert catalog.path_id("/srv/nfc-cafe\u0301.txt") is None
    assert catalog.path_id("/srv/pua-\uef41\uefff-escape.txt") is None  # stored escaped, byte by byte
    escaped = name_from_bytes("pua-\uef41\uefff-escape.txt".encode())
    assert catalog.path_id("/srv/" + escaped) is not None


def test_a_changed_point_costs_far_fewer_rows_than_a_copy(built: Built) -> None:
    catalog = built.catalog
    seen = BitMap()
    added = {}
    for point in POINTS:
        members = catalog.members(built.ids[point])
        assert members is not None
        added[point] = len(members - seen)
        seen |= members
    first = added["p1"]
    assert first == len(built.chain.truth("p1"))
    assert added["p2"] < first * 0.10, added
    assert added["p3"] < first * 0.10, added  # 1% of the files changed
    assert added["p5"] == 0, added  # a damaged folder only takes rows away
    with catalog.cursor() as cur:
        (rows,) = cur.execute("SELECT count(*) FROM versions").fetchone()
    assert rows == len(seen)  # every row is held by some point: nothing stored twice or left over


def test_dropping_a_point_collects_what_only_it_held(own: Built) -> None:
    catalog = own.catalog
    p1 = own.ids["p1"]
    others = [own.ids[p] for p in POINTS if p != "p1"]
    before = {pid: held(catalog, pid) for pid in others}
    rest = BitMap()
    for pid in others:
        rest |= catalog.members(pid) or BitMap()
    only_p1 = (catalog.members(p1) or BitMap()) - rest
    assert len(only_p1) >= 4  # the renamed file and folder's old paths, p1's /home/bob, ...
    assert catalog.path_id("/srv/app/rename-me.txt") is not None

    assert catalog.drop_points([p1]) == 1

    assert catalog.versions_by_id(only_p1) == []
    for gone in ("/srv/app/rename-me.txt", "/srv/app/old-name", "/srv/app/old-name/config.ini"):
        assert catalog.path_id(gone) is None, gone
    with catalog.cursor() as cur:
        (rows,) = cur.execute("SELECT count(*) FROM versions").fetchone()
        (orphans,) = cur.execute(
            "SELECT count(*) FROM paths WHERE id NOT IN (SELECT path FROM versions) "
            "AND id NOT IN (SELECT parent FROM paths)"
        ).fetchone()
    assert rows == len(rest)
    assert orphans == 0
    assert {pid: held(catalog, pid) for pid in others} == before
    assert catalog.point(p1) is None
    assert queries.search(catalog, [p1], queries.Criteria()) == []


@pytest.mark.parametrize("point", POINTS)
def test_file_ids_follow_the_inodes_of_the_truth(built: Built, point: str) -> None:
    """On the root volume, paths of one hard-link group share a file id and no two groups do."""
    versions = {
        h.path: h.latest for h in queries.search(built.catalog, [built.ids[point]], queries.Criteria())
    }
    by_group: dict[str, set[int | None]] = {}
    for path, item in built.chain.truth(point).items():
        if item.kind == "File" and not path.startswith(("/boot/efi/", "/data/")):
            by_group.setdefault(item.group or "", set()).add(versions[path].ident)
    assert all(len(ids) == 1 and None not in ids for ids in by_group.values())
    assert len({next(iter(ids)) for ids in by_group.values()}) == len(by_group)


def test_escaped_characters_can_be_searched_for(built: Built) -> None:
    p1 = built.ids["p1"]
    newline, bad_byte = chr(0xEF00 + 0x0A), chr(0xEF00 + 0xFF)
    for term, want in ((newline, "ctl-"), (bad_byte, "bad-"), ("\u202e", "rtl-"), ("\U0001f9d1", "emoji-")):
        hits = queries.search(built.catalog, [p1], queries.Criteria(name=term))
        assert [h.name[:4] for h in hits] == [want[:4]], term
    glob = queries.search(built.catalog, [p1], queries.Criteria(name=f"*{newline}.txt", match=NameMatch.GLOB))
    assert [h.path for h in glob] == ["/srv/" + name_from_bytes(WEIRD_NAMES[1])]


def test_a_file_of_another_schema_is_emptied_to_be_built_again(tmp_path: Path) -> None:
    path = tmp_path / "old.catalog.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('schema', '1');"
        "CREATE TABLE points (id TEXT PRIMARY KEY, created TEXT NOT NULL, state TEXT NOT NULL);"
        "INSERT INTO points VALUES ('p', '2026-01-01', 'Ready');"
    )
    old.close()
    catalog = CatalogFile(path)
    try:
        assert catalog.points() == []  # the old point is forgotten: the builder queues it afresh
        catalog.queue("p", "2026-01-01")
        assert [p.state for p in catalog.points()] == ["Queued"]
    finally:
        catalog.close()
    again = CatalogFile(path)  # the current schema is kept as it is
    try:
        assert [p.id for p in again.points()] == ["p"]
    finally:
        again.close()
