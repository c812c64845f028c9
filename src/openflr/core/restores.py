"""Restores behind ``FileRestoreFromMountPoint`` tasks: rules, restore targets, the job, the audit.

``ForDirectDownload`` needs no work up front: the task finishes at once with a ``Download`` link that
streams the item live from the point. ``ToOriginalLocation`` runs a job that writes the item into the
guest through the restore target configured for the item's guest root.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from openflr.config import GuestAccess, Settings
from openflr.core import rules
from openflr.core.audit import CANCELLED, FAILED, SUCCESS, AuditLog
from openflr.core.mounts import Mount, MountManager
from openflr.core.names import shown
from openflr.core.sessions import LogonSession
from openflr.core.tasks import FILE_RESTORE, Task, TaskManager
from openflr.core.users import User
from openflr.errors import OpenflrError
from openflr.guestfs.view import GuestView, Located
from openflr.inventory.model import Replica
from openflr.restore.items import item_of
from openflr.restore.targets.base import Credentials, Target, TargetAddress, TargetError
from openflr.restore.targets.connect import ConnectOptions, connect
from openflr.restore.writer import RestoreCancelled, RestoreReport, RestoreWriter, restore_permissions

__all__ = [
    "Credentials",
    "NoTargetError",
    "RestoreRequest",
    "Restores",
    "guest_access",
    "resolve_target",
    "summary",
]

log = logging.getLogger(__name__)

_SHOWN = 10


@dataclass(frozen=True)
class RestoreRequest:
    direct_download: bool
    overwrite: bool = False
    permissions_only: bool = False
    credentials: Credentials | None = None


class NoTargetError(OpenflrError):
    """No restore target is configured for the item's guest root."""

    status = 409


def guest_access(settings: Settings, replica: Replica) -> GuestAccess | None:
    """The first ``[[datastores.guests]]`` entry matching the VM, else the VM manifest's ``[restore]``."""
    names = (replica.display_name.casefold(), replica.vm_name.casefold())
    for store in settings.datastores:
        if store.name != replica.datastore:
            continue
        for access in store.guests:
            if any(fnmatch.fnmatchcase(n, access.vm.casefold()) for n in names):
                return access
    return replica.guest


def resolve_target(access: GuestAccess | None, guest_path: str) -> tuple[TargetAddress, list[str], str]:
    """(target, path below it, the guest root key that matched) for an EM path like ``C:/Users/x``.

    Only ``/`` separates in ``guest_path`` (``GuestView.path_of``): a ``\\`` there is part of a name.
    Keys may be written with either."""
    folded = guest_path.casefold()
    best: tuple[int, str, str] | None = None
    for key, url in (access.targets if access else {}).items():
        k = key.replace("\\", "/").rstrip("/").casefold() or "/"
        if k.startswith("/") != folded.startswith("/"):
            continue
        matches = k == "/" or folded == k or folded.startswith(k + "/")
        if matches and (best is None or len(k) > best[0]):
            best = (len(k), key, url)
    if best is None:
        raise NoTargetError(
            f"No restore target is configured for {guest_path!r}: add the guest root to the targets of this "
            "VM ([[datastores.guests]] in the configuration, or [restore] in its openflr-vm.toml)."
        )
    length, key, url = best
    rest = guest_path[0 if length == 1 else length :]
    return TargetAddress.parse(url), [p for p in rest.split("/") if p], key


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"


def _first(pairs: list[tuple[str, str]], joiner: str, sep: str) -> str:
    """The first few ``a<joiner>b`` pairs, then how many more there are."""
    shown = sep.join(f"{a}{joiner}{b}" for a, b in pairs[:_SHOWN])
    return shown + (f"{sep}and {len(pairs) - _SHOWN} more" if len(pairs) > _SHOWN else "")


def summary(report: RestoreReport, where: str, permissions: bool) -> str:
    verb = "Updated the permissions of" if permissions else "Restored"
    text = f"{verb} {report.items} item(s)"
    if not permissions:
        text += f" ({_size(report.bytes)})"
    text += f" to {where}"
    if report.renamed:
        text += "; existing items kept, restored copies written beside them: "
        text += _first(report.renamed, " as ", ", ")
    if report.failed:
        text += f". {len(report.failed)} item(s) failed: " + _first(report.failed, ": ", "; ")
    return text + "."


class Restores:
    def __init__(self, settings: Settings, tasks: TaskManager, mounts: MountManager, audit: AuditLog) -> None:
        self.settings, self.tasks, self.mounts, self.audit = settings, tasks, mounts, audit
        self._slots = asyncio.Semaphore(max(1, settings.restore.max_parallel))
        self._jobs: set[asyncio.Task[None]] = set()
        self._stopping = ""
        """Set when this node stops: what a restore cut short says."""

    @property
    def connect_options(self) -> ConnectOptions:
        return ConnectOptions(
            timeout=self.settings.restore.connect_timeout,
            known_hosts=self.settings.known_hosts,
            check_host_keys=self.settings.restore.check_host_keys,
        )

    def destination(self, mount: Mount, where: Located) -> str:
        """Where a restore of ``where`` to its original location writes (a target URL and the path
        below it); 409 when no restore target is configured for it."""
        path = shown(mount.view.path_of(where.root, where.parts))
        address, dest, _key = resolve_target(guest_access(self.settings, mount.replica), path)
        return address.url.rstrip("/") + "/" + "/".join(dest)

    def start(
        self, session: LogonSession, mount: Mount, where: Located, request: RestoreRequest, client: str
    ) -> Task:
        """Check the rules (403 before any task exists) and start the restore."""
        user = session.user
        entry = where.entry
        if request.direct_download:
            rules.check_download(user)
        if entry is not None and not entry.is_dir:
            rules.check_file(user, entry.name)
        task = self.tasks.create(session, FILE_RESTORE)
        path = shown(mount.view.path_of(where.root, where.parts))
        if request.direct_download:
            task.finish(
                True,
                "Ok",
                [
                    {
                        "kind": "download",
                        "point": mount.point_id,
                        "mount": mount.mount_id,
                        "family": mount.family,
                        "path": path,
                    }
                ],
            )
            return task
        job = asyncio.create_task(self._run(task, session, mount, where, request, client))
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        return task

    async def _run(
        self,
        task: Task,
        session: LogonSession,
        mount: Mount,
        where: Located,
        request: RestoreRequest,
        client: str,
    ) -> None:
        view = mount.view
        path = shown(view.path_of(where.root, where.parts))
        replica = mount.replica
        action = "restore-permissions" if request.permissions_only else "restore"
        report = RestoreReport()
        target_text = ""
        record = self.audit.start(
            user=session.user.name,
            client=client,
            action=action,
            vm=replica.display_name,
            point_id=mount.point_id,
            point_time=mount.point.created,
            path=path,
            target="",
            task_id=task.id,
        )
        try:
            access = guest_access(self.settings, replica)
            address, dest, _key = resolve_target(access, path)
            target_text = address.url.rstrip("/") + "/" + "/".join(dest)
            credentials = request.credentials
            if credentials is None and access is not None and access.username:
                credentials = Credentials(access.username, access.resolve_password())
            if credentials is None and address.scheme != "file":
                raise TargetError(
                    f"No guest credentials for {replica.display_name}: send GuestCredentials with the "
                    "request or configure a username and password for this VM."
                )
            with self.mounts.hold(mount) as held:
                async with self._slots:
                    target = await connect(address, credentials, self.connect_options)
                    async with target:
                        await self._write(held, target, where, dest, request, task, report, session.user)
        except asyncio.CancelledError:
            message = self._stopping or "The restore was cancelled: the server stopped."
            if report.items:
                message += f" {report.items} item(s) were restored before it stopped."
            self._end(task, record, FAILED, False, message, report, target_text)
            raise
        except RestoreCancelled as exc:
            self._end(task, record, CANCELLED, False, exc.message, report, target_text)
        except OpenflrError as exc:
            prefix = (
                "The restore failed"
                if report.items == 0
                else f"The restore stopped after {report.items} item(s)"
            )
            self._end(task, record, FAILED, False, f"{prefix}: {exc.message}", report, target_text)
        except Exception as exc:
            log.exception("restore of %s failed", path)
            self._end(
                task,
                record,
                FAILED,
                False,
                f"The restore failed: internal error ({type(exc).__name__}).",
                report,
                target_text,
            )
        else:
            message = summary(report, target_text, request.permissions_only)
            ok = not report.failed
            self._end(task, record, SUCCESS if ok else FAILED, ok, message, report, target_text)

    async def _write(
        self,
        view: GuestView,
        target: Target,
        where: Located,
        dest: list[str],
        request: RestoreRequest,
        task: Task,
        report: RestoreReport,
        user: User,
    ) -> None:
        top = item_of(view, where)
        if request.permissions_only:
            await restore_permissions(view, target, top, dest, task.cancel, report)
            return

        await RestoreWriter(
            view,
            target,
            dest,
            overwrite=request.overwrite,
            when=datetime.now(UTC),
            cancel=task.cancel,
            report=report,
            allowed=lambda name: rules.refusal(user, name),
        ).run(top)

    def _end(
        self,
        task: Task,
        record: int,
        result: str,
        success: bool,
        message: str,
        report: RestoreReport,
        target: str,
    ) -> None:
        task.finish(success, message)
        self.audit.finish(
            record,
            result,
            bytes_done=report.bytes,
            items=report.items,
            failed_items=len(report.failed),
            message=message,
            target=target,
        )
        log.info("task %s: %s", task.id, message)

    async def stop(self, grace: float = 0.0, node: str = "") -> None:
        """Let running restores finish within ``grace`` seconds; the rest are cancelled and end failed,
        saying that the node stopped."""
        jobs = list(self._jobs)
        if jobs and grace > 0:
            log.info("waiting up to %g s for %d restore(s) to finish", grace, len(jobs))
            await asyncio.wait(jobs, timeout=grace)
        self._stopping = (
            f"The restore did not finish: the openflr node {node or 'running it'} stopped before it was done."
        )
        jobs = [job for job in self._jobs if not job.done()]
        for job in jobs:
            job.cancel()
        if jobs:
            await asyncio.wait(jobs, timeout=5)
