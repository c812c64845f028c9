"""``sftp://host[:port]/absolute/folder``: a folder on a POSIX guest over SSH, with asyncssh.

Logons use the password only (no keys, agent or SSH config of the server's own account); for a
``DOMAIN\\user`` name the part after the backslash is the SSH user. Host keys are checked against an
OpenSSH known_hosts file unless checking is switched off, which is logged on every connection.

Full disks: SFTP version 3 (what OpenSSH speaks) has no "no space" status; OpenSSH's sftp-server turns
ENOSPC into SSH_FX_FAILURE with the message "Failure". So when a write, close or create fails with
SSH_FX_FAILURE, the target asks for the folder's free space (``statvfs@openssh.com``): less free space
than was being written (or no free inodes) makes it a ``TargetFullError``. Servers that speak SFTP 5+ and
report SSH_FX_NO_SPACE_ON_FILESYSTEM or SSH_FX_QUOTA_EXCEEDED are mapped directly. A full quota on a v3
server stays a plain ``TargetError`` (statvfs does not show quotas).
"""

from __future__ import annotations

import logging
import posixpath
import stat as stat_mode
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import TypeVar

import anyio
import asyncssh

from openflr.guestfs.filesystems.base import Chunk
from openflr.restore.targets.base import (
    CheckedFolders,
    Credentials,
    Parts,
    Target,
    TargetAddress,
    TargetAuthError,
    TargetError,
    TargetFullError,
    TargetItem,
    TargetLinkError,
    TargetUnreachableError,
    TargetUnsupportedError,
    TargetWriter,
    check_name,
    posix_name,
)
from openflr.restore.targets.options import ConnectOptions

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_PORT = 22

_REASONS: dict[type[asyncssh.SFTPError], str] = {
    asyncssh.SFTPNoSuchFile: "it does not exist",
    asyncssh.SFTPNoSuchPath: "a folder on the way does not exist",
    asyncssh.SFTPPermissionDenied: "permission denied",
    asyncssh.SFTPFileAlreadyExists: "it already exists",
    asyncssh.SFTPWriteProtect: "the file system is read-only",
    asyncssh.SFTPNotADirectory: "a part of the path is not a folder",
    asyncssh.SFTPFileIsADirectory: "it is a folder",
    asyncssh.SFTPDirNotEmpty: "the folder is not empty",
    asyncssh.SFTPInvalidFilename: "the name is not valid on the server",
    asyncssh.SFTPOpUnsupported: "the server does not support this",
}


def _error(exc: BaseException, what: str) -> TargetError:
    if isinstance(exc, TargetError):
        return exc
    if isinstance(exc, asyncssh.SFTPNoSpaceOnFilesystem | asyncssh.SFTPQuotaExceeded):
        return TargetFullError(f"{what}: the target is full ({exc.reason})")
    if isinstance(exc, asyncssh.SFTPConnectionLost | asyncssh.SFTPNoConnection):
        return TargetUnreachableError(f"{what}: the connection was lost")
    if isinstance(exc, asyncssh.SFTPError):
        reason = next((text for kind, text in _REASONS.items() if isinstance(exc, kind)), None)
        return TargetError(f"{what}: {reason or exc.reason or type(exc).__name__}")
    if isinstance(exc, asyncssh.PermissionDenied):
        return TargetAuthError(f"{what}: the server refused the user name or password")
    if isinstance(exc, asyncssh.DisconnectError):
        return TargetUnreachableError(f"{what}: {exc.reason or type(exc).__name__}")
    if isinstance(exc, asyncssh.ChannelOpenError):
        return TargetError(f"{what}: the server refused to start SFTP ({exc.reason})")
    if isinstance(exc, TimeoutError):
        return TargetUnreachableError(f"{what}: timed out")
    if isinstance(exc, OSError):
        return TargetUnreachableError(f"{what}: {exc.strerror or type(exc).__name__}")
    return TargetError(f"{what}: {type(exc).__name__}")


_FAILURES = (asyncssh.Error, OSError)
"""What asyncssh raises: ``asyncssh.Error`` (SFTP and SSH errors) and OSError (sockets, TimeoutError)."""


class _Writer(TargetWriter):
    def __init__(self, target: SftpTarget, parts: Parts, file: asyncssh.SFTPClientFile) -> None:
        self.target, self.parts = target, parts
        self.file: asyncssh.SFTPClientFile | None = file
        self.offset = 0

    async def write(self, data: Chunk) -> None:
        file = self.file
        if file is None:
            raise TargetError(f"writing {self.target.shown(self.parts)}: the file is closed")
        what = f"writing {self.target.shown(self.parts)}"
        try:
            with anyio.fail_after(self.target.timeout):
                # split into parallel (pipelined) SFTP writes; asyncssh expects bytes
                await file.write(bytes(data) if isinstance(data, memoryview) else data, self.offset)
        except _FAILURES as exc:
            raise await self.target.full_or(exc, what, self.parts, len(data)) from None
        self.offset += len(data)

    async def close(self) -> None:
        file, self.file = self.file, None
        if file is None:
            return
        what = f"writing {self.target.shown(self.parts)}"
        try:
            with anyio.fail_after(self.target.timeout):
                await file.close()
        except _FAILURES as exc:
            raise await self.target.full_or(exc, what, self.parts, 1) from None

    async def abort(self) -> None:
        file, self.file = self.file, None
        with anyio.move_on_after(self.target.timeout, shield=True):
            if file is not None:
                with suppress(Exception):
                    await file.close()
            with suppress(Exception):
                await self.target.remove(self.parts)


class SftpTarget(Target):
    def __init__(
        self,
        address: TargetAddress,
        conn: asyncssh.SSHClientConnection,
        sftp: asyncssh.SFTPClient,
        options: ConnectOptions,
    ) -> None:
        self.address = address
        self.conn, self.sftp = conn, sftp
        self.timeout = options.timeout
        self.base = ("/" + "/".join(check_name(p) for p in address.path)).encode("utf-8")
        self._checked = CheckedFolders()

    def shown(self, parts: Parts) -> str:
        return "/".join(parts) or "the target folder"

    def path(self, parts: Parts) -> bytes:
        """The absolute path of ``parts`` on the server, each name as its on-disk bytes."""
        return posixpath.join(self.base, *(posix_name(p) for p in parts))

    async def call(self, what: str, func: Callable[[], Awaitable[T]]) -> T:
        """Run one SFTP request (with the reply timeout); its failure becomes a ``TargetError``."""
        try:
            with anyio.fail_after(self.timeout):
                return await func()
        except _FAILURES as exc:
            raise _error(exc, what) from None

    async def full_or(self, exc: BaseException, what: str, parts: Parts, needed: int) -> TargetError:
        """The error for a failed write: ``TargetFullError`` if the folder has no room for ``needed``."""
        if isinstance(exc, asyncssh.SFTPFailure):
            folder = self.path(parts[:-1])
            try:
                with anyio.fail_after(self.timeout):
                    vfs = await self.sftp.statvfs(folder)
            except _FAILURES:
                pass  # no statvfs@openssh.com: cannot tell
            else:
                free = vfs.bavail * vfs.frsize
                if free < needed or (vfs.files > 0 and vfs.favail == 0):
                    return TargetFullError(f"{what}: the target is full ({free} bytes free)")
        return _error(exc, what)

    async def _lstat(self, parts: Parts, what: str) -> asyncssh.SFTPAttrs | None:
        try:
            with anyio.fail_after(self.timeout):
                return await self.sftp.lstat(self.path(parts))
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
            return None
        except _FAILURES as exc:
            raise _error(exc, what) from None

    async def _walk(self, folders: Parts, what: str, create: bool = False) -> bool:
        """Check (with ``lstat``, one name at a time) that every folder of ``folders`` is a real folder.

        A symbolic link on the way raises ``TargetLinkError``: SFTP servers resolve paths themselves, so a
        link below the target folder would be followed. Missing folders are made with ``create``; without
        it the answer is False when one is missing.
        """
        for depth in range(1, len(folders) + 1):
            parts = folders[:depth]
            if parts in self._checked:
                continue
            attrs = await self._lstat(parts, what)
            if attrs is None:
                if not create:
                    return False
                try:
                    with anyio.fail_after(self.timeout):
                        await self.sftp.mkdir(self.path(parts))
                    self._checked.add(parts)
                    continue
                except _FAILURES as exc:
                    attrs = await self._lstat(parts, what)  # made meanwhile?
                    if attrs is None:
                        raise _error(exc, what) from None
            mode = attrs.permissions
            if mode is not None and stat_mode.S_ISLNK(mode):
                raise TargetLinkError.at(self.shown(parts))
            if mode is None or not stat_mode.S_ISDIR(mode):
                raise TargetError(f"{what}: a file is in the way")
            self._checked.add(parts)
        return True

    async def stat(self, parts: Parts) -> TargetItem | None:
        path = self.path(parts)
        if not await self._walk(parts[:-1], f"checking {self.shown(parts)}"):
            return None
        try:
            with anyio.fail_after(self.timeout):
                attrs = await self.sftp.lstat(path)
        except asyncssh.SFTPNoSuchFile:
            return None
        except _FAILURES as exc:
            raise _error(exc, f"checking {self.shown(parts)}") from None
        is_dir = attrs.permissions is not None and stat_mode.S_ISDIR(attrs.permissions)
        mtime_ns = None
        if attrs.mtime is not None:  # SFTP 3 has whole seconds; 4+ adds nanoseconds
            mtime_ns = attrs.mtime * 1_000_000_000 + (attrs.mtime_ns or 0)
        size = 0 if is_dir else attrs.size or 0
        is_link = attrs.permissions is not None and stat_mode.S_ISLNK(attrs.permissions)
        return TargetItem(parts[-1] if parts else "", is_dir, size, mtime_ns, is_link)

    async def makedirs(self, parts: Parts) -> None:
        # Only below the target folder (which exists): asyncssh's makedirs walks from "/" and follows links.
        await self._walk(parts, f"creating folder {self.shown(parts)}", create=True)

    async def create(self, parts: Parts) -> TargetWriter:
        path, what = self.path(parts), f"creating {self.shown(parts)}"
        await self._walk(parts[:-1], what)
        try:
            with anyio.fail_after(self.timeout):
                file = await self.sftp.open(path, "xb")  # CREAT|EXCL: fails if anything is there
        except _FAILURES as exc:
            raise await self.full_or(exc, what, parts, 1) from None
        return _Writer(self, parts, file)

    async def rename(self, src: Parts, dst: Parts, replace: bool) -> None:
        src_path, dst_path = self.path(src), self.path(dst)
        what = f"renaming {self.shown(src)} to {dst[-1]}"
        await self._walk(src[:-1], what)
        if dst[:-1] != src[:-1]:
            await self._walk(dst[:-1], what)
        if replace:
            try:  # posix-rename@openssh.com: rename(2), atomic
                with anyio.fail_after(self.timeout):
                    await self.sftp.posix_rename(src_path, dst_path)
                return
            except asyncssh.SFTPOpUnsupported:
                pass
            except _FAILURES as exc:
                raise _error(exc, what) from None
            # Servers without the extension: not atomic, the old file goes first.
            if (await self.stat(dst)) is not None:
                await self.remove(dst)
        try:  # SFTP 3 rename never replaces (OpenSSH: link + unlink)
            with anyio.fail_after(self.timeout):
                await self.sftp.rename(src_path, dst_path)
        except _FAILURES as exc:
            if isinstance(exc, asyncssh.SFTPFailure) and await self.stat(dst) is not None:
                raise TargetError(f"{what}: {dst[-1]} already exists") from None
            raise _error(exc, what) from None

    async def remove(self, parts: Parts) -> None:
        path = self.path(parts)
        if not await self._walk(parts[:-1], f"removing {self.shown(parts)}"):
            return
        try:
            with anyio.fail_after(self.timeout):
                await self.sftp.remove(path)
        except asyncssh.SFTPNoSuchFile:
            pass
        except _FAILURES as exc:
            raise _error(exc, f"removing {self.shown(parts)}") from None

    async def set_mtime(self, parts: Parts, mtime_ns: int) -> None:
        # SFTP 3 carries whole seconds: the sub-second part is dropped (rounded down).
        path, what = self.path(parts), f"setting the time of {self.shown(parts)}"
        times = (mtime_ns, mtime_ns)
        if self.sftp.version < 4 and not 0 <= mtime_ns // 1_000_000_000 < 2**32:
            raise TargetError(f"{what}: SFTP version 3 carries times from 1970 to 2106 only")
        await self._walk(parts[:-1], what)
        try:  # lsetstat@openssh.com: never follows a final symlink
            with anyio.fail_after(self.timeout):
                await self.sftp.utime(path, ns=times, follow_symlinks=False)
            return
        except asyncssh.SFTPOpUnsupported:
            pass
        except _FAILURES as exc:
            raise _error(exc, what) from None
        # Without the extension setstat follows links: never let it touch what a link points to.
        attrs = await self.call(what, lambda: self.sftp.lstat(path))
        if attrs.permissions is not None and stat_mode.S_ISLNK(attrs.permissions):
            raise TargetUnsupportedError(f"{what}: the server cannot set the time of a symbolic link")
        await self.call(what, lambda: self.sftp.utime(path, ns=times))

    async def symlink(self, parts: Parts, target: str) -> None:
        # Stored as the guest had it, wherever it points: no later call goes through it (``_walk``).
        path, what = self.path(parts), f"creating link {self.shown(parts)}"
        await self._walk(parts[:-1], what)
        link = target.encode("utf-8", "surrogateescape")  # the guest's bytes, as the link held them
        await self.call(what, lambda: self.sftp.symlink(link, path))

    async def aclose(self) -> None:
        with anyio.move_on_after(self.timeout, shield=True):
            self.sftp.exit()
            with suppress(Exception):
                await self.sftp.wait_closed()
            self.conn.close()
            with suppress(Exception):
                await self.conn.wait_closed()


def _host_key_problem(known_hosts: Path, host: str, port: int) -> str:
    """Why the host key was refused: unknown host, or a different key than the one listed."""
    with suppress(Exception):
        listed = asyncssh.read_known_hosts(str(known_hosts)).match(host, host, port)[0]
        if listed:
            return f"it differs from the key {known_hosts} lists for {host}:{port}"
    return f"{known_hosts} lists no key for {host}:{port}"


async def open_sftp_target(
    address: TargetAddress, credentials: Credentials, options: ConnectOptions
) -> Target:
    """Log on to ``address`` (``sftp://host[:port]/folder``) with the password; check the folder exists."""
    port = address.port or DEFAULT_PORT
    where = address.url
    known_hosts = options.known_hosts if options.check_host_keys else None
    if options.check_host_keys:
        if known_hosts is None or not known_hosts.is_file():
            missing = f" ({known_hosts} does not exist)" if known_hosts else ""
            raise TargetUnreachableError(
                f"{where}: no known-hosts file is configured to check the SSH host key against{missing}"
            )
    else:
        log.warning(
            "not checking the SSH host key of %s:%s: host key checking is switched off", address.host, port
        )
    _, user = credentials.domain_and_user
    try:
        conn = await asyncssh.connect(
            address.host,
            port,
            username=user,
            password=credentials.password,
            known_hosts=str(known_hosts) if known_hosts else None,
            client_keys=None,
            agent_path=None,
            config=None,
            gss_host=None,
            preferred_auth=("password", "keyboard-interactive"),
            connect_timeout=options.timeout,
        )
    except asyncssh.HostKeyNotVerifiable:
        problem = _host_key_problem(known_hosts, address.host, port) if known_hosts else "unknown key"
        raise TargetUnreachableError(f"{where}: the SSH host key is not trusted: {problem}") from None
    except _FAILURES as exc:
        raise _error(exc, f"connecting to {where}") from None
    try:
        try:
            with anyio.fail_after(options.timeout):
                sftp = await conn.start_sftp_client()
        except _FAILURES as exc:
            raise _error(exc, f"starting SFTP on {where}") from None
        target = SftpTarget(address, conn, sftp, options)
        item = await target.stat(())
        if item is None or not item.is_dir:
            await target.aclose()
            raise TargetUnreachableError(f"{where}: the folder does not exist")
    except BaseException:
        conn.close()
        raise
    return target
