"""Block sources: every fixture chain reads back exactly its point's raw disk; damaged images fail
with a clear error instead of wrong bytes."""

from __future__ import annotations

import hashlib
import struct
import subprocess
from pathlib import Path

import pytest

from openflr.guestfs.blocks import BlockSource, Slice
from openflr.guestfs.disks import open_chain, open_top
from openflr.guestfs.errors import CorruptImageError, UnsupportedImageError
from tests.imagebuilder import Fixtures
from tests.imagebuilder import esxi as esx
from tests.imagebuilder.vhd import write_diff as write_vhd_diff
from tests.imagebuilder.vhdx import write_diff

MiB = 1024 * 1024


def digest(src: BlockSource, chunk: int = 4 * MiB) -> str:
    h = hashlib.sha256()
    pos = 0
    while pos < src.size:
        data = src.pread(chunk, pos)
        assert data, f"short read at {pos}"
        h.update(data)
        pos += len(data)
    return h.hexdigest()


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(4 * MiB):
            h.update(block)
    return h.hexdigest()


def qemu_img(*args: object) -> None:
    subprocess.run(["qemu-img", *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def raw_digests(fixtures: Fixtures) -> dict[tuple[str, str, int], str]:
    return {
        (vm, p, d): file_digest(fixtures.root / f)
        for vm, points in fixtures.manifest["raw"].items()
        for p, files in points.items()
        for d, f in enumerate(files)
    }


@pytest.mark.parametrize("datastore", ["vmware", "hyperv", "qcow2", "esxi", "misc"])
def test_every_chain_reproduces_its_raw_point(
    fixtures: Fixtures, raw_digests: dict[tuple[str, str, int], str], datastore: str
) -> None:
    checked = 0
    for folder, vm in fixtures.expected(datastore).items():
        if folder == "problems":
            continue
        for i, point in enumerate(vm["points"]):
            for d, files in enumerate(point["disks"]):
                chain = open_chain([fixtures.datastore(datastore) / f for f in files])
                try:
                    assert digest(chain) == raw_digests[(vm["display_name"], f"p{i + 1}", d)], (folder, i, d)
                    checked += 1
                finally:
                    chain.close()
    assert checked >= 1


def test_odd_sized_and_unaligned_reads(fixtures: Fixtures) -> None:
    vm = fixtures.expected("vmware")["lin-web01_replica"]
    files = [fixtures.datastore("vmware") / f for f in vm["points"][2]["disks"][0]]
    raw = fixtures.root / fixtures.manifest["raw"]["lin-web01"]["p3"][0]
    chain = open_chain(files)
    with open(raw, "rb") as fh:
        for offset, length in [
            (0, 1),
            (511, 3),
            (65535, 131073),
            (chain.size - 7, 100),
            (1 * MiB + 17, 3 * MiB),
        ]:
            fh.seek(offset)
            assert chain.pread(length, offset) == fh.read(length), (offset, length)
    assert chain.pread(10, chain.size) == b""
    chain.close()


def test_compressed_qcow2_clusters(tmp_path: Path, fixtures: Fixtures) -> None:
    # libqcow returns zeros for some of these clusters; our reader must not.
    raw = fixtures.root / fixtures.manifest["raw"]["Win File Server"]["p1"][0]
    qemu_img("convert", "-c", "-f", "raw", "-O", "qcow2", raw, tmp_path / "c.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", "-b", "c.qcow2", "-F", "qcow2", tmp_path / "top.qcow2")
    assert digest(open_top(tmp_path / "top.qcow2")) == file_digest(raw)


def test_vhd_dynamic_and_differencing(tmp_path: Path, fixtures: Fixtures) -> None:
    p1 = fixtures.root / fixtures.manifest["raw"]["lin-web01"]["p1"][1]
    qemu_img("convert", "-f", "raw", "-O", "vpc", p1, tmp_path / "base.vhd")
    qemu_img("create", "-q", "-f", "vpc", "-o", "subformat=fixed", tmp_path / "fixed.vhd", "16M")
    vhd = open_top(tmp_path / "base.vhd")
    assert vhd.size >= p1.stat().st_size  # VHD rounds the size up to a CHS geometry
    assert vhd.pread(p1.stat().st_size, 0) == p1.read_bytes()
    p3 = fixtures.root / fixtures.manifest["raw"]["lin-web01"]["p3"][0]
    p2 = fixtures.root / fixtures.manifest["raw"]["lin-web01"]["p2"][0]
    qemu_img("convert", "-f", "raw", "-O", "vpc", "-o", "force_size=on", p2, tmp_path / "p2.vhd")
    write_vhd_diff(tmp_path / "p2.vhd", p2, p3, tmp_path / "p3.vhd")  # qemu cannot make differencing VHDs
    child = open_top(tmp_path / "p3.vhd")
    assert [layer.name for layer in child.layers] == ["p3.vhd", "p2.vhd"]
    assert digest(child) == file_digest(p3)
    fixed = open_top(tmp_path / "fixed.vhd")
    assert fixed.size >= 16 * MiB and fixed.pread(16, 0) == b"\0" * 16


def test_vhdx_chunk_without_sector_bitmap_reads_the_parent(tmp_path: Path, fixtures: Fixtures) -> None:
    # A differencing VHDX need not allocate a sector bitmap for untouched chunks; libvhdi then
    # returns zeros. Our reader falls through to the parent.
    raws = fixtures.manifest["raw"]["Win File Server"]
    p3 = fixtures.root / raws["p3"][0]
    qemu_img(
        "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic,block_size=2M", p3, tmp_path / "b.vhdx"
    )
    write_diff(
        str(tmp_path / "b.vhdx"), str(p3), str(p3), str(tmp_path / "c.avhdx"), bitmap_every_chunk=False
    )
    assert digest(open_top(tmp_path / "c.avhdx")) == file_digest(p3)


def test_esxi_writers_agree_with_qemu(tmp_path: Path, fixtures: Fixtures) -> None:
    raws = fixtures.manifest["raw"]["lin-web01"]
    a, b = (fixtures.root / raws[p][1] for p in ("p1", "p3"))
    sectors = a.stat().st_size // 512
    (tmp_path / "base-flat.vmdk").write_bytes(a.read_bytes())
    (tmp_path / "base.vmdk").write_text(
        esx.descriptor("vmfs", sectors, "VMFS", "base-flat.vmdk", None, 1, None)
    )
    esx.write_sesparse(a, b, tmp_path / "d-sesparse.vmdk")
    (tmp_path / "d.vmdk").write_text(
        esx.descriptor("seSparse", sectors, "SESPARSE", "d-sesparse.vmdk", "base.vmdk", 2, 1)
    )
    qemu_img("compare", "-q", "-f", "vmdk", "-F", "raw", tmp_path / "d.vmdk", b)  # independent reader
    assert digest(open_top(tmp_path / "d.vmdk")) == file_digest(b)


@pytest.mark.parametrize(
    ("name", "damage", "error", "message"),
    [
        (
            "l1.qcow2",
            lambda d: d[:40] + struct.pack(">Q", 1 << 40) + d[48:],
            CorruptImageError,
            "L1 table|beyond the end",
        ),
        (
            "zstd.qcow2",
            lambda d: d[:72] + struct.pack(">Q", 8) + d[80:104] + b"\x01" + d[105:],
            UnsupportedImageError,
            "zstd",
        ),
        (
            "vhdx.vhdx",
            lambda d: d[: 1024 * 1024 + 10],
            CorruptImageError,
            "out of bounds|outside the file|truncated",
        ),
    ],
)
def test_damaged_images_fail_clearly(
    tmp_path: Path, name: str, damage: object, error: type[Exception], message: str
) -> None:
    fmt = name.split(".")[1]
    raw = tmp_path / "r.raw"
    raw.write_bytes(b"\xab" * 4 * MiB)
    good = tmp_path / f"good.{fmt}"
    qemu_img("convert", "-f", "raw", "-O", fmt, raw, good)
    data = good.read_bytes()
    if name == "zstd.qcow2":
        data = data[:100] + struct.pack(">I", 112) + data[104:]
    (tmp_path / name).write_bytes(damage(data))  # type: ignore[operator]

    def read_all() -> None:
        digest(open_top(tmp_path / name))

    with pytest.raises(error, match=message):
        read_all()


def test_qcow2_l2_table_outside_the_file(tmp_path: Path) -> None:
    raw = tmp_path / "r.raw"
    raw.write_bytes(b"\xcd" * 2 * MiB)
    qemu_img("convert", "-f", "raw", "-O", "qcow2", raw, tmp_path / "q.qcow2")
    data = bytearray((tmp_path / "q.qcow2").read_bytes())
    l1_offset = struct.unpack_from(">Q", data, 40)[0]
    struct.pack_into(">Q", data, l1_offset, (1 << 63) | (1 << 45))  # L2 table far beyond the end
    (tmp_path / "q.qcow2").write_bytes(bytes(data))
    with pytest.raises(CorruptImageError, match="L2 table 0 lies outside the file"):
        open_top(tmp_path / "q.qcow2").pread(4096, 0)


def test_slice_bounds(fixtures: Fixtures) -> None:
    raw = fixtures.root / fixtures.manifest["raw"]["lin-web01"]["p1"][1]
    src = open_top(raw)
    part = Slice(src, MiB, MiB)
    assert part.pread(10, MiB - 4) == src.pread(4, 2 * MiB - 4)
    with pytest.raises(CorruptImageError):
        Slice(src, src.size - 10, 100)
