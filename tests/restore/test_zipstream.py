"""The ZIP writer's compact central directory is byte for byte what zipfile itself writes."""

from __future__ import annotations

import io
import zipfile

from openflr.restore.zipstream import _CompactZip, _Sink


def _archive(compact: bool) -> bytes:
    sink = _Sink()
    archive = (
        _CompactZip(sink)
        if compact
        else zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
    )
    with archive:
        for i in range(300):
            info = zipfile.ZipInfo(f"folder/é {i}.txt", (2020, 1, 2, 3, 4, 6))
            info.external_attr = 0o644 << 16
            with archive.open(info, "w", force_zip64=i % 50 == 0) as member:
                member.write(b"x" * i)
            if isinstance(archive, _CompactZip):
                archive.compact()
    return sink.take()


def test_compact_central_directory_matches_zipfile() -> None:
    """It writes zipfile's records itself (keeping bytes, not ZipInfo objects): any change of
    zipfile's own format in a Python release shows here, UTF-8 names and ZIP64 entries included."""
    compact = _archive(compact=True)
    assert compact == _archive(compact=False)
    with zipfile.ZipFile(io.BytesIO(compact)) as check:
        assert check.testzip() is None and len(check.namelist()) == 300
