"""Image metadata probing on real images made by qemu-img and our own writers, plus damaged ones."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from openflr.guestfs.errors import CorruptImageError, MissingImageError, UnsupportedImageError
from openflr.guestfs.images import chain, probe, resolve_parent
from tests.imagebuilder import Fixtures


def qemu_img(*args: str | Path) -> None:
    subprocess.run(["qemu-img", *map(str, args)], check=True, capture_output=True)


@pytest.fixture
def small(tmp_path: Path) -> Path:
    raw = tmp_path / "small.raw"
    raw.write_bytes(b"\0" * (4 * 1024 * 1024))
    return raw


def test_formats_of_the_fixture_chains(fixtures: Fixtures) -> None:
    vm = fixtures.datastore("vmware") / "lin-web01_replica"
    flat = chain(vm / "lin-web01_replica-000002.vmdk")
    assert [i.create_type for i in flat] == ["monolithicSparse", "monolithicSparse", "monolithicFlat"]
    assert (
        flat[-1].extents[0].kind == "FLAT" and flat[-1].extents[0].path == vm / "lin-web01_replica-flat.vmdk"
    )
    stream = chain(vm / "lin-web01_replica_1-000001.vmdk")
    assert stream[-1].create_type == "streamOptimized"
    assert {i.virtual_size for i in stream} == {16 * 1024 * 1024}
    qc = chain(fixtures.datastore("qcow2") / "lin-web01" / "disk1-current.qcow2")
    assert [i.path.name for i in qc] == [
        "disk1-current.qcow2",
        "disk1-p3.qcow2",
        "disk1-p2.qcow2",
        "disk1.qcow2",
    ]
    hv_dir = fixtures.datastore("hyperv") / "Win File Server" / "Virtual Hard Disks"
    tops = [p for p in hv_dir.iterdir() if p.suffix == ".avhdx"]
    depths = sorted(len(chain(t)) for t in tops)
    assert depths == [2, 3, 4]
    assert all(i.format == "vhdx" for t in tops for i in chain(t))


def test_vhd_parent(tmp_path: Path, small: Path) -> None:
    qemu_img("convert", "-f", "raw", "-O", "vpc", small, tmp_path / "base.vhd")
    info = probe(tmp_path / "base.vhd")
    assert info.format == "vhd" and info.parent is None


def test_raw_is_raw(small: Path) -> None:
    info = probe(small)
    assert info.format == "raw" and info.virtual_size == 4 * 1024 * 1024


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MissingImageError):
        probe(tmp_path / "nope.qcow2")


def test_missing_parent_names_the_child(tmp_path: Path, small: Path) -> None:
    qemu_img("convert", "-f", "raw", "-O", "qcow2", small, tmp_path / "base.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", tmp_path / "top.qcow2")
    (tmp_path / "base.qcow2").unlink()
    with pytest.raises(MissingImageError, match=r"top\.qcow2: parent base\.qcow2 not found"):
        chain(tmp_path / "top.qcow2")


def test_backing_loop_is_detected(tmp_path: Path, small: Path) -> None:
    qemu_img("convert", "-f", "raw", "-O", "qcow2", small, tmp_path / "a.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", tmp_path / "b.qcow2")
    # Point a at b: a -> b -> a.
    data = bytearray((tmp_path / "b.qcow2").read_bytes())
    off, _size = struct.unpack_from(">QI", data, 8)
    a = bytearray((tmp_path / "a.qcow2").read_bytes())
    name = b"b.qcow2"
    struct.pack_into(">QI", a, 8, off, len(name))
    a[off : off + len(name)] = name
    (tmp_path / "a.qcow2").write_bytes(bytes(a))
    with pytest.raises(CorruptImageError, match="loops"):
        chain(tmp_path / "b.qcow2")


@pytest.mark.parametrize(
    ("name", "damage", "error"),
    [
        ("t.qcow2", lambda b: b[:50], CorruptImageError),
        ("v.qcow2", lambda b: b[:4] + struct.pack(">I", 9) + b[8:], UnsupportedImageError),
        ("c.qcow2", lambda b: b[:20] + struct.pack(">I", 40) + b[24:], CorruptImageError),
        ("s.qcow2", lambda b: b[:24] + struct.pack(">Q", 1 << 62) + b[32:], CorruptImageError),
        ("x.vhdx", lambda b: b[: 300 * 1024], CorruptImageError),
        ("d.vmdk", lambda b: b"\x00GARBAGE" * 64 + b[512:], CorruptImageError),
        ("n.qcow2", lambda b: b"NOTQCOW" + b[7:], CorruptImageError),
    ],
)
def test_damaged_headers(
    tmp_path: Path, small: Path, name: str, damage: object, error: type[Exception]
) -> None:
    fmt = {"qcow2": "qcow2", "vhdx": "vhdx", "vmdk": "vmdk"}[name.split(".")[1]]
    good = tmp_path / f"good.{fmt}"
    qemu_img("convert", "-f", "raw", "-O", fmt, small, good)
    bad = tmp_path / name
    bad.write_bytes(damage(good.read_bytes()))  # type: ignore[operator]
    with pytest.raises(error):
        probe(bad)


def test_vmdk_descriptor_errors(tmp_path: Path) -> None:
    (tmp_path / "noext.vmdk").write_text(
        '# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\n'
    )
    with pytest.raises(CorruptImageError, match="no extents"):
        probe(tmp_path / "noext.vmdk")
    (tmp_path / "flat.vmdk").write_text(
        "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\n"
        'createType="vmfs"\nRW 8192 VMFS "gone-flat.vmdk"\n'
    )
    with pytest.raises(MissingImageError, match=r"extent file gone-flat\.vmdk not found"):
        chain(tmp_path / "flat.vmdk")
    (tmp_path / "delta.vmdk").write_text(
        "# Disk DescriptorFile\nversion=1\nCID=2\nparentCID=00000001\n"
        'createType="vmfsSparse"\nRW 8192 VMFSSPARSE "x-delta.vmdk"\n'
    )
    with pytest.raises(CorruptImageError, match="parentFileNameHint"):
        probe(tmp_path / "delta.vmdk")


def test_esxi_absolute_parent_hint_falls_back_to_the_folder(tmp_path: Path) -> None:
    (tmp_path / "base.vmdk").write_text("x")
    found = resolve_parent(tmp_path / "child.vmdk", "/vmfs/volumes/5f1e-aa/vm/base.vmdk")
    assert found == tmp_path / "base.vmdk"
    found = resolve_parent(tmp_path / "child.avhdx", "C:\\Hyper-V\\vm\\base.vmdk")
    assert found == tmp_path / "base.vmdk"


def test_copy_of_datastore_keeps_chains(tmp_path: Path, fixtures: Fixtures) -> None:
    # Relative parent links survive a copy of the VM folder to another place.
    src = fixtures.datastore("hyperv") / "Win File Server"
    dst = tmp_path / "copy"
    shutil.copytree(src, dst, copy_function=lambda s, d: Path(d).symlink_to(s))
    tops = sorted((dst / "Virtual Hard Disks").glob("*.avhdx"), key=lambda p: len(chain(p)))
    assert chain(tops[-1])[-1].path.name == "Win File Server.vhdx"
