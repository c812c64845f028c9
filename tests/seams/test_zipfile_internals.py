"""``openflr.seams.zipfile_internals``: the standard library zipfile internals the streaming ZIP writer
uses still exist and behave as it relies on."""

from __future__ import annotations

import inspect
import io
import struct
import zipfile
import zlib
from typing import Any

import pytest

from openflr.seams.zipfile_internals import (
    UTF8_FLAG,
    CentralDirectoryZip,
    Utf8ZipInfo,
    central_record,
    fast_crc32,
    strip_extra,
    use_fast_crc32,
)
from tests.seams import changed

_SAMPLES: list[Any] = [
    b"",
    b"a",
    bytes(range(256)) * 1000,
    bytearray(b"x" * 70_000),
    memoryview(b"abc" * 999),
]


@pytest.mark.parametrize("start", [0, 1, 0xFFFFFFFF, 0x12345678])
def test_the_fast_crc32_gives_zlib_s_values(start: int) -> None:
    """What makes replacing zipfile's ``crc32`` process-wide safe: the values are identical."""
    for data in _SAMPLES:
        assert fast_crc32(data, start) == zlib.crc32(data, start), changed("isal", "isal_zlib.crc32's values")
        assert fast_crc32(data) == zlib.crc32(data), changed("isal", "isal_zlib.crc32's default start value")


def test_zipfile_computes_entry_crcs_with_its_module_level_crc32(monkeypatch: pytest.MonkeyPatch) -> None:
    assert callable(getattr(zipfile, "crc32", None)), changed("python", "zipfile: no module-level crc32")
    calls: list[int] = []

    def spy(data: Any, value: int = 0) -> int:
        calls.append(len(data))
        return zlib.crc32(data, value)

    monkeypatch.setattr(zipfile, "crc32", spy)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive, archive.open("f.txt", "w") as member:
        member.write(b"hello ")
        member.write(memoryview(b"world"))
    assert calls == [6, 5], changed(
        "python", f"zipfile: _ZipWriteFile.write called zipfile.crc32 for {calls}"
    )
    assert zlib.crc32(b"hello world") == archive.getinfo("f.txt").CRC, changed("python", "zipfile: entry CRC")


def test_use_fast_crc32_installs_it() -> None:
    use_fast_crc32()
    assert zipfile.crc32 is fast_crc32  # type: ignore[attr-defined]


def test_encode_filename_flags_gives_the_name_and_the_utf8_flag() -> None:
    hook = getattr(zipfile.ZipInfo, "_encodeFilenameFlags", None)
    assert callable(hook), changed("python", "zipfile.ZipInfo: _encodeFilenameFlags is gone")
    assert list(inspect.signature(hook).parameters) == ["self"], changed(
        "python", f"ZipInfo._encodeFilenameFlags{inspect.signature(hook)}"
    )
    name, flags = zipfile.ZipInfo("é.txt")._encodeFilenameFlags()  # type: ignore[attr-defined]
    assert (name, flags & UTF8_FLAG) == ("é.txt".encode(), UTF8_FLAG), changed(
        "python", f"ZipInfo._encodeFilenameFlags() of a non-ASCII name: {(name, flags)!r}"
    )
    assert Utf8ZipInfo("a.txt")._encodeFilenameFlags() == (b"a.txt", UTF8_FLAG)


def test_both_headers_take_name_and_flags_from_the_hook() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(Utf8ZipInfo("a.txt", (2020, 1, 1, 0, 0, 0)), b"x")
    data = out.getvalue()
    (local_flags,) = struct.unpack_from("<H", data, 6)
    central = data.index(b"PK\x01\x02")
    (central_flags,) = struct.unpack_from("<H", data, central + 8)
    assert local_flags & UTF8_FLAG, changed(
        "python", "zipfile: the local header ignores _encodeFilenameFlags"
    )
    assert central_flags & UTF8_FLAG, changed(
        "python", "zipfile: the central directory ignores _encodeFilenameFlags"
    )


def test_the_central_directory_helpers() -> None:
    structure = getattr(zipfile, "structCentralDir", None)
    signature = getattr(zipfile, "stringCentralDir", None)
    assert structure is not None and struct.calcsize(structure) == 46, changed(
        "python", f"zipfile.structCentralDir: {structure!r}"
    )
    assert signature == b"PK\x01\x02", changed("python", f"zipfile.stringCentralDir: {signature!r}")


def test_strip_extra_removes_only_the_fields_named() -> None:
    zip64 = struct.pack("<HHQ", 1, 8, 5)
    unix_time = struct.pack("<HHB", 0x5455, 1, 1)
    ntfs = struct.pack("<HHI", 0x000A, 4, 7)
    assert strip_extra(zip64 + unix_time, (1,)) == unix_time  # what Python 3.11.2's own got wrong
    assert strip_extra(unix_time + zip64 + ntfs, (1,)) == unix_time + ntfs
    assert strip_extra(unix_time + ntfs, (1,)) == unix_time + ntfs
    assert strip_extra(b"", (1,)) == b""
    assert strip_extra(unix_time + b"\x01\x00", (1,)) == unix_time + b"\x01\x00"  # a torn tail stays


class _Written(CentralDirectoryZip):
    def __init__(self, out: io.BytesIO) -> None:
        super().__init__(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self.records = b""
        self.count = 0

    def keep(self) -> None:
        for info in self.take_written():
            self.records += central_record(info)
            self.count += 1

    def write_central_directory(self) -> int:
        self.keep()
        self.write_raw(self.records)
        return self.count


class _Unseekable(io.BytesIO):
    def seekable(self) -> bool:
        return False


def test_the_end_record_is_written_by_write_end_record_from_len_filelist() -> None:
    """zipfile's ``close`` calls ``_write_end_record``, which writes one record per ``filelist`` entry
    and counts them with ``len(filelist)``; ``central_record`` writes the same bytes zipfile does."""
    hook = getattr(zipfile.ZipFile, "_write_end_record", None)
    assert callable(hook), changed("python", "zipfile.ZipFile: _write_end_record is gone")
    archives = []
    for kind in (zipfile.ZipFile, _Written):
        out = _Unseekable()
        archive = (
            _Written(out)
            if kind is _Written
            else zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True)
        )
        with archive:
            assert isinstance(archive.filelist, list) and isinstance(archive.NameToInfo, dict), changed(
                "python", "zipfile.ZipFile: filelist or NameToInfo"
            )
            for i in range(3):
                info = Utf8ZipInfo(f"dir/é {i}", (2021, 2, 3, 4, 5, 6))
                with archive.open(info, "w", force_zip64=i == 1) as member:
                    member.write(b"data" * i)
                if isinstance(archive, _Written):
                    archive.keep()
        archives.append(out.getvalue())
    assert archives[1] == archives[0], changed("python", "zipfile's central directory or end record")
    with zipfile.ZipFile(io.BytesIO(archives[1])) as check:
        assert check.testzip() is None and len(check.namelist()) == 3
