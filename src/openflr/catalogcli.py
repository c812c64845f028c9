"""The file catalog on the command line: ``openflr find``, ``versions``, ``diff`` and ``catalog``
(docs/CATALOG.md, "Command line").

An administrator's tool, not a logged-on session: it scans the configured datastores as ``openflr
scan`` does and sees every VM. Points are named by id (or urn, or a unique start of the id) or by
their place in the VM's points, oldest first: ``1`` is the oldest, ``-1`` the newest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from openflr.cli import config_option, console, err_console, main, plural, settings_from
from openflr.config import Settings
from openflr.core.filecatalog import (
    Change,
    Criteria,
    Difference,
    FileCatalog,
    Kind,
    NameMatch,
    PathVersion,
    PointState,
    Version,
)
from openflr.errors import OpenflrError
from openflr.inventory.model import Inventory, Replica, ReplicaPoint
from openflr.logs import setup_logging

NOT_RECORDED = "NotRecorded"
"""The state shown for a point the catalog has not recorded yet (found by this scan only)."""
POLL_SECONDS = 0.5
POINT_HELP = "Only this point: its id, or 1 (the oldest), 2, ..., -1 (the newest)."


class CliError(click.ClickException):
    """One line on stderr and exit status 1."""


# --- the inventory and the catalog --------------------------------------------------------------------


def _inventory(settings: Settings, quiet: bool) -> Inventory:
    """Every VM of the configured datastores, scanned now (a progress line on stderr)."""
    from openflr.inventory.scanner import scan

    if not settings.datastores:
        raise CliError("no datastores configured (add [[datastores]] to the configuration file)")
    with Progress(
        TextColumn("scanning"), BarColumn(), console=err_console, transient=True, disable=quiet
    ) as bar:
        task = bar.add_task("", total=None)
        return scan(settings, lambda _folder, done, total: bar.update(task, completed=done, total=total))


@contextmanager
def _catalog(config_file: Path | None, quiet: bool = False) -> Iterator[tuple[FileCatalog, Inventory]]:
    """The file catalog over a fresh scan; closed after; an openflr error is one line and status 1."""
    settings = settings_from(config_file)
    setup_logging("error")  # a failed point is reported by the command, not by a log line too
    inventory = _inventory(settings, quiet)
    files = FileCatalog(settings)
    try:
        yield files, inventory
    except OpenflrError as exc:
        raise CliError(exc.message) from None
    finally:
        files.stop()


def _replicas(files: FileCatalog, inventory: Inventory, vm: str) -> list[Replica]:
    try:
        return files.replicas(inventory, vm)
    except OpenflrError as exc:
        raise CliError(exc.message) from None


def _point(
    files: FileCatalog, replicas: Sequence[Replica], ref: str, vm: str
) -> tuple[Replica, ReplicaPoint]:
    """The point ``ref`` names among the VM's points: an index (1 oldest, -1 newest), an id, a urn or
    a unique start of an id."""
    ref = ref.strip()
    if re.fullmatch(r"[+-]?\d+", ref):
        if len(replicas) > 1:
            raise CliError(f"{vm!r} names {len(replicas)} replicas; name the point by its id")
        ordered = files.ordered(replicas[0])
        index = int(ref)
        if index == 0 or abs(index) > len(ordered):
            raise CliError(
                f"{vm!r} has {plural(len(ordered), 'point')}; a point index is 1 to {len(ordered)} "
                f"or -1 to -{len(ordered)}"
            )
        return replicas[0], ordered[index - 1 if index > 0 else index]
    bare = ref.rsplit(":", 1)[-1].lower()
    found = [(r, p) for r in replicas for p in r.points if p.id == bare]
    if not found and len(bare) >= 4:
        found = [(r, p) for r in replicas for p in r.points if p.id.startswith(bare)]
    if len(found) > 1:
        raise CliError(f"{ref!r} names more than one point of {vm!r}; give more of the id")
    if not found:
        raise CliError(f"{vm!r} has no point {ref!r} (see: openflr catalog status {_quote(vm)})")
    return found[0]


def _require_ready(files: FileCatalog, replica: Replica, point: ReplicaPoint, vm: str) -> None:
    catalog = files.builder.existing(replica.id)
    record = catalog.point(point.id) if catalog is not None else None
    if record is None or record.state != PointState.READY:
        state = record.state if record is not None else "not recorded"
        raise CliError(
            f"point {point.id} ({_when(point.created)}) of {vm!r} is not catalogued yet ({state}); "
            f"run: openflr catalog build {_quote(vm)}"
        )


def _require_any_ready(files: FileCatalog, replicas: Sequence[Replica], vm: str) -> None:
    if not any(files.ready_points(r) for r in replicas):
        raise CliError(f"no point of {vm!r} is catalogued yet; run: openflr catalog build {_quote(vm)}")


def _quote(text: str) -> str:
    return text if re.fullmatch(r"[\w.:@%+=,/-]+", text) else "'" + text.replace("'", "'\\''") + "'"


# --- formatting ---------------------------------------------------------------------------------------


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _mtime_iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return _iso(datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(microsecond=ns % 10**9 // 1000))


def _mtime_text(ns: int | None) -> str:
    return "" if ns is None else _when(datetime.fromtimestamp(ns // 1_000_000_000, UTC))


def _size(version: Version | None) -> str:
    return "" if version is None or version.kind is not Kind.FILE else f"{version.size:,}"


def _index(replica: Replica, point_id: str) -> int:
    """The point's place among the replica's points, 1 the oldest."""
    return next(i for i, p in enumerate(FileCatalog.ordered(replica), 1) if p.id == point_id)


def _point_json(replica: Replica, point_id: str) -> dict[str, Any]:
    point = next(p for p in replica.points if p.id == point_id)
    return {"point_id": point.id, "index": _index(replica, point.id), "created": _iso(point.created)}


def _version_json(version: Version) -> dict[str, Any]:
    return {
        "type": version.kind.label,
        "size": version.size,
        "modified": _mtime_iso(version.mtime_ns),
        "owner": version.owner,
    }


def _echo_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=1, ensure_ascii=False))


def _cells(*values: str) -> list[Text]:
    """Table cells shown as they are: names and paths come from the guests, not Rich markup."""
    return [Text(v) for v in values]


def _legend(replica: Replica) -> None:
    for i, p in enumerate(FileCatalog.ordered(replica), 1):
        console.print(f"  point {i}: {_when(p.created)} UTC  {p.id}", markup=False, highlight=False)


# --- find, versions, diff ------------------------------------------------------------------------------


@main.command()
@click.argument("vm")
@click.argument("pattern")
@click.option(
    "--point", "point_ref", default=None, help="Only this point: id, or 1 (oldest) ... -1 (newest)."
)
@click.option("--under", default="", help="Only below this folder, e.g. 'C:/Users' or '/home'.")
@click.option("--glob", "match", flag_value=NameMatch.GLOB.value, help="PATTERN is a glob: '*.docx'.")
@click.option("--exact", "match", flag_value=NameMatch.EXACT.value, help="PATTERN is the whole name.")
@click.option("--json", "as_json", is_flag=True, help="Print the hits as JSON.")
@config_option
def find(
    vm: str,
    pattern: str,
    point_ref: str | None,
    under: str,
    match: str | None,
    as_json: bool,
    config_file: Path | None,
) -> None:
    """Items of VM whose name contains PATTERN (--glob, --exact), in its catalogued points.

    Names are compared without case where the guest's file system ignores case (NTFS, FAT)."""
    with _catalog(config_file, as_json) as (files, inventory):
        replicas = _replicas(files, inventory, vm)
        point_id = ""
        if point_ref is not None:
            replica, point = _point(files, replicas, point_ref, vm)
            _require_ready(files, replica, point, vm)
            point_id = point.id
        else:
            _require_any_ready(files, replicas, vm)
        criteria = Criteria(name=pattern, match=NameMatch(match or NameMatch.SUBSTRING.value), under=under)
        hits = files.search(inventory, criteria, vm=vm if not point_id else "", point=point_id)
    if as_json:
        _echo_json(
            {
                "vm": vm,
                "hits": [
                    {
                        "vm_name": h.replica.vm_name,
                        "replica_id": h.replica.id,
                        "path": h.hit.path,
                        "name": h.hit.name,
                        **_version_json(h.hit.latest),
                        "points": [
                            {**_point_json(h.replica, pid), **_version_json(v)} for pid, v in h.hit.points
                        ],
                    }
                    for h in hits
                ],
            }
        )
        return
    table = Table("path", "type", "size", "modified (UTC)", "points")
    for h in hits:
        latest = h.hit.latest
        table.add_row(
            *_cells(
                h.hit.path,
                latest.kind.label,
                _size(latest),
                _mtime_text(latest.mtime_ns),
                ",".join(str(_index(h.replica, pid)) for pid, _v in h.hit.points),
            )
        )
    console.print(table)
    console.print(plural(len(hits), "hit"), markup=False, highlight=False)
    for replica in replicas:
        _legend(replica)


@main.command()
@click.argument("vm")
@click.argument("path")
@click.option("--hashes", is_flag=True, help="Compare files by sha256 (reads each version once; kept).")
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
@config_option
def versions(vm: str, path: str, hashes: bool, as_json: bool, config_file: Path | None) -> None:
    """Each catalogued point of VM that holds PATH, oldest first, and how it changed.

    PATH as the API shows it: 'C:/Documents/report.txt', '/etc/hostname'."""
    with _catalog(config_file, as_json) as (files, inventory):
        replicas = _replicas(files, inventory, vm)
        _require_any_ready(files, replicas, vm)
        found = files.versions(inventory, vm, path, hashes=hashes)
    rows = [(replica, pv) for replica, pvs in found for pv in pvs]
    if as_json:
        _echo_json({"vm": vm, "path": path, "versions": [_path_version_json(r, pv) for r, pv in rows]})
        return
    columns = ["point", "point time (UTC)", "type", "size", "modified (UTC)", "owner", "change", "below"]
    table = Table(*(columns + (["sha256"] if hashes else [])))
    for replica, pv in rows:
        v = pv.version
        cells = [
            str(_index(replica, pv.point)),
            _when(next(p.created for p in replica.points if p.id == pv.point)),
            v.kind.label,
            _size(v),
            _mtime_text(v.mtime_ns),
            v.owner or "",
            pv.change.value,
            _summary_text(pv.summary),
        ]
        if hashes:
            cells.append(v.sha256.hex() if v.sha256 is not None else "")
        table.add_row(*_cells(*cells))
    console.print(table)
    for replica in {r.id: r for r, _pv in rows}.values():
        _legend(replica)


def _path_version_json(replica: Replica, pv: PathVersion) -> dict[str, Any]:
    v = pv.version
    return {
        "vm_name": replica.vm_name,
        "replica_id": replica.id,
        **_point_json(replica, pv.point),
        "path": v.path,
        **_version_json(v),
        "file_id": v.ident,
        "sha256": v.sha256.hex() if v.sha256 is not None else None,
        "change": pv.change.value,
        "summary": {c.value: n for c, n in pv.summary.items()} if pv.summary is not None else None,
    }


def _summary_text(summary: dict[Change, int] | None) -> str:
    if not summary:
        return ""
    return ", ".join(f"{n} {c.value}" for c, n in summary.items() if n) or "no changes"


@main.command(context_settings={"ignore_unknown_options": True})  # -1 is a point, not an option
@click.argument("vm")
@click.argument("point_a")
@click.argument("point_b")
@click.option("--under", default="", help="Only below this folder, e.g. 'C:/Documents'.")
@click.option("--json", "as_json", is_flag=True, help="Print the changes as JSON.")
@config_option
def diff(vm: str, point_a: str, point_b: str, under: str, as_json: bool, config_file: Path | None) -> None:
    """What changed in VM from POINT_A to POINT_B: ids, or 1 (oldest), 2, ..., -1 (newest).

    A renamed item is Removed under its old path and Added under its new one."""
    with _catalog(config_file, as_json) as (files, inventory):
        replicas = _replicas(files, inventory, vm)
        (replica, a), (replica_b, b) = (_point(files, replicas, ref, vm) for ref in (point_a, point_b))
        if replica.id != replica_b.id:
            raise CliError("both points must be points of the same VM replica")
        for point in (a, b):
            _require_ready(files, replica, point, vm)
        _replica, changes = files.diff(inventory, a.id, b.id, under)
    if as_json:
        _echo_json(
            {
                "vm_name": replica.vm_name,
                "replica_id": replica.id,
                "from": _point_json(replica, a.id),
                "to": _point_json(replica, b.id),
                "under": under,
                "changes": [_difference_json(d) for d in changes],
            }
        )
        return
    table = Table("change", "type", "path", "size before", "size after", "modified after (UTC)")
    for d in changes:
        table.add_row(
            *_cells(
                d.change.value,
                d.kind.label,
                d.path,
                _size(d.before),
                _size(d.after),
                _mtime_text(d.after.mtime_ns) if d.after is not None else "",
            )
        )
    console.print(table)
    counts = {c: sum(1 for d in changes if d.change is c) for c in Change if c is not Change.SAME}
    console.print(
        f"from point {_index(replica, a.id)} ({_when(a.created)} UTC) to point {_index(replica, b.id)} "
        f"({_when(b.created)} UTC): " + ", ".join(f"{n} {c.value}" for c, n in counts.items()),
        markup=False,
        highlight=False,
    )


def _difference_json(d: Difference) -> dict[str, Any]:
    def side(v: Version | None) -> dict[str, Any] | None:
        if v is None:
            return None
        return {"size": v.size, "modified": _mtime_iso(v.mtime_ns), "owner": v.owner, "file_id": v.ident}

    return {
        "path": d.path,
        "type": d.kind.label,
        "change": d.change.value,
        "before": side(d.before),
        "after": side(d.after),
    }


# --- catalog status, build, drop -----------------------------------------------------------------------


@main.group()
def catalog() -> None:
    """The file catalog's state and upkeep (docs/CATALOG.md)."""


def _chosen_point(files: FileCatalog, inventory: Inventory, vm: str, point_ref: str | None, verb: str) -> str:
    """The id of the point ``--point`` names (checking the VM too), or "" for all of them."""
    if point_ref is not None:
        if not vm:
            raise CliError(f"--point needs the VM: openflr catalog {verb} VM --point ID")
        _replica, point = _point(files, _replicas(files, inventory, vm), point_ref, vm)
        return point.id
    if vm:
        _replicas(files, inventory, vm)
    return ""


@catalog.command("status")
@click.argument("vm", required=False, default="")
@click.option("--json", "as_json", is_flag=True, help="Print the points' states as JSON.")
@config_option
def catalog_status(vm: str, as_json: bool, config_file: Path | None) -> None:
    """Each point of VM (or of every VM): its catalog state, entries and notes."""
    with _catalog(config_file, as_json) as (files, inventory):
        replicas = _replicas(files, inventory, vm) if vm else _all(inventory)
        recorded = {(s.replica_id, s.point.id): s.point for s in files.status(inventory, vm)}
        sizes = {
            r.id: (found.size_bytes() if (found := files.builder.existing(r.id)) is not None else 0)
            for r in replicas
        }
    points: list[dict[str, Any]] = []
    for replica in replicas:
        for i, point in enumerate(files.ordered(replica), 1):
            record = recorded.get((replica.id, point.id))
            points.append(
                {
                    "vm_name": replica.vm_name,
                    "replica_id": replica.id,
                    "point_id": point.id,
                    "index": i,
                    "created": _iso(point.created),
                    "state": record.state if record is not None else NOT_RECORDED,
                    "entries": record.entries if record is not None else 0,
                    "total": record.total if record is not None else None,
                    "message": record.message if record is not None else "",
                    "notes": record.notes.splitlines() if record is not None and record.notes else [],
                }
            )
    if as_json:
        _echo_json(
            {
                "vms": [
                    {"vm_name": r.vm_name, "replica_id": r.id, "catalog_bytes": sizes[r.id]} for r in replicas
                ],
                "points": points,
            }
        )
        return
    table = Table("VM", "point", "point time (UTC)", "state", "entries", "message")
    for p in points:
        table.add_row(
            *_cells(
                p["vm_name"],
                f"{p['index']} {p['point_id']}",
                p["created"].replace("T", " ").removesuffix("Z")[:19],
                p["state"],
                f"{p['entries']:,}",
                p["message"] or (f"{plural(len(p['notes']), 'note')}" if p["notes"] else ""),
            )
        )
    console.print(table)
    ready = sum(1 for p in points if p["state"] == PointState.READY)
    console.print(
        f"{ready} of {plural(len(points), 'point')} catalogued, "
        f"{sum(sizes.values()) / 1048576:.1f} MiB of catalog files",
        markup=False,
        highlight=False,
    )


def _all(inventory: Inventory) -> list[Replica]:
    return sorted(inventory.replicas.values(), key=lambda r: (r.vm_name.casefold(), r.id))


@catalog.command("build")
@click.argument("vm", required=False, default="")
@click.option(
    "--point", "point_ref", default=None, help="Only this point: id, or 1 (oldest) ... -1 (newest)."
)
@click.option("--again", is_flag=True, help="Build points already catalogued again too.")
@config_option
def catalog_build(vm: str, point_ref: str | None, again: bool, config_file: Path | None) -> None:
    """Build the catalogs of VM's points (or of every VM) now, in worker processes.

    Meant for a server that is stopped or runs with [catalog] enabled = false; a running server
    builds in the background, or on request through its API. Exits with status 1 when a point
    failed."""
    with _catalog(config_file) as (files, inventory):
        point_id = _chosen_point(files, inventory, vm, point_ref, "build")
        builder = files.builder
        builder.workers = max(1, files.settings.catalog.workers)
        builder.sync(inventory, build=False)
        queued = files.build(inventory, vm, point_id, again=again)
        if not queued:
            console.print("nothing to build: every point asked for is catalogued (--again builds them anew)")
            return
        builder.start()
        failed = _follow(files, inventory, queued)
    if failed:
        for point_id, message in failed:
            err_console.print(f"point {point_id} failed: {message}", markup=False, highlight=False)
        raise CliError(f"{plural(len(failed), 'point')} of {len(queued)} could not be catalogued")
    console.print(f"catalogued {plural(len(queued), 'point')}", markup=False, highlight=False)


def _follow(files: FileCatalog, inventory: Inventory, point_ids: list[str]) -> list[tuple[str, str]]:
    """Show a progress bar per point until every build is done; the (id, message) of those that failed."""
    builder = files.builder
    with Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[state]}", markup=False),
        console=err_console,
    ) as bar:
        tasks: dict[str, TaskID] = {}
        for pid in point_ids:
            point = inventory.points[pid]
            name = inventory.replicas[point.replica_id].vm_name
            tasks[pid] = bar.add_task(f"{name} {_when(point.created)}", total=None, state="Queued")
        while True:
            idle = builder.wait_idle(timeout=POLL_SECONDS)
            for pid, task in tasks.items():
                catalog = builder.existing(inventory.points[pid].replica_id)
                record = catalog.point(pid) if catalog is not None else None
                if record is None:
                    continue
                if record.state == PointState.READY:
                    bar.update(task, completed=record.entries, total=record.entries, state="Ready")
                else:
                    total = max(record.total, record.entries) if record.total else None
                    bar.update(task, completed=record.entries, total=total, state=record.state)
            if idle:
                break
    failed = []
    for pid in point_ids:
        catalog = builder.existing(inventory.points[pid].replica_id)
        record = catalog.point(pid) if catalog is not None else None
        if record is None or record.state != PointState.READY:
            failed.append((pid, record.message if record is not None and record.message else "not built"))
    return failed


@catalog.command("drop")
@click.argument("vm", required=False, default="")
@click.option(
    "--point", "point_ref", default=None, help="Only this point: id, or 1 (oldest) ... -1 (newest)."
)
@config_option
def catalog_drop(vm: str, point_ref: str | None, config_file: Path | None) -> None:
    """Forget the catalogs of VM's points (or of every VM's); they are built again only on request."""
    with _catalog(config_file) as (files, inventory):
        point_id = _chosen_point(files, inventory, vm, point_ref, "drop")
        files.builder.sync(inventory, build=False)
        dropped = files.drop(inventory, vm, point_id)
    console.print(f"dropped the catalogs of {plural(dropped, 'point')}", markup=False, highlight=False)
