"""The ZIP records openflr writes itself are byte for byte what the standard library's zipfile writes
to an unseekable output for the same entries: files, folders, links, UTF-8 names, times, ZIP64
local headers, sizes and offsets past the 32-bit limit, and more than 65,535 entries."""

from __future__ import annotations

import stat
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from openflr.restore.zipformat import ZIP64_LIMIT, needs_zip64
from openflr.restore.zipstream import _encoded, _Sink, _time_fields, _Writer
from openflr.seams.zipfile_internals import Utf8ZipInfo, fast_crc32

MiB = 1024 * 1024
_BIG = memoryview(bytearray(range(256)) * (4 * 1024))  # 1 MiB, written many times by reference


@dataclass(frozen=True)
class Spec:
    name: str
    mtime_ns: int | None
    mode: int
    """``S_IFDIR`` for a folder."""
    data: bytes = b""
    big: int = 0
    """Times ``_BIG`` is written after ``data``."""

    @property
    def size(self) -> int:
        return len(self.data) + self.big * len(_BIG)

    def chunks(self) -> Iterator[Any]:
        yield self.data
        for _ in range(self.big):
            yield _BIG


class _Recorder:
    """An unseekable output keeping every write as bytes, except ``_BIG`` (the same 1 MiB written by
    reference many times), kept as its length."""

    def __init__(self) -> None:
        self.out: list[Any] = []
        self.position = 0

    def write(self, data: Any) -> int:
        big = isinstance(data, memoryview) and data.obj is _BIG.obj and len(data) == len(_BIG)
        self.out.append(len(data) if big else bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass


def _normal(parts: list[Any]) -> list[Any]:
    """Adjacent bytes joined (the two writers split the same bytes into writes differently)."""
    joined: list[Any] = []
    run: list[bytes] = []
    for part in parts:
        if isinstance(part, int):
            joined += [b"".join(run), part]
            run = []
        else:
            run.append(part)
    return [*joined, b"".join(run)]


def _by_zipfile(specs: list[Spec], comment: bytes) -> list[Any]:
    """What openflr's writer wrote before it wrote the records itself: zipfile with these infos."""
    out = _Recorder()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:  # type: ignore[call-overload]
        for spec in specs:
            seconds = (spec.mtime_ns or 0) // 10**9
            t = time.gmtime(max(seconds, 315532800))
            date_time = (min(t.tm_year, 2107), t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)
            folder = stat.S_ISDIR(spec.mode)
            info = Utf8ZipInfo(_encoded(spec.name + ("/" if folder else "")).decode(), date_time)
            info.create_system = 3
            info.external_attr = (spec.mode & 0xFFFF) << 16 | (0x10 if folder else 0)
            info.extra = _time_fields(spec.mtime_ns)
            if folder:
                info.CRC = info.compress_size = info.file_size = 0
                archive.mkdir(info)
                continue
            info.file_size = spec.size
            with archive.open(info, "w", force_zip64=needs_zip64(spec.size)) as member:
                for chunk in spec.chunks():
                    member.write(chunk)
        archive.comment = comment
    return _normal(out.out)


def _by_openflr(specs: list[Spec], comment: bytes) -> list[Any]:
    sink = _Sink()
    writer = _Writer(sink)
    for spec in specs:
        if stat.S_ISDIR(spec.mode):
            writer.folder(spec.name, spec.mtime_ns)
            continue
        chunks = spec.chunks()
        out = writer.file(spec.name, spec.mtime_ns, spec.mode, spec.size, next(chunks))
        for chunk in chunks:
            out.write(chunk)
        out.close()
    for _ in writer.end(comment):
        pass
    recorder = _Recorder()
    for part in sink.take_parts():
        recorder.write(part)
    return _normal(recorder.out)


FILE, LINK, DIR = stat.S_IFREG | 0o644, stat.S_IFLNK | 0o777, stat.S_IFDIR | 0o755
T = 1_700_000_000_123_456_789


def test_files_folders_links_names_and_times_are_zipfile_s_bytes() -> None:
    specs = [
        Spec("top", T, DIR),
        Spec("top/a.txt", T, FILE, b"hello"),
        Spec("top/é ü 日本.txt", T + 10**9, FILE, b"x" * 70_000),  # UTF-8; a write kept by reference
        Spec("top/empty", None, FILE),  # no time: 1980, no extra field
        Spec("top/link", T, LINK, b"a.txt"),
        Spec("top/old", -1_234_567_890 * 10**9, FILE, b"1930"),
        Spec("top/future", 13_569_465_600 * 10**9, FILE, b"2400"),
        Spec("top/sub", 0, DIR),
        Spec("top/sub/nul\0cut", T, FILE, b"n"),
        Spec("top/sub/one MiB", T, FILE, b"", big=1),
        Spec("top/sub/zip64", T, FILE, bytes(range(256)), big=0),
    ]
    for count in (1, 300, 3000):  # 3,000 entries make several compressed batches of records
        many = specs + [Spec(f"top/many/{i}.txt", T + i, FILE, b"y" * (i % 7)) for i in range(count)]
        assert _by_openflr(many, b"note") == _by_zipfile(many, b"note")


def test_more_than_65535_entries_get_zip64_end_records_as_zipfile_writes_them() -> None:
    specs = [Spec(f"f{i}", T, FILE) for i in range(70_000)]
    ours = _by_openflr(specs, b"")
    assert ours == _by_zipfile(specs, b"")
    assert b"PK\x06\x06" in ours[-1] and b"PK\x06\x07" in ours[-1]


@pytest.mark.parametrize("big", [1024, 2049])
def test_zip64_local_headers_sizes_and_offsets_are_zipfile_s_bytes(
    big: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1 GiB gets ZIP64 local fields (above half the limit); 2 GiB + 1 MiB a ZIP64 size in the
    central record, and the entries after it ZIP64 offsets."""
    monkeypatch.setattr(zipfile, "crc32", fast_crc32)  # the same values, 4x sooner
    specs = [
        Spec("big.bin", T, FILE, b"head", big=big),
        Spec("after.txt", T, FILE, b"after"),
        Spec("after", T, DIR),
    ]
    assert (specs[0].size > ZIP64_LIMIT) == (big > 2048)
    assert _by_openflr(specs, b"") == _by_zipfile(specs, b"")
