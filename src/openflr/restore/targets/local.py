"""``file:///path``: a local folder, or a guest share already mounted on this host."""

from __future__ import annotations

import errno
import os
import stat as stat_mode
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

from openflr.guestfs.filesystems.base import Chunk
from openflr.restore.targets.base import (
    Parts,
    Target,
    TargetAddress,
    TargetError,
    TargetFullError,
    TargetItem,
    TargetLinkError,
    TargetUnreachableError,
    TargetWriter,
    posix_name,
)

T = TypeVar("T")


def _error(exc: OSError, what: str) -> TargetError:
    if isinstance(exc, TargetError):
        return exc
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


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class LocalTarget(Target):
    """Every path is resolved one name at a time from a handle on the target folder, never following a link.

    The folder itself (as configured) may be reached through links; below it each folder on the way is
    opened with ``O_NOFOLLOW`` relative to its parent's handle, and the last name is created, renamed,
    timed or removed relative to its folder's handle without following it. A link on the way (placed by an
    earlier restore, or already on a mounted share) fails the item with ``TargetLinkError``.
    """

    def __init__(self, address: TargetAddress) -> None:
        self.address = address
        self.base = Path("/", *address.path)
        if not self.base.is_dir():
            raise TargetUnreachableError(f"{address.url}: the folder does not exist")

    def shown(self, parts: Parts) -> str:
        return "/".join(parts)

    def _open_folder(self, parts: Parts, create: bool) -> int | None:
        """A handle on the folder ``parts`` (the caller closes it), or None when a folder is missing.

        Raises ``TargetLinkError`` for a link on the way and ``NotADirectoryError`` for a file on the way.
        """
        names = [posix_name(p) for p in parts]
        fd = os.open(self.base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for depth, name in enumerate(names, 1):
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        os.close(fd)
                        return None
                    with suppress(FileExistsError):  # made meanwhile: opened (and checked) below
                        os.mkdir(name, dir_fd=fd)
                    child = self._open_existing(fd, name, parts[:depth])
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    child = self._open_existing(fd, name, parts[:depth])
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _open_existing(self, parent: int, name: bytes, parts: Parts) -> int:
        """Open the folder ``name`` (``parts[-1]``) in ``parent`` after a first try failed: say why it
        cannot be."""
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if stat_mode.S_ISLNK(st.st_mode):
            raise TargetLinkError.at(self.shown(parts))
        raise NotADirectoryError(errno.ENOTDIR, "a file is in the way")

    def _in_folder(self, parts: Parts, func: Callable[[int | None, bytes], T]) -> T:
        """``func(folder handle, last name's bytes)`` for the item at ``parts`` (not empty).

        The handle is None when a folder on the way is missing.
        """
        name = posix_name(parts[-1])
        fd = self._open_folder(parts[:-1], create=False)
        try:
            return func(fd, name)
        finally:
            if fd is not None:
                os.close(fd)

    async def stat(self, parts: Parts) -> TargetItem | None:
        def item(st: os.stat_result) -> TargetItem:
            is_dir = stat_mode.S_ISDIR(st.st_mode)
            size = 0 if is_dir else st.st_size
            return TargetItem(
                parts[-1] if parts else "", is_dir, size, st.st_mtime_ns, stat_mode.S_ISLNK(st.st_mode)
            )

        def look(fd: int | None, name: bytes) -> TargetItem | None:
            if fd is None:
                return None
            try:
                return item(os.stat(name, dir_fd=fd, follow_symlinks=False))
            except FileNotFoundError:
                return None

        def run() -> TargetItem | None:
            if not parts:
                return item(os.stat(self.base))
            return self._in_folder(parts, look)

        try:
            return await anyio.to_thread.run_sync(run)
        except OSError as exc:
            raise _error(exc, f"checking {self.shown(parts)}") from None

    async def makedirs(self, parts: Parts) -> None:
        def run() -> None:
            fd = self._open_folder(parts, create=True)
            if fd is not None:
                os.close(fd)

        try:
            await anyio.to_thread.run_sync(run)
        except OSError as exc:
            raise _error(exc, f"creating folder {self.shown(parts)}") from None

    async def create(self, parts: Parts) -> TargetWriter:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

        def make(fd: int | None, name: bytes) -> int:
            if fd is None:
                raise FileNotFoundError(errno.ENOENT, "a folder on the way does not exist")
            return os.open(name, flags, 0o644, dir_fd=fd)

        try:
            fd = await anyio.to_thread.run_sync(lambda: self._in_folder(parts, make))
        except OSError as exc:
            raise _error(exc, f"creating {self.shown(parts)}") from None
        return _Writer(self, parts, fd)

    async def rename(self, src: Parts, dst: Parts, replace: bool) -> None:
        def run() -> None:
            def with_src(src_fd: int | None, src_name: bytes) -> None:
                def with_dst(dst_fd: int | None, dst_name: bytes) -> None:
                    if src_fd is None or dst_fd is None:
                        raise FileNotFoundError(errno.ENOENT, "a folder on the way does not exist")
                    if replace:  # rename(2) replaces a link at dst itself, never what it points to
                        os.replace(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
                    else:  # link + unlink: fails instead of replacing something that appeared meanwhile
                        os.link(
                            src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd, follow_symlinks=False
                        )
                        os.unlink(src_name, dir_fd=src_fd)

                self._in_folder(dst, with_dst)

            self._in_folder(src, with_src)

        try:
            await anyio.to_thread.run_sync(run)
        except OSError as exc:
            raise _error(exc, f"renaming {self.shown(src)} to {dst[-1]}") from None

    async def remove(self, parts: Parts) -> None:
        def unlink(fd: int | None, name: bytes) -> None:
            if fd is not None:
                with suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=fd)

        try:
            await anyio.to_thread.run_sync(lambda: self._in_folder(parts, unlink))
        except OSError as exc:
            raise _error(exc, f"removing {self.shown(parts)}") from None

    async def set_mtime(self, parts: Parts, mtime_ns: int) -> None:
        def touch(fd: int | None, name: bytes) -> None:
            if fd is None:
                raise FileNotFoundError(errno.ENOENT, "it does not exist")
            os.utime(name, ns=(mtime_ns, mtime_ns), dir_fd=fd, follow_symlinks=False)

        def run() -> None:
            if not parts:
                os.utime(self.base, ns=(mtime_ns, mtime_ns))
            else:
                self._in_folder(parts, touch)

        try:
            await anyio.to_thread.run_sync(run)
        except OSError as exc:
            raise _error(exc, f"setting the time of {self.shown(parts)}") from None

    async def symlink(self, parts: Parts, target: str) -> None:
        # Stored as the guest had it, wherever it points: no later call ever follows it.
        def make(fd: int | None, name: bytes) -> None:
            if fd is None:
                raise FileNotFoundError(errno.ENOENT, "a folder on the way does not exist")
            os.symlink(os.fsencode(target), name, dir_fd=fd)

        try:
            await anyio.to_thread.run_sync(lambda: self._in_folder(parts, make))
        except OSError as exc:
            raise _error(exc, f"creating link {self.shown(parts)}") from None

    async def aclose(self) -> None:
        return None
