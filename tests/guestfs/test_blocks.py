"""Block sources: every fixture chain reads back exactly its point's raw disk; damaged images fail
with a clear error instead of wrong bytes."""

from __future__ import annotations

import hashlib
import os
import random
import struct
import subprocess
import threading
from array import array
from collections.abc import Callable
from pathlib import Path

import pytest

from openflr.guestfs.blocks import BlockSource, CancelToken, Chain, Slice, cancel_scope, progression
from openflr.guestfs.disks import open_chain, open_top
from openflr.guestfs.errors import CorruptImageError, OpenCancelledError, UnsupportedImageError
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


# --- reading through windows of resolved runs (Chain.fill) and whole grain tables at once ------------

DISK = 20 * MiB
WINDOW = 8 * MiB
"""Window size in these tests (``Chain.WINDOW`` is larger): a 20 MiB disk spans three windows."""
HOLE = (10 * MiB, 11 * MiB)
"""Zeros in the base point: unallocated in a converted qcow2 or VMDK (read as zeros below the base)."""
CHANGES = [
    # (offset, length, byte) per upper layer: across cluster, grain, block and window (8 MiB) edges
    [
        (65536 - 512, 1024, 0x11),
        (WINDOW - 4096, 8192, 0x12),
        (3 * MiB, MiB, 0x13),
        (12 * MiB + 512, 512, 0x14),
    ],
    [
        (65536, 512, 0x21),
        (5 * MiB + 3 * 4096, 5 * 4096, 0x22),
        (16 * MiB - 512, 2048, 0x23),
        (HOLE[0], 4096, 0x24),
    ],
]


def _points(folder: Path) -> list[Path]:
    """Three points of a 20 MiB disk: random bytes with a hole of zeros, then each upper layer's
    ``CHANGES`` applied."""
    rng = random.Random(7)
    data = bytearray(rng.randbytes(DISK))
    data[HOLE[0] : HOLE[1]] = bytes(HOLE[1] - HOLE[0])
    points = [folder / "p1.raw"]
    points[0].write_bytes(data)
    for i, changes in enumerate(CHANGES, start=2):
        for offset, length, byte in changes:
            data[offset : offset + length] = bytes([byte]) * length
        points.append(folder / f"p{i}.raw")
        points[-1].write_bytes(data)
    return points


def _qemu_chain(folder: Path, fmt: str, base_opts: tuple[str, ...] = ()) -> Path:
    """A base converted from p1 and two layers of ``CHANGES`` written by qemu-io."""
    p1 = _points(folder)[0]
    qemu_img("convert", "-f", "raw", "-O", fmt, *base_opts, p1, folder / f"l0.{fmt}")
    base_fmt = "vmdk" if fmt == "vmdk" else fmt
    for i, changes in enumerate(CHANGES, start=1):
        top = folder / f"l{i}.{fmt}"
        qemu_img("create", "-q", "-f", fmt, "-b", f"l{i - 1}.{fmt}", "-F", base_fmt, top)
        for offset, length, byte in changes:
            subprocess.run(
                ["qemu-io", "-f", fmt, "-c", f"write -q -P {byte} {offset} {length}", str(top)],
                check=True,
                capture_output=True,
            )
    return folder / f"l{len(CHANGES)}.{fmt}"


def _esxi_chain(folder: Path, delta: str) -> Path:
    points = _points(folder)
    sectors = DISK // 512
    (folder / "b-flat.vmdk").write_bytes(points[0].read_bytes())
    (folder / "b.vmdk").write_text(esx.descriptor("vmfs", sectors, "VMFS", "b-flat.vmdk", None, 1, None))
    parent = "b.vmdk"
    for i in (1, 2):
        if delta == "seSparse":
            esx.write_sesparse(points[i - 1], points[i], folder / f"d{i}-sesparse.vmdk")
            kind, extent = "SESPARSE", f"d{i}-sesparse.vmdk"
        else:
            esx.write_cowd(points[i - 1], points[i], folder / f"d{i}-delta.vmdk")
            kind, extent = "VMFSSPARSE", f"d{i}-delta.vmdk"
        (folder / f"d{i}.vmdk").write_text(esx.descriptor(delta, sectors, kind, extent, parent, i + 1, i))
        parent = f"d{i}.vmdk"
    return folder / parent


def _vhdx_chain(folder: Path) -> Path:
    points = _points(folder)
    qemu_img(
        "convert",
        "-f",
        "raw",
        "-O",
        "vhdx",
        "-o",
        "subformat=dynamic,block_size=2M",
        points[0],
        folder / "l0.vhdx",
    )
    write_diff(str(folder / "l0.vhdx"), str(points[0]), str(points[1]), str(folder / "l1.avhdx"))
    write_diff(str(folder / "l1.avhdx"), str(points[1]), str(points[2]), str(folder / "l2.avhdx"))
    return folder / "l2.avhdx"


CHAINS: dict[str, Callable[[Path], Path]] = {
    "qcow2": lambda f: _qemu_chain(f, "qcow2"),
    "vmdk-sparse": lambda f: _qemu_chain(f, "vmdk"),
    "vmdk-flat": lambda f: _qemu_chain(f, "vmdk", ("-o", "subformat=monolithicFlat")),
    "vmfsSparse": lambda f: _esxi_chain(f, "vmfsSparse"),
    "seSparse": lambda f: _esxi_chain(f, "seSparse"),
    "vhdx": _vhdx_chain,
}


def _open(top: Path) -> Chain:
    chain = open_top(top)
    chain.WINDOW = WINDOW
    return chain


def _filled(chain: BlockSource, offset: int, length: int) -> bytes:
    out = bytearray(length)
    chain.fill(memoryview(out), offset)
    return bytes(out)


def _read_in_chunks(chain: BlockSource, chunk: int, start: int = 0) -> bytes:
    """The whole disk from ``start`` through ``fill`` in chunks of ``chunk`` (zeros before ``start``)."""
    out = bytearray(chain.size)
    pos = start
    while pos < chain.size:
        chain.fill(memoryview(out)[pos : pos + chunk], pos)
        pos += chunk
    return bytes(out)


@pytest.mark.parametrize("kind", list(CHAINS))
def test_windowed_reads_match_qemu_and_unwindowed_reads(tmp_path: Path, kind: str) -> None:
    top = CHAINS[kind](tmp_path)
    expected = (tmp_path / "p3.raw").read_bytes()
    if kind != "vhdx":  # qemu reads every other chain itself (not differencing VHDX)
        qemu_img("convert", "-O", "raw", top, tmp_path / "qemu.raw")
        assert (tmp_path / "qemu.raw").read_bytes() == expected
    chain = _open(top)
    try:
        assert chain.size == DISK
        # 1 MiB + 4097 at a time from an odd offset: every read crosses clusters, grains and windows.
        assert _read_in_chunks(chain, MiB + 4097, 1234)[1234:] == expected[1234:]
        assert any(w is not None for w in chain._windows.values())  # the windows were used and kept
        assert _read_in_chunks(chain, 3 * MiB) == expected  # again, from the kept windows
        for offset, length in [
            (0, DISK),
            (WINDOW - 100, 300 * 1024),
            (HOLE[0] - 7, MiB),
            (DISK - MiB, 2 * MiB),
        ]:
            want = expected[offset : offset + length]
            assert _filled(chain, offset, min(length, DISK - offset)) == want, (offset, length)
            assert chain.pread(length, offset) == want  # the unwindowed path agrees
    finally:
        chain.close()


@pytest.mark.parametrize("kind", list(CHAINS))
def test_reads_in_one_piece_are_the_bytes_of_the_point(tmp_path: Path, kind: str) -> None:
    """``read_piece`` answers where a read lies in one piece of one file, through a partition too,
    and leaves every other read (holes, pieces split between layers or windows, small reads) to
    ``fill``: what it answers is the point's bytes."""
    top = CHAINS[kind](tmp_path)
    expected = (tmp_path / "p3.raw").read_bytes()
    chain = _open(top)
    partition = Slice(chain, 3 * MiB, DISK - 4 * MiB)
    try:
        answered = 0
        for offset in [*range(0, DISK - MiB + 1, MiB), 4097, WINDOW - MiB // 2, HOLE[0]]:
            whole = chain.read_piece(MiB, offset)
            if whole is not None:
                answered += 1
                assert whole == expected[offset : offset + MiB], offset
            if offset >= 3 * MiB and offset + MiB <= 3 * MiB + partition.size:
                assert partition.read_piece(MiB, offset - 3 * MiB) == whole, offset
        assert answered >= 2, answered  # the bases' data is in pieces of a MiB and more
        assert chain.read_piece(MiB, HOLE[0]) is None  # zeros come from no file
        assert chain.read_piece(WINDOW // 4, WINDOW - 100) is None  # across two windows
        assert chain.read_piece(4096, 0) is None and chain.read_piece(MiB, DISK - MiB // 2) is None
        assert partition.read_piece(MiB, partition.size - MiB // 2) is None
    finally:
        chain.close()


def test_windowed_reads_of_compressed_clusters(tmp_path: Path) -> None:
    # Bytes a layer makes itself (decompressed clusters) are not kept in a window map; still right.
    p1 = tmp_path / "text.raw"  # compressible (random bytes would be stored as they are)
    p1.write_bytes(
        b"".join(f"line {i:07d} of a compressible disk\n".encode() for i in range(DISK // 36)).ljust(DISK)
    )
    qemu_img("convert", "-c", "-f", "raw", "-O", "qcow2", p1, tmp_path / "c.qcow2")
    chain = _open(tmp_path / "c.qcow2")
    try:
        assert _read_in_chunks(chain, MiB + 512) == p1.read_bytes()
        assert chain._windows and all(w is None for w in chain._windows.values())
    finally:
        chain.close()


def test_a_fragmented_window_is_not_kept(tmp_path: Path) -> None:
    # Every other 4 KiB grain changed in the delta: thousands of runs per window, more than a window
    # may keep (bounded memory); the bytes still come from the right layer.
    points = _points(tmp_path)
    changed = bytearray(points[0].read_bytes())
    for offset in range(0, WINDOW, 8192):
        changed[offset : offset + 4096] = b"\x5a" * 4096
    (tmp_path / "frag.raw").write_bytes(changed)
    sectors = DISK // 512
    (tmp_path / "b-flat.vmdk").write_bytes(points[0].read_bytes())
    (tmp_path / "b.vmdk").write_text(esx.descriptor("vmfs", sectors, "VMFS", "b-flat.vmdk", None, 1, None))
    esx.write_cowd(points[0], tmp_path / "frag.raw", tmp_path / "d-delta.vmdk")
    (tmp_path / "d.vmdk").write_text(
        esx.descriptor("vmfsSparse", sectors, "VMFSSPARSE", "d-delta.vmdk", "b.vmdk", 2, 1)
    )
    chain = _open(tmp_path / "d.vmdk")
    try:
        assert _read_in_chunks(chain, MiB) == bytes(changed)
        assert chain._windows[0] is None  # over WINDOW_RUNS: read as before, not kept
        assert chain._windows[WINDOW] is not None
        kept = [w for w in chain._windows.values() if w is not None]
        assert all(len(runs) <= chain.WINDOW_RUNS for _, runs in kept)
    finally:
        chain.close()


def test_window_maps_are_bounded(tmp_path: Path) -> None:
    chain = _open(_qemu_chain(tmp_path, "qcow2"))
    try:
        chain.WINDOWS = 2
        assert _read_in_chunks(chain, MiB) == (tmp_path / "p3.raw").read_bytes()
        assert list(chain._windows) == [WINDOW, 2 * WINDOW]  # the least recently used went first
    finally:
        chain.close()


def _deep_changes(depth: int) -> list[tuple[int, int, int]]:
    """One change per upper layer at its own place (4 KiB, a 512-byte sector and across the window
    edge in turn), each overwriting part of the one before at every fourth layer."""
    out = []
    for i in range(1, depth):
        offset = [i * 3 * 65536, i * 3 * 65536 + 1536, WINDOW - 2048 + i * 512, (i - 1) * 3 * 65536][i % 4]
        out.append((offset, 4096, i))
    return out


@pytest.mark.parametrize("fmt", ["qcow2", "vhdx"])
def test_fall_through_at_every_depth_of_a_32_layer_chain(tmp_path: Path, fmt: str) -> None:
    p1 = _points(tmp_path)[0]
    expected = bytearray(p1.read_bytes())
    if fmt == "qcow2":
        qemu_img("convert", "-f", "raw", "-O", "qcow2", p1, tmp_path / "l00.qcow2")
    else:
        qemu_img(
            "convert",
            "-f",
            "raw",
            "-O",
            "vhdx",
            "-o",
            "subformat=dynamic,block_size=2M",
            p1,
            tmp_path / "l00.qcow2",
        )
        (tmp_path / "l00.qcow2").rename(tmp_path / "l00.vhdx")
    zeros, after = tmp_path / "zeros.raw", tmp_path / "after.raw"
    zeros.write_bytes(bytes(DISK))
    name = f"l00.{fmt}"
    for i, (offset, length, byte) in enumerate(_deep_changes(32), start=1):
        expected[offset : offset + length] = bytes([byte]) * length
        top = f"l{i:02d}.{'qcow2' if fmt == 'qcow2' else 'avhdx'}"
        if fmt == "qcow2":
            qemu_img("create", "-q", "-f", "qcow2", "-b", name, "-F", "qcow2", tmp_path / top)
            subprocess.run(
                [
                    "qemu-io",
                    "-f",
                    "qcow2",
                    "-c",
                    f"write -q -P {byte} {offset} {length}",
                    str(tmp_path / top),
                ],
                check=True,
                capture_output=True,
            )
        else:
            changed = bytearray(DISK)
            changed[offset : offset + length] = bytes([byte]) * length
            after.write_bytes(changed)
            write_diff(str(tmp_path / name), str(zeros), str(after), str(tmp_path / top))
        name = top
    if fmt == "qcow2":
        qemu_img("convert", "-O", "raw", tmp_path / name, tmp_path / "qemu.raw")
        assert (tmp_path / "qemu.raw").read_bytes() == expected
    chain = _open(tmp_path / name)
    try:
        assert len(chain.layers) == 32
        assert _read_in_chunks(chain, MiB + 4097, 1)[1:] == bytes(expected)[1:]
        assert _read_in_chunks(chain, 2 * MiB) == bytes(expected)
        for offset, length, _byte in _deep_changes(32):  # each change, as a small unwindowed read too
            assert chain.pread(length + 1024, offset - 512) == bytes(
                expected[offset - 512 : offset + length + 512]
            )
    finally:
        chain.close()


def test_truncated_images_still_fail_windowed_reads(tmp_path: Path) -> None:
    top = _qemu_chain(tmp_path, "qcow2")
    base = tmp_path / "l0.qcow2"
    os.truncate(base, base.stat().st_size - 3 * MiB)  # data clusters at the end of the base are gone
    chain = _open(top)
    try:
        with pytest.raises(CorruptImageError, match=r"ends at byte|truncated"):
            _read_in_chunks(chain, MiB)
    finally:
        chain.close()
    (tmp_path / "flat").mkdir()
    flat = _open(_qemu_chain(tmp_path / "flat", "vmdk", ("-o", "subformat=monolithicFlat")))
    try:
        assert _filled(flat, 0, MiB) == (tmp_path / "flat" / "p3.raw").read_bytes()[:MiB]
        os.truncate(
            tmp_path / "flat" / "l0-flat.vmdk", 4 * MiB
        )  # shrinks while open, after a window was kept
        with pytest.raises(CorruptImageError, match="ends at byte"):
            _filled(flat, 6 * MiB, MiB)
        with pytest.raises(CorruptImageError, match="ends at byte"):
            flat.read_piece(MiB, 6 * MiB)  # read in one piece: a short read is an error too
    finally:
        flat.close()


def test_a_damaged_cluster_fails_only_the_reads_that_need_it(tmp_path: Path) -> None:
    p1 = _points(tmp_path)[0]
    qemu_img("convert", "-f", "raw", "-O", "qcow2", p1, tmp_path / "q.qcow2")
    data = bytearray((tmp_path / "q.qcow2").read_bytes())
    l1_offset = struct.unpack_from(">Q", data, 40)[0]
    l2_offset = struct.unpack_from(">Q", data, l1_offset)[0] & 0x00FFFFFFFFFFFE00
    damaged = 5 * MiB // 65536  # the cluster at 5 MiB: compressed, far beyond the end of the file
    struct.pack_into(">Q", data, l2_offset + 8 * damaged, (1 << 62) | (1 << 50))
    (tmp_path / "q.qcow2").write_bytes(bytes(data))
    chain = _open(tmp_path / "q.qcow2")
    try:
        assert _filled(chain, 0, 4 * MiB) == p1.read_bytes()[: 4 * MiB]  # same window, not the cluster
        with pytest.raises(CorruptImageError, match="compressed cluster"):
            _filled(chain, 4 * MiB, 2 * MiB)
    finally:
        chain.close()


def test_windowed_reads_from_threads(tmp_path: Path) -> None:
    top = _esxi_chain(tmp_path, "seSparse")
    expected = (tmp_path / "p3.raw").read_bytes()
    chain = _open(top)
    results: list[bool] = []

    def read(chunk: int) -> None:
        results.append(_read_in_chunks(chain, chunk) == expected)

    try:
        threads = [threading.Thread(target=read, args=(MiB + 512 * n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [True] * 4
    finally:
        chain.close()


def test_cancelled_windowed_read(tmp_path: Path) -> None:
    chain = _open(_qemu_chain(tmp_path, "qcow2"))
    token = CancelToken("too slow")
    token.cancel()
    try:
        with cancel_scope(token), pytest.raises(OpenCancelledError, match="too slow"):
            _filled(chain, 0, 2 * MiB)
        assert not chain._windows  # nothing resolved for a cancelled read
    finally:
        chain.close()


def _naive_progression(entries: array[int], start: int, stop: int, step: int) -> int:
    k = 1
    while start + k < stop and entries[start + k] == entries[start] + k * step:
        k += 1
    return k


def test_progression_matches_a_plain_loop() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        typecode = rng.choice("IQ")
        top = (1 << (32 if typecode == "I" else 64)) - 1
        step = rng.choice([0, 1, 8, 128, 1 << 16])
        value = rng.choice([0, 7, top - rng.randrange(400)])
        values = []
        for _ in range(rng.randint(1, 80)):
            values.append(value)
            value = rng.randrange(top) if rng.random() < 0.08 else value + step
            if value > top:
                value = 0
        entries = array(typecode, values)
        start = rng.randrange(len(values))
        stop = rng.randint(start + 1, len(values))
        assert progression(entries, start, stop, step) == _naive_progression(entries, start, stop, step)


def test_vhdx_blocks_beyond_a_truncated_file(tmp_path: Path) -> None:
    # Runs of blocks are checked against the file's size as a whole: the first block past the end is
    # named, and the blocks before it in the same window still read.
    p1 = _points(tmp_path)[0]
    image = tmp_path / "t.vhdx"
    qemu_img("convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic,block_size=1M", p1, image)
    os.truncate(image, image.stat().st_size - 2 * MiB)  # the last two blocks' data
    chain = _open(image)
    try:
        assert _filled(chain, 0, 4 * MiB) == p1.read_bytes()[: 4 * MiB]
        with pytest.raises(CorruptImageError, match=r"VHDX block 1[89] lies outside the file"):
            _read_in_chunks(chain, MiB)
    finally:
        chain.close()
