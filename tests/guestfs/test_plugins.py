"""The plug-in registries: image formats, file-system openers and guest OSes are each one record in
one table, and a new one is picked up by everything that uses the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from openflr.guestfs import formats, guests, images
from openflr.guestfs.blocks import Layer, OpenFile, RawLayer
from openflr.guestfs.disks import open_chain
from openflr.guestfs.errors import CorruptImageError
from openflr.guestfs.filesystems.probe import IDENTITIES, OPENERS
from openflr.guestfs.formats.base import Head, ImageFormat, ImageInfo
from openflr.guestfs.guests.base import Opened, Root
from openflr.guestfs.view import open_view
from openflr.inventory import scanner
from tests.imagebuilder import Fixtures


def test_each_format_has_one_record() -> None:
    names = [f.name for f in (*formats.FORMATS, formats.RAW)]
    assert len(names) == len(set(names))
    assert all(formats.by_name(n).name == n for n in names)
    assert formats.by_name("no such format") is formats.RAW
    extensions = [e for f in formats.FORMATS for e in f.extensions]
    assert len(extensions) == len(set(extensions))
    assert all(e.startswith(".") and e == e.lower() for e in extensions)


def test_scanner_folder_kinds_come_from_the_formats() -> None:
    assert list(scanner.LAYERED) == ["hyperv", "qcow2"]  # Hyper-V is tried first
    hyperv, exts = scanner.LAYERED["hyperv"]
    assert (hyperv.platform, hyperv.subfolder) == ("HyperV", "Virtual Hard Disks")
    assert set(exts) == {".vhdx", ".avhdx", ".vhd", ".avhd"}
    assert scanner.LAYERED["qcow2"][0].platform == "KVM"


def test_every_file_system_kind_has_an_opener_and_an_identity() -> None:
    assert set(OPENERS) == set(IDENTITIES) == {"ntfs", "ext", "xfs", "fat", "exfat"}


_TOY_MAGIC = b"TOYDISK\0"


def _toy_info(h: Head) -> ImageInfo:
    return ImageInfo(h.path, "toy", h.size - 512)


def _toy_layer(_info: ImageInfo, file: OpenFile, _files: dict[Path, OpenFile]) -> Layer:
    return RawLayer(file, start=512)


TOY = ImageFormat("toy", (".toy",), (_TOY_MAGIC,), _toy_info, _toy_layer)
"""A format whose data follows a 512-byte header: what a new format's module would export."""


def test_a_new_format_is_one_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = bytes(range(256)) * 16
    image = tmp_path / "disk.toy"
    image.write_bytes(_TOY_MAGIC.ljust(512, b"\0") + data)
    bad = tmp_path / "bad.toy"
    bad.write_bytes(b"\0" * 1024)
    assert images.probe(bad).format == "raw"  # a format nobody registered: its files are raw
    monkeypatch.setattr(images, "FORMATS", (*formats.FORMATS, TOY))
    with pytest.raises(CorruptImageError, match=r"not a toy image \(bad signature\)"):
        images.probe(bad)
    monkeypatch.setitem(formats._BY_NAME, "toy", TOY)
    info = images.probe(image)
    assert (info.format, info.virtual_size) == ("toy", len(data))
    chain = open_chain([image])
    try:
        assert chain.size == len(data) and chain.pread(100, 300) == data[300:400]
    finally:
        chain.close()


def test_a_new_guest_is_one_function(fixtures: Fixtures, monkeypatch: pytest.MonkeyPatch) -> None:
    def toy_guest(opened: Opened, os_hint: str, notes: list[str]) -> tuple[list[Root], bool] | None:
        if os_hint != "toy":
            return None
        notes.append("named by the toy guest")
        return [Root(f"Part{v.index}:", v, fs, problem) for v, fs, problem in opened], False

    monkeypatch.setattr(guests, "GUESTS", (toy_guest, *guests.GUESTS))
    disk = [fixtures.datastore("qcow2") / "lin-web01" / "disk0.qcow2"]
    view = open_view([disk], "toy")
    try:
        assert view.notes[-1] == "named by the toy guest"
        assert view.roots and all(r.name.startswith("Part") for r in view.roots)
        assert not view.linux_tree
    finally:
        view.close()
    view = open_view([disk])  # without the hint, the Linux guest names the roots as before
    try:
        assert view.linux_tree
    finally:
        view.close()
