"""The ZIP writer: its compact central directory is byte for byte what zipfile itself writes, and
modification times survive over the whole range file systems store."""

from __future__ import annotations

import io
import stat
import struct
import zipfile

import pytest

from openflr.restore.zipstream import _CompactZip, _info, _Sink


def _archive(compact: bool, count: int = 300) -> bytes:
    sink = _Sink()
    archive = (
        _CompactZip(sink)
        if compact
        else zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
    )
    with archive:
        for i in range(count):
            info = zipfile.ZipInfo(f"folder/é {i}.txt", (2020, 1, 2, 3, 4, 6))
            info.external_attr = 0o644 << 16
            with archive.open(info, "w", force_zip64=i % 50 == 0) as member:
                member.write(b"x" * i)
                if i % 500 == 7:  # a large write: kept by the sink as it is
                    member.write(memoryview(bytearray(range(256)) * 400))
            if isinstance(archive, _CompactZip):
                archive.compact()
    return bytes(sink.take())


@pytest.mark.parametrize("count", [300, 3000])
def test_compact_central_directory_matches_zipfile(count: int) -> None:
    """It writes zipfile's records itself (keeping bytes, not ZipInfo objects; 3,000 entries make
    several compressed batches): any change of zipfile's own format in a Python release shows here,
    UTF-8 names and ZIP64 entries included."""
    compact = _archive(compact=True, count=count)
    assert compact == _archive(compact=False, count=count)
    with zipfile.ZipFile(io.BytesIO(compact)) as check:
        assert check.testzip() is None and len(check.namelist()) == count


def _fields(extra: bytes) -> dict[int, bytes]:
    found = {}
    while len(extra) >= 4:
        kind, length = struct.unpack_from("<HH", extra)
        found[kind] = extra[4 : 4 + length]
        extra = extra[4 + length :]
    return found


@pytest.mark.parametrize(
    ("mtime_ns", "unix"),
    [
        (1_700_000_000_123_456_789, 1_700_000_000),
        (-1_234_567_890 * 10**9 + 500, -1_234_567_890),  # 1930: before 1970, after 1901
        (13_569_465_600 * 10**9 + 123_456_700, None),  # 2400: past what the Unix field holds
        (-(11_644_473_600 * 10**9), None),  # 1601-01-01, NTFS's first instant
    ],
)
def test_times_are_exact_in_the_ntfs_field_and_in_the_unix_field_where_it_reaches(
    mtime_ns: int, unix: int | None
) -> None:
    fields = _fields(_info("f.txt", mtime_ns, stat.S_IFREG | 0o644).extra)
    reserved, tag, size, modified = struct.unpack_from("<IHHQ", fields[0x000A])
    assert (reserved, tag, size) == (0, 1, 24)
    assert (modified - 116_444_736_000_000_000) * 100 == mtime_ns // 100 * 100
    if unix is None:
        assert 0x5455 not in fields
    else:
        assert struct.unpack_from("<Bl", fields[0x5455]) == (1, unix)


def test_a_time_before_1980_or_after_2107_is_clamped_in_the_dos_field_only() -> None:
    assert _info("old", -1_234_567_890 * 10**9, stat.S_IFREG).date_time[0] == 1980
    assert _info("new", 13_569_465_600 * 10**9, stat.S_IFREG).date_time[0] == 2107
