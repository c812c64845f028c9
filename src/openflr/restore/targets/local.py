"""``file:///path``: a local folder, or a guest share already mounted on this host."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import anyio.to_thread

from openflr.guestfs.filesystems.base import Chunk
from openflr.restore.targets.base import (
    Parts,
    Target,
    TargetAddress,
    TargetError,
    TargetFullError,
    TargetItem,
    TargetUnreachableError,
    TargetWriter,
    check_name,
)


def _error(exc: OSError, what: str) -> TargetError:
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return TargetFullError(f"{what}: the target is full ({reason})")
    return TargetError(f"{what}: {reason}")


class _Writer(TargetWriter):
    def __init__(self, target: LocalTarget, parts: Parts, fd: int) -> None:
        self.target, self.parts, self.fd = target, parts, fd

    async def write(self, data: Chunk) -> None:
        await anyio.to_thread.run_sync(self._write_all, data)

    def _write_all(self, data: Chunk) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as exc:
            raise _error(exc, f"writing {self.target.shown(self.parts)}") from None

    async def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd < 0:
            return
        try:
            await anyio.to_thread.run_sync(os.fsync, fd)
        except OSError as exc:
            os.close(fd)
            raise _error(exc, f"writing {self.target.shown(self.parts)}") from None
        os.close(fd)

    async def abort(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        await self.target.remove(self.parts)


class LocalTarget(Target):
    def __init__(self, address: TargetAddress) -> None:
        self.address = address
        self.base = Path("/", *address.path)
        if not self.base.is_dir():
            raise TargetUnreachableError(f"{address.url}: the folder does not exist")

    def shown(self, parts: Parts) -> str:
        return "/".join(parts)

    def _path(self, parts: Parts) -> Path:
        return self.base.joinpath(*(check_name(p) for p in parts))

    async def stat(self, parts: Parts) -> TargetItem | None:
        def run() -> TargetItem | None:
            try:
                st = os.lstat(self._path(parts))
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise _error(exc, f"checking {self.shown(parts)}") from None
            is_dir = (st.st_mode & 0o170000) == 0o040000
            return TargetItem(parts[-1] if parts else "", is_dir, 0 if is_dir else st.st_size, st.st_mtime_ns)

        return await anyio.to_thread.run_sync(run)

    async def makedirs(self, parts: Parts) -> None:
        try:
            await anyio.to_thread.run_sync(lambda: self._path(parts).mkdir(parents=True, exist_ok=True))
        except OSError as exc:
            raise _error(exc, f"creating folder {self.shown(parts)}") from None

    async def create(self, parts: Parts) -> TargetWriter:
        path = self._path(parts)
        try:
            fd = await anyio.to_thread.run_sync(
                lambda: os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            )
        except OSError as exc:
            raise _error(exc, f"creating {self.shown(parts)}") from None
        return _Writer(self, parts, fd)

    async def rename(self, src: Parts, dst: Parts, replace: bool) -> None:
        def run() -> None:
            if replace:
                os.replace(self._path(src), self._path(dst))
            else:  # link + unlink: fails instead of replacing something that appeared meanwhile
                os.link(self._path(src), self._path(dst))
                os.unlink(self._path(src))

        try:
            await anyio.to_thread.run_sync(run)
        except OSError as exc:
            raise _error(exc, f"renaming {self.shown(src)} to {dst[-1]}") from None

    async def remove(self, parts: Parts) -> None:
        try:
            await anyio.to_thread.run_sync(lambda: self._path(parts).unlink(missing_ok=True))
        except OSError as exc:
            raise _error(exc, f"removing {self.shown(parts)}") from None

    async def set_mtime(self, parts: Parts, mtime_ns: int) -> None:
        try:
            await anyio.to_thread.run_sync(
                lambda: os.utime(self._path(parts), ns=(mtime_ns, mtime_ns), follow_symlinks=False)
            )
        except OSError as exc:
            raise _error(exc, f"setting the time of {self.shown(parts)}") from None

    async def symlink(self, parts: Parts, target: str) -> None:
        try:
            await anyio.to_thread.run_sync(lambda: os.symlink(target, self._path(parts)))
        except OSError as exc:
            raise _error(exc, f"creating link {self.shown(parts)}") from None

    async def aclose(self) -> None:
        return None
