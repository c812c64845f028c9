"""The ZIP writer: modification times survive over the whole range file systems store (its records
are compared byte for byte with zipfile's in ``test_zipformat.py``)."""

from __future__ import annotations

import io
import stat
import struct
import subprocess
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator

import pytest

from openflr.config import DatastoreSettings, Settings
from openflr.guestfs.view import GuestView, open_view
from openflr.inventory.scanner import scan
from openflr.restore.items import Item, item_of, read_chunks, walk
from openflr.restore.zipstream import ZipReport, _dos, _time_fields, zip_chunks
from tests.imagebuilder import Fixtures


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
    fields = _fields(_time_fields(mtime_ns))
    reserved, tag, size, modified = struct.unpack_from("<IHHQ", fields[0x000A])
    assert (reserved, tag, size) == (0, 1, 24)
    assert (modified - 116_444_736_000_000_000) * 100 == mtime_ns // 100 * 100
    if unix is None:
        assert 0x5455 not in fields
    else:
        assert struct.unpack_from("<Bl", fields[0x5455]) == (1, unix)


def test_a_time_before_1980_or_after_2107_is_clamped_in_the_dos_field_only() -> None:
    assert _dos(-1_234_567_890)[1] >> 9 == 1980 - 1980
    assert _dos(13_569_465_600)[1] >> 9 == 2107 - 1980
    assert _dos(1_700_000_000) == (0xB1AA, 0x576E)  # 2023-11-14 22:13:20 UTC


@pytest.fixture(scope="module")
def lin_view(fixtures: Fixtures) -> Iterator[GuestView]:
    """The newest point of the qcow2 datastore's lin-web01 (ext4; files, folders, links, UTF-8)."""
    settings = Settings()
    settings.datastores = [DatastoreSettings("qcow2", fixtures.datastore("qcow2"))]
    replica = next(r for r in scan(settings).replicas.values() if r.display_name == "lin-web01")
    view = open_view([d.files for d in replica.points[-1].disks], replica.os_kind)
    yield view
    view.close()


def _expected(view: GuestView, top: Item) -> dict[str, tuple[int, int, tuple[int, ...], int, bytes]]:
    """Each member the archive must hold, from the engine: name -> (size, CRC, DOS date-time, mode,
    extra fields)."""
    found: dict[str, tuple[int, int, tuple[int, ...], int, bytes]] = {}
    for item in walk(view, top, []):
        entry = item.entry
        name = "/".join(item.rel) + ("/" if entry.is_dir else "")
        data = b"".join(bytes(c) for c in read_chunks(view, item)) if not entry.is_dir else b""
        mode = (
            stat.S_IFDIR | 0o755
            if entry.is_dir
            else (stat.S_IFLNK | 0o777 if entry.is_link else stat.S_IFREG | 0o644)
        )
        t = time.gmtime(max((entry.mtime_ns or 0) // 10**9, 315532800))
        date_time = (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec // 2 * 2)
        found[name] = (len(data), zlib.crc32(data), date_time, mode, _time_fields(entry.mtime_ns))
    return found


def test_a_real_folder_s_zip_holds_every_entry_as_the_engine_reads_it(lin_view: GuestView) -> None:
    """Names, sizes, CRCs, times, modes and time fields of every member; zipfile and ``unzip -t``
    read the archive."""
    top = item_of(lin_view, lin_view.locate("/"))
    report = ZipReport()
    data = b"".join(bytes(c) for c in zip_chunks(lin_view, top, report, min_chunk=64 * 1024))
    expected = _expected(lin_view, item_of(lin_view, lin_view.locate("/")))  # a walk of its own
    assert report.skipped == [] and report.files + report.folders == len(expected)
    assert any(mode >> 12 == stat.S_IFLNK >> 12 for *_, mode, _ in expected.values())
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        got = {
            i.filename: (i.file_size, i.CRC, i.date_time, i.external_attr >> 16, i.extra)
            for i in archive.infolist()
        }
    assert got == expected
    with tempfile.NamedTemporaryFile(suffix=".zip") as fh:
        fh.write(data)
        fh.flush()
        check = subprocess.run(["unzip", "-tq", fh.name], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_file_a_rule_leaves_out_is_listed_in_the_skipped_file(lin_view: GuestView) -> None:
    top = item_of(lin_view, lin_view.locate("/etc"))
    report = ZipReport()
    refuse = lambda name: "no passwd here" if name == "passwd" else None  # noqa: E731
    data = b"".join(bytes(c) for c in zip_chunks(lin_view, top, report, refuse))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert "etc/passwd" not in archive.namelist() and "etc/group" in archive.namelist()
        assert archive.read("openflr-skipped.txt").decode() == (
            "These items were left out of the archive:\r\netc/passwd\tno passwd here\r\n"
        )
        assert archive.comment == b"openflr: 1 item(s) left out, see openflr-skipped.txt"
