"""The CRC-32 the streaming ZIP writer (``restore/zipstream.py``) uses, and the one standard library
``zipfile`` internal openflr still touches.

- ``fast_crc32``: ISA-L's ``isal_zlib.crc32``, the same values as ``zlib.crc32`` (same signature
  ``crc32(data, value=0)``, same results for every buffer and start value, checked by
  ``tests/seams/test_zipfile_internals.py``) about 4x faster; zlib's, at about 1.2 GB/s, was the
  bottleneck of a STORED ZIP. The writer packs its records itself (``restore/zipformat.py``), so
  zipfile's own ``crc32`` is no longer replaced.
- ``ZipInfo._encodeFilenameFlags``: the hook both the local header (``ZipInfo.FileHeader``) and
  the central directory take an entry's encoded name and flag bits from. ``Utf8ZipInfo`` overrides
  it so the UTF-8 flag (bit 11) is set on every entry, ASCII or not (zipfile sets it for non-ASCII
  names only): with it, zipfile writes the archive openflr's writer must match byte for byte, which
  ``tests/restore/test_zipformat.py`` compares.

What openflr would need from upstream to use zipfile again: a public way to pass a CRC function (or a
precomputed CRC) to ``ZipFile.open(..., "w")``, a ZipInfo option to always set the UTF-8 flag, and a
public way to write the central directory of a streamed archive without keeping every ``ZipInfo``.
"""

from __future__ import annotations

import zipfile

from isal import isal_zlib

__all__ = ["UTF8_FLAG", "Utf8ZipInfo", "fast_crc32"]

UTF8_FLAG = 0x800
"""General-purpose flag bit 11: the name (and comment) are UTF-8."""

fast_crc32 = isal_zlib.crc32
"""ISA-L's CRC-32: ``fast_crc32(data, value=0)``, the same values as ``zlib.crc32``."""


class Utf8ZipInfo(zipfile.ZipInfo):
    """Sets the UTF-8 flag (bit 11) in the local and central headers of every entry, ASCII or not."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # zipfile's own hook
        return self.filename.encode("utf-8"), self.flag_bits | UTF8_FLAG
