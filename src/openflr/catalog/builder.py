"""Keeping the catalogs in step with the inventory: queue new points, build them, drop gone ones.

One thread schedules builds; each build runs in a worker process (``build.py``), at most
``[catalog] workers`` at a time and never two of one VM at once (they write the same file). A point
asked for on demand goes ahead of the background queue. Progress is what each worker records in
the catalog file; the scheduler only starts, waits and reaps.

After a restart, points whose build was cut short are built again; finished points are kept.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from openflr.catalog.store import CatalogFile, PointRecord, PointState
from openflr.inventory.model import Inventory, Replica, ReplicaPoint

log = logging.getLogger(__name__)

SUFFIX = ".catalog.sqlite"


@dataclass(frozen=True)
class PointStatus:
    replica_id: str
    vm_name: str
    point: PointRecord


@dataclass
class _Job:
    replica_id: str
    point_id: str
    disks: list[list[str]]
    os_hint: str
    process: subprocess.Popen[bytes] | None = None


class CatalogBuilder:
    """The catalogs of every VM in the inventory, and the background work that builds them."""

    def __init__(self, directory: Path, workers: int) -> None:
        self.directory = directory
        self.workers = workers
        self._files: dict[str, CatalogFile] = {}
        self._lock = threading.Condition()
        self._queue: list[tuple[str, str]] = []
        """(replica id, point id), next first."""
        self._running: dict[str, _Job] = {}
        """Replica id -> the build running for it."""
        self._points: dict[str, tuple[Replica, ReplicaPoint]] = {}
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.builds_done = 0

    # --- files --------------------------------------------------------------------------------------

    def file(self, replica_id: str) -> CatalogFile:
        with self._lock:
            found = self._files.get(replica_id)
            if found is None:
                found = CatalogFile(self.directory / f"{replica_id}{SUFFIX}")
                self._files[replica_id] = found
            return found

    def existing(self, replica_id: str) -> CatalogFile | None:
        """The VM's catalog file if one was ever made (never creates one)."""
        if replica_id in self._files or (self.directory / f"{replica_id}{SUFFIX}").exists():
            return self.file(replica_id)
        return None

    # --- keeping step with the inventory ------------------------------------------------------------

    def sync(self, inventory: Inventory, *, build: bool) -> None:
        """Record every point of the inventory (queued for building when ``build``), drop the points
        and the VMs that are gone, and queue again builds a restart cut short."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._lock:
            self._points = {p.id: (inventory.replicas[p.replica_id], p) for p in inventory.points.values()}
        for replica in inventory.replicas.values():
            catalog = self.file(replica.id)
            known = {r.id: r for r in catalog.points()}
            gone = set(known) - {p.id for p in replica.points}
            if gone:
                log.info(
                    "catalog of %s: dropping %d point(s) no longer on the datastore",
                    replica.vm_name,
                    len(gone),
                )
                catalog.drop_points(gone, collect=replica.id not in self._running)
            for point in replica.points:
                record = known.get(point.id)
                if record is None:
                    catalog.queue(point.id, point.created.isoformat())
                elif record.state == PointState.BUILDING and replica.id not in self._running:
                    catalog.requeue(point.id)  # cut short by a restart
                if build and (record is None or record.state in (PointState.QUEUED, PointState.BUILDING)):
                    self._enqueue(replica.id, point.id, front=False)
        for file in sorted(self.directory.glob(f"*{SUFFIX}")):
            replica_id = file.name.removesuffix(SUFFIX)
            if replica_id not in inventory.replicas and replica_id not in self._running:
                log.info("catalog of replica %s dropped: the VM is no longer on any datastore", replica_id)
                with self._lock:
                    stale = self._files.pop(replica_id, None)
                if stale is not None:
                    stale.close()
                for part in file.parent.glob(file.name + "*"):
                    part.unlink(missing_ok=True)

    def request(self, point_ids: Iterable[str], *, again: bool = False) -> list[str]:
        """Build these points ahead of the background queue (``again``: also those already built);
        returns the ids that were queued."""
        queued = []
        for pid in point_ids:
            with self._lock:
                known = self._points.get(pid)
            if known is None:
                continue
            replica, point = known
            catalog = self.file(replica.id)
            record = catalog.point(pid)
            if record is None:
                catalog.queue(pid, point.created.isoformat())
            elif record.state == PointState.BUILDING:
                continue
            elif record.state != PointState.QUEUED and (again or record.state == PointState.FAILED):
                catalog.requeue(pid)
            elif record.state == PointState.READY:
                continue
            self._enqueue(replica.id, pid, front=True)
            queued.append(pid)
        return queued

    def drop(self, point_ids: Iterable[str]) -> int:
        """Forget the catalogs of these points (built again only on request)."""
        by_replica: dict[str, list[str]] = {}
        with self._lock:
            for pid in point_ids:
                known = self._points.get(pid)
                if known is not None and self._running.get(known[0].id, _Job("", "", [], "")).point_id != pid:
                    by_replica.setdefault(known[0].id, []).append(pid)
            self._queue = [
                q for q in self._queue if q[1] not in {p for ps in by_replica.values() for p in ps}
            ]
        dropped = 0
        for replica_id, pids in by_replica.items():
            catalog = self.file(replica_id)
            dropped += catalog.drop_points(pids, collect=replica_id not in self._running)
            for pid in pids:  # known again (not built) so that status shows it
                catalog.queue(pid, self._points[pid][1].created.isoformat())
                catalog.requeue(pid)
                self._mark_not_built(catalog, pid)
        return dropped

    @staticmethod
    def _mark_not_built(catalog: CatalogFile, point_id: str) -> None:
        with catalog.cursor() as cur:
            cur.execute(
                "UPDATE points SET state = 'Dropped', "
                "message = 'Dropped on request; build it again to search it.' WHERE id = ?",
                (point_id,),
            )
            cur.connection.commit()

    def _enqueue(self, replica_id: str, point_id: str, *, front: bool) -> None:
        with self._lock:
            item = (replica_id, point_id)
            if item in self._queue:
                if not front:
                    return
                self._queue.remove(item)
            if any(j.point_id == point_id for j in self._running.values()):
                return
            self._queue.insert(0, item) if front else self._queue.append(item)
            self._lock.notify_all()

    # --- status -------------------------------------------------------------------------------------

    def status(self, replicas: Iterable[Replica]) -> list[PointStatus]:
        out = []
        for replica in replicas:
            catalog = self.existing(replica.id)
            if catalog is None:
                continue
            out += [PointStatus(replica.id, replica.vm_name, r) for r in catalog.points()]
        return out

    def busy(self) -> bool:
        with self._lock:
            return bool(self._queue or self._running)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or running (tests, the command line)."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._queue and not self._running, timeout)

    # --- running ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None and self.workers > 0:
            self._thread = threading.Thread(target=self._run, name="openflr-catalog", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
            running = list(self._running.values())
        for job in running:
            if job.process is not None and job.process.poll() is None:
                job.process.terminate()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            for catalog in self._files.values():
                catalog.close()
            self._files.clear()

    def _next(self) -> _Job | None:
        """The first queued point whose VM has no build running, taken off the queue."""
        for i, (replica_id, point_id) in enumerate(self._queue):
            if replica_id in self._running:
                continue
            del self._queue[i]
            known = self._points.get(point_id)
            if known is None:
                continue
            replica, point = known
            return _Job(
                replica_id, point_id, [[str(f) for f in d.files] for d in point.disks], replica.os_kind
            )
        return None

    def _run(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(
                    lambda: self._stopping or (len(self._running) < self.workers and self._has_startable()),
                    timeout=1.0,
                )
                if self._stopping:
                    return
                job = self._next() if len(self._running) < self.workers else None
                if job is not None:
                    self._running[job.replica_id] = job
            if job is not None:
                threading.Thread(
                    target=self._build, args=(job,), name="openflr-catalog-build", daemon=True
                ).start()

    def _has_startable(self) -> bool:
        return any(r not in self._running for r, _p in self._queue)

    @staticmethod
    def _failed(catalog: CatalogFile, point_id: str, message: str) -> None:
        catalog.requeue(point_id)
        with catalog.cursor() as cur:
            cur.execute(
                "UPDATE points SET state = ?, message = ? WHERE id = ?",
                (PointState.FAILED, message, point_id),
            )
            cur.connection.commit()

    def _build(self, job: _Job) -> None:
        catalog = self.file(job.replica_id)
        try:
            job.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "openflr.catalog.build",
                    str(catalog.path),
                    job.point_id,
                    json.dumps({"disks": job.disks, "os": job.os_hint}),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            _out, err = job.process.communicate()
            record = catalog.point(job.point_id)
            cut_short = record is not None and record.state == PointState.BUILDING
            if job.process.returncode != 0 and cut_short and not self._stopping:
                reason = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1][:300]
                self._failed(catalog, job.point_id, f"The catalog builder stopped: {reason}")
                record = catalog.point(job.point_id)
            if record is not None and record.state == PointState.FAILED:
                log.warning("catalog of point %s failed: %s", job.point_id, record.message)
        except Exception:
            log.exception("catalog build of point %s", job.point_id)
        finally:
            with self._lock:
                self._running.pop(job.replica_id, None)
                self.builds_done += 1
                self._lock.notify_all()
