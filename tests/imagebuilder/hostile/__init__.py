"""A corpus of hostile disk images, made by mutating the fixture images, laid out as a datastore.

Every case is one VM folder with an ``openflr-vm.toml`` (one point, its disks' top images), so a real
server can scan the corpus like any datastore. The cases cover: truncated images (at the header, in
the metadata, in the data), corrupt headers (bad magic and version, absurd sizes and counts, tables
outside the file), loops (backing chains, VMDK parent hints, AVHDX parent locators, MBR extended
partitions, LVM metadata), a directory that contains itself or an ancestor (ext4, FAT, NTFS, XFS),
paths that leave the datastore, special files as disks, and seeded random byte flips of each
format's and each file system's metadata. One good VM (``good-vm``) sits among them.

``ensure_hostile(fixtures)`` builds once into ``.cache/hostile/<fixture key>-<hash of this module>/``
and reuses it. Mutants of big disks are small qcow2 overlays over hard links of the fixtures' raw
images (in ``_base/``), so the corpus costs little disk space.

This lives in a package (not ``tests/imagebuilder/hostile.py``) so that editing it does not change
the fixture builder's cache key (``builder_key`` hashes ``tests/imagebuilder/*.py``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from tests.imagebuilder import CACHE, Fixtures

HERE = Path(__file__).resolve().parent
KiB, MiB = 1024, 1024 * 1024
SECTOR = 512
GOOD = "good-vm"
SLOW = "slow-64-disks-100-deep"


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    """What is hostile about it (rows of the table in docs/SECURITY.md)."""
    expect: str
    """``fail``: must be refused with a clear message; ``degraded``: must open without the damaged part,
    with a note naming it; ``any``: may open (possibly partly) or fail."""
    build: Callable[[Builder, Path], list[str]]
    """Writes the VM folder's images; returns each disk's top image, relative to the folder."""
    walk: str = ""
    """The folder a walk should start from to meet the damage (EM path); empty: every root."""
    loop: bool = False
    """A walk from ``walk`` must meet a folder it has already visited and say so."""


@dataclass(frozen=True)
class Hostile:
    root: Path
    cases: dict[str, dict[str, Any]]
    """name -> {"kind", "expect", "walk", "loop", "disks": [top image paths]}."""

    @property
    def datastore(self) -> Path:
        return self.root / "datastore"


# --- little helpers ------------------------------------------------------------------------------------


def _patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def _read(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(length)


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(size)


def _copy(src: Path, dst: Path) -> Path:
    subprocess.run(["cp", "--sparse=always", str(src), str(dst)], check=True)
    return dst


def _run(*cmd: str | Path, stdin: bytes | None = None) -> None:
    proc = subprocess.run([str(c) for c in cmd], input=stdin, capture_output=True)
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed: {proc.stderr.decode(errors='replace')[-2000:]}")


def _nonzero_sectors(data: bytes, base: int) -> list[int]:
    return [base + i for i in range(0, len(data), SECTOR) if data[i : i + SECTOR].strip(b"\0")]


def _flips(rng: random.Random, sectors: list[int], count: int) -> list[tuple[int, bytes]]:
    """``count`` random byte changes inside the given (non-empty) sectors."""
    out = []
    for _ in range(count):
        sector = rng.choice(sectors)
        at = sector + rng.randrange(SECTOR)
        how = rng.randrange(4)
        value = [0x00, 0xFF, rng.randrange(256), 0x80][how]
        out.append((at, bytes([value])))
    return out


def _xor_flips(rng: random.Random, data: bytes, sectors: list[int], count: int) -> list[tuple[int, bytes]]:
    """Like ``_flips`` for a buffer: flip one random bit per change (keeps most values plausible)."""
    out = []
    for _ in range(count):
        sector = rng.choice(sectors)
        at = sector + rng.randrange(SECTOR)
        if at < len(data):
            out.append((at, bytes([data[at] ^ (1 << rng.randrange(8))])))
    return out


# --- qcow2 writer (overlays and crafted headers) ------------------------------------------------------


def write_qcow2(
    path: Path,
    size: int,
    *,
    backing: str | None = None,
    backing_fmt: str | None = None,
    clusters: dict[int, bytes] | None = None,
    cluster_bits: int = 16,
    l1_entries: int | None = None,
) -> None:
    """A qcow2 v3 image: header, L1, L2 tables and the given data clusters (index -> bytes)."""
    cluster = 1 << cluster_bits
    l2_entries = cluster // 8
    clusters = clusters or {}
    needed = -(-size // (cluster * l2_entries))
    l1_entries = needed if l1_entries is None else l1_entries
    l1_clusters = max(1, -(-l1_entries * 8 // cluster))
    header = bytearray(cluster)
    # Layout: header | L1 | refcount table | L2 tables | data.
    l1_off = cluster
    rc_off = l1_off + l1_clusters * cluster
    next_off = rc_off + cluster
    l1 = [0] * l1_entries
    l2: dict[int, list[int]] = {}
    data_at: dict[int, int] = {}
    for index in sorted(clusters):
        table = index // l2_entries
        if table not in l2:
            l2[table] = [0] * l2_entries
    l2_off: dict[int, int] = {}
    for table in sorted(l2):
        l2_off[table] = next_off
        l1[table] = next_off | (1 << 63)
        next_off += cluster
    for index in sorted(clusters):
        data_at[index] = next_off
        l2[index // l2_entries][index % l2_entries] = next_off | (1 << 63)
        next_off += cluster
    struct.pack_into(
        ">4sIQIIQIIQQIIQQQQII",
        header,
        0,
        b"QFI\xfb",
        3,
        0,
        0,
        cluster_bits,
        size,
        0,
        l1_entries,
        l1_off,
        rc_off,
        1,
        0,
        0,
        0,
        0,
        0,
        4,
        104,
    )
    at = 104
    if backing_fmt:
        name = backing_fmt.encode()
        struct.pack_into(">II", header, at, 0xE2792ACA, len(name))
        header[at + 8 : at + 8 + len(name)] = name
        at += 8 + (len(name) + 7) // 8 * 8
    struct.pack_into(">II", header, at, 0, 0)
    at += 8
    if backing is not None:
        name = backing.encode()
        struct.pack_into(">QI", header, 8, at, len(name))
        header[at : at + len(name)] = name
    with open(path, "wb") as fh:
        fh.write(header)
        fh.seek(l1_off)
        fh.write(struct.pack(f">{l1_entries}Q", *l1) if l1_entries <= 1 << 20 else b"")
        fh.seek(rc_off)
        fh.write(b"\0" * cluster)
        for table, entries in l2.items():
            fh.seek(l2_off[table])
            fh.write(struct.pack(f">{l2_entries}Q", *entries))
        for index, data in clusters.items():
            fh.seek(data_at[index])
            fh.write(data.ljust(cluster, b"\0"))
        fh.truncate(max(next_off, l1_off + l1_entries * 8, rc_off + cluster))


def overlay(path: Path, base: Path, backing: str, patches: Iterable[tuple[int, bytes]]) -> None:
    """A qcow2 overlay over the raw ``base`` (named ``backing`` in the header) holding ``patches``."""
    cluster = 64 * KiB
    touched: dict[int, bytearray] = {}
    with open(base, "rb") as fh:
        for offset, data in patches:
            pos = 0
            while pos < len(data):
                index = (offset + pos) // cluster
                if index not in touched:
                    fh.seek(index * cluster)
                    touched[index] = bytearray(fh.read(cluster).ljust(cluster, b"\0"))
                within = (offset + pos) % cluster
                n = min(len(data) - pos, cluster - within)
                touched[index][within : within + n] = data[pos : pos + n]
                pos += n
    write_qcow2(
        path,
        base.stat().st_size,
        backing=backing,
        backing_fmt="raw",
        clusters={i: bytes(b) for i, b in touched.items()},
    )


# --- the builder ---------------------------------------------------------------------------------------


class Builder:
    """Knows where the fixture images are and writes one case's folder at a time."""

    BASES: ClassVar[dict[str, tuple[str, str, int]]] = {
        "scratch.raw": ("lin-web01", "p1", 1),  # 16 MiB, whole-disk ext4
        "lin.raw": ("lin-web01", "p1", 0),  # MBR: ext4 + XFS
        "win.raw": ("Win File Server", "p1", 0),  # GPT: FAT32 ESP + NTFS
        "misc.raw": ("lvm-vm", "p1", 0),  # MBR + EBR: ext4, FAT16, LVM (2 ext4 LVs)
        "exfat.raw": ("lvm-vm", "p1", 1),  # whole-disk exFAT
    }

    def __init__(self, fixtures: Fixtures, datastore: Path) -> None:
        self.fx = fixtures
        self.ds = datastore
        self.base = datastore / "_base"
        self.base.mkdir(parents=True, exist_ok=True)
        for name, (vm, point, disk) in self.BASES.items():
            src = fixtures.root / fixtures.manifest["raw"][vm][point][disk]
            dst = self.base / name
            try:
                os.link(src, dst)
            except OSError:
                _copy(src, dst)

    def fixture(self, datastore: str, rel: str) -> Path:
        return self.fx.datastore(datastore) / rel

    # sources used by many cases
    @property
    def qcow2_base(self) -> Path:
        return self.fixture("qcow2", "lin-web01/disk1.qcow2")

    @property
    def qcow2_delta(self) -> Path:
        return self.fixture("qcow2", "lin-web01/disk1-p2.qcow2")

    @property
    def vmdk_stream(self) -> Path:
        return self.fixture("vmware", "lin-web01_replica/lin-web01_replica_1.vmdk")

    @property
    def vmdk_sparse(self) -> Path:
        return self.fixture("vmware", "lin-web01_replica/lin-web01_replica_1-000001.vmdk")

    @property
    def vhdx_base(self) -> Path:
        return self.fixture("hyperv", "lin-web01_replica/Virtual Hard Disks/lin-web01-disk1.vhdx")

    def avhdx(self, n: int) -> Path:
        """The ``n``-th oldest differencing disk of lin-web01's second disk (the fixture builder names
        them with fresh GUIDs and dates them by their checkpoint)."""
        folder = self.fixture("hyperv", "lin-web01_replica/Virtual Hard Disks")
        return sorted(folder.glob("lin-web01-disk1_*.avhdx"), key=lambda p: p.stat().st_mtime_ns)[n]

    def raw(self, name: str) -> Path:
        return self.base / name

    def over(
        self, vm: Path, base: str, patches: Iterable[tuple[int, bytes]], name: str = "disk.qcow2"
    ) -> list[str]:
        overlay(vm / name, self.raw(base), f"../_base/{base}", patches)
        return [name]

    # structures of the fixture disks, found by reading them (not hard-coded)
    def partition(self, base: str, number: int) -> tuple[int, int]:
        """(byte offset, byte size) of partition ``number`` of a fixture raw disk (GPT or MBR primary)."""
        data = _read(self.raw(base), 0, 34 * SECTOR)
        if data[SECTOR : SECTOR + 8] == b"EFI PART":
            lba, _count, esize = struct.unpack_from("<QII", data, SECTOR + 72)
            entry = data[lba * SECTOR + (number - 1) * esize :][:esize]
            first, last = struct.unpack_from("<QQ", entry, 32)
            return first * SECTOR, (last - first + 1) * SECTOR
        _b, _c, _d, _e, _t, _f, _g, _h, lba, count = struct.unpack_from(
            "<BBBBBBBBII", data, 446 + 16 * (number - 1)
        )
        return lba * SECTOR, count * SECTOR


def _manifest(folder: Path, name: str, disks: list[str]) -> None:
    lines = [f'name = "{name}"', 'platform = "KVM"', "", "[[points]]", 'name = "Hostile"']
    lines += [
        'time = "2026-11-01T21:00:00Z"',
        "disks = [" + ", ".join(json.dumps(d) for d in disks) + "]",
        "",
    ]
    (folder / "openflr-vm.toml").write_text("\n".join(lines))


# --- qcow2 ---------------------------------------------------------------------------------------------


def _qcow2_copy(b: Builder, vm: Path, name: str = "disk.qcow2") -> Path:
    return _copy(b.qcow2_base, vm / name)


def _qcow2_header(field_fmt: str, offset: int, value: int) -> Callable[[Builder, Path], list[str]]:
    def build(b: Builder, vm: Path) -> list[str]:
        _patch(_qcow2_copy(b, vm), offset, struct.pack(field_fmt, value))
        return ["disk.qcow2"]

    return build


def _qcow2_delta_header(field_fmt: str, offset: int, value: int) -> Callable[[Builder, Path], list[str]]:
    """A header field of an overlay (which names a backing file) changed."""

    def build(b: Builder, vm: Path) -> list[str]:
        _copy(b.qcow2_base, vm / "disk1.qcow2")
        _patch(_copy(b.qcow2_delta, vm / "disk.qcow2"), offset, struct.pack(field_fmt, value))
        return ["disk.qcow2"]

    return build


def _qcow2_truncated(where: str) -> Callable[[Builder, Path], list[str]]:
    def build(b: Builder, vm: Path) -> list[str]:
        path = _qcow2_copy(b, vm)
        head = _read(path, 0, 104)
        l1_off = struct.unpack_from(">Q", head, 40)[0]
        l1_first = struct.unpack_from(">Q", _read(path, l1_off, 8), 0)[0] & 0x00FFFFFFFFFFFE00
        size = {
            "header": 48,
            "l1": l1_off + 4,
            "l2": l1_first + 4096 if l1_first else l1_off + 8,
            "data": path.stat().st_size * 6 // 10,
        }[where]
        _truncate(path, size)
        return ["disk.qcow2"]

    return build


def _qcow2_l1_entry(value: Callable[[int, int], int]) -> Callable[[Builder, Path], list[str]]:
    """Rewrite L1[0]: ``value(l1_offset, file_size)``."""

    def build(b: Builder, vm: Path) -> list[str]:
        path = _qcow2_copy(b, vm)
        l1_off = struct.unpack_from(">Q", _read(path, 40, 8))[0]
        _patch(path, l1_off, struct.pack(">Q", value(l1_off, path.stat().st_size) | (1 << 63)))
        return ["disk.qcow2"]

    return build


def _qcow2_l2_entries(value: Callable[[int, int], int]) -> Callable[[Builder, Path], list[str]]:
    """Rewrite every allocated entry of the first L2 table: ``value(old entry, file size)``."""

    def build(b: Builder, vm: Path) -> list[str]:
        path = _qcow2_copy(b, vm)
        l1_off = struct.unpack_from(">Q", _read(path, 40, 8))[0]
        l2_off = struct.unpack_from(">Q", _read(path, l1_off, 8))[0] & 0x00FFFFFFFFFFFE00
        table = bytearray(_read(path, l2_off, 64 * KiB))
        for i in range(0, len(table), 8):
            (entry,) = struct.unpack_from(">Q", table, i)
            if entry:
                struct.pack_into(">Q", table, i, value(entry, path.stat().st_size))
        _patch(path, l2_off, bytes(table))
        return ["disk.qcow2"]

    return build


def _qcow2_huge_l1(b: Builder, vm: Path) -> list[str]:
    # 512-byte clusters: an L2 table covers 32 KiB, so a 1 TiB disk needs a 256 MiB L1 table. The file
    # is sparse: the table reads as zeros ("not allocated"), a reader that loads it whole pays 256 MiB.
    write_qcow2(vm / "disk.qcow2", 1 << 40, cluster_bits=9)
    return ["disk.qcow2"]


def _qcow2_backing(names: dict[str, str], top: str) -> Callable[[Builder, Path], list[str]]:
    """Overlays (copies of the fixture's delta) named by ``names`` keys, each backed by its value."""

    def build(b: Builder, vm: Path) -> list[str]:
        for name, backing in names.items():
            path = _copy(b.qcow2_delta, vm / name)
            head = bytearray(_read(path, 0, 64 * KiB))
            bf_off = struct.unpack_from(">Q", head, 8)[0]
            raw = backing.encode()
            head[bf_off : bf_off + 4096] = raw.ljust(4096, b"\0")[:4096]
            struct.pack_into(">I", head, 16, len(raw))
            _patch(path, 0, bytes(head[: bf_off + 4096]))
        return [top]

    return build


def _qcow2_self_backed_by_base(b: Builder, vm: Path) -> list[str]:
    _copy(b.qcow2_base, vm / "disk1.qcow2")
    return _qcow2_backing({"top.qcow2": "disk1.qcow2"}, "top.qcow2")(b, vm)


def _qcow2_deep_chain(depth: int) -> Callable[[Builder, Path], list[str]]:
    def build(b: Builder, vm: Path) -> list[str]:
        _copy(b.qcow2_base, vm / "l0000.qcow2")
        for i in range(1, depth):
            write_qcow2(
                vm / f"l{i:04d}.qcow2",
                16 * MiB,
                backing=f"l{i - 1:04d}.qcow2",
                backing_fmt="qcow2",
                cluster_bits=12,
            )
        return [f"l{depth - 1:04d}.qcow2"]

    return build


def _qcow2_backing_fifo(b: Builder, vm: Path) -> list[str]:
    os.mkfifo(vm / "base.fifo")
    write_qcow2(vm / "disk.qcow2", 16 * MiB, backing="base.fifo", backing_fmt="raw")
    return ["disk.qcow2"]


def _qcow2_compressed_bomb(b: Builder, vm: Path) -> list[str]:
    """Every cluster is 'compressed': one deflate stream of 64 MiB of zeros, 64 KiB clusters."""
    path = vm / "disk.qcow2"
    write_qcow2(path, 16 * MiB, clusters={0: b"\0"})
    comp = zlib.compressobj(9, zlib.DEFLATED, -12)
    bomb = comp.compress(b"\0" * (64 * MiB)) + comp.flush()
    at = path.stat().st_size
    _patch(path, at, bomb)
    l1_off = struct.unpack_from(">Q", _read(path, 40, 8))[0]
    l2_off = struct.unpack_from(">Q", _read(path, l1_off, 8))[0] & 0x00FFFFFFFFFFFE00
    sectors = min(len(bomb) // SECTOR, (1 << 8) - 1)  # cluster_bits 16: 8 bits of sector count
    entry = (1 << 62) | (sectors << 54) | at
    _patch(path, l2_off, struct.pack(">Q", entry) * 256)
    return ["disk.qcow2"]


# --- VMDK ----------------------------------------------------------------------------------------------


def _vmdk_desc(text: str) -> Callable[[Builder, Path], list[str]]:
    """A text descriptor (``{flat}`` is a 16 MiB flat extent next to it, made on demand)."""

    def build(b: Builder, vm: Path) -> list[str]:
        if "{flat}" in text:
            _copy(b.raw("scratch.raw"), vm / "disk-flat.vmdk")
        (vm / "disk.vmdk").write_text(text.replace("{flat}", "disk-flat.vmdk"))
        return ["disk.vmdk"]

    return build


def _descriptor(create_type: str, extents: list[str], parent: str | None = None) -> str:
    lines = ["# Disk DescriptorFile", "version=1", "CID=12345678"]
    lines.append("parentCID=87654321" if parent is not None else "parentCID=ffffffff")
    lines.append(f'createType="{create_type}"')
    if parent is not None:
        lines.append(f'parentFileNameHint="{parent}"')
    lines += ["", "# Extent description", *extents, "", 'ddb.adapterType = "lsilogic"', ""]
    return "\n".join(lines)


def _sparse_embedded(path: Path, replace: Callable[[str], str]) -> None:
    """Rewrite the embedded descriptor of a hosted sparse extent."""
    head = _read(path, 0, 512)
    desc_off, desc_size = struct.unpack_from("<QQ", head, 28)
    text = _read(path, desc_off * SECTOR, desc_size * SECTOR).split(b"\0", 1)[0].decode()
    new = replace(text).encode()
    assert len(new) <= desc_size * SECTOR, "descriptor grew past its area"
    _patch(path, desc_off * SECTOR, new.ljust(desc_size * SECTOR, b"\0"))


def _in_sparse_chain(which: str) -> Callable[[Builder, Path], Path]:
    """Make the VMDK sparse chain of ``_vmdk_sparse_chain`` and return its file ``which``."""

    def make(b: Builder, vm: Path) -> Path:
        _vmdk_sparse_chain(b, vm)
        return vm / which

    return make


def _vmdk_sparse_chain(b: Builder, vm: Path, base: str = "base.vmdk", delta: str = "delta.vmdk") -> None:
    _copy(b.vmdk_stream, vm / base)
    _copy(b.vmdk_sparse, vm / delta)
    _sparse_embedded(vm / base, lambda t: t.replace("lin-web01_replica_1.vmdk", base))
    _sparse_embedded(
        vm / delta,
        lambda t: t.replace('"lin-web01_replica_1.vmdk"', f'"{base}"').replace(
            "lin-web01_replica_1-000001.vmdk", delta
        ),
    )


def _vmdk_sparse_header(
    offset: int, fmt: str, value: int, which: str = "delta"
) -> Callable[[Builder, Path], list[str]]:
    def build(b: Builder, vm: Path) -> list[str]:
        _vmdk_sparse_chain(b, vm)
        _patch(vm / f"{which}.vmdk", offset, struct.pack(fmt, value))
        return ["delta.vmdk"]

    return build


def _vmdk_parent_hint(delta_hints: dict[str, str], top: str) -> Callable[[Builder, Path], list[str]]:
    def build(b: Builder, vm: Path) -> list[str]:
        for name, hint in delta_hints.items():
            _copy(b.vmdk_sparse, vm / name)

            def named(t: str, name: str = name, hint: str = hint) -> str:
                return t.replace('"lin-web01_replica_1.vmdk"', f'"{hint}"').replace(
                    "lin-web01_replica_1-000001.vmdk", name
                )

            _sparse_embedded(vm / name, named)
        return [top]

    return build


def _vmdk_truncated(where: str) -> Callable[[Builder, Path], list[str]]:
    def build(b: Builder, vm: Path) -> list[str]:
        _vmdk_sparse_chain(b, vm)
        if where == "header":
            _truncate(vm / "delta.vmdk", 100)
        elif where == "descriptor":
            _truncate(vm / "delta.vmdk", 1024)
        elif where == "grain-directory":
            _truncate(vm / "delta.vmdk", 21 * SECTOR + 16)
        elif where == "stream-data":
            _truncate(vm / "base.vmdk", (vm / "base.vmdk").stat().st_size // 2)
        elif where == "stream-footer":
            _truncate(vm / "base.vmdk", (vm / "base.vmdk").stat().st_size - 600)
        return ["delta.vmdk"]

    return build


def _vmdk_grain_table_huge(b: Builder, vm: Path) -> list[str]:
    """numGTEsPerGT = 2^31 and a file sparse-extended to 8 GiB+, so the bounds checks pass."""
    _vmdk_sparse_chain(b, vm)
    _patch(vm / "delta.vmdk", 44, struct.pack("<I", 1 << 31))
    _truncate(vm / "delta.vmdk", 9 << 30)
    return ["delta.vmdk"]


def _vmdk_grain_directory_huge(b: Builder, vm: Path) -> list[str]:
    """1-entry grain tables over a 2^40-sector disk: 2^33 directory entries."""
    _vmdk_sparse_chain(b, vm)
    _patch(vm / "delta.vmdk", 12, struct.pack("<QQ", 1 << 40, 1))
    _patch(vm / "delta.vmdk", 44, struct.pack("<I", 1))
    return ["delta.vmdk"]


def _vmdk_stream_bomb(b: Builder, vm: Path) -> list[str]:
    """A streamOptimized-style sparse extent whose every grain inflates far past the grain size."""
    _vmdk_sparse_chain(b, vm)
    path = vm / "base.vmdk"
    head = _read(path, 0, 512)
    gd_off = struct.unpack_from("<Q", head, 56)[0]
    if gd_off == 0xFFFFFFFFFFFFFFFF:
        gd_off = struct.unpack_from("<Q", _read(path, path.stat().st_size - 1024, 512), 56)[0]
    gt_sector = struct.unpack_from("<I", _read(path, gd_off * SECTOR, 4))[0]
    bomb = zlib.compress(b"\0" * (64 * MiB), 9)  # 64 KiB: small enough to pass the size checks
    size = path.stat().st_size
    tail = _read(path, size - 1024, 1024)  # footer and end-of-stream marker stay last
    at = size // SECTOR - 2
    _patch(path, at * SECTOR, struct.pack("<QI", 0, len(bomb)) + bomb)
    end = -(-(at * SECTOR + 12 + len(bomb)) // SECTOR) * SECTOR
    _patch(path, end, tail)
    _truncate(path, end + 1024)
    _patch(path, gt_sector * SECTOR, struct.pack("<I", at) * 512)
    return ["delta.vmdk"]


def _vmdk_cowd(mutate: Callable[[Path], None] | None) -> Callable[[Builder, Path], list[str]]:
    """The ESXi vmfsSparse delta of the scratch disk over its flat base, then ``mutate(delta file)``."""

    def build(b: Builder, vm: Path) -> list[str]:
        src = b.fx.datastore("esxi") / "lin-web01_replica"
        _copy(b.raw("scratch.raw"), vm / "base-flat.vmdk")
        (vm / "base.vmdk").write_text(
            (src / "lin-web01_replica_1.vmdk")
            .read_text()
            .replace("lin-web01_replica_1-flat.vmdk", "base-flat.vmdk")
        )
        _copy(src / "lin-web01_replica_1-000001-delta.vmdk", vm / "top-delta.vmdk")
        (vm / "top.vmdk").write_text(
            (src / "lin-web01_replica_1-000001.vmdk")
            .read_text()
            .replace("lin-web01_replica_1-000001-delta.vmdk", "top-delta.vmdk")
            .replace("lin-web01_replica_1.vmdk", "base.vmdk")
        )
        if mutate is not None:
            mutate(vm / "top-delta.vmdk")
        return ["top.vmdk"]

    return build


def _sesparse(mutate: Callable[[Path], None] | None) -> Callable[[Builder, Path], list[str]]:
    """The ESXi seSparse delta of the Windows disk (over a link to its flat base), then ``mutate``."""

    def build(b: Builder, vm: Path) -> list[str]:
        src = b.fx.datastore("esxi") / "Win File Server_replica"
        try:
            os.link(src / "Win File Server_replica-flat.vmdk", vm / "base-flat.vmdk")
        except OSError:
            _copy(src / "Win File Server_replica-flat.vmdk", vm / "base-flat.vmdk")
        (vm / "base.vmdk").write_text(
            (src / "Win File Server_replica.vmdk")
            .read_text()
            .replace("Win File Server_replica-flat.vmdk", "base-flat.vmdk")
        )
        _copy(src / "Win File Server_replica-000001-sesparse.vmdk", vm / "top-sesparse.vmdk")
        (vm / "top.vmdk").write_text(
            (src / "Win File Server_replica-000001.vmdk")
            .read_text()
            .replace("Win File Server_replica-000001-sesparse.vmdk", "top-sesparse.vmdk")
            .replace("Win File Server_replica.vmdk", "base.vmdk")
        )
        if mutate is not None:
            mutate(vm / "top-sesparse.vmdk")
        return ["top.vmdk"]

    return build


# --- VHDX / VHD ----------------------------------------------------------------------------------------


def _vhdx_regions(path: Path) -> dict[str, tuple[int, int]]:
    from tests.imagebuilder import vhdx

    rt = _read(path, 192 * KiB, 64 * KiB)
    out = {}
    for i in range(struct.unpack_from("<I", rt, 8)[0]):
        g, off, length, _req = struct.unpack_from("<16sQII", rt, 16 + 32 * i)
        key = {vhdx.BAT_GUID: "bat", vhdx.META_GUID: "meta"}.get(uuid.UUID(bytes_le=g), str(i))
        out[key] = (off, length)
    return out


def _vhdx_copy(b: Builder, vm: Path, name: str = "disk.vhdx") -> Path:
    return _copy(b.vhdx_base, vm / name)


def _vhdx_mutate(mutate: Callable[[Path], None]) -> Callable[[Builder, Path], list[str]]:
    def build(b: Builder, vm: Path) -> list[str]:
        mutate(_vhdx_copy(b, vm))
        return ["disk.vhdx"]

    return build


def _vhdx_region_count(path: Path) -> None:
    _patch(path, 192 * KiB + 8, struct.pack("<I", 0xFFFFFFFF))
    _patch(path, 256 * KiB + 8, struct.pack("<I", 0xFFFFFFFF))


def _vhdx_metadata_item(guid: uuid.UUID, data: bytes) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        meta_off, _ = _vhdx_regions(path)["meta"]
        table = _read(path, meta_off, 64 * KiB)
        for i in range(struct.unpack_from("<H", table, 10)[0]):
            g, off, length, _f, _r = struct.unpack_from("<16sIIII", table, 32 + 32 * i)
            if uuid.UUID(bytes_le=g) == guid:
                _patch(path, meta_off + off, data[:length].ljust(length, b"\0"))
                return
        raise AssertionError(f"no metadata item {guid}")

    return mutate


def _vhdx_huge_bat(path: Path) -> None:
    """64 TiB virtual size, 1 MiB blocks: a 512 MiB BAT, in a region and a file made big enough (sparse)."""
    from tests.imagebuilder import vhdx

    _vhdx_metadata_item(vhdx.VDISK_SIZE, struct.pack("<Q", 64 << 40))(path)
    _vhdx_metadata_item(vhdx.FILE_PARAMS, struct.pack("<II", MiB, 0))(path)
    bat_off, _ = _vhdx_regions(path)["bat"]
    for table in (192 * KiB, 256 * KiB):
        rt = bytearray(_read(path, table, 64 * KiB))
        for i in range(struct.unpack_from("<I", rt, 8)[0]):
            g, off, _length, req = struct.unpack_from("<16sQII", rt, 16 + 32 * i)
            if uuid.UUID(bytes_le=g) == vhdx.BAT_GUID:
                struct.pack_into("<16sQII", rt, 16 + 32 * i, g, off, 0xFFF00000, req)
        struct.pack_into("<I", rt, 4, 0)
        struct.pack_into("<I", rt, 4, vhdx.crc32c(bytes(rt)))
        _patch(path, table, bytes(rt))
    _truncate(path, bat_off + 0xFFF00000 + MiB)


def _vhdx_truncated(where: str) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        regions = _vhdx_regions(path)
        size = {
            "header": 100 * KiB,
            "metadata": regions["meta"][0] + 4 * KiB,
            "bat": regions["bat"][0] + 8,
            "data": path.stat().st_size * 6 // 10,
        }[where]
        _truncate(path, size)

    return mutate


def _avhdx_locator(path: Path, locator: dict[str, str]) -> None:
    """Rewrite a differencing VHDX's metadata (written by our writer: 1 MiB at 2 MiB) with ``locator``."""
    from tests.imagebuilder import vhdx

    info = vhdx.read_parent_info(str(path))
    meta_off, _ = _vhdx_regions(path)["meta"]
    meta = vhdx._metadata(
        2 * MiB,
        info["size"],
        info["logical_sector_size"],
        4096,
        uuid.UUID(int=7),
        vhdx._parent_locator(locator),
    )
    _patch(path, meta_off, meta)


def _avhdx_chain(names: dict[str, str], top: str) -> Callable[[Builder, Path], list[str]]:
    """Differencing VHDX files (copies of a fixture checkpoint) named by keys, each naming its value."""

    def build(b: Builder, vm: Path) -> list[str]:
        for name, parent in names.items():
            path = _copy(b.avhdx(0), vm / name)
            _avhdx_locator(
                path, {"parent_linkage": "{" + str(uuid.UUID(int=1)) + "}", "relative_path": parent}
            )
        if "base.vhdx" not in names:
            _vhdx_copy(b, vm, "base.vhdx")
        return [top]

    return build


def _vhd(mutate: Callable[[Path], None] | None) -> Callable[[Builder, Path], list[str]]:
    def build(b: Builder, vm: Path) -> list[str]:
        path = vm / "disk.vhd"
        _run(
            "qemu-img",
            "convert",
            "-f",
            "raw",
            "-O",
            "vpc",
            "-o",
            "subformat=dynamic",
            b.raw("scratch.raw"),
            path,
        )
        if mutate is not None:
            mutate(path)
        return ["disk.vhd"]

    return build


def _vhd_dyn(offset: int, fmt: str, value: int) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        footer = _read(path, 0, 512)
        dyn = struct.unpack_from(">Q", footer, 16)[0]
        _patch(path, dyn + offset, struct.pack(fmt, value))

    return mutate


# --- partition tables ----------------------------------------------------------------------------------


def _gpt(
    mutate: Callable[[bytearray, bytearray], None], fix_crc: str = "all", count: int = 128
) -> Callable[[Builder, Path], list[str]]:
    """Patch the Windows disk's primary GPT header and entries; ``fix_crc``: which checksums to
    recompute afterwards (``all``, ``header`` or ``none``)."""

    def build(b: Builder, vm: Path) -> list[str]:
        disk = b.raw("win.raw")
        header = bytearray(_read(disk, SECTOR, SECTOR))
        entries = bytearray(_read(disk, 2 * SECTOR, count * 128))
        mutate(header, entries)
        if fix_crc == "all":
            n, size = struct.unpack_from("<II", header, 80)
            table = bytes(entries[: n * size]) if n * size <= len(entries) else b""
            if table:
                struct.pack_into("<I", header, 88, zlib.crc32(table))
        if fix_crc in ("all", "header"):
            hsize = min(struct.unpack_from("<I", header, 12)[0], SECTOR)
            struct.pack_into("<I", header, 16, 0)
            struct.pack_into("<I", header, 16, zlib.crc32(bytes(header[:hsize])))
        return b.over(vm, "win.raw", [(SECTOR, bytes(header)), (2 * SECTOR, bytes(entries))])

    return build


def _gpt_entries_far(header: bytearray, _entries: bytearray) -> None:
    struct.pack_into("<QIII", header, 72, 1 << 40, 128, 128, 0)


def _gpt_same_partition(header: bytearray, entries: bytearray) -> None:
    ntfs = bytes(entries[128:256])
    for i in range(128):
        entries[i * 128 : (i + 1) * 128] = ntfs


def _gpt_beyond(header: bytearray, entries: bytearray) -> None:
    struct.pack_into("<Q", entries, 128 + 40, 1 << 60)


def _mbr(mutate: Callable[[Builder, list[tuple[int, bytes]]], None]) -> Callable[[Builder, Path], list[str]]:
    def build(b: Builder, vm: Path) -> list[str]:
        patches: list[tuple[int, bytes]] = []
        mutate(b, patches)
        return b.over(vm, "misc.raw", patches)

    return build


def _ebr_entry(ptype: int, lba: int, count: int) -> bytes:
    return struct.pack("<BBBBBBBBII", 0, 0, 0, 0, ptype, 0, 0, 0, lba, count)


def _mbr_ebr_loop(b: Builder, patches: list[tuple[int, bytes]]) -> None:
    ext = 34816  # the extended partition of the misc disk (read back in _check_misc)
    first = bytearray(_read(b.raw("misc.raw"), ext * SECTOR, SECTOR))
    first[462:478] = _ebr_entry(5, 1000, 100)  # next EBR: extended start + 1000
    second = bytearray(first)
    second[446:462] = _ebr_entry(0x83, 8, 8)
    second[462:478] = _ebr_entry(5, 1000, 100)  # ... which names itself as the next one
    patches += [(ext * SECTOR, bytes(first)), ((ext + 1000) * SECTOR, bytes(second))]


def _mbr_ebr_two_loop(b: Builder, patches: list[tuple[int, bytes]]) -> None:
    ext = 34816
    first = bytearray(_read(b.raw("misc.raw"), ext * SECTOR, SECTOR))
    first[462:478] = _ebr_entry(5, 1000, 100)
    second = bytearray(first)
    second[446:462] = _ebr_entry(0x83, 8, 8)
    second[462:478] = _ebr_entry(5, 2000, 100)  # 1000 -> 2000 -> 1000 -> ...
    third = bytearray(second)
    third[462:478] = _ebr_entry(5, 1000, 100)
    patches += [
        (ext * SECTOR, bytes(first)),
        ((ext + 1000) * SECTOR, bytes(second)),
        ((ext + 2000) * SECTOR, bytes(third)),
    ]


def _mbr_ebr_long(b: Builder, patches: list[tuple[int, bytes]]) -> None:
    """1000 logical partitions, each the FAT16 volume again."""
    ext, fat = 34816, 69632
    for i in range(1000):
        ebr = bytearray(SECTOR)
        at = ext + 16 + i * 16
        ebr[446:462] = _ebr_entry(6, fat - at, 32768)
        if i < 999:
            ebr[462:478] = _ebr_entry(5, 16 + (i + 1) * 16, 16)
        ebr[510:512] = b"\x55\xaa"
        patches.append((at * SECTOR, bytes(ebr)))
    first = bytearray(_read(b.raw("misc.raw"), ext * SECTOR, SECTOR))
    first[462:478] = _ebr_entry(5, 16, 16)
    patches.append((ext * SECTOR, bytes(first)))


def _mbr_primary(index: int, entry: bytes) -> Callable[[Builder, list[tuple[int, bytes]]], None]:
    def mutate(b: Builder, patches: list[tuple[int, bytes]]) -> None:
        patches.append((446 + 16 * index, entry))

    return mutate


# --- LVM -----------------------------------------------------------------------------------------------

PV_START = 51 * MiB  # the LVM partition of the misc disk
MDA = 4096


def _lvm_text(b: Builder) -> str:
    head = _read(b.raw("misc.raw"), PV_START + MDA, SECTOR)
    at, size = struct.unpack_from("<QQ", head, 40)
    return _read(b.raw("misc.raw"), PV_START + MDA + at, size).decode()


def _lvm(
    edit: Callable[[str], str], *, mda: Callable[[bytearray], None] | None = None
) -> Callable[[Builder, Path], list[str]]:
    """Rewrite the misc disk's LVM metadata text (CRCs kept valid), optionally its area header too."""

    def build(b: Builder, vm: Path) -> list[str]:
        from tests.imagebuilder.lvm import lvm_crc

        text = edit(_lvm_text(b)).encode()
        head = bytearray(_read(b.raw("misc.raw"), PV_START + MDA, SECTOR))
        at = struct.unpack_from("<Q", head, 40)[0]
        struct.pack_into("<QQII", head, 40, at, len(text), lvm_crc(text), 0)
        if mda is not None:
            mda(head)
        struct.pack_into("<I", head, 0, lvm_crc(bytes(head[4:])))
        patches = [(PV_START + MDA, bytes(head)), (PV_START + MDA + at, text + b"\0")]
        return b.over(vm, "misc.raw", patches)

    return build


def _lvm_many_lvs(text: str) -> str:
    start = text.index("logical_volumes {") + len("logical_volumes {")
    lvs = "".join(
        f'\nlv{i} {{\nid = "aaaaaa-bbbb-cccc-dddd-eeee-ffff-{i:06d}"\nstatus = ["READ", "VISIBLE"]\n'
        f'segment_count = 1\nsegment1 {{\nstart_extent = 0\nextent_count = 1\ntype = "striped"\n'
        f'stripe_count = 1\nstripes = [\n"pv0", 0\n]\n}}\n}}\n'
        for i in range(2500)
    )
    return text[:start] + lvs + text[start:]


# --- file systems --------------------------------------------------------------------------------------


def _ext4(commands: list[str], base: str = "scratch.raw") -> Callable[[Builder, Path], list[str]]:
    """A copy of the whole-disk ext4 scratch volume changed by debugfs ``commands``."""

    def build(b: Builder, vm: Path) -> list[str]:
        path = _copy(b.raw(base), vm / "disk.raw")
        _run("debugfs", "-w", "-f", "-", path, stdin="\n".join(commands).encode())
        return ["disk.raw"]

    return build


def _ext4_diamond(depth: int) -> list[str]:
    """n1 holds a and b, both n2; n2 holds a and b, both n3; ...: 2^depth paths, depth folders."""
    cmds = [f"mkdir /n{i}" for i in range(1, depth + 2)]
    for i in range(1, depth + 1):
        cmds += [f"link /n{i + 1} /n{i}/a", f"link /n{i + 1} /n{i}/b"]
    return cmds


@dataclass
class _Fat:
    start: int
    bps: int
    spc: int
    reserved: int
    fats: int
    fat_sectors: int
    root_entries: int
    root_cluster: int
    fat32: bool

    @classmethod
    def read(cls, disk: Path, start: int) -> _Fat:
        bs = _read(disk, start, SECTOR)
        bps, spc, reserved, fats, root_entries, _t16, _m, fat16 = struct.unpack_from("<HBHBHHBH", bs, 11)
        fat32 = fat16 == 0
        fat_sectors = struct.unpack_from("<I", bs, 36)[0] if fat32 else fat16
        root_cluster = struct.unpack_from("<I", bs, 44)[0] if fat32 else 0
        return cls(start, bps, spc, reserved, fats, fat_sectors, root_entries, root_cluster, fat32)

    @property
    def root_dir(self) -> int:
        return self.start + (self.reserved + self.fats * self.fat_sectors) * self.bps

    @property
    def data(self) -> int:
        return self.root_dir + self.root_entries * 32

    def cluster_at(self, n: int) -> int:
        return self.data + (n - 2) * self.spc * self.bps

    def fat_entry_at(self, n: int, copy: int = 0) -> int:
        return (
            self.start + (self.reserved + copy * self.fat_sectors) * self.bps + n * (4 if self.fat32 else 2)
        )

    def entries(self, disk: Path, cluster: int) -> list[tuple[int, bytes, int, int]]:
        """(disk offset, 8.3 name, attributes, first cluster) of a directory's first cluster (or root)."""
        if cluster == 0:
            at, data = self.root_dir, _read(disk, self.root_dir, self.root_entries * 32)
        else:
            at, data = self.cluster_at(cluster), _read(disk, self.cluster_at(cluster), self.spc * self.bps)
        out = []
        for i in range(0, len(data), 32):
            e = data[i : i + 32]
            if e[0] == 0:
                out.append((at + i, b"", 0, 0))
                break
            hi, lo = struct.unpack_from("<H", e, 20)[0], struct.unpack_from("<H", e, 26)[0]
            out.append((at + i, e[:11], e[11], (hi << 16 | lo) if self.fat32 else lo))
        return out

    def find(self, disk: Path, cluster: int, name: bytes) -> int:
        for _at, short, attr, first in self.entries(disk, cluster):
            if short.startswith(name) and attr != 0x0F:
                return first
        raise AssertionError(f"{name!r} not found")

    def free_slot(self, disk: Path, cluster: int) -> int:
        last = self.entries(disk, cluster)[-1]
        assert last[1] == b"", "directory cluster is full"
        return last[0]


def _dirent(name: bytes, cluster: int, attr: int = 0x10) -> bytes:
    e = bytearray(32)
    e[:11] = name.ljust(11)
    e[11] = attr
    struct.pack_into("<H", e, 20, cluster >> 16)
    struct.pack_into("<H", e, 26, cluster & 0xFFFF)
    return bytes(e)


def _fat16_loop(kind: str) -> Callable[[Builder, Path], list[str]]:
    def build(b: Builder, vm: Path) -> list[str]:
        disk = b.raw("misc.raw")
        fat = _Fat.read(disk, 34 * MiB)
        docs = fat.find(disk, 0, b"DOCS")
        if kind == "self":
            patches = [(fat.free_slot(disk, docs), _dirent(b"LOOP", docs))]
        elif kind == "root":
            patches = [(fat.free_slot(disk, docs), _dirent(b"UP", 0))]
        else:  # the folder's cluster chain loops back to its own first cluster
            patches = [(fat.fat_entry_at(docs, c), struct.pack("<H", docs)) for c in range(fat.fats)]
        return b.over(vm, "misc.raw", patches)

    return build


def _fat32_loop(b: Builder, vm: Path) -> list[str]:
    """EFI/Microsoft/Boot gains an entry that is EFI (its grandparent)."""
    disk = b.raw("win.raw")
    esp_start, _ = b.partition("win.raw", 1)
    fat = _Fat.read(disk, esp_start)
    efi = fat.find(disk, fat.root_cluster, b"EFI")
    ms = fat.find(disk, efi, b"MICROS")
    boot = fat.find(disk, ms, b"BOOT")
    return b.over(vm, "win.raw", [(fat.free_slot(disk, boot), _dirent(b"LOOP", efi))])


def _ntfs_info(b: Builder) -> tuple[int, int, int]:
    """(partition start, MFT byte offset in the disk, record size) of the Windows disk's NTFS."""
    start, _ = b.partition("win.raw", 2)
    bs = _read(b.raw("win.raw"), start, SECTOR)
    bps, spc = struct.unpack_from("<HB", bs, 11)
    mft_cluster = struct.unpack_from("<Q", bs, 0x30)[0]
    clusters_per_record = struct.unpack_from("<b", bs, 0x40)[0]
    record = 1 << -clusters_per_record if clusters_per_record < 0 else clusters_per_record * bps * spc
    return start, start + mft_cluster * bps * spc, record


def _ntfs_loop(target: str) -> Callable[[Builder, Path], list[str]]:
    """The index entry of ``Deep/Long directory name number 01 ...`` is pointed at ``Deep`` itself
    (``self``) or at the root folder (``root``)."""

    def build(b: Builder, vm: Path) -> list[str]:
        disk = b.raw("win.raw")
        _start, mft, record = _ntfs_info(b)
        name = "Long directory name number 01 with padding to make the path long".encode("utf-16-le")
        area = bytearray(_read(disk, mft, 200 * record))
        for r in range(200):  # undo the update sequence (fixups) of each record before searching
            rec = memoryview(area)[r * record : (r + 1) * record]
            if rec[:4].tobytes() != b"FILE":
                continue
            usa, count = struct.unpack_from("<HH", rec, 4)
            for k in range(1, count):
                rec[k * SECTOR - 2 : k * SECTOR] = rec[usa + 2 * k : usa + 2 * k + 2]
        pos = 0
        while True:
            pos = area.index(name, pos + 1)
            entry = pos - 0x52
            key_len = struct.unpack_from("<H", area, entry + 10)[0]
            if key_len == 0x42 + len(name):
                break
        parent_ref = area[entry + 16 : entry + 24]
        ref = parent_ref if target == "self" else struct.pack("<Q", (5 << 48) | 5)
        assert entry % SECTOR <= SECTOR - 10, "the patch would touch an update sequence slot"
        return b.over(vm, "win.raw", [(mft + entry, bytes(ref))])

    return build


def _xfs_loop(b: Builder, vm: Path) -> list[str]:
    """The /srv XFS root's short-form entry ``www`` is pointed at the root inode (CRC recomputed)."""
    from tests.imagebuilder.vhdx import crc32c

    disk = b.raw("lin.raw")
    start, _ = b.partition("lin.raw", 2)
    sb = _read(disk, start, SECTOR)
    blocksize = struct.unpack_from(">I", sb, 4)[0]
    rootino = struct.unpack_from(">Q", sb, 56)[0]
    inodesize, inopblock = struct.unpack_from(">HH", sb, 104)
    inopblog, agblklog = sb[123], sb[124]
    assert rootino >> (inopblog + agblklog) == 0, "root inode outside AG 0"
    at = start + (rootino >> inopblog) * blocksize + (rootino & (inopblock - 1)) * inodesize
    inode = bytearray(_read(disk, at, inodesize))
    assert inode[:2] == b"IN" and inode[4] == 3 and inode[5] == 1, "expected a v3 short-form inode"
    sf = 176
    count, i8 = inode[sf], inode[sf + 1]
    width = 8 if i8 else 4
    p = sf + 2 + width
    for _ in range(count):
        namelen = inode[p]
        entry_name = bytes(inode[p + 3 : p + 3 + namelen])
        ino_at = p + 3 + namelen + 1  # ftype byte, then the inode number
        if entry_name == b"www":
            inode[ino_at : ino_at + width] = rootino.to_bytes(width, "big")
            break
        p = ino_at + width
    else:
        raise AssertionError("www not in the XFS root")
    struct.pack_into("<I", inode, 100, 0)
    struct.pack_into("<I", inode, 100, crc32c(bytes(inode)))
    return b.over(vm, "lin.raw", [(at, bytes(inode))])


# --- random flips --------------------------------------------------------------------------------------


def _areas_file(path: Path, ranges: list[tuple[int, int]]) -> list[int]:
    sectors: list[int] = []
    for start, length in ranges:
        sectors += _nonzero_sectors(_read(path, start, length), start)
    return sectors


def _flip_file(
    make: Callable[[Builder, Path], Path],
    ranges: Callable[[Path], list[tuple[int, int]]],
    top: str | None = None,
) -> Callable[[str], Callable[[Builder, Path], list[str]]]:
    """Byte flips in a copied image file's metadata ``ranges``; seeded by the case name."""

    def for_case(name: str) -> Callable[[Builder, Path], list[str]]:
        def build(b: Builder, vm: Path) -> list[str]:
            path = make(b, vm)
            rng = random.Random(name)
            sectors = _areas_file(path, ranges(path))
            for at, data in _flips(rng, sectors, rng.randint(1, 12)):
                _patch(path, at, data)
            return [top or path.name]

        return build

    return for_case


def _flip_disk(
    base: str, ranges: Callable[[Builder], list[tuple[int, int]]]
) -> Callable[[str], Callable[[Builder, Path], list[str]]]:
    """Byte flips in a fixture disk's metadata ``ranges``, as an overlay; seeded by the case name."""

    def for_case(name: str) -> Callable[[Builder, Path], list[str]]:
        def build(b: Builder, vm: Path) -> list[str]:
            rng = random.Random(name)
            sectors = _areas_file(b.raw(base), ranges(b))
            return b.over(vm, base, _flips(rng, sectors, rng.randint(1, 12)))

        return build

    return for_case


def _qcow2_meta(path: Path) -> list[tuple[int, int]]:
    head = _read(path, 0, 104)
    l1_off, rc_off = struct.unpack_from(">QQ", head, 40)
    l1_size = struct.unpack_from(">I", head, 36)[0]
    ranges = [(0, SECTOR), (l1_off, max(8, l1_size * 8)), (rc_off, 4 * KiB)]
    for i in range(l1_size):
        l2 = struct.unpack_from(">Q", _read(path, l1_off + 8 * i, 8))[0] & 0x00FFFFFFFFFFFE00
        if l2:
            ranges.append((l2, 64 * KiB))
    return ranges


def _vhdx_meta(path: Path) -> list[tuple[int, int]]:
    regions = _vhdx_regions(path)
    return [(0, 320 * KiB), (regions["meta"][0], 64 * KiB + 4 * KiB), (regions["bat"][0], 4 * KiB)]


def _ext4_meta() -> list[tuple[int, int]]:
    return [(0, 64 * KiB), (1291 * 4096, 4096)]  # superblock, descriptors, bitmaps, inodes; /tmp


def _exfat_meta(path: Path) -> list[tuple[int, int]]:
    boot = _read(path, 0, SECTOR)
    fat_off, _fat_len, heap, _count, root = struct.unpack_from("<IIIII", boot, 80)
    cluster = 1 << (boot[108] + boot[109])
    return [(0, 24 * SECTOR), (fat_off * SECTOR, 4 * KiB), (heap * SECTOR + (root - 2) * cluster, 4 * KiB)]


def _ntfs_meta(b: Builder) -> list[tuple[int, int]]:
    start, mft, record = _ntfs_info(b)
    return [(start, SECTOR), (mft, 40 * record)]


def _xfs_meta(b: Builder) -> list[tuple[int, int]]:
    start, _ = b.partition("lin.raw", 2)
    return [(start, 4 * SECTOR), (start + 64 * KiB, 32 * KiB)]  # sb, agf, agi, agfl; root inode chunk


def _fat32_meta(b: Builder) -> list[tuple[int, int]]:
    start, _ = b.partition("win.raw", 1)
    fat = _Fat.read(b.raw("win.raw"), start)
    return [(start, SECTOR), (fat.fat_entry_at(0), 4 * KiB), (fat.cluster_at(fat.root_cluster), 8 * KiB)]


def _fat16_meta(b: Builder) -> list[tuple[int, int]]:
    fat = _Fat.read(b.raw("misc.raw"), 34 * MiB)
    return [(fat.start, SECTOR), (fat.fat_entry_at(0), 2 * KiB), (fat.root_dir, 16 * KiB)]


def _lvm_meta(b: Builder) -> list[tuple[int, int]]:
    return [(PV_START, 2 * SECTOR), (PV_START + MDA, 8 * KiB)]


FLIPS = 6

_FLIP_KINDS: dict[str, tuple[str, Callable[[str], Callable[[Builder, Path], list[str]]]]] = {
    "qcow2": (
        "qcow2 metadata flips",
        _flip_file(lambda b, vm: _copy(b.qcow2_base, vm / "disk.qcow2"), _qcow2_meta),
    ),
    "vmdk-sparse": (
        "VMDK metadata flips",
        _flip_file(_in_sparse_chain("delta.vmdk"), lambda p: [(0, 64 * KiB)]),
    ),
    "vmdk-stream": (
        "VMDK metadata flips",
        _flip_file(
            _in_sparse_chain("base.vmdk"),
            lambda p: [(0, p.stat().st_size)],
            top="delta.vmdk",
        ),
    ),
    "vmdk-descriptor": (
        "VMDK metadata flips",
        _flip_file(lambda b, vm: (_vmdk_cowd(None)(b, vm), vm / "top.vmdk")[1], lambda p: [(0, SECTOR)]),
    ),
    "cowd": (
        "VMDK metadata flips",
        _flip_file(
            lambda b, vm: (_vmdk_cowd(None)(b, vm), vm / "top-delta.vmdk")[1],
            lambda p: [(0, p.stat().st_size)],
            top="top.vmdk",
        ),
    ),
    "sesparse": (
        "VMDK metadata flips",
        _flip_file(
            lambda b, vm: (_sesparse(None)(b, vm), vm / "top-sesparse.vmdk")[1],
            lambda p: [(0, p.stat().st_size)],
            top="top.vmdk",
        ),
    ),
    "vhdx": ("VHDX metadata flips", _flip_file(lambda b, vm: _vhdx_copy(b, vm), _vhdx_meta)),
    "avhdx": (
        "VHDX metadata flips",
        _flip_file(
            lambda b, vm: (_avhdx_chain({"top.avhdx": "base.vhdx"}, "top.avhdx")(b, vm), vm / "top.avhdx")[1],
            _vhdx_meta,
        ),
    ),
    "vhd": (
        "VHD metadata flips",
        _flip_file(lambda b, vm: (_vhd(None)(b, vm), vm / "disk.vhd")[1], lambda p: [(0, 8 * KiB)]),
    ),
    "gpt": ("partition table flips", _flip_disk("win.raw", lambda b: [(0, 34 * SECTOR)])),
    "mbr": (
        "partition table flips",
        _flip_disk("misc.raw", lambda b: [(0, SECTOR), (34816 * SECTOR, SECTOR)]),
    ),
    "lvm": ("LVM metadata flips", _flip_disk("misc.raw", _lvm_meta)),
    "ntfs": ("file-system metadata flips", _flip_disk("win.raw", _ntfs_meta)),
    "fat32": ("file-system metadata flips", _flip_disk("win.raw", _fat32_meta)),
    "fat16": ("file-system metadata flips", _flip_disk("misc.raw", _fat16_meta)),
    "ext4": (
        "file-system metadata flips",
        _flip_file(lambda b, vm: _copy(b.raw("scratch.raw"), vm / "disk.raw"), lambda p: _ext4_meta()),
    ),
    "xfs": ("file-system metadata flips", _flip_disk("lin.raw", _xfs_meta)),
    "exfat": (
        "file-system metadata flips",
        _flip_file(lambda b, vm: _copy(b.raw("exfat.raw"), vm / "disk.raw"), lambda p: _exfat_meta(p)),
    ),
}


# --- the cases -----------------------------------------------------------------------------------------


def _good(b: Builder, vm: Path) -> list[str]:
    _copy(b.qcow2_base, vm / "disk1.qcow2")
    _copy(b.qcow2_delta, vm / "disk1-p2.qcow2")
    return ["disk1-p2.qcow2"]


def _file(name: str, make: Callable[[Path], object]) -> Callable[[Builder, Path], list[str]]:
    def build(b: Builder, vm: Path) -> list[str]:
        make(vm / name)
        return [name]

    return build


def _slow(b: Builder, vm: Path) -> list[str]:
    """64 disks, each the same 100-deep qcow2 chain: legal-looking, and seconds to open (every disk
    probes and opens its 100 files). The API tests use it for the mount timeout."""
    return _qcow2_deep_chain(100)(b, vm) * 64


def _many_disks(b: Builder, vm: Path) -> list[str]:
    _copy(b.raw("scratch.raw"), vm / "disk.raw")
    return ["disk.raw"] * 300


_QC = "qcow2 header"
_VM = "VMDK header or descriptor"
_VX = "VHDX/VHD header"
_TR = "truncated image"
_LOOP = "loop in a backing chain"
_OUT = "file outside the datastore or not a file"
_PT = "partition table"
_LVM = "LVM metadata"
_DIR = "directory that contains itself or an ancestor"
_FS = "absurd file-system values"


def _cases() -> list[Case]:
    from tests.imagebuilder import vhdx

    c = [
        Case(GOOD, "good VM", "open", _good),
        # qcow2 headers
        Case("qcow2-bad-magic", _QC, "fail", _qcow2_header(">I", 0, 0x51464900)),
        Case("qcow2-bad-version", _QC, "fail", _qcow2_header(">I", 4, 7)),
        Case("qcow2-size-2^63", _QC, "fail", _qcow2_header(">Q", 24, 1 << 63)),
        Case("qcow2-size-2^56", _QC, "fail", _qcow2_header(">Q", 24, 1 << 56)),
        Case("qcow2-l1-entries-2^32-1", _QC, "fail", _qcow2_header(">I", 36, 0xFFFFFFFF)),
        Case("qcow2-l1-256MiB-sparse", _QC, "any", _qcow2_huge_l1),
        Case("qcow2-cluster-bits-0", _QC, "fail", _qcow2_header(">I", 20, 0)),
        Case("qcow2-cluster-bits-8", _QC, "fail", _qcow2_header(">I", 20, 8)),
        Case("qcow2-cluster-bits-22", _QC, "fail", _qcow2_header(">I", 20, 22)),
        Case("qcow2-cluster-bits-63", _QC, "fail", _qcow2_header(">I", 20, 63)),
        Case("qcow2-l1-offset-unaligned", _QC, "fail", _qcow2_header(">Q", 40, 0x30001)),
        Case("qcow2-l1-offset-past-eof", _QC, "fail", _qcow2_header(">Q", 40, 1 << 50)),
        Case("qcow2-encrypted", _QC, "fail", _qcow2_header(">I", 32, 2)),
        Case("qcow2-incompatible-bits", _QC, "fail", _qcow2_header(">Q", 72, 0xFFFFFFFFFFFFFFE0)),
        Case("qcow2-backing-name-4GiB", _QC, "fail", _qcow2_delta_header(">I", 16, 0xFFFFFFFF)),
        Case("qcow2-backing-offset-past-eof", _QC, "fail", _qcow2_delta_header(">Q", 8, 1 << 50)),
        Case("qcow2-l2-past-eof", _QC, "any", _qcow2_l1_entry(lambda l1, size: 1 << 45)),
        Case("qcow2-l2-is-l1", _QC, "any", _qcow2_l1_entry(lambda l1, size: l1)),
        Case("qcow2-l2-is-header", _QC, "any", _qcow2_l1_entry(lambda l1, size: 0)),
        Case("qcow2-data-past-eof", _QC, "any", _qcow2_l2_entries(lambda e, size: (1 << 63) | (1 << 45))),
        Case("qcow2-data-is-header", _QC, "any", _qcow2_l2_entries(lambda e, size: 1 << 63)),
        Case(
            "qcow2-compressed-garbage",
            _QC,
            "any",
            _qcow2_l2_entries(lambda e, size: (1 << 62) | (0xFF << 54) | 0),
        ),
        Case("qcow2-compressed-bomb", _QC, "any", _qcow2_compressed_bomb),
        # truncation
        Case("trunc-qcow2-header", _TR, "fail", _qcow2_truncated("header")),
        Case("trunc-qcow2-l1", _TR, "fail", _qcow2_truncated("l1")),
        Case("trunc-qcow2-l2", _TR, "any", _qcow2_truncated("l2")),
        Case("trunc-qcow2-data", _TR, "any", _qcow2_truncated("data")),
        Case("trunc-vmdk-header", _TR, "fail", _vmdk_truncated("header")),
        Case("trunc-vmdk-descriptor", _TR, "fail", _vmdk_truncated("descriptor")),
        Case("trunc-vmdk-grain-directory", _TR, "any", _vmdk_truncated("grain-directory")),
        Case("trunc-vmdk-stream-data", _TR, "any", _vmdk_truncated("stream-data")),
        Case("trunc-vmdk-stream-footer", _TR, "any", _vmdk_truncated("stream-footer")),
        Case("trunc-vmdk-flat", _TR, "any", _trunc_flat),
        Case("trunc-cowd", _TR, "any", _vmdk_cowd(lambda p: _truncate(p, 1000))),
        Case("trunc-sesparse", _TR, "any", _sesparse(lambda p: _truncate(p, 2048))),
        Case("trunc-vhdx-header", _TR, "fail", _vhdx_mutate(_vhdx_truncated("header"))),
        Case("trunc-vhdx-metadata", _TR, "fail", _vhdx_mutate(_vhdx_truncated("metadata"))),
        Case("trunc-vhdx-bat", _TR, "fail", _vhdx_mutate(_vhdx_truncated("bat"))),
        Case("trunc-vhdx-data", _TR, "any", _vhdx_mutate(_vhdx_truncated("data"))),
        Case("trunc-vhd", _TR, "any", _vhd(lambda p: _truncate(p, p.stat().st_size // 2))),
        Case("trunc-raw-ext4", _TR, "any", _trunc_raw("scratch.raw", 1 * MiB)),
        Case("trunc-raw-ntfs-mft", _TR, "any", _trunc_raw_ntfs),
        Case("trunc-raw-lvm", _TR, "any", _trunc_raw("misc.raw", 60 * MiB)),
        Case("trunc-raw-partition-table", _TR, "any", _trunc_raw("win.raw", 700)),
        Case("empty-qcow2", _TR, "fail", _file("disk.qcow2", lambda p: p.write_bytes(b""))),
        Case("empty-vmdk", _TR, "fail", _file("disk.vmdk", lambda p: p.write_bytes(b""))),
        Case("empty-vhdx", _TR, "fail", _file("disk.vhdx", lambda p: p.write_bytes(b""))),
        Case("empty-raw", _TR, "any", _file("disk.raw", lambda p: p.write_bytes(b""))),
        # VMDK
        Case("vmdk-bad-version", _VM, "fail", _vmdk_sparse_header(4, "<I", 9)),
        Case("vmdk-capacity-2^62", _VM, "fail", _vmdk_sparse_header(12, "<Q", 1 << 62)),
        Case("vmdk-grain-0", _VM, "fail", _vmdk_sparse_header(20, "<Q", 0)),
        Case("vmdk-grain-2^40", _VM, "fail", _vmdk_sparse_header(20, "<Q", 1 << 40)),
        Case("vmdk-grain-1GiB", _VM, "any", _vmdk_sparse_header(20, "<Q", 1 << 21)),
        Case("vmdk-gtes-0", _VM, "fail", _vmdk_sparse_header(44, "<I", 0)),
        Case("vmdk-gtes-2^31-sparse-8GiB", _VM, "any", _vmdk_grain_table_huge),
        Case("vmdk-grain-directory-2^33", _VM, "fail", _vmdk_grain_directory_huge),
        Case("vmdk-gd-past-eof", _VM, "fail", _vmdk_sparse_header(56, "<Q", 1 << 50)),
        Case("vmdk-descriptor-offset-past-eof", _VM, "fail", _vmdk_sparse_header(28, "<Q", 1 << 40)),
        Case("vmdk-descriptor-size-huge", _VM, "fail", _vmdk_sparse_header(36, "<Q", 1 << 40)),
        Case("vmdk-stream-inflate-bomb", _VM, "any", _vmdk_stream_bomb),
        Case(
            "vmdk-extent-is-itself-flat",
            _VM,
            "any",
            _vmdk_desc(_descriptor("monolithicFlat", ['RW 32768 FLAT "disk.vmdk" 0'])),
        ),
        Case(
            "vmdk-extent-is-itself-sparse",
            _VM,
            "fail",
            _vmdk_desc(_descriptor("monolithicSparse", ['RW 32768 SPARSE "disk.vmdk"'])),
        ),
        Case(
            "vmdk-extent-missing",
            _VM,
            "fail",
            _vmdk_desc(_descriptor("monolithicFlat", ['RW 32768 FLAT "nope-flat.vmdk" 0'])),
        ),
        Case(
            "vmdk-extent-2^60-sectors",
            _VM,
            "fail",
            _vmdk_desc(_descriptor("monolithicFlat", ['RW 1152921504606846976 FLAT "{flat}" 0'])),
        ),
        Case(
            "vmdk-extent-offset-huge",
            _VM,
            "any",
            _vmdk_desc(_descriptor("monolithicFlat", ['RW 32768 FLAT "{flat}" 99999999999999'])),
        ),
        Case(
            "vmdk-extents-2000",
            _VM,
            "any",
            _vmdk_desc(_descriptor("twoGbMaxExtentFlat", ['RW 16 FLAT "{flat}" 0'] * 2000)),
        ),
        Case(
            "vmdk-extent-vmfsraw",
            _VM,
            "fail",
            _vmdk_desc(_descriptor("vmfsRawDeviceMap", ['RW 32768 VMFSRAW "{flat}"'])),
        ),
        Case("vmdk-no-extents", _VM, "fail", _vmdk_desc(_descriptor("monolithicFlat", []))),
        Case(
            "vmdk-descriptor-binary",
            _VM,
            "fail",
            _file("disk.vmdk", lambda p: p.write_bytes(bytes(range(256)) * 8)),
        ),
        Case(
            "vmdk-descriptor-10MiB",
            _VM,
            "fail",
            _file("disk.vmdk", lambda p: p.write_text("# x\n" * (2_600_000))),
        ),
        Case(
            "cowd-directory-huge",
            _VM,
            "fail",
            _vmdk_cowd(lambda p: _patch(p, 24, struct.pack("<I", 0xFFFFFFFF))),
        ),
        Case("cowd-grain-0", _VM, "fail", _vmdk_cowd(lambda p: _patch(p, 16, struct.pack("<I", 0)))),
        Case("cowd-bad-magic", _VM, "fail", _vmdk_cowd(lambda p: _patch(p, 0, b"DWOC"))),
        Case(
            "sesparse-bad-magic",
            _VM,
            "fail",
            _sesparse(lambda p: _patch(p, 0, struct.pack("<Q", 0xCAFEBABF))),
        ),
        Case(
            "sesparse-directory-huge",
            _VM,
            "fail",
            _sesparse(lambda p: _patch(p, 17 * 8, struct.pack("<Q", 1 << 50))),
        ),
        Case(
            "sesparse-volatile-past-eof",
            _VM,
            "fail",
            _sesparse(lambda p: _patch(p, 10 * 8, struct.pack("<Q", 1 << 40))),
        ),
        # VHDX / VHD
        Case("vhdx-bad-signature", _VX, "fail", _vhdx_mutate(lambda p: _patch(p, 0, b"vhdxfilf"))),
        Case(
            "vhdx-no-headers",
            _VX,
            "fail",
            _vhdx_mutate(_vhdx_no_headers),
        ),
        Case("vhdx-region-count-2^32-1", _VX, "fail", _vhdx_mutate(_vhdx_region_count)),
        Case(
            "vhdx-metadata-count-65535",
            _VX,
            "any",
            _vhdx_mutate(lambda p: _patch(p, _vhdx_regions(p)["meta"][0] + 10, b"\xff\xff")),
        ),
        Case(
            "vhdx-size-2^63",
            _VX,
            "fail",
            _vhdx_mutate(_vhdx_metadata_item(vhdx.VDISK_SIZE, struct.pack("<Q", 1 << 63))),
        ),
        Case(
            "vhdx-block-size-0",
            _VX,
            "fail",
            _vhdx_mutate(_vhdx_metadata_item(vhdx.FILE_PARAMS, struct.pack("<II", 0, 0))),
        ),
        Case(
            "vhdx-block-size-odd",
            _VX,
            "fail",
            _vhdx_mutate(_vhdx_metadata_item(vhdx.FILE_PARAMS, struct.pack("<II", 3 * MiB, 0))),
        ),
        Case(
            "vhdx-sector-size-7",
            _VX,
            "fail",
            _vhdx_mutate(_vhdx_metadata_item(vhdx.LOGICAL_SS, struct.pack("<I", 7))),
        ),
        Case("vhdx-bat-512MiB-sparse", _VX, "any", _vhdx_mutate(_vhdx_huge_bat)),
        Case("vhdx-log-not-replayed", _VX, "fail", _vhdx_mutate(_vhdx_dirty_log)),
        Case("vhd-bat-entries-2^32-1", _VX, "fail", _vhd(_vhd_dyn(28, ">I", 0xFFFFFFFF))),
        Case("vhd-block-size-0", _VX, "fail", _vhd(_vhd_dyn(32, ">I", 0))),
        Case("vhd-size-2^63", _VX, "fail", _vhd(_vhd_footer_size)),
        # loops
        Case("loop-qcow2-self", _LOOP, "fail", _qcow2_backing({"disk.qcow2": "disk.qcow2"}, "disk.qcow2")),
        Case(
            "loop-qcow2-a-b-a",
            _LOOP,
            "fail",
            _qcow2_backing({"a.qcow2": "b.qcow2", "b.qcow2": "a.qcow2"}, "a.qcow2"),
        ),
        Case(
            "loop-qcow2-dot-slash",
            _LOOP,
            "fail",
            _qcow2_backing({"disk.qcow2": "./././disk.qcow2"}, "disk.qcow2"),
        ),
        Case(
            "loop-vmdk-parent-self",
            _LOOP,
            "fail",
            _vmdk_parent_hint({"delta.vmdk": "delta.vmdk"}, "delta.vmdk"),
        ),
        Case(
            "loop-vmdk-a-b-a",
            _LOOP,
            "fail",
            _vmdk_parent_hint({"a.vmdk": "b.vmdk", "b.vmdk": "a.vmdk"}, "a.vmdk"),
        ),
        Case("loop-avhdx-self", _LOOP, "fail", _avhdx_chain({"top.avhdx": "top.avhdx"}, "top.avhdx")),
        Case(
            "loop-avhdx-a-b-a",
            _LOOP,
            "fail",
            _avhdx_chain({"a.avhdx": "b.avhdx", "b.avhdx": ".\\a.avhdx"}, "a.avhdx"),
        ),
        Case("chain-qcow2-300-deep", _LOOP, "fail", _qcow2_deep_chain(300)),
        Case("chain-qcow2-200-deep", _LOOP, "any", _qcow2_deep_chain(200)),
        # leaving the datastore, special files
        Case(
            "outside-qcow2-backing-absolute",
            _OUT,
            "fail",
            _qcow2_backing({"disk.qcow2": "/etc/passwd"}, "disk.qcow2"),
        ),
        Case(
            "outside-qcow2-backing-dotdot",
            _OUT,
            "fail",
            _qcow2_backing({"disk.qcow2": "../../../../../../../etc/passwd"}, "disk.qcow2"),
        ),
        Case(
            "outside-qcow2-backing-devzero",
            _OUT,
            "fail",
            _qcow2_backing({"disk.qcow2": "/dev/zero"}, "disk.qcow2"),
        ),
        Case(
            "outside-vmdk-extent-absolute",
            _OUT,
            "fail",
            _vmdk_desc(_descriptor("monolithicFlat", ['RW 8 FLAT "/etc/passwd" 0'])),
        ),
        Case(
            "outside-vmdk-extent-dotdot",
            _OUT,
            "fail",
            _vmdk_desc(_descriptor("monolithicFlat", ['RW 8 FLAT "../../../../../../etc/passwd" 0'])),
        ),
        Case(
            "outside-vmdk-parent-proc",
            _OUT,
            "fail",
            _vmdk_parent_hint({"delta.vmdk": "/proc/self/mem"}, "delta.vmdk"),
        ),
        Case(
            "outside-avhdx-parent-dotdot",
            _OUT,
            "fail",
            _avhdx_chain({"top.avhdx": "..\\..\\..\\..\\..\\etc\\passwd"}, "top.avhdx"),
        ),
        Case("special-backing-fifo", _OUT, "fail", _qcow2_backing_fifo),
        Case("special-backing-directory", _OUT, "fail", _qcow2_backing({"disk.qcow2": "."}, "disk.qcow2")),
        Case("special-disk-fifo", _OUT, "fail", _file("disk.raw", lambda p: os.mkfifo(p))),
        Case("special-disk-directory", _OUT, "fail", _file("disk.raw", lambda p: p.mkdir())),
        Case(
            "special-disk-symlink-devzero",
            _OUT,
            "fail",
            _file("disk.raw", lambda p: p.symlink_to("/dev/zero")),
        ),
        Case("special-disk-symlink-loop", _OUT, "fail", _file("disk.raw", lambda p: p.symlink_to(p.name))),
        Case(
            "special-disk-sparse-8TiB",
            _OUT,
            "any",
            _file("disk.raw", _sparse_8tib),
        ),
        Case("special-300-disks", _OUT, "fail", _many_disks),
        Case(SLOW, _OUT, "any", _slow),
        # partition tables
        Case(
            "gpt-entry-count-2^32-1",
            _PT,
            "degraded",
            _gpt(lambda h, e: struct.pack_into("<I", h, 80, 0xFFFFFFFF)),
        ),
        Case(
            "gpt-entry-size-2^28", _PT, "degraded", _gpt(lambda h, e: struct.pack_into("<I", h, 84, 1 << 28))
        ),
        Case("gpt-entry-size-0", _PT, "degraded", _gpt(lambda h, e: struct.pack_into("<I", h, 84, 0))),
        Case(
            "gpt-header-size-huge",
            _PT,
            "degraded",
            _gpt(lambda h, e: struct.pack_into("<I", h, 12, 0xFFFFFFFF), fix_crc="none"),
        ),
        Case("gpt-entries-past-disk", _PT, "degraded", _gpt(_gpt_entries_far, fix_crc="header")),
        Case("gpt-partition-past-disk", _PT, "degraded", _gpt(_gpt_beyond)),
        Case(
            "gpt-partition-ends-before-start",
            _PT,
            "degraded",
            _gpt(lambda h, e: struct.pack_into("<QQ", e, 128 + 32, 1000, 10)),
        ),
        Case("gpt-128-copies-of-ntfs", _PT, "any", _gpt(_gpt_same_partition)),
        Case(
            "gpt-bad-crc",
            _PT,
            "degraded",
            _gpt(lambda h, e: struct.pack_into("<I", h, 16, 1), fix_crc="none"),
        ),
        Case("mbr-ebr-loop-self", _PT, "degraded", _mbr(_mbr_ebr_loop)),
        Case("mbr-ebr-loop-two", _PT, "degraded", _mbr(_mbr_ebr_two_loop)),
        Case("mbr-1000-logical", _PT, "any", _mbr(_mbr_ebr_long)),
        Case(
            "mbr-partition-past-disk",
            _PT,
            "degraded",
            _mbr(_mbr_primary(0, _ebr_entry(0x83, 2048, 0xFFFFFFFF))),
        ),
        Case(
            "mbr-extended-past-disk", _PT, "degraded", _mbr(_mbr_primary(1, _ebr_entry(5, 0xFFFFFF00, 100)))
        ),
        Case("mbr-protective-no-gpt", _PT, "fail", _mbr(_mbr_primary(3, _ebr_entry(0xEE, 1, 100)))),
        # LVM
        Case(
            "lvm-extent-count-2^50",
            _LVM,
            "any",
            _lvm(lambda t: t.replace("extent_count = 4", f"extent_count = {1 << 50}", 1)),
        ),
        Case(
            "lvm-stripe-past-pv", _LVM, "any", _lvm(lambda t: t.replace('"pv0", 0', '"pv0", 999999999999', 1))
        ),
        Case(
            "lvm-pe-count-2^62",
            _LVM,
            "any",
            _lvm(lambda t: t.replace("pe_count = ", f"pe_count = {1 << 62} #", 1)),
        ),
        Case(
            "lvm-extent-size-0",
            _LVM,
            "any",
            _lvm(lambda t: t.replace("extent_size = ", "extent_size = 0 #", 1)),
        ),
        Case(
            "lvm-segment-count-2^31",
            _LVM,
            "any",
            _lvm(lambda t: t.replace("segment_count = 1", "segment_count = 2147483647", 1)),
        ),
        Case("lvm-stripe-is-own-lv", _LVM, "any", _lvm(lambda t: t.replace('"pv0", 0', '"root", 0', 1))),
        Case(
            "lvm-mirror-of-itself",
            _LVM,
            "any",
            _lvm(
                lambda t: t.replace(
                    'type = "striped"', 'type = "mirror"\nmirror_count = 1\nmirrors = ["root", 0]', 1
                )
            ),
        ),
        Case(
            "lvm-nesting-100k",
            _LVM,
            "any",
            _lvm(
                lambda t: t.replace(
                    "logical_volumes {", "logical_volumes {" + "x {" * 100_000 + "}" * 100_000, 1
                )
            ),
        ),
        Case("lvm-2500-logical-volumes", _LVM, "any", _lvm(_lvm_many_lvs)),
        Case(
            "lvm-metadata-size-2^40",
            _LVM,
            "any",
            _lvm(lambda t: t, mda=lambda h: struct.pack_into("<Q", h, 48, 1 << 40)),
        ),
        Case(
            "lvm-metadata-offset-2^40",
            _LVM,
            "any",
            _lvm(lambda t: t, mda=lambda h: struct.pack_into("<Q", h, 40, 1 << 40)),
        ),
        # directories that contain themselves
        Case("ext4-dir-self", _DIR, "any", _ext4(["link /tmp /tmp/self"]), walk="", loop=True),
        Case("ext4-dir-root", _DIR, "any", _ext4(["link / /tmp/up"]), walk="", loop=True),
        Case("ext4-dir-diamond-40", _DIR, "any", _ext4(_ext4_diamond(40)), walk="", loop=True),
        Case("ext4-symlink-self", _DIR, "any", _ext4(["symlink /tmp/loop /tmp/loop"])),
        Case("fat16-dir-self", _DIR, "any", _fat16_loop("self"), walk="DATA16:/DOCS", loop=True),
        Case("fat16-dir-root", _DIR, "any", _fat16_loop("root"), walk="DATA16:/DOCS"),
        Case("fat16-cluster-chain-loop", _DIR, "any", _fat16_loop("chain"), walk="DATA16:/DOCS"),
        Case("fat32-dir-grandparent", _DIR, "any", _fat32_loop, walk="S:/EFI", loop=True),
        Case("ntfs-dir-self", _DIR, "any", _ntfs_loop("self"), walk="C:/Deep", loop=True),
        Case("ntfs-dir-root", _DIR, "any", _ntfs_loop("root"), walk="C:/Deep", loop=True),
        Case("xfs-dir-root", _DIR, "any", _xfs_loop, walk="/srv", loop=True),
        # absurd file-system values
        Case("ext4-dir-size-4TiB", _FS, "any", _ext4(["sif /tmp size 0x40000000000"])),
        Case("ext4-file-size-2^63", _FS, "any", _ext4(["sif /tmp/scratch.txt size 0x7fffffffffffffff"])),
        Case("ext4-blocks-count-2^40", _FS, "any", _ext4(["ssv blocks_count 0x10000000000"])),
        Case("ext4-inodes-count-2^32-1", _FS, "any", _ext4(["ssv inodes_count 0xffffffff"])),
        Case("ext4-log-block-size-30", _FS, "any", _ext4(["ssv log_block_size 30"])),
        Case("ext4-inodes-per-group-0", _FS, "any", _ext4(["ssv inodes_per_group 0"])),
        Case("ext4-root-not-a-dir", _FS, "any", _ext4(["sif <2> mode 0100644"])),
    ]
    for short, (kind, make) in _FLIP_KINDS.items():
        for i in range(FLIPS):
            name = f"flip-{short}-{i:02d}"
            c.append(Case(name, kind, "any", make(name)))
    return c


def _trunc_flat(b: Builder, vm: Path) -> list[str]:
    disks = _vmdk_desc(_descriptor("monolithicFlat", ['RW 32768 FLAT "{flat}" 0']))(b, vm)
    _truncate(vm / "disk-flat.vmdk", 8 * MiB + 100)
    return disks


def _trunc_raw(base: str, size: int) -> Callable[[Builder, Path], list[str]]:
    def build(b: Builder, vm: Path) -> list[str]:
        with open(b.raw(base), "rb") as src, open(vm / "disk.raw", "wb") as dst:
            left = size
            while left:
                chunk = src.read(min(left, 4 * MiB))
                if chunk.strip(b"\0"):
                    dst.write(chunk)
                else:
                    dst.seek(len(chunk), 1)
                left -= len(chunk)
            dst.truncate(size)
        return ["disk.raw"]

    return build


def _trunc_raw_ntfs(b: Builder, vm: Path) -> list[str]:
    _start, mft, record = _ntfs_info(b)
    return _trunc_raw("win.raw", mft + 20 * record)(b, vm)


def _vhdx_dirty_log(path: Path) -> None:
    from tests.imagebuilder import vhdx

    for at in (64 * KiB, 128 * KiB):
        h = bytearray(_read(path, at, 4 * KiB))
        h[48:64] = uuid.UUID(int=99).bytes_le
        struct.pack_into("<I", h, 4, 0)
        struct.pack_into("<I", h, 4, vhdx.crc32c(bytes(h)))
        _patch(path, at, bytes(h))


def _sparse_8tib(path: Path) -> None:
    path.write_bytes(b"")
    _truncate(path, 8 << 40)


def _vhdx_no_headers(path: Path) -> None:
    _patch(path, 64 * KiB, b"xxxx")
    _patch(path, 128 * KiB, b"xxxx")


def _vhd_footer_size(path: Path) -> None:
    for at in (0, path.stat().st_size - 512):
        _patch(path, at + 48, struct.pack(">Q", 1 << 63))


CASES: list[Case] = _cases()
CASE_NAMES: list[str] = [c.name for c in CASES]


# --- build and cache -----------------------------------------------------------------------------------


def hostile_key(fixtures: Fixtures) -> str:
    h = hashlib.sha256(fixtures.root.name.encode())
    for path in sorted(HERE.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def build_corpus(fixtures: Fixtures, out: Path) -> dict[str, dict[str, Any]]:
    ds = out / "datastore"
    b = Builder(fixtures, ds)
    cases: dict[str, dict[str, Any]] = {}
    for case in CASES:
        vm = ds / case.name
        vm.mkdir()
        disks = case.build(b, vm)
        _manifest(vm, case.name, disks)
        cases[case.name] = {
            "kind": case.kind,
            "expect": case.expect,
            "walk": case.walk,
            "loop": case.loop,
            "disks": [str(vm / d) for d in disks],
        }
    (out / "cases.json").write_text(json.dumps(cases, indent=1))
    return cases


def ensure_hostile(fixtures: Fixtures, cache: Path = CACHE.parent / "hostile") -> Hostile:
    """The corpus for ``fixtures``, building it first if this version of the builder has not yet."""
    target = cache / hostile_key(fixtures)
    done = target / "cases.json"
    if not done.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not done.exists():
                partial = cache / (target.name + ".partial")
                shutil.rmtree(partial, ignore_errors=True)
                partial.mkdir()
                build_corpus(fixtures, partial)
                # paths inside cases.json name the partial folder: rewrite them for the final one
                text = (partial / "cases.json").read_text().replace(str(partial), str(target))
                (partial / "cases.json").write_text(text)
                for old in cache.iterdir():
                    if old.is_dir() and old.name != partial.name:
                        shutil.rmtree(old, ignore_errors=True)
                partial.rename(target)
    return Hostile(target, json.loads(done.read_text()))
