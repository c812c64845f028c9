"""What every restore target offers the restore writer (restore/writer.py), and the errors it raises.

A target is one open connection to a folder on the guest (a share, an SFTP path, a local folder). Paths
are lists of shown names below that folder (docs/STORAGE-NOTES.md, "Names"). POSIX targets (file://,
SFTP) write each name's on-disk bytes (``posix_name``); SMB writes the shown name, which is UTF-16 text
already (``check_name`` plus what Windows refuses in a name). No name may be ``..`` or hold a separator,
and no target follows a symbolic link below its folder (``TargetLinkError``), so nothing can escape the
folder. The folder itself, as configured, may be reached through links. Every call is a
coroutine: SFTP is asynchronous by nature, blocking libraries (smbprotocol, the local file system) run in
worker threads.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from openflr.errors import BadRequestError, OpenflrError
from openflr.guestfs.filesystems.base import Chunk
from openflr.guestfs.filesystems.names import name_to_bytes

Parts = Sequence[str]


class TargetError(OpenflrError, OSError):
    """Writing to a restore target failed; ``message`` is safe to show (never holds a password)."""

    status = 502


class TargetAuthError(TargetError, PermissionError):
    """The target refused the credentials."""


class TargetUnreachableError(TargetError, ConnectionError):
    """The target host cannot be reached (DNS, refused, timeout) or its host key is not trusted."""


class TargetFullError(TargetError):
    """The target has no space left for what is being written."""


class TargetUnsupportedError(TargetError, NotImplementedError):
    """The target cannot do what was asked (e.g. write NTFS permissions over SFTP)."""


class TargetNameError(TargetError):
    """A name the target cannot hold: it would leave its folder, or the target's names refuse it.

    Fails that item only."""

    status = 400


class TargetLinkError(TargetError):
    """A folder on the way to an item is a symbolic link (or another reparse point) on the target.

    Links below the target folder are never followed: one could lead outside it. Fails that item only.
    """

    @classmethod
    def at(cls, shown: str, kind: str = "a symbolic link") -> TargetLinkError:
        return cls(f"{shown} is {kind} on the target: not followed")


class CheckedFolders:
    """Folders below a target's folder that this connection has found to be real folders (no link).

    SMB and SFTP check each folder on the way to an item with a round trip of its own; kept here, each
    folder is checked once per restore instead of three times per file written into it (create,
    rename, set the time). A restore never removes, renames or links over a folder, so a folder once
    found real stays so for the restore's own writes.
    """

    def __init__(self) -> None:
        self._known: set[tuple[str, ...]] = set()

    def __contains__(self, parts: Parts) -> bool:
        return tuple(parts) in self._known

    def add(self, parts: Parts) -> None:
        self._known.add(tuple(parts))


@dataclass(frozen=True)
class TargetItem:
    name: str
    is_dir: bool
    size: int
    mtime_ns: int | None
    is_link: bool = False
    """A symbolic link (or another reparse point) itself: never followed."""


@dataclass(frozen=True)
class Credentials:
    username: str
    """``DOMAIN\\user``, ``user@domain`` or ``user``."""
    password: str

    def __repr__(self) -> str:  # never leak the password through a log line or a traceback
        return f"Credentials(username={self.username!r}, password='***')"

    @property
    def domain_and_user(self) -> tuple[str, str]:
        if "\\" in self.username:
            domain, _, user = self.username.partition("\\")
            return domain, user
        return "", self.username


@dataclass(frozen=True)
class TargetAddress:
    """A parsed target URL: ``smb://host[:port]/share/path``, ``sftp://host[:port]/path``, ``file:///path``."""

    scheme: str
    host: str
    port: int | None
    path: tuple[str, ...]
    """For SMB the first part is the share."""

    @property
    def url(self) -> str:
        where = f"{self.host}:{self.port}" if self.port else self.host
        return f"{self.scheme}://{where}/" + "/".join(self.path)

    @classmethod
    def parse(cls, text: str) -> TargetAddress:
        parts = urlsplit(text.strip())
        scheme = parts.scheme.lower()
        if scheme not in ("smb", "sftp", "file"):
            raise BadRequestError(f"restore target {text!r}: the scheme must be smb://, sftp:// or file://")
        if parts.username or parts.password:
            raise BadRequestError(
                f"restore target {parts.hostname}: put credentials in username/password, not in the URL"
            )
        if parts.query or parts.fragment:
            raise BadRequestError(f"restore target {text!r}: no query or fragment allowed")
        try:
            port = parts.port
        except ValueError:
            raise BadRequestError(f"restore target {text!r}: bad port") from None
        path = tuple(unquote(p) for p in parts.path.split("/") if p)
        for name in path:
            check_name(name)
        host = parts.hostname or ""
        if scheme == "file":
            if host not in ("", "localhost"):
                raise BadRequestError(f"restore target {text!r}: file:// targets are local (file:///path)")
            host = ""
        elif not host:
            raise BadRequestError(f"restore target {text!r}: a host is required")
        if scheme == "smb" and not path:
            raise BadRequestError(f"restore target {text!r}: name the share (smb://host/C$)")
        return cls(scheme, host, port, path)


def check_name(name: str) -> str:
    """A single path component that cannot escape its folder on any target."""
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise BadRequestError(f"{name!r} is not a valid file or folder name on a restore target")
    return name


def posix_name(name: str) -> bytes:
    """The on-disk bytes of the shown name ``name`` for a POSIX target (``name_to_bytes``): a file
    named ``b"caf\\xe9"`` on the guest is ``b"caf\\xe9"`` again, ``\\`` is an ordinary character.
    Refused (``TargetNameError``) when the bytes could leave their folder: empty, ``.``, ``..``, ``/``
    or NUL."""
    raw = name_to_bytes(name)
    if raw in (b"", b".", b"..") or b"/" in raw or b"\0" in raw:
        raise TargetNameError(f"{name!r} is not a valid file or folder name on a restore target")
    return raw


class TargetWriter(ABC):
    """A file being written. ``close`` makes it complete; ``abort`` removes what was written."""

    @abstractmethod
    async def write(self, data: Chunk) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def abort(self) -> None:
        """Close and delete the partial file (best effort: never raises)."""


class Target(ABC):
    """An open connection to a restore destination folder."""

    address: TargetAddress
    supports_security: bool = False
    """Whether ``set_security`` can write an NTFS security descriptor."""

    @abstractmethod
    async def stat(self, parts: Parts) -> TargetItem | None:
        """The item at ``parts`` (not following a final symlink), or None when nothing is there."""

    @abstractmethod
    async def makedirs(self, parts: Parts) -> None:
        """Create the folder and any missing parents; an existing folder is fine."""

    @abstractmethod
    async def create(self, parts: Parts) -> TargetWriter:
        """A new file at ``parts``; fails if something already exists there."""

    @abstractmethod
    async def rename(self, src: Parts, dst: Parts, replace: bool) -> None:
        """Move ``src`` to ``dst`` in the same folder; with ``replace`` an existing file at ``dst`` goes."""

    @abstractmethod
    async def remove(self, parts: Parts) -> None:
        """Delete a file (missing is fine)."""

    @abstractmethod
    async def set_mtime(self, parts: Parts, mtime_ns: int) -> None:
        """Set the modification (and access) time of a file or folder."""

    async def symlink(self, parts: Parts, target: str) -> None:
        """Create a symbolic link (POSIX targets only)."""
        raise TargetUnsupportedError(f"{self.address.url} cannot create symbolic links")

    async def set_security(self, parts: Parts, descriptor: bytes) -> None:
        """Write an NTFS security descriptor (owner, group, DACL) onto an existing item."""
        raise TargetUnsupportedError(
            f"{self.address.scheme}:// targets cannot write Windows permissions; "
            "PermissionsOnly needs an smb:// target"
        )

    @abstractmethod
    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Target:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
