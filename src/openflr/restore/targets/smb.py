"""``smb://host[:port]/share/folder``: a Windows (or Samba) share over SMB 2/3, with smbprotocol.

smbprotocol is blocking: every operation (and every 1 MiB chunk written) is one call in a worker thread.
Each target has its own connection cache, so its TCP connection, session and tree connects are never
shared with another target (smbclient's global cache is not used, its global ``ClientConfig`` is only
read); ``aclose`` disconnects them. Logons use NTLM with the user name as given (``DOMAIN\\user`` is split
into domain and user by the NTLM layer). Signing is required (every SMB 2/3 server supports it); encryption
is used when the server asks for it. ``options.timeout`` bounds connecting and negotiating; smbprotocol's
file calls have no reply timeout of their own and wait as long as the connection stays up. Messages name
paths relative to the share and never hold the password.
"""

from __future__ import annotations

import errno
import logging
import re
import stat as stat_mode
import uuid
from collections.abc import Callable
from contextlib import suppress
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import smbclient  # type: ignore[import-untyped,unused-ignore]
from smbprotocol.connection import Connection  # type: ignore[import-untyped,unused-ignore]
from smbprotocol.exceptions import (  # type: ignore[import-untyped,unused-ignore]
    SMBAuthenticationError,
    SMBConnectionClosed,
    SMBException,
    SMBOSError,
    SMBResponseException,
)
from smbprotocol.header import NtStatus  # type: ignore[import-untyped,unused-ignore]
from smbprotocol.open import InfoAdditionalInformation  # type: ignore[import-untyped,unused-ignore]

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
    TargetNameError,
    TargetUnreachableError,
    TargetWriter,
    check_name,
)
from openflr.restore.targets.options import ConnectOptions
from openflr.seams.smbclient_io import connection_cache_key, read_security, write_security

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_PORT = 445
SECURITY_PARTS = (
    InfoAdditionalInformation.OWNER_SECURTIY_INFORMATION
    | InfoAdditionalInformation.GROUP_SECURITY_INFORMATION
    | InfoAdditionalInformation.DACL_SECURITY_INFORMATION
)
"""What ``set_security`` writes and ``get_security`` reads: owner, group and DACL (no SACL)."""
MAX_SECURITY_DESCRIPTOR = 65536
FILE_ATTRIBUTE_REPARSE_POINT = 0x400
"""Symbolic links, junctions, mount points and other reparse points: never followed below the target."""

_FULL = {NtStatus.STATUS_DISK_FULL, 0xC0000044}  # STATUS_QUOTA_EXCEEDED
_AUTH = {
    NtStatus.STATUS_LOGON_FAILURE,
    NtStatus.STATUS_WRONG_PASSWORD,
    NtStatus.STATUS_PASSWORD_EXPIRED,
    0xC000006E,  # STATUS_ACCOUNT_RESTRICTION
    0xC000006F,  # STATUS_INVALID_LOGON_HOURS
    0xC0000070,  # STATUS_INVALID_WORKSTATION
    0xC0000072,  # STATUS_ACCOUNT_DISABLED
    0xC0000193,  # STATUS_ACCOUNT_EXPIRED
    0xC0000224,  # STATUS_PASSWORD_MUST_CHANGE
    0xC0000234,  # STATUS_ACCOUNT_LOCKED_OUT
}
_REASONS = {
    NtStatus.STATUS_OBJECT_NAME_COLLISION: "it already exists",
    NtStatus.STATUS_OBJECT_NAME_NOT_FOUND: "it does not exist",
    NtStatus.STATUS_OBJECT_PATH_NOT_FOUND: "a folder on the way does not exist",
    NtStatus.STATUS_ACCESS_DENIED: "access denied",
    NtStatus.STATUS_SHARING_VIOLATION: "it is in use",
    NtStatus.STATUS_BAD_NETWORK_NAME: "the share does not exist",
    NtStatus.STATUS_FILE_IS_A_DIRECTORY: "it is a folder",
    NtStatus.STATUS_NOT_A_DIRECTORY: "a part of the path is not a folder",
    NtStatus.STATUS_DIRECTORY_NOT_EMPTY: "the folder is not empty",
    NtStatus.STATUS_OBJECT_NAME_INVALID: "the name is not valid on the share",
    NtStatus.STATUS_DELETE_PENDING: "it is being deleted",
}


def _ntstatus(exc: BaseException) -> int | None:
    if isinstance(exc, SMBOSError):
        return int(exc.ntstatus)
    if isinstance(exc, SMBResponseException):
        return int(exc.status)
    return None


def _status_name(status: int) -> str:
    for name, value in vars(NtStatus).items():
        if name.startswith("STATUS_") and value == status:
            return str(name)
    return f"NTSTATUS 0x{status:08x}"


def _network_reason(exc: BaseException) -> str | None:
    """Why the connection failed, if ``exc`` is a network error (smbprotocol wraps those in ValueError)."""
    cause: BaseException | None = exc
    if isinstance(exc, ValueError):
        cause = exc.__cause__
    if isinstance(cause, TimeoutError):
        return "timed out"
    if isinstance(cause, OSError) and not isinstance(cause, SMBOSError):
        return cause.strerror or type(cause).__name__
    if isinstance(exc, SMBConnectionClosed):
        return "the server closed the connection"
    if type(exc) is SMBException and "timeout" in str(exc):  # smbprotocol's reply timeout
        return "timed out"
    return None


def _error(exc: BaseException, what: str) -> TargetError:
    if isinstance(exc, TargetError):
        return exc
    status = _ntstatus(exc)
    if status in _FULL:
        return TargetFullError(f"{what}: the share is full")
    if status in _AUTH or isinstance(exc, SMBAuthenticationError):
        return TargetAuthError(f"{what}: the server refused the user name or password")
    network = _network_reason(exc)
    if network is not None:
        return TargetUnreachableError(f"{what}: {network}")
    if status is not None:
        return TargetError(f"{what}: {_REASONS.get(status) or _status_name(status)}")
    return TargetError(f"{what}: {type(exc).__name__}")


class _Writer(TargetWriter):
    def __init__(self, target: SmbTarget, parts: Parts, raw: Any) -> None:
        self.target, self.parts, self.raw = target, parts, raw

    async def write(self, data: Chunk) -> None:
        raw = self.raw
        if raw is None:
            raise TargetError(f"writing {self.target.shown(self.parts)}: the file is closed")

        def run() -> None:
            view = memoryview(data)
            while view:
                done = int(raw.write(view))  # one SMB2 WRITE, as large as the credits allow
                if done <= 0:
                    raise TargetError(f"writing {self.target.shown(self.parts)}: the server wrote nothing")
                view = view[done:]

        await self.target.call(f"writing {self.target.shown(self.parts)}", run)

    async def close(self) -> None:
        raw, self.raw = self.raw, None
        if raw is None:
            return

        def run() -> None:
            try:
                raw.flush()
            finally:
                raw.close()

        await self.target.call(f"writing {self.target.shown(self.parts)}", run)

    async def abort(self) -> None:
        raw, self.raw = self.raw, None
        with anyio.move_on_after(self.target.timeout, shield=True):
            if raw is not None:
                with suppress(Exception):
                    await anyio.to_thread.run_sync(raw.close)
            with suppress(Exception):
                await self.target.remove(self.parts)


_NOT_IN_SMB_NAMES = re.compile('[\x00-\x1f:*?"<>|/\\\\]')
"""Characters Windows refuses in a name; a ``:`` would name a stream of another file."""


def smb_name(name: str) -> str:
    """The shown name ``name`` as it goes to the share (SMB names are UTF-16 text: the shown name is
    written, escapes included, see docs/STORAGE-NOTES.md "Names"); ``TargetNameError`` for a name
    Windows cannot hold."""
    found = _NOT_IN_SMB_NAMES.search(name)
    if name in ("", ".", "..") or found is not None:
        why = "" if found is None else f": Windows names cannot hold {found.group()!r}"
        raise TargetNameError(f"{name!r} cannot be written to an SMB share{why}")
    return name


class SmbTarget(Target):
    supports_security = True

    def __init__(self, address: TargetAddress, credentials: Credentials, options: ConnectOptions) -> None:
        self.address = address
        self.timeout = options.timeout
        self.share = check_name(address.path[0])
        self.base = tuple(check_name(p) for p in address.path[1:])
        self._cache: dict[str, Any] = {}
        self._checked = CheckedFolders()
        self._session = {
            "username": credentials.username,
            "password": credentials.password,
            "port": address.port or DEFAULT_PORT,
            "connection_timeout": options.timeout,
            "connection_cache": self._cache,
            "auth_protocol": "ntlm",
        }

    def shown(self, parts: Parts) -> str:
        """``parts`` as a path relative to the share, for messages."""
        return "/".join((*self.base, *parts)) or "the share root"

    def unc(self, parts: Parts) -> str:
        names = [*self.base, *(smb_name(p) for p in parts)]
        return "\\".join([f"\\\\{self.address.host}", self.share, *names])

    async def call(self, what: str, func: Callable[[], T]) -> T:
        """Run a blocking smbprotocol call in a worker thread; its failure becomes a ``TargetError``."""
        try:
            return await anyio.to_thread.run_sync(func)
        except (SMBException, OSError, ValueError) as exc:
            raise _error(exc, what) from None

    async def open(self) -> None:
        """Log on and check that the share and folder exist."""
        path, port = self.unc(()), self.address.port or DEFAULT_PORT
        key = connection_cache_key(self.address.host, port)

        def is_folder(unc: str) -> bool:
            try:
                return stat_mode.S_ISDIR(smbclient.stat(unc, **self._session).st_mode)
            except SMBOSError as exc:
                if exc.errno == errno.ENOENT:
                    return False
                raise

        def run() -> str | None:
            if key not in self._cache:  # connect here: smbclient leaks a connection whose negotiation fails
                connection = Connection(uuid.uuid4(), self.address.host, port, require_signing=True)
                try:
                    connection.connect(timeout=self.timeout)
                except BaseException:
                    with suppress(Exception):
                        connection.disconnect(close=False)
                    raise
                self._cache[key] = connection
            if is_folder(path):
                return None
            share = f"\\\\{self.address.host}\\{self.share}"
            if self.base and is_folder(share):
                return "the folder does not exist"
            return f"the share {self.share} does not exist"

        problem = await self.call(f"connecting to {self.address.url}", run)
        if problem:
            raise TargetUnreachableError(f"{self.address.url}: {problem}")

    def _walk(self, folders: Parts, what: str, create: bool = False) -> bool:
        """Check (blocking; one name at a time, opened with FILE_OPEN_REPARSE_POINT) that every folder of
        ``folders`` is a real folder and no reparse point (symbolic link, junction, mount point).

        A reparse point on the way raises ``TargetLinkError``. Missing folders are made with ``create``;
        without it the answer is False when one is missing. Samba shows its own symbolic links as plain
        folders when it follows them itself (``follow symlinks``); ``wide links = no`` (the default) keeps
        those inside the share.
        """
        for depth in range(1, len(folders) + 1):
            parts = folders[:depth]
            if parts in self._checked:
                continue
            path = self.unc(parts)
            try:
                st = smbclient.lstat(path, **self._session)
            except SMBOSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
                if not create:
                    return False
                try:
                    smbclient.mkdir(path, **self._session)
                    self._checked.add(parts)
                    continue
                except SMBOSError as again:
                    if again.errno != errno.EEXIST:
                        raise
                st = smbclient.lstat(path, **self._session)  # made meanwhile: check it
            if int(getattr(st, "st_file_attributes", 0)) & FILE_ATTRIBUTE_REPARSE_POINT:
                link = stat_mode.S_ISLNK(st.st_mode)
                kind = "a symbolic link" if link else "a reparse point (junction or mount point)"
                raise TargetLinkError.at(self.shown(parts), kind)
            if not stat_mode.S_ISDIR(st.st_mode):
                raise TargetError(f"{what}: a file is in the way")
            self._checked.add(parts)
        return True

    async def stat(self, parts: Parts) -> TargetItem | None:
        path = self.unc(parts)

        def run() -> TargetItem | None:
            if not self._walk(parts[:-1], f"checking {self.shown(parts)}"):
                return None
            try:
                st = smbclient.lstat(path, **self._session)
            except SMBOSError as exc:
                if exc.errno == errno.ENOENT:
                    return None
                raise
            is_dir = stat_mode.S_ISDIR(st.st_mode)
            is_link = bool(int(getattr(st, "st_file_attributes", 0)) & FILE_ATTRIBUTE_REPARSE_POINT)
            size = 0 if is_dir else int(st.st_size)
            return TargetItem(parts[-1] if parts else "", is_dir, size, int(st.st_mtime_ns), is_link)

        return await self.call(f"checking {self.shown(parts)}", run)

    async def makedirs(self, parts: Parts) -> None:
        what = f"creating folder {self.shown(parts)}"
        await self.call(what, lambda: self._walk(parts, what, create=True))

    async def create(self, parts: Parts) -> TargetWriter:
        path, what = self.unc(parts), f"creating {self.shown(parts)}"

        def run() -> Any:
            self._walk(parts[:-1], what)
            return smbclient.open_file(path, mode="xb", buffering=0, **self._session)

        return _Writer(self, parts, await self.call(what, run))

    async def rename(self, src: Parts, dst: Parts, replace: bool) -> None:
        # SMB2 SET_INFO FileRenameInformation with ReplaceIfExists: atomic on the server either way.
        move = smbclient.replace if replace else smbclient.rename
        src_path, dst_path = self.unc(src), self.unc(dst)
        what = f"renaming {self.shown(src)} to {dst[-1]}"

        def run() -> None:
            self._walk(src[:-1], what)
            if dst[:-1] != src[:-1]:
                self._walk(dst[:-1], what)
            move(src_path, dst_path, **self._session)

        await self.call(what, run)

    async def remove(self, parts: Parts) -> None:
        path = self.unc(parts)
        what = f"removing {self.shown(parts)}"

        def run() -> None:
            if not self._walk(parts[:-1], what):
                return
            try:
                smbclient.remove(path, **self._session)
            except SMBOSError as exc:
                if exc.errno != errno.ENOENT:
                    raise

        await self.call(what, run)

    async def set_mtime(self, parts: Parts, mtime_ns: int) -> None:
        # FileBasicInformation in FILETIME (100 ns units since 1601): the last 2 digits of mtime_ns are lost.
        path = self.unc(parts)
        what = f"setting the time of {self.shown(parts)}"

        def run() -> None:
            self._walk(parts[:-1], what)
            smbclient.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False, **self._session)

        await self.call(what, run)

    async def set_security(self, parts: Parts, descriptor: bytes) -> None:
        """Write a self-relative security descriptor's owner, group and DACL onto an existing item."""
        path = self.unc(parts)
        what = f"setting the permissions of {self.shown(parts)}"

        def run() -> None:
            self._walk(parts[:-1], what)
            write_security(path, SECURITY_PARTS, descriptor, self._session)

        await self.call(what, run)

    async def get_security(self, parts: Parts) -> bytes:
        """The item's self-relative security descriptor (owner, group, DACL), read with SMB2 QUERY_INFO."""
        path = self.unc(parts)

        def run() -> bytes:
            return read_security(path, SECURITY_PARTS, MAX_SECURITY_DESCRIPTOR, self._session)

        return await self.call(f"reading the permissions of {self.shown(parts)}", run)

    async def aclose(self) -> None:
        cache = self._cache
        if cache:
            with anyio.move_on_after(self.timeout, shield=True):
                await anyio.to_thread.run_sync(
                    lambda: smbclient.reset_connection_cache(fail_on_error=False, connection_cache=cache)
                )


async def get_security(target: Target, parts: Parts) -> bytes:
    """The NTFS security descriptor (owner, group, DACL) of an item on an SMB target."""
    if not isinstance(target, SmbTarget):
        raise TypeError(f"{target.address.scheme}:// targets have no Windows security descriptors")
    return await target.get_security(parts)


async def open_smb_target(
    address: TargetAddress, credentials: Credentials, options: ConnectOptions
) -> Target:
    """Log on to ``address`` (``smb://host[:port]/share/folder``) and check that the folder exists."""
    target = SmbTarget(address, credentials, options)
    try:
        await target.open()
    except BaseException:
        await target.aclose()
        raise
    return target
