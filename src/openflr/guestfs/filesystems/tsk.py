"""FAT12/16/32 and exFAT through The Sleuth Kit (pytsk3).

libfsfat puts FAT modification times one month late (EVALUATION §8); TSK gets them right and keeps
the NT lower-case flags, but lists virtual entries ($FAT1, $MBR, $OrphanFiles) and the volume label,
which are filtered out here.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator
from typing import Any

import pytsk3

from openflr.guestfs.blocks import BlockSource, CachedReader, check_cancelled
from openflr.guestfs.errors import VolumeError
from openflr.guestfs.filesystems.base import (
    Entry,
    FileReader,
    FileSystem,
    Node,
    engine_errors,
    first_line,
    match_name,
)
from openflr.guestfs.filesystems.names import name_from_bytes

_VIRTUAL = {pytsk3.TSK_FS_META_TYPE_VIRT, pytsk3.TSK_FS_META_TYPE_VIRT_DIR}
_LABEL_SUFFIX = b"(Volume Label Entry)"
_EXFAT_METAFILES = {b"$ALLOC_BITMAP", b"$UPCASE_TABLE", b"$VOLUME_GUID", b"$TEXFAT_PADDING", b"$ACT"}
"""Entries TSK makes up for exFAT's allocation bitmap and up-case table."""


class _Image(pytsk3.Img_Info):  # type: ignore[misc]
    """TSK reads sector by sector; the block cache turns that into a few chain reads."""

    def __init__(self, source: BlockSource) -> None:
        self.source = source
        self.cached = CachedReader(source)
        super().__init__(url="", type=pytsk3.TSK_IMG_TYPE_EXTERNAL)

    def close(self) -> None:
        pass

    def read(self, offset: int, size: int) -> bytes:
        return self.cached.read_at(offset, size)

    def get_size(self) -> int:
        return self.source.size


def _local_to_utc(epoch: int) -> int:
    # TSK turns FAT's local-time fields into an epoch with mktime() in this process's zone;
    # undo that so the guest's wall-clock time is reported as-is.
    return calendar.timegm(time.localtime(epoch))


class _TskReader(FileReader):
    def __init__(self, fs: TskFileSystem, file: Any, size: int) -> None:
        self.fs, self.file, self.size = fs, file, size

    def pread(self, length: int, offset: int) -> bytes:
        if offset >= self.size or length <= 0:
            return b""
        with self.fs.lock, engine_errors(self.fs.kind):
            data: bytes = self.file.read_random(offset, min(length, self.size - offset))
        return data


class TskFileSystem(FileSystem):
    case_sensitive = False

    def __init__(self, source: BlockSource, kind: str) -> None:
        super().__init__()
        self.kind = kind
        try:
            self._image = _Image(source)
            self.fs = pytsk3.FS_Info(self._image)
        except OSError as exc:
            check_cancelled()
            raise VolumeError(f"{kind} volume cannot be opened: {first_line(exc)}") from None
        self.label = self._read_label()

    def _read_label(self) -> str:
        try:
            for f in self.fs.open_dir("/"):
                name = f.info.name.name
                if name.endswith(_LABEL_SUFFIX):
                    label: str = name[: -len(_LABEL_SUFFIX)].decode("utf-8", "replace").strip()
                    return label
        except OSError:
            pass
        return ""

    def root(self) -> Node:
        with self.lock, engine_errors(self.kind):
            return self.fs.open_dir("/")

    def _children(self, directory: Any) -> Iterator[tuple[str, Any]]:
        root = self.kind == "exfat" and directory.info.addr == self.fs.info.root_inum
        for f in directory:
            info = f.info
            raw = info.name.name
            if raw in (b".", b"..") or info.meta is None or raw.endswith(_LABEL_SUFFIX):
                continue
            if info.name.flags & pytsk3.TSK_FS_NAME_FLAG_UNALLOC or info.meta.type in _VIRTUAL:
                continue
            if root and raw in _EXFAT_METAFILES:
                continue
            yield name_from_bytes(raw), f

    def lookup(self, parts: list[str]) -> Node | None:
        with self.lock, engine_errors(self.kind):
            node: Any = self.fs.open_dir("/")
            for i, part in enumerate(parts):
                found = match_name(self._children(node), part, False)
                if found is None:
                    return None
                if i < len(parts) - 1:
                    if found.info.meta.type != pytsk3.TSK_FS_META_TYPE_DIR:
                        return None
                    node = found.as_directory()
                else:
                    node = found
            return node

    def _entry(self, name: str, f: Any) -> Entry:
        meta = f.info.meta
        is_dir = meta.type == pytsk3.TSK_FS_META_TYPE_DIR
        mtime = _local_to_utc(meta.mtime) * 1_000_000_000 + (meta.mtime_nano or 0) if meta.mtime else None
        return Entry(name, is_dir, 0 if is_dir else int(meta.size), mtime, None, f, ident=int(meta.addr))

    def stat(self, node: Node) -> Entry:
        with self.lock, engine_errors(self.kind):
            if isinstance(node, pytsk3.Directory):
                return Entry("", True, 0, None, None, node)
            return self._entry(name_from_bytes(node.info.name.name), node)

    def check_dir(self, node: Node) -> None:
        with self.lock, engine_errors(self.kind):
            if not isinstance(node, pytsk3.Directory) and node.info.meta.type == pytsk3.TSK_FS_META_TYPE_DIR:
                node.as_directory()

    def scandir(self, node: Node, start: int = 0, stop: int | None = None) -> Iterator[Entry]:
        with self.lock, engine_errors(self.kind):
            directory = node if isinstance(node, pytsk3.Directory) else node.as_directory()
            entries = [self._entry(name, f) for name, f in self._children(directory)]
        yield from entries[start:stop]

    def open(self, node: Node) -> FileReader:
        with self.lock, engine_errors(self.kind):
            return _TskReader(self, node, int(node.info.meta.size))

    def close(self) -> None:
        with self.lock:
            self._image.cached.close()  # give its cached blocks back to the process-wide budget
