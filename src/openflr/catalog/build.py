"""Building one point's catalog: walk every root of the opened point and record what it holds.

Runs in a worker process of its own (``python -m openflr.catalog.build``, started by
``builder.py``), at a lower priority than the server: the walk is CPU-bound and the server's event
loop must not wait behind it. The worker opens the point from its image files as a mount does,
walks it folder by folder and writes into the VM's catalog file:

- for each folder, the versions already catalogued for its children (by any point) are read in one
  query; an item whose type, size, time, owner and file number match one of them is that version,
  so only what changed since an earlier point adds rows;
- the point's bitmap of version ids is written last, with the state ``Ready``: a build cut short
  (a crash, a restart) leaves rows no point holds, which the next build reuses or ``collect_garbage``
  removes, and the point is built again.

A folder that cannot be read is skipped and named in the point's notes; the rest is catalogued.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import queue
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pyroaring import BitMap

from openflr.catalog.store import INDEXES, SCHEMA, Kind, PointState, connect
from openflr.errors import OpenflrError
from openflr.guestfs.errors import ImageError, VolumeError
from openflr.guestfs.filesystems.base import Entry, FileSystem, Node
from openflr.guestfs.view import GuestView, open_view

log = logging.getLogger(__name__)

PROGRESS_SECONDS = 1.0
"""How often a build records how far it is (and commits what it wrote)."""
MAX_DEPTH = 1024
"""Folders deeper than this are skipped (a damaged file system can nest without end)."""
NICENESS = 10

Attrs = tuple[int, int, int | None, int | None, int | None]
FILE, DIR, LINK = int(Kind.FILE), int(Kind.DIR), int(Kind.LINK)
"""What makes a version: kind, size, mtime_ns, owner id, file number."""


@dataclass
class Progress:
    entries: int = 0
    notes: list[str] = field(default_factory=list)


class PointWriter:
    """Writes one point's items into a catalog file, reusing the versions earlier points recorded."""

    def __init__(self, conn: sqlite3.Connection, point_id: str) -> None:
        self.conn = conn
        self.point_id = point_id
        self.members = BitMap()
        self.progress = Progress()
        cur = conn.cursor()
        self._next_path = (cur.execute("SELECT max(id) FROM paths").fetchone()[0] or 0) + 1
        self._next_version = (cur.execute("SELECT max(id) FROM versions").fetchone()[0] or 0) + 1
        self._owners: dict[str, int] = dict(cur.execute("SELECT name, id FROM owners").fetchall())
        self._new_paths: list[tuple[int, int, str, str | None, str | None]] = []
        self._new_versions: list[tuple[int, int, int, int, int | None, int | None, int | None]] = []
        self._writes: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=8)
        self._writer: threading.Thread | None = None
        self._write_error: BaseException | None = None
        self._new_owners: list[tuple[int, str]] = []
        self._created: set[int] = set()
        """Paths made by this build: their children cannot be in the file yet."""
        self.folders: dict[str, int] = {}
        """Path ids of the folders this point holds, by path."""
        self._last_commit = time.monotonic()
        self._bulk = self._next_path == 1 and self._next_version == 1
        """The file's first point: its indexes are built once at the end, faster than row by row
        (nothing reads them meanwhile: no point of the file is ready yet)."""
        if self._bulk:
            for index in INDEXES:
                conn.execute(f"DROP INDEX IF EXISTS {index}")
            conn.commit()

    def _owner(self, name: str | None) -> int | None:
        if name is None:
            return None
        found = self._owners.get(name)
        if found is None:
            found = len(self._owners) + 1 + max(self._owners.values(), default=0)
            self._owners[name] = found
            self._new_owners.append((found, name))
        return found

    def folder(
        self,
        parent_id: int,
        parent_path: str,
        entries: list[Entry],
        case_sensitive: bool,
        *,
        drive: bool = False,
    ) -> list[tuple[int, str, Entry]]:
        """Record the entries of one folder; returns (path id, path, entry) of its subfolders.
        ``drive``: the entries are drive roots (``C:``), whose paths are their names."""
        known: dict[str, tuple[int, dict[Attrs, int]]] = {}
        if parent_id not in self._created:
            self.sync()
            for pid, name, vid, kind, size, mtime, owner, ident in self.conn.execute(
                "SELECT p.id, p.name, v.id, v.kind, v.size, v.mtime, v.owner, v.ident "
                "FROM paths p LEFT JOIN versions v ON v.path = p.id WHERE p.parent = ?",
                (parent_id,),
            ):
                seen = known.setdefault(name, (pid, {}))
                if vid is not None:
                    seen[1][(kind, size, mtime, owner, ident)] = vid
        subfolders: list[tuple[int, str, Entry]] = []
        prefix = "" if drive else parent_path + "/"
        held: list[int] = []
        fresh: set[str] = set()
        """Names this call added: a damaged folder may list a name twice."""
        new_paths, new_versions, created, folders = (
            self._new_paths,
            self._new_versions,
            self._created,
            self.folders,
        )
        next_path, next_version = self._next_path, self._next_version
        owner_of, last_owner_id = self._owner, None
        last_owner: object = held  # no owner is this list: the first entry looks its owner up
        for entry in entries:
            name = entry.name
            kind = LINK if entry.is_link else DIR if entry.is_dir else FILE
            owner = entry.owner
            if owner is not last_owner and owner != last_owner:
                last_owner, last_owner_id = owner, owner_of(owner)
            slot = known.get(name) if known else None
            if slot is None:
                if name in fresh:
                    self.progress.notes.append(f"{prefix}{name} was skipped: its folder lists it twice")
                    continue
                fresh.add(name)
                pid, vid = next_path, next_version
                next_path += 1
                next_version += 1
                fold = None if case_sensitive else name.casefold()
                # store.py: only folders and top-level items keep their path text
                path = prefix + name if kind == DIR or not parent_id else None
                new_paths.append((pid, parent_id, name, fold, path))
                new_versions.append((vid, pid, kind, entry.size, entry.mtime_ns, last_owner_id, entry.ident))
                if kind == DIR:
                    created.add(pid)
            else:
                path = prefix + name if kind == DIR else None
                attrs: Attrs = (kind, entry.size, entry.mtime_ns, last_owner_id, entry.ident)
                pid, versions = slot
                found = versions.get(attrs)
                if found is None:
                    vid = next_version
                    next_version += 1
                    versions[attrs] = vid
                    new_versions.append((vid, pid, *attrs))
                else:
                    vid = found
            held.append(vid)
            if path is not None and kind == DIR:
                folders[path] = pid
                subfolders.append((pid, path, entry))
        self._next_path, self._next_version = next_path, next_version
        self.members.update(held)
        self.progress.entries += len(held)
        if time.monotonic() - self._last_commit > PROGRESS_SECONDS:
            self.commit()
        return subfolders

    def top(self, name: str, path: str) -> int:
        """The path id of a top-level item (a drive root ``C:``, or a Linux mount point's folder),
        recorded as a folder of this point when it is not already one."""
        if path in self.folders:
            return self.folders[path]
        entry = Entry(name, True, 0, None, None)
        parent_path, _, _ = path.rpartition("/")
        parent_id = self.path_id_of(parent_path) if parent_path else 0
        drive = not path.startswith("/")
        # Drive letters ignore case in every guest that has them (``c:/x`` is ``C:/x``).
        for pid, shown, _entry in self.folder(parent_id, parent_path, [entry], not drive, drive=drive):
            if shown == path:
                return pid
        raise AssertionError("unreachable: a folder entry always comes back")

    def path_id_of(self, path: str) -> int:
        self.sync()
        row = self.conn.execute("SELECT id FROM paths WHERE path = ?", (path,)).fetchone()
        if row is None:
            raise LookupError(path)
        return int(row[0])

    def _flush(self) -> None:
        """Hand what was gathered to the writer thread (SQLite runs without the interpreter lock, so
        the walk goes on meanwhile)."""
        owners, paths, versions = self._new_owners, self._new_paths, self._new_versions
        if not (owners or paths or versions):
            return
        self._new_owners, self._new_paths, self._new_versions = [], [], []
        self._write(lambda: self._insert(owners, paths, versions))

    def _insert(
        self,
        owners: list[tuple[int, str]],
        paths: list[tuple[int, int, str, str | None, str | None]],
        versions: list[tuple[int, int, int, int, int | None, int | None, int | None]],
    ) -> None:
        if owners:
            self.conn.executemany("INSERT INTO owners(id, name) VALUES (?, ?)", owners)
        if paths:
            self.conn.executemany(
                "INSERT INTO paths(id, parent, name, fold, path) VALUES (?, ?, ?, ?, ?)", paths
            )
        if versions:
            self.conn.executemany(
                "INSERT INTO versions(id, path, kind, size, mtime, owner, ident) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                versions,
            )

    def _write(self, job: Callable[[], None]) -> None:
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="catalog-writer", daemon=True)
            self._writer.start()
        self._writes.put(job)

    def _write_loop(self) -> None:
        while True:
            job = self._writes.get()
            try:
                if job is None:
                    return
                if self._write_error is None:
                    job()
            except BaseException as exc:
                self._write_error = exc
            finally:
                self._writes.task_done()

    def sync(self) -> None:
        """Wait until everything handed to the writer is written (before reading the file)."""
        self._flush()
        self._writes.join()
        if self._write_error is not None:
            raise self._write_error

    def close(self) -> None:
        if self._writer is not None:
            self._writes.put(None)
            self._writer.join()
            self._writer = None

    def commit(self) -> None:
        entries = self.progress.entries

        def job() -> None:
            self.conn.execute("UPDATE points SET entries = ? WHERE id = ?", (entries, self.point_id))
            self.conn.commit()

        self._flush()
        self._write(job)
        self._last_commit = time.monotonic()

    def finish(self) -> None:
        self.sync()
        self.close()
        if self._bulk:
            self.conn.commit()
            self.conn.executescript(SCHEMA)  # the indexes dropped at the start
        self.members.run_optimize()
        self.conn.execute(
            "UPDATE points SET state = ?, entries = ?, finished = ?, members = ?, notes = ?, message = '' "
            "WHERE id = ?",
            (
                PointState.READY,
                self.progress.entries,
                time.time(),
                self.members.serialize(),
                "\n".join(self.progress.notes),
                self.point_id,
            ),
        )
        self.conn.commit()


def catalogue(view: GuestView, writer: PointWriter) -> None:
    """Walk every root of ``view`` into ``writer`` (drive roots first, then the Linux tree from ``/``
    down, each mounted file system below the folder it is mounted on)."""
    writer.progress.notes += view.notes
    roots = sorted(view.roots, key=lambda r: (r.mount is not None, len(r.mount or ()), r.name))
    mounts = {r.mount for r in roots if r.mount}
    for root in roots:
        path = view.path_of(root, [])
        if root.fs is None:
            writer.progress.notes.append(f"{root.name} was not catalogued: {root.problem}")
            continue
        if root.mount is None:
            top_id = writer.top(root.name, path)
        elif root.mount == ():
            top_id, path = 0, ""
        else:
            for depth in range(1, len(root.mount)):  # folders a mount point sits in, if missing
                writer.top(root.mount[depth - 1], "/" + "/".join(root.mount[:depth]))
            top_id = writer.top(root.mount[-1], path)
        skip = {"/" + "/".join(m) for m in mounts if m != root.mount} if root.mount is not None else set()
        _walk(root.fs, root.fs.root(), top_id, path, writer, skip)


def _walk(fs: FileSystem, top: Node, top_id: int, top_path: str, writer: PointWriter, skip: set[str]) -> None:
    stack: list[tuple[int, str, Node, int]] = [(top_id, top_path, top, 0)]
    seen: set[int] = set()
    while stack:
        pid, path, node, depth = stack.pop()
        try:
            entries = list(fs.scandir(node))
        except (OpenflrError, OSError, ValueError, IndexError, KeyError, OverflowError) as exc:
            writer.progress.notes.append(f"{path or '/'} was skipped: {_reason(exc)}")
            continue
        for child_id, child_path, entry in writer.folder(pid, path, entries, fs.case_sensitive):
            if child_path in skip:
                continue  # another file system is mounted here: its own walk records what is below
            if depth + 1 >= MAX_DEPTH:
                writer.progress.notes.append(
                    f"{child_path} was skipped: folders nest deeper than {MAX_DEPTH}"
                )
                continue
            if entry.ident is not None:
                if entry.ident in seen:
                    writer.progress.notes.append(f"{child_path} was skipped: it is a folder already listed")
                    continue
                seen.add(entry.ident)
            child = entry.node
            if child is None:
                child = fs.lookup([p for p in child_path.split("/") if p][_depth_of(top_path) :])
                if child is None:
                    writer.progress.notes.append(f"{child_path} was skipped: it cannot be opened")
                    continue
            stack.append((child_id, child_path, child, depth + 1))


def _depth_of(path: str) -> int:
    return len([p for p in path.split("/") if p])


def _reason(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(message).splitlines()[0][:300]


def build_point(catalog_file: Path, point_id: str, disks: list[list[str]], os_hint: str) -> int:
    """Open a point and write its catalog; returns the number of entries. The point's row must exist."""
    conn = connect(catalog_file)
    try:
        prev = conn.execute(
            "SELECT entries FROM points WHERE state = ? ORDER BY finished DESC LIMIT 1", (PointState.READY,)
        ).fetchone()
        conn.execute(
            "UPDATE points SET state = ?, started = ?, entries = 0, total = ?, message = '', members = NULL "
            "WHERE id = ?",
            (PointState.BUILDING, time.time(), prev[0] if prev else None, point_id),
        )
        conn.commit()
        try:
            view = open_view([[Path(f) for f in files] for files in disks], os_hint)
        except (ImageError, VolumeError, OpenflrError, OSError) as exc:
            _fail(conn, point_id, f"The point cannot be opened: {_reason(exc)}")
            return 0
        try:
            writer = PointWriter(conn, point_id)
            try:
                catalogue(view, writer)
                writer.finish()
            except (ImageError, VolumeError, OpenflrError, OSError) as exc:
                # the disks themselves failed mid-walk (a folder's own damage is skipped, not this)
                writer.close()
                _fail(conn, point_id, f"The point could not be read to the end: {_reason(exc)}")
                return 0
            finally:
                writer.close()
            return writer.progress.entries
        finally:
            view.close()
    finally:
        conn.close()


def _fail(conn: sqlite3.Connection, point_id: str, message: str) -> None:
    conn.rollback()
    conn.execute(
        "UPDATE points SET state = ?, finished = ?, message = ?, members = NULL WHERE id = ?",
        (PointState.FAILED, time.time(), message, point_id),
    )
    conn.commit()


def walk_entries(view: GuestView) -> Iterator[tuple[str, Entry]]:
    """(path, entry) of everything a point holds, in the order the catalog walks it: the engine's own
    walk, without the catalog (the benchmark's baseline)."""
    for root in view.roots:
        if root.fs is None:
            continue
        fs = root.fs
        base = view.path_of(root, []) if root.mount != () else ""
        stack: list[tuple[str, Node]] = [(base, fs.root())]
        while stack:
            path, node = stack.pop()
            for entry in fs.scandir(node):
                child = path + "/" + entry.name
                yield child, entry
                if entry.is_dir and not entry.is_link and entry.node is not None:
                    stack.append((child, entry.node))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m openflr.catalog.build")
    parser.add_argument("catalog_file", type=Path)
    parser.add_argument("point_id")
    parser.add_argument("job", help="JSON: {'disks': [[file, ...], ...], 'os': hint}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with contextlib.suppress(OSError):
        os.nice(NICENESS)  # the server's requests come first where cores are short
    job = json.loads(args.job)
    try:
        build_point(args.catalog_file, args.point_id, job["disks"], job.get("os", ""))
    except Exception as exc:  # a bug or an engine crash on a hostile image: the point fails, says why
        log.exception("building the catalog of %s failed", args.point_id)
        conn = connect(args.catalog_file)
        try:
            _fail(
                conn, args.point_id, f"The catalog could not be built: internal error ({type(exc).__name__})."
            )
        finally:
            conn.close()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
