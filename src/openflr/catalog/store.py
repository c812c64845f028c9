"""One VM's catalog file: SQLite, with every distinct item version once and each point as a bitmap.

Tables (docs/CATALOG.md, "Storage"):

- ``paths``: every path ever seen in the VM's points, as a tree (``parent``, ``name``). Folders and
  top-level items also keep their full path text (``path``), for prefix searches; a file's path is
  its folder's and its name (most rows are files: their text would double the file's size). ``fold``
  is the case-folded name where the file system ignores case (NTFS, FAT), NULL where it does not.
- ``versions``: one row per distinct (path, type, size, time, owner, file number); an item that did
  not change between points is the same row in both. ``sha256`` is filled when asked for.
- ``points``: each point's state and progress, and ``members``, the portable serialisation of a
  Roaring bitmap of the version ids it holds. Unchanged items keep their ids, so a point's bitmap
  is mostly long runs and costs bytes per change, not per file.

Writers are one builder process per file at a time (``builder.py``) and the server, which only
adds hashes; SQLite's WAL lets searches read while a build writes.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from pyroaring import BitMap

from openflr.catalog.names import NameIndex, NameMatch

SCHEMA_VERSION = "3"
"""A catalog file of another schema is emptied and built again: it only holds what the points do."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS owners (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS paths (
    id INTEGER PRIMARY KEY, parent INTEGER NOT NULL, name TEXT NOT NULL, fold TEXT, path TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS paths_child ON paths(parent, name);
CREATE INDEX IF NOT EXISTS paths_path ON paths(path) WHERE path IS NOT NULL;
CREATE TABLE IF NOT EXISTS versions (
    id INTEGER PRIMARY KEY, path INTEGER NOT NULL, kind INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime INTEGER, owner INTEGER, ident INTEGER, sha256 BLOB
);
CREATE INDEX IF NOT EXISTS versions_path ON versions(path);
CREATE TABLE IF NOT EXISTS points (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, state TEXT NOT NULL, entries INTEGER NOT NULL DEFAULT 0,
    total INTEGER, started REAL, finished REAL, message TEXT NOT NULL DEFAULT '',
    notes TEXT NOT NULL DEFAULT '', members BLOB
);
"""


INDEXES = ("paths_child", "paths_path", "versions_path")
"""The indexes of SCHEMA (a file's first build drops them and SCHEMA makes them again)."""


class Kind(IntEnum):
    FILE = 0
    DIR = 1
    LINK = 2

    @property
    def label(self) -> str:
        return ("File", "Directory", "Link")[self]


class PointState:
    """A point's catalog state, as stored and shown."""

    QUEUED = "Queued"
    BUILDING = "Building"
    READY = "Ready"
    FAILED = "Failed"


@dataclass(frozen=True, slots=True)
class Version:
    """One version of an item, as catalogued."""

    id: int
    path_id: int
    path: str
    name: str
    kind: Kind
    size: int
    mtime_ns: int | None
    owner: str | None
    ident: int | None
    sha256: bytes | None


@dataclass(frozen=True, slots=True)
class Facts:
    """What ``compare`` needs of a version, read without its path and owner's name (for counts)."""

    id: int
    path_id: int
    kind: int
    size: int
    mtime_ns: int | None
    owner: int | None
    ident: int | None
    sha256: bytes | None


@dataclass(frozen=True, slots=True)
class PointRecord:
    id: str
    created: str
    state: str
    entries: int
    total: int | None
    started: float | None
    finished: float | None
    message: str
    notes: str


_VERSION_COLUMNS = (
    "v.id, v.path, coalesce(p.path, d.path || '/' || p.name), p.name, v.kind, v.size, v.mtime, o.name, "
    "v.ident, v.sha256 FROM versions v JOIN paths p ON p.id = v.path LEFT JOIN paths d ON d.id = p.parent "
    "LEFT JOIN owners o ON o.id = v.owner"
)
"""A version with its path: a file's is its folder's path and its name (``d`` is the folder)."""


def _version(row: Sequence[object]) -> Version:
    return Version(
        row[0],  # type: ignore[arg-type]
        row[1],  # type: ignore[arg-type]
        row[2],  # type: ignore[arg-type]
        row[3],  # type: ignore[arg-type]
        Kind(int(row[4])),  # type: ignore[call-overload]
        row[5],  # type: ignore[arg-type]
        row[6],  # type: ignore[arg-type]
        row[7],  # type: ignore[arg-type]
        row[8],  # type: ignore[arg-type]
        row[9],  # type: ignore[arg-type]
    )


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection to a catalog file (created, with its schema, unless ``readonly``)."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=30)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        _clear_other_schema(conn)
        conn.executescript(SCHEMA)
        conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
        conn.commit()
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA cache_size=-65536")
    return conn


def _clear_other_schema(conn: sqlite3.Connection) -> None:
    """Empty a catalog file written by another schema version (its points are built again)."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "meta" not in tables:
        return
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if row is not None and row[0] == SCHEMA_VERSION:
        return
    for table in tables:
        conn.execute(f'DROP TABLE IF EXISTS "{table}"')
    conn.commit()


class CatalogFile:
    """Reading (and the server's few writes) of one VM's catalog file; thread-safe.

    Point bitmaps are kept in memory once read: a finished point never changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path)
        self._lock = threading.Lock()
        self._members: dict[str, BitMap] = {}
        self._names: NameIndex | None = None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def cursor(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            try:
                yield cur
            finally:
                cur.close()

    # --- points -------------------------------------------------------------------------------------

    def points(self) -> list[PointRecord]:
        with self.cursor() as cur:
            rows = cur.execute(
                "SELECT id, created, state, entries, total, started, finished, message, notes FROM points "
                "ORDER BY created, id"
            ).fetchall()
        return [PointRecord(*row) for row in rows]

    def point(self, point_id: str) -> PointRecord | None:
        with self.cursor() as cur:
            row = cur.execute(
                "SELECT id, created, state, entries, total, started, finished, message, notes FROM points "
                "WHERE id = ?",
                (point_id,),
            ).fetchone()
        return PointRecord(*row) if row else None

    def queue(self, point_id: str, created: str) -> None:
        """Record a point to build (kept as it is when already known)."""
        with self.cursor() as cur:
            cur.execute(
                "INSERT OR IGNORE INTO points(id, created, state) VALUES (?, ?, ?)",
                (point_id, created, PointState.QUEUED),
            )
            self._conn.commit()

    def requeue(self, point_id: str) -> None:
        """Build a point again (after a failure, or one cut short by a restart)."""
        with self.cursor() as cur:
            cur.execute(
                "UPDATE points SET state = ?, entries = 0, total = NULL, started = NULL, finished = NULL, "
                "message = '', members = NULL WHERE id = ?",
                (PointState.QUEUED, point_id),
            )
            self._conn.commit()
        self._members.pop(point_id, None)

    def members(self, point_id: str) -> BitMap | None:
        """The version ids a ready point holds, or None when it is not ready."""
        hit = self._members.get(point_id)
        if hit is not None:
            return hit
        with self.cursor() as cur:
            row = cur.execute(
                "SELECT members FROM points WHERE id = ? AND state = ?", (point_id, PointState.READY)
            ).fetchone()
        if row is None or row[0] is None:
            return None
        bitmap = BitMap.deserialize(row[0])
        self._members[point_id] = bitmap
        return bitmap

    def drop_points(self, point_ids: Iterable[str], *, collect: bool = True) -> int:
        """Forget points, then (``collect``) every version and path no remaining point holds; how
        many were dropped."""
        ids = list(point_ids)
        with self.cursor() as cur:
            for pid in ids:
                cur.execute("DELETE FROM points WHERE id = ?", (pid,))
                self._members.pop(pid, None)
            self._conn.commit()
        if collect:
            self.collect_garbage()
        return len(ids)

    def collect_garbage(self) -> None:
        """Delete versions that no point holds (left by dropped points or builds cut short), then
        paths with no version left. Not while a build of this file runs: its new rows belong to no
        point yet."""
        keep = BitMap()
        with self.cursor() as cur:
            for (blob,) in cur.execute("SELECT members FROM points WHERE members IS NOT NULL"):
                keep |= BitMap.deserialize(blob)
            all_ids = BitMap(r[0] for r in cur.execute("SELECT id FROM versions"))
            doomed = list(all_ids - keep)
            for start in range(0, len(doomed), 500):
                chunk = doomed[start : start + 500]
                cur.execute(f"DELETE FROM versions WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            if doomed:
                self._names = None  # paths go: the name index is read again
                # A folder with no version left loses its last child only in the pass that deletes
                # the child: repeat until a pass deletes nothing (a pass per level of a gone subtree).
                while cur.execute(
                    "DELETE FROM paths WHERE id NOT IN (SELECT path FROM versions) "
                    "AND id NOT IN (SELECT parent FROM paths)"
                ).rowcount:
                    pass
            self._conn.commit()

    # --- versions ------------------------------------------------------------------------------------

    def versions_by_id(self, ids: Iterable[int]) -> list[Version]:
        found: list[Version] = []
        wanted = list(ids)
        with self.cursor() as cur:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = cur.execute(
                    f"SELECT {_VERSION_COLUMNS} WHERE v.id IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
                found += [_version(r) for r in rows]
        return found

    def facts_by_id(self, ids: Iterable[int]) -> list[Facts]:
        found: list[Facts] = []
        wanted = list(ids)
        with self.cursor() as cur:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                found += [
                    Facts(*row)
                    for row in cur.execute(
                        "SELECT id, path, kind, size, mtime, owner, ident, sha256 FROM versions "
                        f"WHERE id IN ({','.join('?' * len(chunk))})",
                        chunk,
                    )
                ]
        return found

    def version_ids_below(self, folder: str) -> BitMap:
        """Ids of every version of every path below a folder (given as catalogued: ``C:/a``, ``/etc``):
        the folders below it by their path text, then the files in it and in them by their parent."""
        low, high = folder + "/", folder + "0"
        with self.cursor() as cur:
            rows = cur.execute(
                "SELECT v.id FROM paths p JOIN versions v ON v.path = p.id WHERE p.path > ? AND p.path < ? "
                "UNION ALL SELECT v.id FROM paths p JOIN versions v ON v.path = p.id WHERE p.path IS NULL "
                "AND p.parent IN (SELECT id FROM paths WHERE path = ? OR (path > ? AND path < ?))",
                (low, high, folder, low, high),
            )
            return BitMap(row[0] for row in rows)

    def versions_of_path(self, path_id: int) -> list[Version]:
        with self.cursor() as cur:
            rows = cur.execute(f"SELECT {_VERSION_COLUMNS} WHERE v.path = ?", (path_id,)).fetchall()
        return [_version(r) for r in rows]

    def select_versions(self, where: str, params: Sequence[object]) -> list[Version]:
        """Versions whose row matches a condition over ``p`` (paths) and ``v`` (versions)."""
        with self.cursor() as cur:
            rows = cur.execute(f"SELECT {_VERSION_COLUMNS} WHERE {where}", params).fetchall()
        return [_version(r) for r in rows]

    def select_versions_of_paths(
        self, path_ids: Sequence[int], where: str, params: Sequence[object]
    ) -> list[Version]:
        """Like ``select_versions``, for the versions of these paths only."""
        found: list[Version] = []
        with self.cursor() as cur:
            for start in range(0, len(path_ids), 500):
                chunk = path_ids[start : start + 500]
                rows = cur.execute(
                    f"SELECT {_VERSION_COLUMNS} WHERE v.path IN ({','.join('?' * len(chunk))}) AND {where}",
                    [*chunk, *params],
                ).fetchall()
                found += [_version(r) for r in rows]
        return found

    def names_matching(self, pattern: str, how: NameMatch) -> list[int]:
        """Ids of the paths whose name matches (names.py: in memory, refreshed with new paths)."""
        with self.cursor() as cur:
            if self._names is None:
                self._names = NameIndex()
            self._names.refresh(cur)
            return self._names.match(pattern, how)

    def path_id(self, path: str) -> int | None:
        """The id of a catalogued path, given as shown (``C:/a/b``, ``/etc/hosts``); names are
        compared without case where the file system ignores case."""
        with self.cursor() as cur:
            row = cur.execute("SELECT id FROM paths WHERE path = ?", (path,)).fetchone()
            if row is not None:  # a folder or a top-level item, spelt as catalogued
                return int(row[0])
            parent = 0
            parts = [p for p in path.split("/") if p]
            for name in parts:
                hit = cur.execute(
                    "SELECT id FROM paths WHERE parent = ? AND name = ?", (parent, name)
                ).fetchone()
                if hit is None:
                    hit = cur.execute(
                        "SELECT id FROM paths WHERE parent = ? AND fold = ?", (parent, name.casefold())
                    ).fetchone()
                if hit is None:
                    return None
                parent = int(hit[0])
            return parent if parts else None

    def set_sha256(self, version_id: int, digest: bytes) -> None:
        with self.cursor() as cur:
            cur.execute("UPDATE versions SET sha256 = ? WHERE id = ?", (digest, version_id))
            self._conn.commit()

    def size_bytes(self) -> int:
        """The catalog file's size on disk, its write-ahead log included."""
        total = 0
        for file in (self.path, self.path.with_name(self.path.name + "-wal")):
            with contextlib.suppress(FileNotFoundError):
                total += file.stat().st_size
        return total


def now() -> float:
    return time.time()
