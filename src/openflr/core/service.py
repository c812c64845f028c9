"""The service facade: one object that owns every core component of a running openflr."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path

import anyio.to_thread

from openflr.config import Settings, make_private_dir
from openflr.core import rules
from openflr.core.audit import AuditLog
from openflr.core.browse import ListingCache
from openflr.core.budget import Budget
from openflr.core.families import PointFamily
from openflr.core.filecatalog import FileCatalog
from openflr.core.folderreaders import FolderReaders
from openflr.core.gates import KeyedGates
from openflr.core.mounts import Mount, MountManager
from openflr.core.mountstore import MountStore
from openflr.core.nodes import Nodes, stopped_message
from openflr.core.restores import Restores
from openflr.core.sessions import LogonSession, SessionManager
from openflr.core.sessionstore import SessionStore
from openflr.core.tasks import MOUNT, Task, TaskManager
from openflr.core.taskstore import TaskStore
from openflr.core.throttle import Attempt, LogonLockedError, LogonThrottle
from openflr.core.users import UserStore
from openflr.errors import NotFoundError, OpenflrError, UnauthorizedError
from openflr.guestfs.errors import ImageError
from openflr.inventory.catalog import Catalog
from openflr.inventory.model import Inventory, Replica, ReplicaPoint
from openflr.store.db import Database

log = logging.getLogger(__name__)


class Service:
    """Every core component of a running openflr: the database, accounts, logon sessions and their
    throttle, the inventory, mounts, listings, downloads' and mounts' budgets, restores and the audit
    log. The use cases (``core/browse.py``, ``core/downloads.py``, ``core/restores.py``) take it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        make_private_dir(settings.data_dir)
        self.db = Database(settings.database_url, auto_upgrade=settings.store.auto_upgrade)
        self.users = UserStore(self.db)
        self.throttle = LogonThrottle(self.db, settings.security)
        self.node = settings.node_name
        """This node's name among those sharing the database (``[cluster] node_name``)."""
        self.nodes = Nodes(self.db, self.node, settings.cluster.dead_after_seconds)
        recheck = settings.sessions.recheck_seconds
        self.session_store = SessionStore(self.db, self.node)
        self.sessions = SessionManager(
            settings.sessions.idle_timeout,
            settings.sessions.max_per_user,
            store=self.session_store,
            recheck_seconds=recheck,
            sweep_interval=settings.sessions.sweep_interval,
        )
        # argon2 verification costs ~64 MiB and tens of ms: bound how many run at once.
        self._password_checks = asyncio.Semaphore(2)
        self._pair_gates = KeyedGates()
        self.catalog = Catalog(settings)
        self.files = FileCatalog(settings)
        """The file catalog (search, versions, diffs); ``catalog`` is the inventory."""
        self.task_store = TaskStore(self.db, self.node)
        self.tasks = TaskManager(store=self.task_store)
        self.mounts = MountManager(
            idle_keep=settings.mounts.keep_idle,
            idle_seconds=settings.mounts.keep_idle_seconds,
            per_session=settings.mounts.max_per_session,
            open_timeout=settings.limits.mount_timeout,
            store=MountStore(self.db, self.node),
            recheck_seconds=recheck,
        )
        self.mounts.locate = self._locate
        readers = settings.mounts.folder_readers
        self.folder_readers = FolderReaders(readers) if readers > 0 else None
        self.listings = ListingCache(
            hold=self.mounts.hold,
            readers=self.folder_readers,
            reader_min_entries=settings.mounts.folder_reader_min_entries,
        )
        self.mount_budget = Budget("mounts", settings.limits.max_concurrent_mounts)
        self.download_budget = Budget("downloads", settings.limits.max_concurrent_downloads)
        self.audit = AuditLog(self.db, self.node)
        self.restores = Restores(settings, self.tasks, self.mounts, self.audit)
        self._scoped: dict[tuple[int, tuple[str, ...]], Inventory] = {}
        self.mounts.on_view_closed.append(lambda view: self.listings.forget_view(view.serial))
        self.sessions.add_end_listener(self._session_ended)
        self.catalog.add_listener(self._inventory_changed)
        self._files_started = False
        self._background: list[asyncio.Task[None]] = []
        self._jobs: set[asyncio.Task[None]] = set()
        self._stop_deadline: float | None = None

    async def logon(self, login_name: str, password: str, client: str = "") -> tuple[LogonSession, str]:
        """Check the password (off the event loop) and open a session; 401 on failure.

        Failed logons are throttled (core/throttle.py): a growing delay before the check, then
        429 while the account is locked for this client address.
        """
        try:
            attempt = await anyio.to_thread.run_sync(self.throttle.begin, login_name, client)
        except LogonLockedError:
            log.info("locked logon refused for %r from %s", login_name[:64], client or "-")
            raise
        user = None
        # Until the password is checked and its outcome recorded, an attempt counts as failed (also
        # when the client goes away mid-attempt); refused by a lock, it only stops counting.
        outcome: Callable[[Attempt], None] | None = self.throttle.failed
        try:
            if attempt.delay > 0:
                await asyncio.sleep(attempt.delay)
            async with self._pair_gates.one_at_a_time((attempt.account, attempt.address)):
                # Checks of one account from one address run one after the other, each after the
                # outcome of the previous one is recorded: a lock that one of them sets stops all
                # that wait behind it, however many arrive at once.
                try:
                    await anyio.to_thread.run_sync(self.throttle.check, attempt)
                except LogonLockedError:
                    outcome = self.throttle.release
                    raise
                try:
                    async with self._password_checks:
                        user = await anyio.to_thread.run_sync(self.users.authenticate, login_name, password)
                finally:
                    outcome = self.throttle.failed if user is None else self.throttle.succeeded
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(outcome, attempt)
                    outcome = None
        finally:
            if outcome is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(outcome, attempt)
        if user is None:
            log.info("failed logon for %r from %s", login_name[:64], client or "-")
            raise UnauthorizedError("Logon failed: unknown user name or bad password.")
        session, token = self.sessions.create(user, client)
        log.info("user %s logged on from %s (session %s)", user.name, client or "-", session.session_id)
        return session, token

    # --- inventory --------------------------------------------------------------------------------

    def inventory(self, session: LogonSession) -> Inventory:
        """The inventory as ``session``'s user may see it: only VMs in the user's restore scope."""
        current = self.catalog.current
        scope = session.user.restore_scope
        if not scope:
            return current
        key = (id(current), scope)
        scoped = self._scoped.get(key)
        if scoped is None:
            scoped = Inventory(current.server, problems=current.problems, scanned_at=current.scanned_at)
            for replica in current.replicas.values():
                if rules.in_scope(session.user, replica):
                    scoped.add(replica)
            if len(self._scoped) > 256:
                self._scoped.clear()
            self._scoped[key] = scoped
        return scoped

    def replica(self, session: LogonSession, replica_id: str) -> Replica:
        inv = self.inventory(session)
        replica = inv.replicas.get(bare_id(replica_id))
        if replica is None:
            raise NotFoundError(f"Replica {replica_id!r} does not exist.")
        return replica

    def point(self, session: LogonSession, point_id: str) -> tuple[Replica, ReplicaPoint]:
        inv = self.inventory(session)
        point = inv.points.get(bare_id(point_id))
        if point is None:
            raise NotFoundError(f"Replica point {point_id!r} does not exist.")
        return inv.replicas[point.replica_id], point

    # --- mounts ------------------------------------------------------------------------------------

    def start_mount(
        self, session: LogonSession, point_id: str, family: PointFamily = PointFamily.REPLICA
    ) -> Task:
        """Start mounting a point; the returned task finishes with a link to the mount or a reason."""
        replica, point = self.point(session, point_id)
        self.mount_budget.acquire()
        try:
            task = self.tasks.create(session, MOUNT)
            job = asyncio.create_task(self._mount_job(task, session, replica, point, family))
        except BaseException:
            self.mount_budget.release()
            raise
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        job.add_done_callback(lambda _job: self.mount_budget.release())
        return task

    async def _mount_job(
        self, task: Task, session: LogonSession, replica: Replica, point: ReplicaPoint, family: PointFamily
    ) -> None:
        try:
            mount: Mount = await anyio.to_thread.run_sync(self.mounts.mount, session, replica, point, family)
        except ImageError as exc:
            task.finish(
                False, f"The restore point cannot be mounted: {self._shown(exc.path, replica)}: {exc.problem}"
            )
        except OpenflrError as exc:
            task.finish(False, f"The restore point cannot be mounted: {exc.message}")
        except Exception as exc:  # a bug or an unexpected library error: keep serving, report it
            log.exception("mounting point %s failed", point.id)
            task.finish(False, f"The restore point cannot be mounted: internal error ({type(exc).__name__}).")
        else:
            notes = "; ".join(mount.view.notes)
            message = f"Ok ({notes})" if notes else "Ok"
            task.finish(
                True,
                message,
                [{"kind": "mount", "point": point.id, "mount": mount.mount_id, "family": family}],
            )

    @staticmethod
    def _shown(path: str, replica: Replica) -> str:
        try:
            return str(Path(path).relative_to(replica.folder.parent))
        except ValueError:
            return Path(path).name

    def _session_ended(self, session: LogonSession, _reason: str) -> None:
        # A session this node only lets go (it stops) lives on for the others: its mounts stay.
        self.mounts.drop_session(session, ended=session.ended)
        if session.ended:
            self.tasks.drop_session(session)

    def _locate(self, point_id: str) -> tuple[Replica, ReplicaPoint] | None:
        inv = self.catalog.current
        point = inv.points.get(point_id)
        return None if point is None else (inv.replicas[point.replica_id], point)

    async def mount_of(
        self, session: LogonSession, point_id: str, mount_id: str, family: PointFamily | None = None
    ) -> Mount:
        """The session's mount: at once when this node has it open, else read from the database and
        opened here (in a worker thread) when it was made through another node."""
        mount = self.mounts.cached(session, point_id, mount_id, family)
        if mount is not None:
            return mount
        return await anyio.to_thread.run_sync(self.mounts.get, session, point_id, mount_id, family)

    async def mounts_of_point(
        self, session: LogonSession, point_id: str, family: PointFamily | None = None
    ) -> list[Mount]:
        """The session's mounts of a point, those made through other nodes opened here."""
        return await anyio.to_thread.run_sync(self.mounts.of_point, session, point_id, family)

    def _inventory_changed(self, old: Inventory, new: Inventory) -> None:
        self._scoped.clear()
        removed = set(old.points) - set(new.points)
        if removed:
            self.mounts.points_removed(removed)
        if self._files_started:
            try:
                self.files.inventory_changed(new)
            except Exception:  # the catalog is an index: a fault in it never stops a rescan
                log.exception("updating the file catalog after a rescan failed")

    async def rescan(self) -> Inventory:
        return await anyio.to_thread.run_sync(self.catalog.rescan)

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Scan the datastores, then start background work (idle-session sweeper, heartbeat, periodic
        rescans). What this node's last run left running is closed first (only this node's)."""
        message = stopped_message(self.node)
        interrupted = self.audit.interrupt_running(message)
        if interrupted:
            log.warning("%d download(s) or restore(s) were cut short by the last shutdown", interrupted)
        failed = self.task_store.fail_running(self.node, message)
        if failed:
            log.warning("%d task(s) of this node's last run were still running: now failed", failed)
        self.nodes.register()
        await self.rescan()
        try:
            await anyio.to_thread.run_sync(self.files.start, self.catalog.current)
            self._files_started = True
        except Exception:
            log.exception("the file catalog could not start; search, versions and diffs are unavailable")
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not in the main thread
            loop.add_signal_handler(signal.SIGHUP, self._rescan_soon)
        self._background.append(asyncio.create_task(self._sweep_forever(), name="openflr-session-sweeper"))
        self._background.append(asyncio.create_task(self._heartbeat_forever(), name="openflr-heartbeat"))
        if self.settings.inventory.rescan_interval > 0:
            self._background.append(asyncio.create_task(self._rescan_forever(), name="openflr-rescan"))

    def begin_stop(self) -> None:
        """A stop was asked for (SIGTERM): running work has ``[server] grace_seconds`` from now."""
        if self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + self.settings.server.grace_seconds
            log.info(
                "stopping: running requests and restores have %g s to finish",
                self.settings.server.grace_seconds,
            )

    async def stop(self) -> None:
        """Stop: restores still running get what is left of the grace period (none when no stop was
        asked for by a signal: an in-process service ends at once), then end failed; the sessions and
        mounts stay in the database for the other nodes."""
        grace = 0.0 if self._stop_deadline is None else max(0.0, self._stop_deadline - time.monotonic())
        for task in list(self._background):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._background.clear()
        for job in list(self._jobs):
            job.cancel()
        await self.restores.stop(grace, self.node)
        message = stopped_message(self.node)
        for what, close in (
            ("tasks", lambda: self.task_store.fail_running(self.node, message)),
            ("audit records", lambda: self.audit.interrupt_running(message)),
            ("node", self.nodes.stopped),
        ):
            try:
                close()
            except Exception:
                log.exception("closing this node's %s failed", what)
        self.sessions.release_all("server shutdown")
        self.mounts.close_all()
        self.files.stop()
        if self.folder_readers is not None:
            self.folder_readers.close()
        self.db.close()

    def _rescan_soon(self) -> None:
        """SIGHUP: rescan now, in the background."""
        task = asyncio.create_task(self._rescan_logged(), name="openflr-rescan-now")
        self._background.append(task)
        task.add_done_callback(lambda t: self._background.remove(t) if t in self._background else None)

    async def _rescan_logged(self) -> None:
        try:
            await self.rescan()
        except Exception:
            log.exception("rescan failed")

    async def _rescan_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.inventory.rescan_interval)
            try:
                await self.rescan()
            except Exception:
                log.exception("periodic rescan failed")

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sessions.sweep_interval)
            try:
                await anyio.to_thread.run_sync(self.sweep)
            except Exception:
                log.exception("session sweep failed")

    def sweep(self) -> None:
        """Sessions' activity written, idle sessions ended, mounts unmounted elsewhere let go here,
        idle opened points closed (blocking)."""
        self.sessions.sweep()
        self.mounts.recheck()
        self.mounts.sweep_idle()

    async def _heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.cluster.heartbeat_seconds)
            try:
                await anyio.to_thread.run_sync(self.heartbeat)
            except Exception:
                log.exception("heartbeat failed")

    def heartbeat(self) -> None:
        """This node's heartbeat; close what nodes that stopped left running; cancel this node's tasks
        that clients deleted through other nodes; forget long-ended sessions (blocking)."""
        self.nodes.beat()
        for node in self.nodes.claim_dead():
            message = stopped_message(node)
            tasks = self.task_store.fail_running(node, message)
            records = self.audit.interrupt_running(message, node=node)
            log.warning(
                "node %s stopped sending heartbeats: %d task(s) failed, %d audit record(s) interrupted",
                node,
                tasks,
                records,
            )
        self.tasks.cancel_deleted()
        self.session_store.purge(time.time() - max(3600.0, 2 * self.settings.sessions.idle_timeout))


def bare_id(text: str) -> str:
    """``urn:veeam:VmReplicaPoint:<guid>`` or ``<GUID>`` -> ``<guid>``."""
    return text.strip().rsplit(":", 1)[-1].lower()
