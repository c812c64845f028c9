"""Building a point: against the kernel's own reading of the same ext4 volumes, a damaged folder, the
engine's walk, and a build cut short in the middle."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from openflr.catalog import queries
from openflr.catalog.build import PointWriter, build_point, catalogue, walk_entries
from openflr.catalog.names import NameMatch
from openflr.catalog.store import CatalogFile, PointState, connect
from openflr.guestfs.filesystems.names import name_from_bytes
from openflr.guestfs.view import open_view
from tests.catalog.chain import DAMAGED, POINTS, USERS
from tests.catalog.conftest import Built
from tests.catalog.truth import catalog_row, expected_row

KernelRow = tuple[str, int, int, int]
"""(type, size, mtime_ns, uid); a folder's size is 0, as the catalog records it."""


@contextlib.contextmanager
def kernel_mount(image: Path) -> Iterator[Path]:
    """``image`` mounted read-only by the kernel (a loop device), or the test skipped saying why."""
    if os.geteuid() != 0:
        pytest.skip("mounting a volume image with the kernel needs root")
    where = Path(tempfile.mkdtemp(prefix="catalog-mount-"))
    proc = subprocess.run(["mount", "-o", "ro,loop", str(image), str(where)], capture_output=True, text=True)
    if proc.returncode != 0:
        where.rmdir()
        pytest.skip(f"the kernel cannot mount {image.name} here: {proc.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)
        where.rmdir()


def kernel_walk(top: Path, shown_top: str) -> tuple[dict[str, KernelRow], list[str]]:
    """Every item below ``top`` by os.scandir and lstat, by its shown path; and the folders the
    kernel could not list."""
    out: dict[str, KernelRow] = {}
    unreadable: list[str] = []
    stack = [(os.fsencode(top), shown_top)]
    while stack:
        raw, shown = stack.pop()
        try:
            with os.scandir(raw) as it:
                entries = list(it)
        except OSError:
            unreadable.append(shown)
            continue
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            path = f"{shown}/{name_from_bytes(entry.name)}"
            kind = "Link" if stat.S_ISLNK(st.st_mode) else "Directory" if stat.S_ISDIR(st.st_mode) else "File"
            out[path] = (kind, 0 if kind == "Directory" else st.st_size, st.st_mtime_ns, st.st_uid)
            if kind == "Directory":
                stack.append((entry.path, path))
    return out, unreadable


def catalogued(built: Built, point: str) -> dict[str, KernelRow]:
    uids = {name: uid for uid, name in USERS.items()}
    out = {}
    for hit in queries.search(built.catalog, [built.ids[point]], queries.Criteria()):
        if hit.path.startswith("/boot/efi/"):
            continue  # the FAT volume: the kernel walk reads the ext4 volumes only
        kind, size, mtime, owner = catalog_row(hit.latest)
        assert mtime is not None and owner is not None, hit.path
        out[hit.path] = (kind, size, mtime, uids.get(owner, int(owner) if owner.isdigit() else -1))
    return out


@pytest.mark.parametrize(("volume", "point"), [*(("root", p) for p in POINTS), ("data", "p4")])
def test_catalog_equals_the_kernels_view(built: Built, volume: str, point: str) -> None:
    every = catalogued(built, point)
    with kernel_mount(built.chain.partition(volume, point)) as top:
        if volume == "root":
            kernel, unreadable = kernel_walk(top, "")
            mine = {p: r for p, r in every.items() if not p.startswith("/data/")}
        else:
            kernel, unreadable = kernel_walk(top, "/data")
            mine = {p: r for p, r in every.items() if p.startswith("/data/")}
    assert unreadable == ([DAMAGED] if point == "p5" and volume == "root" else [])
    assert sorted(set(kernel) - set(mine)) == []
    assert sorted(set(mine) - set(kernel)) == []
    assert {p: (kernel[p], mine[p]) for p in kernel if kernel[p] != mine[p]} == {}
    assert len(kernel) > (1000 if volume == "root" else 4)


def test_a_damaged_folder_is_skipped_with_a_note(built: Built) -> None:
    record = built.catalog.point(built.ids["p5"])
    assert record is not None and record.state == PointState.READY
    notes = record.notes.splitlines()
    assert [n for n in notes if n.startswith(DAMAGED + " was skipped")], notes
    assert not [n for n in notes if "skipped" in n and not n.startswith(DAMAGED)], notes
    # The folder itself is listed by its parent; only what it held is missing, all else is there.
    p5 = built.ids["p5"]
    assert [h.path for h in queries.search(built.catalog, [p5], queries.Criteria(under=DAMAGED))] == []
    assert [
        h.path
        for h in queries.search(built.catalog, [p5], queries.Criteria(name="d07", match=NameMatch.EXACT))
    ] == [DAMAGED]
    for point in POINTS[:4]:
        record = built.catalog.point(built.ids[point])
        assert record is not None and record.notes == "", point


def test_the_engines_walk_sees_what_the_catalog_holds(built: Built) -> None:
    (point,) = [p for p in built.replica.points if p.label == "p3"]
    view = open_view([d.files for d in point.disks], built.replica.os_kind)
    try:
        walked = dict(walk_entries(view))
    finally:
        view.close()
    truth = built.chain.truth("p3")
    assert set(walked) == set(truth)
    for path, entry in walked.items():
        kind = "Link" if entry.is_link else "Directory" if entry.is_dir else "File"
        got = (kind, entry.size, entry.mtime_ns, entry.owner)
        assert got == expected_row(truth[path]), path


class _Crash(Exception):
    pass


def test_a_build_cut_short_leaves_no_point_and_the_next_build_is_whole(own: Built) -> None:
    """A worker dies half-way: what it wrote is committed but belongs to no point; the point stays
    Building. Building it again gives exactly the point it would have been, with no row twice."""
    catalog = own.catalog
    p4 = own.ids["p4"]
    want = {h.path: catalog_row(h.latest) for h in queries.search(catalog, [p4], queries.Criteria())}
    want_members = catalog.members(p4)
    catalog.drop_points([p4])
    (point,) = [p for p in own.replica.points if p.id == p4]
    catalog.queue(p4, point.created.isoformat())

    conn = connect(catalog.path)
    conn.execute("UPDATE points SET state = ? WHERE id = ?", (PointState.BUILDING, p4))
    writer = PointWriter(conn, p4)
    folders = 0
    real_folder = writer.folder

    def folder_then_crash(*args: object, **kwargs: object) -> object:
        nonlocal folders
        folders += 1
        if folders == 40:
            writer.commit()
            flush = getattr(writer, "sync", None)  # a writer that commits from a thread of its own
            if flush is not None:
                flush()
            raise _Crash
        return real_folder(*args, **kwargs)  # type: ignore[arg-type]

    writer.folder = folder_then_crash  # type: ignore[method-assign,assignment]
    view = open_view([d.files for d in point.disks], own.replica.os_kind)
    try:
        with pytest.raises(_Crash):
            catalogue(view, writer)
    finally:
        view.close()
        conn.close()
    record = catalog.point(p4)
    assert record is not None and record.state == PointState.BUILDING and record.entries > 0
    assert catalog.members(p4) is None
    assert queries.search(catalog, [p4], queries.Criteria()) == []

    catalog.requeue(p4)
    build_point(catalog.path, p4, [[str(f) for f in d.files] for d in point.disks], own.replica.os_kind)
    fresh = CatalogFile(catalog.path)
    try:
        assert {
            h.path: catalog_row(h.latest) for h in queries.search(fresh, [p4], queries.Criteria())
        } == want
        members = fresh.members(p4)
        assert members is not None and members == want_members  # the same rows, none made again
        with fresh.cursor() as cur:
            (dupes,) = cur.execute(
                "SELECT count(*) FROM (SELECT path, kind, size, mtime, owner, ident FROM versions "
                "GROUP BY path, kind, size, mtime, owner, ident HAVING count(*) > 1)"
            ).fetchone()
        assert dupes == 0
    finally:
        fresh.close()
