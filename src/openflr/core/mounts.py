"""Mounts: a logon session's open view of one replica point (EM ``VmReplicaPointMount``).

Mount ids are 1, 2, ... per point in memory; with a ``MountStore`` (every running server has one)
they are the mount's number in the database, unique across nodes, and any node serves a mount: it
opens the point from the shared datastore on first use and keeps it like its own. Opened points are
shared: every mount of a point uses the same ``GuestView`` (one set of file handles), opened once and
closed when the last mount goes, after a short idle grace so that a client that unmounts and mounts
again does not pay twice. A mount is visible only to the session that made it, dies with that
session, and fails cleanly when its point disappears from the datastore.

Opening a point reads image files that are not trusted and may sit on a share that stalls. It runs in
its own thread and is given ``open_timeout`` seconds: past that the mount fails with a clear message,
and the opening thread is told to stop (every read it makes checks a cancel flag). A thread stuck
where it cannot notice (a read blocked on a dead NFS server) is left to finish on its own, but at
most ``max_stuck`` such threads may exist, and a point with one is not opened again meanwhile: a
hostile or unreachable image cannot eat the server's threads or hold other mounts hostage.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from openflr.core.families import PointFamily
from openflr.core.mountstore import MountRecord, MountStore
from openflr.core.sessions import LogonSession
from openflr.errors import NotFoundError, UnavailableError
from openflr.guestfs.blocks import CancelToken, cancel_scope
from openflr.guestfs.errors import OpenCancelledError
from openflr.guestfs.view import GuestView, open_view
from openflr.inventory.model import Replica, ReplicaPoint

log = logging.getLogger(__name__)


class PointGoneError(NotFoundError):
    """The mount's replica point was removed from the datastore."""


@dataclass
class Mount:
    point_id: str
    mount_id: int
    session_id: str
    replica: Replica
    point: ReplicaPoint
    view: GuestView
    family: PointFamily = PointFamily.REPLICA
    """The family the mount was made through (and is found through)."""
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    gone: bool = False
    released: bool = False
    checked_at: float = field(default_factory=time.monotonic)
    """When this node last confirmed in the database that the mount is still there."""


@dataclass
class _Opened:
    view: GuestView
    users: int = 0
    idle_since: float = 0.0


class MountManager:
    def __init__(
        self,
        opener: Callable[[ReplicaPoint, str], GuestView] | None = None,
        idle_keep: int = 8,
        idle_seconds: float = 300.0,
        per_session: int = 64,
        open_timeout: float = 120.0,
        max_stuck: int = 4,
        store: MountStore | None = None,
        recheck_seconds: float = 5.0,
    ) -> None:
        self._open = opener or (lambda point, os_kind: open_view([d.files for d in point.disks], os_kind))
        self._lock = threading.RLock()
        self._point_locks: dict[str, threading.Lock] = {}
        self._opened: dict[str, _Opened] = {}
        self._mounts: dict[tuple[str, int], Mount] = {}
        self._ids: dict[str, itertools.count[int]] = {}
        self.on_view_closed: list[Callable[[GuestView], None]] = []
        self.idle_keep = idle_keep
        self.idle_seconds = idle_seconds
        self.per_session = per_session
        self.open_timeout = open_timeout
        """Seconds an opening may take (``[limits] mount_timeout``)."""
        self.max_stuck = max_stuck
        self._stuck: dict[int, str] = {}
        """Opening threads that outlived their timeout and have not finished yet: thread id -> point id."""
        self._store = store
        self.recheck_seconds = recheck_seconds
        self.locate: Callable[[str], tuple[Replica, ReplicaPoint] | None] = lambda _point_id: None
        """The replica and point of a point id in the current inventory (set by the service): how a
        node opens a mount made through another."""

    # --- opening (blocking: call from a worker thread) ---------------------------------------------

    def _acquire(self, replica: Replica, point: ReplicaPoint) -> GuestView:
        deadline = time.monotonic() + self.open_timeout
        with self._lock:
            point_lock = self._point_locks.setdefault(point.id, threading.Lock())
        if not point_lock.acquire(timeout=max(0.0, self.open_timeout)):
            raise OpenCancelledError(
                f"The restore point is still being opened for another mount after {self.open_timeout:g} s; "
                "try again later."
            )
        try:
            with self._lock:
                opened = self._opened.get(point.id)
                if opened is not None:
                    opened.users += 1
                    return opened.view
            view = self._open_bounded(replica, point, deadline)
            with self._lock:
                self._opened[point.id] = _Opened(view, 1)
            return view
        finally:
            point_lock.release()

    def stuck(self) -> list[str]:
        """Points whose opening outlived its timeout and is still running."""
        with self._lock:
            return list(self._stuck.values())

    def _open_bounded(self, replica: Replica, point: ReplicaPoint, deadline: float) -> GuestView:
        """``self._open`` in a thread of its own, given until ``deadline``; cancelled past it."""
        with self._lock:
            if point.id in self._stuck.values():
                raise UnavailableError(
                    "An earlier attempt to open this restore point timed out and is still running; "
                    "its images may be damaged or on a share that does not answer. Try again later.",
                    30,
                )
            if len(self._stuck) >= self.max_stuck:
                raise UnavailableError(
                    f"{len(self._stuck)} earlier mounts timed out and are still opening their images "
                    "(damaged images or a share that does not answer); try again later.",
                    30,
                )
        timeout = max(0.0, deadline - time.monotonic())
        token = CancelToken(
            f"Opening the restore point took longer than the mount timeout ({self.open_timeout:g} s); "
            "its images may be damaged, very large, or on a share that does not answer."
        )
        result: dict[str, Any] = {}
        done = threading.Event()

        def run() -> None:
            try:
                with cancel_scope(token):
                    result["view"] = self._open(point, replica.os_kind)
            except BaseException as exc:
                result["error"] = exc
            finally:
                with self._lock:
                    late = self._stuck.pop(threading.get_ident(), None) is not None
                    done.set()
            if late:
                view = result.get("view")
                log.warning(
                    "the timed-out opening of point %s (%s) finished after all%s",
                    point.id,
                    replica.display_name,
                    "" if view is None else "; its view is closed",
                )
                if view is not None:
                    view.close()

        worker = threading.Thread(target=run, name=f"openflr-open-{point.id[:8]}", daemon=True)
        worker.start()
        if not done.wait(timeout):
            with self._lock:
                if not done.is_set():
                    token.cancel()
                    assert worker.ident is not None
                    self._stuck[worker.ident] = point.id
                    log.warning(
                        "opening point %s (%s) took longer than %g s: cancelled",
                        point.id,
                        replica.display_name,
                        self.open_timeout,
                    )
                    raise OpenCancelledError(token.reason)
        error = result.get("error")
        if error is not None:
            raise error
        view: GuestView = result["view"]
        return view

    def _release(self, point_id: str) -> None:
        closing: list[GuestView] = []
        with self._lock:
            opened = self._opened.get(point_id)
            if opened is None:
                return
            opened.users -= 1
            if opened.users <= 0:
                opened.idle_since = time.monotonic()
            closing = self._trim_idle()
        for view in closing:
            self._close_view(view)

    def _trim_idle(self) -> list[GuestView]:
        """Idle views beyond the keep limit or past the grace period (call with the lock held)."""
        now = time.monotonic()
        idle = sorted((o.idle_since, pid) for pid, o in self._opened.items() if o.users <= 0)
        closing = []
        for n, (since, pid) in enumerate(idle):
            if len(idle) - n > self.idle_keep or now - since > self.idle_seconds:
                closing.append(self._opened.pop(pid).view)
        return closing

    def mount(
        self,
        session: LogonSession,
        replica: Replica,
        point: ReplicaPoint,
        family: PointFamily = PointFamily.REPLICA,
    ) -> Mount:
        """Open ``point`` (shared) and register a new mount for ``session``. Blocking."""
        with self._lock:
            if (
                sum(1 for m in self._mounts.values() if m.session_id == session.session_id)
                >= self.per_session
            ):
                raise UnavailableError(
                    f"This logon session already has {self.per_session} mounts; unmount some first.", 10
                )
        view = self._acquire(replica, point)
        created = datetime.now(UTC)
        try:
            number = (
                self._store.insert(session.session_id, point.id, family.value, created)
                if self._store is not None
                else None
            )
        except BaseException:
            self._release(point.id)
            raise
        with self._lock:
            if session.ended:
                self._release_locked_later(point.id)
                raise NotFoundError("The logon session ended while the point was being mounted.")
            if number is None:
                number = next(self._ids.setdefault(point.id, itertools.count(1)))
            mount = Mount(point.id, number, session.session_id, replica, point, view, family, created)
            self._mounts[(point.id, mount.mount_id)] = mount
        log.info(
            "mounted %s (%s) as mount %d for session %s",
            point.id,
            replica.display_name,
            mount.mount_id,
            session.session_id,
        )
        return mount

    def _release_locked_later(self, point_id: str) -> None:
        threading.Thread(target=self._release, args=(point_id,), daemon=True).start()

    @contextlib.contextmanager
    def hold(self, mount: Mount) -> Iterator[GuestView]:
        """Keep ``mount``'s files open while a download or restore reads them, even if the mount is
        removed meanwhile (the work finishes; the files close afterwards)."""
        with self._lock:
            opened = self._opened.get(mount.point_id)
            if mount.released or mount.gone or opened is None or opened.view is not mount.view:
                raise NotFoundError(f"Mount {mount.mount_id} of point {mount.point_id} was removed.")
            opened.users += 1
        try:
            yield mount.view
        finally:
            self._release(mount.point_id)

    # --- lookups -----------------------------------------------------------------------------------

    def cached(
        self, session: LogonSession, point_id: str, mount_id: str, family: PointFamily | None = None
    ) -> Mount | None:
        """The mount when this node has it open and confirmed recently (no waiting), else None:
        then ``get`` (blocking) reads it from the database and opens it."""
        number = _number(mount_id)
        with self._lock:
            mount = self._mounts.get((point_id, number)) if number is not None else None
        if mount is None or (self._store is not None and self._stale(mount)):
            return None
        return self._check(mount, session, point_id, mount_id, family)

    def get(
        self, session: LogonSession, point_id: str, mount_id: str, family: PointFamily | None = None
    ) -> Mount:
        """The session's mount; with a store, one made through another node is opened here (blocking:
        call from a worker thread, or try ``cached`` first)."""
        number = _number(mount_id)
        if number is None:
            raise NotFoundError(f"Mount {mount_id!r} does not exist.")
        with self._lock:
            mount = self._mounts.get((point_id, number))
        if self._store is not None:
            if mount is not None and self._stale(mount):
                if number not in self._store.mounted([number]):
                    self._drop(mount, write=False)
                    mount = None
                else:
                    mount.checked_at = time.monotonic()
            if mount is None:
                record = self._store.get(session.session_id, point_id, number)
                if record is not None:
                    mount = self._adopt(session, record)
        return self._check(mount, session, point_id, mount_id, family)

    def _check(
        self,
        mount: Mount | None,
        session: LogonSession,
        point_id: str,
        mount_id: str,
        family: PointFamily | None,
    ) -> Mount:
        if mount is None or mount.session_id != session.session_id or (family and mount.family != family):
            raise NotFoundError(f"Mount {mount_id} of point {point_id} does not exist in this logon session.")
        if mount.gone:
            raise PointGoneError(f"The restore point of mount {mount_id} is no longer in the datastore.")
        return mount

    def _stale(self, mount: Mount) -> bool:
        return time.monotonic() - mount.checked_at > self.recheck_seconds

    def _adopt(self, session: LogonSession, record: MountRecord) -> Mount:
        """Open here a mount made through another node (blocking)."""
        located = self.locate(record.point_id)
        if located is None:
            raise PointGoneError(f"The restore point of mount {record.number} is no longer in the datastore.")
        replica, point = located
        view = self._acquire(replica, point)
        mount = Mount(
            point.id,
            record.number,
            record.session_id,
            replica,
            point,
            view,
            PointFamily(record.family),
            record.created,
        )
        with self._lock:
            existing = self._mounts.get((point.id, record.number))
            if existing is None and not session.ended:
                self._mounts[(point.id, record.number)] = mount
                log.info("opened mount %d of %s made through another node", record.number, point.id)
                return mount
        self._release(point.id)  # another request adopted it meanwhile (or the session ended)
        if existing is None:
            raise NotFoundError("The logon session ended while the point was being mounted.")
        return existing

    def of_point(
        self, session: LogonSession, point_id: str, family: PointFamily | None = None
    ) -> list[Mount]:
        """The session's mounts of a point (blocking with a store: those made through other nodes are
        opened here)."""
        if self._store is not None:
            for record in self._store.of_point(session.session_id, point_id):
                with contextlib.suppress(NotFoundError):
                    self.get(session, point_id, str(record.number))
        return self.local_of_point(session, point_id, family)

    def local_of_point(
        self, session: LogonSession, point_id: str, family: PointFamily | None = None
    ) -> list[Mount]:
        """The session's mounts of a point that this node has open (never blocks)."""
        with self._lock:
            return sorted(
                (
                    m
                    for m in self._mounts.values()
                    if m.session_id == session.session_id
                    and m.point_id == point_id
                    and (family is None or m.family == family)
                ),
                key=lambda m: m.mount_id,
            )

    def all(self) -> list[Mount]:
        with self._lock:
            return list(self._mounts.values())

    def opened_points(self) -> int:
        """Points whose disks are open: in use by mounts or kept ready after their last unmount."""
        with self._lock:
            return len(self._opened)

    # --- teardown ----------------------------------------------------------------------------------

    def unmount(
        self, session: LogonSession, point_id: str, mount_id: str, family: PointFamily | None = None
    ) -> None:
        number = _number(mount_id)
        with self._lock:
            mount = self._mounts.get((point_id, number)) if number is not None else None
        if (
            self._store is not None
            and number is not None
            and (mount is None or mount.session_id == session.session_id)
        ):
            if mount is not None and family and mount.family != family:
                raise NotFoundError(
                    f"Mount {mount_id} of point {point_id} does not exist in this logon session."
                )
            if mount is None:
                record = self._store.get(session.session_id, point_id, number)
                if record is None or (family and record.family != family.value):
                    raise NotFoundError(
                        f"Mount {mount_id} of point {point_id} does not exist in this logon session."
                    )
            unmounted = self._store.unmount(session.session_id, point_id, number)
            if mount is not None:
                self._drop(mount, write=False)
            if not unmounted:
                raise NotFoundError(
                    f"Mount {mount_id} of point {point_id} does not exist in this logon session."
                )
            if mount is None:  # else _drop logged it
                log.info("unmounted %s mount %d (not open on this node)", point_id, number)
            return
        try:
            mount = self.get(session, point_id, mount_id, family)
        except PointGoneError:
            mount = self._mounts[(point_id, int(mount_id))]
        self._drop(mount)

    def _drop(self, mount: Mount, *, write: bool = True) -> None:
        """Let a mount go here; ``write``: it is unmounted for every node (else only released here)."""
        with self._lock:
            if self._mounts.pop((mount.point_id, mount.mount_id), None) is None:
                return
            release, mount.released = not mount.released, True
        if release:
            self._release(mount.point_id)
        if write and self._store is not None:
            self._store.unmount(mount.session_id, mount.point_id, mount.mount_id)
        log.info("unmounted %s mount %d", mount.point_id, mount.mount_id)

    def drop_session(self, session: LogonSession, *, ended: bool = True) -> int:
        """The session's mounts go here; ``ended``: the session ended, so they are unmounted for every
        node (else this node only lets them go: it is stopping)."""
        with self._lock:
            mine = [m for m in self._mounts.values() if m.session_id == session.session_id]
        for mount in mine:
            self._drop(mount, write=False)
        if ended and self._store is not None:
            self._store.unmount_session(session.session_id)
        return len(mine)

    def recheck(self) -> int:
        """Let go here the mounts unmounted through other nodes; how many."""
        if self._store is None:
            return 0
        with self._lock:
            mine = list(self._mounts.values())
        if not mine:
            return 0
        still = self._store.mounted(m.mount_id for m in mine)
        now = time.monotonic()
        gone = 0
        for mount in mine:
            if mount.mount_id in still:
                mount.checked_at = now
            else:
                self._drop(mount, write=False)
                gone += 1
        return gone

    def points_removed(self, point_ids: set[str]) -> None:
        """The datastore lost these points: their mounts fail from now on and their files are closed."""
        with self._lock:
            for m in self._mounts.values():
                if m.point_id in point_ids:
                    m.gone = True  # requests now fail clearly; files close when the mount is dropped
            idle = [pid for pid in point_ids if pid in self._opened and self._opened[pid].users <= 0]
            closing = [self._opened.pop(pid).view for pid in idle]
        for view in closing:
            self._close_view(view)

    def sweep_idle(self) -> None:
        with self._lock:
            closing = self._trim_idle()
        for view in closing:
            self._close_view(view)

    def _close_view(self, view: GuestView) -> None:
        for listener in self.on_view_closed:
            listener(view)
        view.close()

    def close_all(self) -> None:
        with self._lock:
            views = [o.view for o in self._opened.values()]
            self._opened.clear()
            self._mounts.clear()
        for view in views:
            self._close_view(view)


def _number(mount_id: str) -> int | None:
    """The mount's number, or None for an id that is not one (``str.isdigit`` alone also takes
    digits ``int`` refuses, such as ``¹``)."""
    text = mount_id.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    return int(text)
