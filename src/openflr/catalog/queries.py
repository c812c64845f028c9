"""Search, versions of a path and the difference between two points, over one VM's catalog file.

Every query takes the points it may look at, oldest first (the caller has already applied the
user's scope and left out points that are not ready). Matching rows come from SQLite; which points
hold each row comes from the points' bitmaps, so a query over 20 points reads each matching row once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from pyroaring import BitMap

from openflr.catalog.names import NameMatch
from openflr.catalog.store import CatalogFile, Kind, Version
from openflr.errors import BadRequestError


@dataclass(frozen=True)
class Criteria:
    """What a search looks for; every field left out matches everything."""

    name: str = ""
    match: NameMatch = NameMatch.SUBSTRING
    under: str = ""
    """A folder's path: only items below it."""
    min_size: int | None = None
    max_size: int | None = None
    modified_after: int | None = None
    """Nanoseconds since the epoch, inclusive."""
    modified_before: int | None = None
    """Nanoseconds since the epoch, exclusive."""
    kinds: frozenset[Kind] = frozenset()
    owner: str = ""

    def __post_init__(self) -> None:
        if "\0" in self.name or "\0" in self.under or "\0" in self.owner:
            raise BadRequestError("A search term contains a NUL character.")
        if len(self.name) > 1024 or len(self.under) > 32768 or len(self.owner) > 1024:
            raise BadRequestError("A search term is too long.")


NAMED_IN_MEMORY = 20_000
"""Up to this many name matches, their rows are read by path id; above it, by one scan in SQL."""


@dataclass
class Hit:
    """A path that matched, with each point that holds a matching version of it (oldest first)."""

    path: str
    name: str
    kind: Kind
    points: list[tuple[str, Version]] = field(default_factory=list)

    @property
    def latest(self) -> Version:
        return self.points[-1][1]


def _name_condition(criteria: Criteria) -> tuple[str, list[object]]:
    name = criteria.name
    if not name:
        return "", []
    folded = name.casefold()
    if criteria.match is NameMatch.GLOB:
        return "(CASE WHEN p.fold IS NULL THEN p.name GLOB ? ELSE p.fold GLOB ? END)", [name, folded]
    if criteria.match is NameMatch.EXACT:
        return "(CASE WHEN p.fold IS NULL THEN p.name = ? ELSE p.fold = ? END)", [name, folded]
    return "(CASE WHEN p.fold IS NULL THEN instr(p.name, ?) ELSE instr(p.fold, ?) END) > 0", [name, folded]


def _catalogued(catalog: CatalogFile, folder: str) -> str | None:
    """A folder's path as catalogued (the file system's own case), or None if never catalogued."""
    path_id = catalog.path_id(folder.rstrip("/") if folder != "/" else folder)
    if path_id is None:
        return None
    with catalog.cursor() as cur:
        (canonical,) = cur.execute("SELECT path FROM paths WHERE id = ?", (path_id,)).fetchone()
    return None if canonical is None else str(canonical)  # a file keeps no path text: nothing is below it


def under_condition(catalog: CatalogFile, under: str) -> tuple[str, list[object]] | None:
    """The SQL condition for ``p.path`` below a folder, or None when the folder was never catalogued."""
    if not under.strip("/"):
        return "1", []
    canonical = _catalogued(catalog, under)
    if canonical is None:
        return None
    low, high = canonical + "/", canonical + "0"
    return (
        "((p.path > ? AND p.path < ?) OR (p.path IS NULL AND (d.path = ? OR (d.path > ? AND d.path < ?))))",
        [low, high, canonical, low, high],
    )


def search(catalog: CatalogFile, points: Sequence[str], criteria: Criteria) -> list[Hit]:
    """Every path with a version matching ``criteria`` in one of ``points``, sorted by path."""
    held = [(pid, bm) for pid in points if (bm := catalog.members(pid)) is not None]
    if not held:
        return []
    conditions: list[str] = []
    params: list[object] = []
    named: list[int] | None = None
    if criteria.name:
        named = catalog.names_matching(criteria.name, criteria.match)
        if not named:
            return []
        if len(named) > NAMED_IN_MEMORY:  # a broad name: one scan beats many lookups
            named = None
            name_sql, name_params = _name_condition(criteria)
            conditions.append(name_sql)
            params += name_params
    if criteria.under:
        under = under_condition(catalog, criteria.under)
        if under is None:
            return []
        conditions.append(under[0])
        params += under[1]
    for sql, value in (
        ("v.size >= ?", criteria.min_size),
        ("v.size <= ?", criteria.max_size),
        ("v.mtime >= ?", criteria.modified_after),
        ("v.mtime < ?", criteria.modified_before),
    ):
        if value is not None:
            conditions.append(sql)
            params.append(value)
    if criteria.kinds:
        conditions.append(f"v.kind IN ({','.join(str(int(k)) for k in criteria.kinds)})")
    if criteria.owner:
        conditions.append("o.name = ? COLLATE NOCASE")
        params.append(criteria.owner)
    where = " AND ".join(conditions) or "1"
    rows = (
        catalog.select_versions(where, params)
        if named is None
        else catalog.select_versions_of_paths(named, where, params)
    )
    hits: dict[int, Hit] = {}
    for version in rows:
        holders = [pid for pid, bm in held if version.id in bm]
        if not holders:
            continue
        hit = hits.get(version.path_id)
        if hit is None:
            hit = hits[version.path_id] = Hit(version.path, version.name, version.kind)
        hit.points += [(pid, version) for pid in holders]
    order = {pid: i for i, (pid, _bm) in enumerate(held)}
    for hit in hits.values():
        hit.points.sort(key=lambda pv: order[pv[0]])
    return sorted(hits.values(), key=lambda h: h.path)


class Change(StrEnum):
    ADDED = "Added"
    REMOVED = "Removed"
    MODIFIED = "Modified"
    """Its content changed (size, time, or its sha256 where both are known)."""
    METADATA = "MetadataChanged"
    """Only its owner, file number or type changed."""
    SAME = "Unchanged"


class Comparable(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def mtime_ns(self) -> int | None: ...
    @property
    def owner(self) -> object: ...
    @property
    def ident(self) -> int | None: ...
    @property
    def sha256(self) -> bytes | None: ...


def compare(before: Comparable | None, after: Comparable | None) -> Change:
    """How one path differs between two of its versions (None: not there)."""
    if before is None:
        return Change.SAME if after is None else Change.ADDED
    if after is None:
        return Change.REMOVED
    if before.id == after.id:
        return Change.SAME
    if before.sha256 is not None and after.sha256 is not None and before.kind == after.kind:
        if before.sha256 != after.sha256:
            return Change.MODIFIED
        return Change.METADATA if (before.owner, before.ident) != (after.owner, after.ident) else Change.SAME
    if (before.kind, before.size, before.mtime_ns) != (after.kind, after.size, after.mtime_ns):
        return Change.MODIFIED
    return Change.METADATA


@dataclass(frozen=True)
class Difference:
    path: str
    change: Change
    before: Version | None
    after: Version | None

    @property
    def kind(self) -> Kind:
        shown = self.after or self.before
        assert shown is not None
        return shown.kind


def diff(catalog: CatalogFile, point_a: str, point_b: str, under: str = "") -> Iterator[Difference]:
    """What changed from ``point_a`` to ``point_b`` (below ``under``), sorted by path. Reads only the
    versions one point holds and the other does not."""
    a, b = catalog.members(point_a), catalog.members(point_b)
    if a is None or b is None:
        raise ValueError("both points must be catalogued")
    return iter(_differences(catalog, a, b, under))


def _differences(catalog: CatalogFile, a: BitMap, b: BitMap, under: str) -> list[Difference]:
    below: BitMap | None = None
    if under.strip("/"):
        folder = _catalogued(catalog, under)
        if folder is None:
            return []
        below = catalog.version_ids_below(folder)
    before: dict[int, Version] = {}
    after: dict[int, Version] = {}
    for side, ids in ((before, a - b), (after, b - a)):
        for version in catalog.versions_by_id(ids if below is None else ids & below):
            side[version.path_id] = version
    out = [
        Difference(version.path, compare(before.get(pid), after.get(pid)), before.get(pid), after.get(pid))
        for pid, version in {**before, **after}.items()
    ]
    return sorted((d for d in out if d.change is not Change.SAME), key=lambda d: d.path)


@dataclass(frozen=True)
class PathVersion:
    """A path in one point: its version there, and how it differs from the point before."""

    point: str
    version: Version
    change: Change
    summary: dict[Change, int] | None = None
    """For a folder: how many items below it were added, removed, modified since the point before."""


def versions(
    catalog: CatalogFile, points: Sequence[str], path: str, *, summarise: bool = True
) -> list[PathVersion] | None:
    """Every point (of ``points``, oldest first) that holds ``path``; None when no point ever did."""
    path_id = catalog.path_id(path)
    if path_id is None:
        return None
    candidates = catalog.versions_of_path(path_id)
    out: list[PathVersion] = []
    previous: Version | None = None
    previous_point: str | None = None
    below: BitMap | None = None
    for pid in points:
        members = catalog.members(pid)
        if members is None:
            continue
        held = next((v for v in candidates if v.id in members), None)
        if held is None:
            previous, previous_point = None, pid
            continue
        summary = None
        if summarise and held.kind is Kind.DIR and previous_point is not None:
            before = catalog.members(previous_point)
            if before is not None:
                if below is None:
                    below = catalog.version_ids_below(held.path)
                summary = _summary(catalog, before, members, below)
        out.append(PathVersion(pid, held, compare(previous, held), summary))
        previous, previous_point = held, pid
    return out


def _summary(catalog: CatalogFile, before: BitMap, after: BitMap, below: BitMap) -> dict[Change, int]:
    """How many items below a folder were added, removed, modified from one point to the next: reads
    only the facts of the versions below it that one point holds and the other does not."""
    gone = {f.path_id: f for f in catalog.facts_by_id((before - after) & below)}
    came = {f.path_id: f for f in catalog.facts_by_id((after - before) & below)}
    counts = dict.fromkeys((Change.ADDED, Change.REMOVED, Change.MODIFIED, Change.METADATA), 0)
    for path_id in gone.keys() | came.keys():
        change = compare(gone.get(path_id), came.get(path_id))
        if change is not Change.SAME:
            counts[change] += 1
    return counts
