"""Writing a file or a folder from a restore point into a restore target.

Every file goes to a temporary name in its destination folder (``.openflr-<random>.part``, short and
never derived from the full path) and is renamed into place only when it is complete, then given the
point's modification time. ``overwrite`` replaces existing files; otherwise an existing file is kept
and the restored copy is written beside it as ``RESTORED_<YYYYMMDD>_<HHMMSS>_<name>`` (the time of the
restore, UTC), with `` (2)``, `` (3)``… before the extension if that name is taken too. Folders merge
into existing folders. Failures of single items are collected; a target that is unreachable, refuses
the credentials or is full stops the restore.
"""

from __future__ import annotations

import logging
import posixpath
import secrets
import threading
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime

import anyio.to_thread

from openflr.errors import OpenflrError
from openflr.guestfs.filesystems.names import shown
from openflr.guestfs.view import GuestView
from openflr.restore.items import Item, children, read_chunks
from openflr.restore.pump import pump
from openflr.restore.targets.base import (
    Target,
    TargetAuthError,
    TargetError,
    TargetFullError,
    TargetLinkError,
    TargetUnreachableError,
    TargetUnsupportedError,
    TargetWriter,
)

log = logging.getLogger(__name__)

FATAL = (TargetAuthError, TargetUnreachableError, TargetFullError, TargetUnsupportedError)
"""Target errors after which no further item can succeed."""


class RestoreCancelled(OpenflrError):
    """The task was cancelled (deleted, or its logon session ended)."""

    status = 409


@dataclass
class RestoreReport:
    items: int = 0
    """Files, folders and links written (or, for permissions, updated)."""
    bytes: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(path relative to the restored item's parent, reason)."""
    renamed: list[tuple[str, str]] = field(default_factory=list)
    """(original path, name the restored copy got) where an existing item was kept."""


def restored_name(name: str, when: datetime, attempt: int = 1) -> str:
    """``RESTORED_20261127_113501_report.txt``; attempt 2 gives ``RESTORED_…_report (2).txt``."""
    base = f"RESTORED_{when:%Y%m%d_%H%M%S}_{name}"
    if attempt <= 1:
        return base
    stem, ext = posixpath.splitext(base)
    return f"{stem} ({attempt}){ext}"


def _temp_name() -> str:
    return f".openflr-{secrets.token_hex(6)}.part"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OpenflrError):
        return exc.message
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class RestoreWriter:
    """One restore of one item (file or folder) into one target location."""

    def __init__(
        self,
        view: GuestView,
        target: Target,
        dest: Sequence[str],
        *,
        overwrite: bool,
        when: datetime,
        cancel: threading.Event,
        report: RestoreReport,
        allowed: Callable[[str], str | None] = lambda name: None,
    ) -> None:
        self.view, self.target, self.dest = view, target, [shown(n) for n in dest]
        self.overwrite, self.when, self.cancel, self.report = overwrite, when, cancel, report
        self.allowed = allowed
        """Why a file (by name) must not be restored, or None: the user's extension rule."""
        self._dir_times: list[tuple[list[str], int]] = []

    def _check(self) -> None:
        if self.cancel.is_set():
            raise RestoreCancelled("The restore was cancelled.")

    def _dest_of(self, item: Item) -> list[str]:
        """Where ``item`` goes: shown names (each target writes them its way, see targets/base.py)."""
        return [*self.dest, *(shown(n) for n in item.rel[1:])]

    # --- copying -----------------------------------------------------------------------------------

    async def run(self, top: Item) -> None:
        """Restore ``top`` (recursively for a folder)."""
        if not top.is_dir:
            if len(self.dest) > 1:  # the folders on the way may be gone from the guest: recreate them
                try:
                    await self.target.makedirs(self.dest[:-1])
                except FATAL:
                    raise
                except TargetError as exc:  # e.g. a symbolic link on the way (TargetLinkError)
                    self._fail(top, exc.message)
                    return
            await self._one(top)
            return
        stack = [top]
        while stack:
            self._check()
            folder = stack.pop()
            if not await self._folder(folder):
                continue
            try:
                inside = await anyio.to_thread.run_sync(children, self.view, folder)
            except (OpenflrError, OSError) as exc:
                self._fail(folder, f"the folder cannot be read from the restore point: {_reason(exc)}")
                continue
            for item in inside:
                if item.is_dir:
                    continue
                self._check()
                await self._one(item)
            stack.extend(reversed([i for i in inside if i.is_dir]))
        for parts, mtime in reversed(
            self._dir_times
        ):  # deepest first: writing inside changes a folder's time
            try:
                await self.target.set_mtime(parts, mtime)
            except FATAL:
                raise
            except TargetError as exc:
                log.info("cannot set the time of %s: %s", "/".join(parts), exc.message)

    def _fail(self, item: Item, reason: str) -> None:
        self.report.failed.append((shown("/".join(item.rel)), reason))

    async def _folder(self, item: Item) -> bool:
        parts = self._dest_of(item)
        if parts:
            try:
                existing = await self.target.stat(parts)
                if existing is not None and existing.is_link:  # never written through
                    raise TargetLinkError.at("/".join(parts))
                if existing is not None and not existing.is_dir:
                    self._fail(
                        item, "a file of that name exists where the folder goes; nothing inside was restored"
                    )
                    return False
                if existing is None:
                    await self.target.makedirs(parts)
            except FATAL:
                raise
            except TargetError as exc:  # e.g. a symbolic link on the way (TargetLinkError)
                self._fail(item, exc.message)
                return False
        if item.entry.mtime_ns is not None and parts:
            self._dir_times.append((parts, item.entry.mtime_ns))
        self.report.items += 1
        return True

    async def _one(self, item: Item) -> None:
        why = self.allowed(item.entry.name)
        if why is not None:
            self._fail(item, why)
            return
        try:
            await self._file(item)
        except FATAL:
            raise
        except RestoreCancelled:
            raise
        except (TargetError, OpenflrError, OSError) as exc:
            self._fail(item, _reason(exc))

    async def _final_name(self, item: Item, parts: list[str]) -> list[str] | None:
        existing = await self.target.stat(parts)
        if existing is None:
            return parts
        if existing.is_dir:
            self._fail(item, "a folder of that name exists where the file goes")
            return None
        if self.overwrite:
            return parts
        for attempt in range(1, 1000):
            candidate = [*parts[:-1], restored_name(parts[-1], self.when, attempt)]
            if await self.target.stat(candidate) is None:
                self.report.renamed.append((shown("/".join(item.rel)), candidate[-1]))
                return candidate
        self._fail(item, "no free RESTORED_ name")
        return None

    async def _file(self, item: Item) -> None:
        parts = self._dest_of(item)
        final = await self._final_name(item, parts)
        if final is None:
            return
        if item.entry.is_link:
            target_text = b"".join(await anyio.to_thread.run_sync(lambda: list(read_chunks(self.view, item))))
            if await self.target.stat(final) is not None:
                await self.target.remove(final)
            try:
                await self.target.symlink(final, target_text.decode("utf-8", "surrogateescape"))
            except TargetUnsupportedError as exc:  # this item only: the rest can still be written
                self._fail(item, exc.message)
                return
            self.report.items += 1
            return
        temp = [*final[:-1], _temp_name()]
        writer: TargetWriter = await self.target.create(temp)
        written = 0
        try:
            async with aclosing(pump(read_chunks(self.view, item))) as chunks:
                async for data in chunks:
                    self._check()
                    await writer.write(data)
                    written += len(data)
            await writer.close()
        except TargetError as exc:
            await writer.abort()
            # Name the file the user restores, not the temporary name it was being written to.
            raise type(exc)(exc.message.replace(temp[-1], final[-1])) from None
        except BaseException:
            await writer.abort()
            raise
        if written != item.entry.size:
            await self.target.remove(temp)
            raise OSError(f"read {written} bytes of {item.entry.size} from the restore point")
        try:
            await self.target.rename(temp, final, replace=self.overwrite)
        except BaseException:
            await self.target.remove(temp)
            raise
        if item.entry.mtime_ns is not None:
            try:
                await self.target.set_mtime(final, item.entry.mtime_ns)
            except FATAL:
                raise
            except TargetError as exc:  # the content is there: a time the target cannot take is not a failure
                log.info("cannot set the time of %s: %s", "/".join(final), exc.message)
        self.report.items += 1
        self.report.bytes += written


async def restore_permissions(
    view: GuestView,
    target: Target,
    top: Item,
    dest: Sequence[str],
    cancel: threading.Event,
    report: RestoreReport,
) -> None:
    """Write each item's NTFS security descriptor from the point onto the same item on the target."""
    if not target.supports_security:
        await target.set_security(list(dest), b"")  # raises the target's own "cannot" error
    stack = [top]
    while stack:
        if cancel.is_set():
            raise RestoreCancelled("The restore was cancelled.")
        item = stack.pop()
        parts = [*(shown(n) for n in dest), *(shown(n) for n in item.rel[1:])]
        name = shown("/".join(item.rel))
        fs = item.where.root.fs if item.where.root is not None else None
        descriptor = None
        if fs is not None and item.where.node is not None:
            descriptor = await anyio.to_thread.run_sync(fs.security_descriptor, item.where.node)
        if descriptor is None:
            report.failed.append((name, "the restore point holds no Windows permissions for this item"))
        elif await target.stat(parts) is None:
            report.failed.append((name, "the item does not exist on the target (PermissionsOnly needs it)"))
        else:
            try:
                await target.set_security(parts, descriptor)
                report.items += 1
            except FATAL:
                raise
            except TargetError as exc:
                report.failed.append((name, exc.message))
        if item.is_dir:
            try:
                inside = await anyio.to_thread.run_sync(children, view, item)
            except (OpenflrError, OSError) as exc:
                report.failed.append(
                    (name, f"the folder cannot be read from the restore point: {_reason(exc)}")
                )
                continue
            stack.extend(reversed(inside))
