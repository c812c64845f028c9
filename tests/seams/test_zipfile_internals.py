"""``openflr.seams.zipfile_internals``: ISA-L's CRC-32 gives zlib's values, and the zipfile hook the
reference writer of ``tests/restore/test_zipformat.py`` relies on still exists and behaves so."""

from __future__ import annotations

import inspect
import io
import struct
import zipfile
import zlib
from typing import Any

import pytest

from openflr.seams.zipfile_internals import UTF8_FLAG, Utf8ZipInfo, fast_crc32
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
