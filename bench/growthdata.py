"""The growth group's VMs (bench/growth.py), each built once and cached in ``.cache/bench-growth/``.

- ``folder-N``: a bare XFS disk (raw) with one folder of N empty files, ``growth:/many``. mkfs.xfs
  builds it from a prototype file: 1,000,000 entries in about 40 s here, where ``mke2fs -d`` links
  every entry into a linear folder (O(n^2): 10,000 in 10 s, 20,000 in 37 s) and mkfs.fat stops at
  65,536 entries (docs/BENCHMARKS.md, "Cost growth").
- ``chain-DD``: the first DD layers of one qcow2 chain over a bare XFS disk holding ``big.bin``
  (256 MiB) and 100 small files; each layer above the base rewrites 64 KiB of ``big.bin`` (layer i
  at i/64 of the file), so a read of the file finds its clusters across the whole chain. Every
  depth's folder hard-links the same layer files.
- ``disk-SIZE``: a sparse qcow2 of that virtual size with a GPT and one XFS partition filling it
  (200 small files at its root). The partition is made with mkfs.xfs on a sparse file (64 MiB log,
  no discard) and copied into a sparse raw disk with qemu-img, skipping holes, then converted to
  qcow2; the raw files live on /dev/shm, since the host's ext4 refuses files of 16 TiB.

Each VM's folder is keyed by its generator's parameters (``<name>-<hash>``), so a run at small
sizes builds only what it needs, and ``link_datastore`` assembles a run's datastore from hard links.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.fixtures import REPO

CACHE = REPO / ".cache" / "bench-growth"
VERSION = "1"  # bump when a generator below changes
LABEL = "growth"
MiB, GiB, TiB = 2**20, 2**30, 2**40
FILE_SIZE = 256 * MiB
LAYER_WRITE = 64 * 1024
SMALL_FILES = 100
ROOT_FILES = 200
FOLDER = f"{LABEL}:/many"
BIG_FILE = f"{LABEL}:/big.bin"
Log = Callable[[str], None]


def run(*cmd: object, cwd: Path | None = None) -> None:
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True, cwd=cwd)


def _key(*params: object) -> str:
    return hashlib.sha256(json.dumps([VERSION, *params]).encode()).hexdigest()[:12]


def manifest(folder: Path, name: str, disk: str) -> None:
    (folder / "openflr-vm.toml").write_text(
        f'name = "{name}"\nplatform = "KVM"\n\n[[points]]\nname = "growth"\n'
        f'time = "2026-12-01T12:00:00Z"\ndisks = ["{disk}"]\n'
    )


def _cached(name: str, key: str, make: Callable[[Path, Path], None], log: Log) -> Path:
    """``CACHE/<name>-<key>/vm``, made by ``make(vm, scratch)`` on first use."""
    target = CACHE / f"{name}-{key}"
    if (target / "done").exists():
        return target / "vm"
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    for old in CACHE.glob(f"{name}-*"):  # other generator versions of this VM
        shutil.rmtree(old, ignore_errors=True)
    (partial / "vm").mkdir(parents=True)
    start = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="bench-growth-", dir=_scratch_parent(partial)))
    try:
        make(partial / "vm", scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.perf_counter() - start
    (partial / "done").write_text(json.dumps({"seconds": seconds}))
    partial.rename(target)
    log(f"  built {name} in {seconds:.1f} s")
    return target / "vm"


def _scratch_parent(fallback: Path) -> Path:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and shutil.disk_usage(shm).free > 4 * GiB else fallback


def build_seconds(vm: Path) -> float:
    """How long a cached VM took to build."""
    return float(json.loads((vm.parent / "done").read_text())["seconds"])


def _xfs(image: Path, size: int, proto: list[str], work: Path, *extra: str) -> None:
    """A sparse XFS file system image of ``size`` bytes built from the prototype lines ``proto``
    (the root folder's content, without the header and the final ``$``)."""
    (work / "fs.proto").write_text("\n".join(["/dev/null", "0 0", "d--755 0 0", *proto, "$"]) + "\n")
    run("truncate", "-s", size, image)
    run("mkfs.xfs", "-q", "-f", "-K", "-L", LABEL, *extra, "-p", work / "fs.proto", image)


def _small_files(work: Path, count: int, indent: str) -> list[str]:
    lines = []
    for i in range(count):
        path = work / f"small_{i:03d}.txt"
        path.write_bytes(f"small file {i}\n".encode() * 10)
        lines.append(f"{indent}small_{i:03d}.txt ---644 0 0 {path}")
    return lines


# folder size


def folder_vm(entries: int, log: Log = print) -> Path:
    """A VM whose disk holds ``growth:/many`` with ``entries`` empty files."""

    def make(vm: Path, work: Path) -> None:
        empty = work / "empty"
        empty.write_bytes(b"")
        proto = [" many d--755 0 0"]
        proto += [f"  file_{i:07d}.txt ---644 0 0 {empty}" for i in range(entries)]
        proto.append(" $")
        # 512-byte inodes plus the folder's blocks, above mkfs.xfs's 300 MiB minimum.
        _xfs(vm / "disk0.raw", 320 * MiB + entries * 2048, proto, work)
        manifest(vm, folder_name(entries), "disk0.raw")

    return _cached(folder_name(entries), _key("folder", entries), make, log)


def folder_name(entries: int) -> str:
    return f"folder-{entries}"


# chain depth


def layer_offset(layer: int) -> int:
    """Where in ``big.bin`` layer ``layer`` (1 and up) writes its ``LAYER_WRITE`` bytes."""
    return (layer % 64) * (FILE_SIZE // 64) + (layer // 64) * LAYER_WRITE


def layer_bytes(layer: int) -> bytes:
    return bytes([layer % 251 + 1]) * LAYER_WRITE


def _big_file(path: Path) -> None:
    block = hashlib.sha256(b"growth").digest() * (MiB // 32)
    with open(path, "wb") as fh:
        for i in range(FILE_SIZE // MiB):
            fh.write(i.to_bytes(8, "little") + block[8:])


def _find(image: Path, needle: bytes) -> int:
    """The offset of ``needle`` (at a 4 KiB boundary) in ``image``."""
    chunk = 8 * MiB
    with open(image, "rb") as fh:
        base = 0
        while data := fh.read(chunk):
            at = data.find(needle)
            while at >= 0 and (base + at) % 4096:
                at = data.find(needle, at + 1)
            if at >= 0:
                return base + at
            base += len(data)
    raise RuntimeError(f"{needle[:8]!r} not found in {image}")


def chain_vms(depths: list[int], log: Log = print) -> dict[int, Path]:
    """One VM per depth, each over the first ``depth`` layers of one chain of ``max(depths)``."""
    deepest = max(depths)

    def make(root: Path, work: Path) -> None:
        big = work / "big.bin"
        _big_file(big)
        proto = [f" big.bin ---644 0 0 {big}", *_small_files(work, SMALL_FILES, " ")]
        raw = work / "base.raw"
        # Two allocation groups of 640 MiB: the file fits in one, in one extent (checked below), so
        # each layer's write lands at a known place in it.
        _xfs(raw, 1280 * MiB, proto, work, "-d", "agcount=2")
        with open(big, "rb") as fh:
            head = fh.read(4096)
            fh.seek(FILE_SIZE - 4096)
            tail = fh.read()
        start = _find(raw, head)  # the file's first bytes: its index 0 and the seeded block
        with open(raw, "rb") as fh:
            fh.seek(start + FILE_SIZE - 4096)
            if fh.read(4096) != tail:
                raise RuntimeError("big.bin is not in one extent: the layers' offsets would miss it")
        layers = root / "layers"
        layers.mkdir()
        run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, layers / "layer00.qcow2")
        for i in range(1, deepest):
            name = f"layer{i:02d}.qcow2"
            run(
                "qemu-img", "create", "-q", "-f", "qcow2", "-b", f"layer{i - 1:02d}.qcow2", "-F", "qcow2",
                layers / name,
            )  # fmt: skip
            offset = start + layer_offset(i)
            run(
                "qemu-io",
                "-f",
                "qcow2",
                "-c",
                f"write -q -P {i % 251 + 1} {offset} {LAYER_WRITE}",
                layers / name,
            )
        for depth in depths:
            vm = root / chain_name(depth)
            vm.mkdir()
            for i in range(depth):
                os.link(layers / f"layer{i:02d}.qcow2", vm / f"layer{i:02d}.qcow2")
            manifest(vm, chain_name(depth), f"layer{depth - 1:02d}.qcow2")

    key = _key("chain", sorted(depths), FILE_SIZE, LAYER_WRITE, "agcount=2")
    root = _cached(f"chain-{deepest}", key, make, log)
    return {d: root / chain_name(d) for d in depths}


def chain_name(depth: int) -> str:
    return f"chain-{depth:02d}"


# disk size


def disk_vm(size: int, log: Log = print) -> Path:
    """A VM whose disk is a sparse qcow2 of ``size`` bytes: GPT, one XFS partition filling it."""

    def make(vm: Path, work: Path) -> None:
        start = MiB
        part_size = size - 2 * MiB  # room for the GPT's backup at the end
        part = work / "part.raw"
        _xfs(part, part_size, _small_files(work, ROOT_FILES, " "), work, "-l", "size=64m")
        raw = work / "disk.raw"
        run("truncate", "-s", size, raw)
        run("sgdisk", f"-n1:{start // 512}:+{part_size // 1024}K", "-t1:8300", "-c1:growth", raw)
        target = f"driver=raw,offset={start},size={part_size},file.driver=file,file.filename={raw}"
        run(
            "qemu-img", "convert", "-n", "--target-is-zero", "-f", "raw", part, "--target-image-opts", target
        )  # fmt: skip
        part.unlink()
        run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, vm / "disk0.qcow2")
        manifest(vm, disk_name(size), "disk0.qcow2")

    return _cached(disk_name(size), _key("disk", size, ROOT_FILES), make, log)


def disk_name(size: int) -> str:
    return f"disk-{size_text(size)}"


def size_text(size: int) -> str:
    """1073741824 -> '1GiB', 17592186044416 -> '16TiB'."""
    for unit, name in ((TiB, "TiB"), (GiB, "GiB"), (MiB, "MiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit}{name}"
    return f"{size}B"


def link_datastore(vms: dict[str, Path], datastore: Path) -> Path:
    """A datastore folder (VM name -> its folder) of hard links to the cached VMs' files (the cache
    is on the same file system as the run's temporary folder; a copy where it is not)."""
    for name, vm in vms.items():
        folder = datastore / name
        folder.mkdir(parents=True)
        for f in vm.iterdir():
            try:
                os.link(f, folder / f.name)
            except OSError:
                shutil.copyfile(f, folder / f.name)
    return datastore
