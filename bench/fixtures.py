"""The benchmark datastore: manifest VMs built once and cached in ``.cache/bench/<hash>/``.

- ``small``: the demo Windows VM's newest point (a 202 MiB disk, three qcow2 layers);
- ``huge-2TiB``: the same disk content in a 2 TiB qcow2 (mount time must not grow with disk size);
- ``deep-32``: the same content under 32 qcow2 layers (nor with chain depth);
- ``many-ntfs`` / ``many-ext4`` / ``many-xfs``: one folder of 100,000 files;
- ``wide-ntfs``: one folder of 250,000 files (memory of an unpaged listing);
- ``big-files``: an ext4 volume with one 2 GiB file and ten 100 MiB files, as a raw disk and as
  3-layer qcow2, VMDK and VHDX chains (download speed), plus a folder of 10,000 small files;
- the same volume as a monolithicFlat VMDK, as ESXi vmfsSparse and seSparse delta chains and under a
  32-layer VHDX chain (``CHAINS``: added to a datastore built before them, see ``add_chains``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.imagebuilder.build import ntfsbuild_exe

from openflr import demo

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "bench"
MiB, GiB = 1024 * 1024, 1024 * 1024 * 1024
VERSION = "6"  # bump when the layout below changes


def run(*cmd: object, stdin: bytes | None = None) -> None:
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True, input=stdin)


def _manifest(folder: Path, name: str, disks: list[str], os_kind: str = "") -> None:
    files = ", ".join(f'"{d}"' for d in disks)
    extra = f'os = "{os_kind}"\n' if os_kind else ""
    (folder / "openflr-vm.toml").write_text(
        f'name = "{name}"\nplatform = "KVM"\n{extra}\n[[points]]\nname = "bench"\n'
        f'time = "2026-11-20T12:00:00Z"\ndisks = [{files}]\n'
    )


def _many_files(root: Path, count: int, prefix: str) -> None:
    root.mkdir(parents=True)
    for i in range(count):
        os.close(os.open(root / f"{prefix}{i:06d}.txt", os.O_CREAT | os.O_WRONLY, 0o644))


def _ext4_image(src: Path, image: Path, size: int, inodes: int, label: str) -> None:
    run(
        "mkfs.ext4", "-q", "-F", "-L", label, "-N", inodes, "-b", "4096", "-d", src, image, f"{size // 1024}K"
    )


def build(out: Path) -> None:
    ds = out / "datastore"
    ds.mkdir(parents=True)
    work = Path(tempfile.mkdtemp(prefix="bench-", dir=out))
    # small / huge / deep: the demo Windows VM.
    demo_store = demo.prepare(work / "demo").path
    win = demo_store / "Win File Server"
    raw = work / "win.raw"
    run("qemu-img", "convert", "-O", "raw", win / "disk0-p3.qcow2", raw)
    for name in ("small", "huge-2TiB", "deep-32"):
        (ds / name).mkdir()
    run("qemu-img", "convert", "-O", "qcow2", raw, ds / "small" / "disk0.qcow2")
    _manifest(ds / "small", "small", ["disk0.qcow2"], "Windows")
    run("qemu-img", "convert", "-O", "qcow2", raw, ds / "huge-2TiB" / "disk0.qcow2")
    run("qemu-img", "resize", "-q", ds / "huge-2TiB" / "disk0.qcow2", "2T")
    _manifest(ds / "huge-2TiB", "huge-2TiB", ["disk0.qcow2"], "Windows")
    deep = ds / "deep-32"
    run("qemu-img", "convert", "-O", "qcow2", raw, deep / "layer00.qcow2")
    tail = raw.stat().st_size - MiB  # the slack after the last partition: writes there touch no file system
    for i in range(1, 32):
        run(
            "qemu-img",
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            f"layer{i - 1:02d}.qcow2",
            "-F",
            "qcow2",
            deep / f"layer{i:02d}.qcow2",
        )
        run(
            "qemu-io",
            "-f",
            "qcow2",
            "-c",
            f"write -q -P {i} {tail + i * 4096} 4096",
            deep / f"layer{i:02d}.qcow2",
        )
    _manifest(deep, "deep-32", ["layer31.qcow2"], "Windows")
    # 100,000 files in one folder, on NTFS and on ext4.
    (ds / "many-ntfs").mkdir()
    ntfs = ds / "many-ntfs" / "disk0.raw"
    run("truncate", "-s", 512 * MiB, ntfs)
    run("mkntfs", "-F", "-Q", "-q", "-L", "many", "-s", "512", "-c", "4096", ntfs)
    empty = work / "empty"
    empty.write_bytes(b"")
    cmds = "mkdir\t/many\n" + "".join(f"put\t/many/file_{i:06d}.txt\t{empty}\n" for i in range(100_000))
    run(ntfsbuild_exe(work), ntfs, stdin=cmds.encode())
    _manifest(ds / "many-ntfs", "many-ntfs", ["disk0.raw"], "Windows")
    _many_ext4(ds / "many-ext4", work)
    # The same on XFS: mkfs.xfs builds the folder from a prototype file in a second.
    proto = ["/dev/null", "0 0", "d--755 0 0", " many d--755 0 0"]
    proto += [f"  file_{i:06d}.txt ---644 0 0 {empty}" for i in range(100_000)]
    proto += [" $", "$"]
    (work / "many.proto").write_text("\n".join(proto) + "\n")
    (ds / "many-xfs").mkdir()
    run("truncate", "-s", 600 * MiB, ds / "many-xfs" / "disk0.raw")
    run("mkfs.xfs", "-q", "-f", "-L", "many", "-p", work / "many.proto", ds / "many-xfs" / "disk0.raw")
    _manifest(ds / "many-xfs", "many-xfs", ["disk0.raw"])
    # 250,000 entries in one folder: NTFS (mke2fs -d inserts into a linear directory, O(n^2): hours).
    (ds / "wide-ntfs").mkdir()
    wide = ds / "wide-ntfs" / "disk0.raw"
    run("truncate", "-s", 1024 * MiB, wide)
    run("mkntfs", "-F", "-Q", "-q", "-L", "wide", "-s", "512", "-c", "4096", wide)
    cmds = "mkdir\t/wide\n" + "".join(
        f"put\t/wide/entry_with_a_longer_name_{i:06d}.txt\t{empty}\n" for i in range(250_000)
    )
    run(ntfsbuild_exe(work), wide, stdin=cmds.encode())
    _manifest(ds / "wide-ntfs", "wide-ntfs", ["disk0.raw"], "Windows")
    _big_files(ds, work)
    add_chains(ds)
    shutil.rmtree(work)


def _many_ext4(folder: Path, work: Path, count: int = 100_000) -> None:
    """ext4 with one htree-indexed folder of ``count`` files. mke2fs -d links every entry into a
    linear directory (O(n^2): over ten minutes here), so the folder starts with 400 files, e2fsck -D
    indexes it, and debugfs adds the rest through the index (about a minute)."""
    src = work / "ext4-src"
    _many_files(src / "many", 400, "file_")
    folder.mkdir()
    image = folder / "disk0.raw"
    run("truncate", "-s", 700 * MiB, image)
    run("mkfs.ext4", "-q", "-F", "-L", "many", "-N", count + 1000, "-b", "4096", "-d", src, image)
    subprocess.run(["e2fsck", "-fyD", str(image)], capture_output=True, check=False)  # 1: fixed
    cmds = "cd /many\n" + "".join(f"write /dev/null file_{i:06d}.txt\n" for i in range(400, count))
    (work / "ext4.cmds").write_text(cmds)
    run("debugfs", "-w", "-f", work / "ext4.cmds", image)
    shutil.rmtree(src)
    _manifest(folder, "many-ext4", ["disk0.raw"])


def _big_files(ds: Path, work: Path) -> None:
    src = work / "big-src"
    (src / "big").mkdir(parents=True)
    (src / "large").mkdir()
    (src / "small").mkdir()
    block = hashlib.sha256(b"seed").digest() * 32768  # 1 MiB of incompressible-looking bytes
    with open(src / "big" / "two-gib.bin", "wb") as fh:
        for i in range(2048):
            fh.write(i.to_bytes(8, "little") + block[8:])
    with open(src / "big" / "one-gib.bin", "wb") as fh:
        for i in range(1024):
            fh.write((10**6 + i).to_bytes(8, "little") + block[8:])
    for n in range(10):
        with open(src / "large" / f"large_{n}.bin", "wb") as fh:
            for i in range(100):
                fh.write((n * 1000 + i).to_bytes(8, "little") + block[8:])
    for n in range(10_000):
        (src / "small" / f"small_{n:05d}.txt").write_bytes(f"small file {n}\n".encode() * 20)
    image = work / "big.img"
    _ext4_image(src, image, 4608 * MiB, 20_000, "bigfiles")
    shutil.rmtree(src)
    folder = ds / "big-files"
    folder.mkdir()
    shutil.copyfile(image, folder / "disk0.raw")
    _manifest(folder, "big-files", ["disk0.raw"])
    # The same bytes through three-layer chains of each format (each upper layer changes 4 KiB at the end).
    for fmt, ext in (("qcow2", "qcow2"), ("vmdk", "vmdk"), ("vhdx", "vhdx")):
        chain = ds / f"big-{fmt}"
        chain.mkdir()
        opts = ["-o", "subformat=dynamic"] if fmt == "vhdx" else []
        run("qemu-img", "convert", "-O", fmt, *opts, image, chain / f"layer0.{ext}")
        if fmt == "vhdx":
            from tests.imagebuilder.vhdx import write_diff

            write_diff(str(chain / "layer0.vhdx"), str(image), str(image), str(chain / "layer1.avhdx"))
            write_diff(str(chain / "layer1.avhdx"), str(image), str(image), str(chain / "layer2.avhdx"))
            top = "layer2.avhdx"
        else:
            for i in (1, 2):
                run(
                    "qemu-img",
                    "create",
                    "-q",
                    "-f",
                    fmt,
                    "-b",
                    f"layer{i - 1}.{ext}",
                    "-F",
                    fmt,
                    chain / f"layer{i}.{ext}",
                )
            top = f"layer2.{ext}"
        _manifest(chain, f"big-{fmt}", [top])
    image.unlink()


CHAINS = ("big-vmdk-flat", "big-esxi-vmfssparse", "big-esxi-sesparse", "big-vhdx-32")
"""VMs made from ``big-files`` by ``add_chains``, each in seconds: their base is a hard link to an
image already in the datastore and their upper layers hold 4 KiB changes in the volume's unused last
128 KiB (ext4 blocks no file uses), so the files read the same as from the raw disk."""


def add_chains(ds: Path) -> None:
    """Make the ``CHAINS`` VMs missing from the datastore ``ds`` (each built aside, then renamed): a
    datastore built before they were added gets them in about two minutes, not a rebuild."""
    raw = ds / "big-files" / "disk0.raw"
    for name in CHAINS:
        folder = ds / name
        if folder.exists():
            continue
        partial = ds.parent / f"{name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        work = Path(tempfile.mkdtemp(prefix="chains-", dir=ds.parent))
        try:
            _CHAIN_BUILDERS[name](raw, partial, work)
        finally:
            shutil.rmtree(work)
        partial.rename(folder)


def _change(work: Path, size: int, layer: int) -> tuple[Path, Path]:
    """(before, after): sparse files of ``size`` zeros, ``after`` with 4 KiB of ``layer`` in the last
    128 KiB: the difference one upper layer holds (the writers diff two raw files)."""
    before, after = work / "zeros.raw", work / "changed.raw"
    for path in (before, after):
        with open(path, "wb") as fh:
            fh.truncate(size)
    with open(after, "r+b") as fh:
        fh.seek(size - 128 * 1024 + (layer % 32) * 4096)
        fh.write(bytes([layer % 256]) * 4096)
    return before, after


def _vmdk_flat(raw: Path, folder: Path, _work: Path) -> None:
    # qemu-img writes the descriptor (and a sparse flat file, replaced by the link to the raw disk).
    run(
        "qemu-img",
        "create",
        "-q",
        "-f",
        "vmdk",
        "-o",
        "subformat=monolithicFlat",
        folder / "disk0.vmdk",
        raw.stat().st_size,
    )
    (folder / "disk0-flat.vmdk").unlink()
    os.link(raw, folder / "disk0-flat.vmdk")
    _manifest(folder, "big-vmdk-flat", ["disk0.vmdk"])


def _esxi_chain(delta: str) -> Callable[[Path, Path, Path], None]:
    """An ESXi chain as a datastore holds it: a ``-flat.vmdk`` base (createType vmfs) and two
    snapshot deltas (``delta``: vmfsSparse or seSparse), each with its descriptor."""

    def build_chain(raw: Path, folder: Path, work: Path) -> None:
        from tests.imagebuilder import esxi

        os.link(raw, folder / "disk0-flat.vmdk")
        sectors = raw.stat().st_size // 512
        (folder / "disk0.vmdk").write_text(
            esxi.descriptor("vmfs", sectors, "VMFS", "disk0-flat.vmdk", None, 1, None)
        )
        parent = "disk0.vmdk"
        for i in (1, 2):
            before, after = _change(work, raw.stat().st_size, i)
            name = f"disk0-{i:06d}"
            if delta == "seSparse":
                esxi.write_sesparse(before, after, folder / f"{name}-sesparse.vmdk")
                extent = ("SESPARSE", f"{name}-sesparse.vmdk")
            else:
                esxi.write_cowd(before, after, folder / f"{name}-delta.vmdk")
                extent = ("VMFSSPARSE", f"{name}-delta.vmdk")
            text = esxi.descriptor(delta, sectors, extent[0], extent[1], parent, i + 1, i)
            (folder / f"{name}.vmdk").write_text(text)
            parent = f"{name}.vmdk"
        _manifest(folder, folder.name.removesuffix(".partial"), [parent])

    return build_chain


def _vhdx_32(raw: Path, folder: Path, work: Path) -> None:
    from tests.imagebuilder.vhdx import write_diff

    os.link(raw.parent.parent / "big-vhdx" / "layer0.vhdx", folder / "layer00.vhdx")
    for i in range(1, 32):
        before, after = _change(work, raw.stat().st_size, i)
        parent = folder / (f"layer{i - 1:02d}.avhdx" if i > 1 else "layer00.vhdx")
        write_diff(str(parent), str(before), str(after), str(folder / f"layer{i:02d}.avhdx"))
    _manifest(folder, "big-vhdx-32", ["layer31.avhdx"])


_CHAIN_BUILDERS: dict[str, Callable[[Path, Path, Path], None]] = {
    "big-vmdk-flat": _vmdk_flat,
    "big-esxi-vmfssparse": _esxi_chain("vmfsSparse"),
    "big-esxi-sesparse": _esxi_chain("seSparse"),
    "big-vhdx-32": _vhdx_32,
}


def key() -> str:
    # By version, not by this file's text: a rebuild takes minutes, so only layout changes force it.
    h = hashlib.sha256(VERSION.encode())
    h.update(demo.ARCHIVE.read_bytes()[:4096])
    return h.hexdigest()[:12]


def ensure() -> Path:
    """The cached bench datastore (built on first use: a few minutes)."""
    target = CACHE / key()
    if (target / "done").exists():
        add_chains(target / "datastore")
        return target / "datastore"
    if target.exists():
        shutil.rmtree(target)
    partial = CACHE / (target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    build(partial)
    (partial / "done").write_text(json.dumps({"version": VERSION}))
    for old in CACHE.iterdir():
        if old.is_dir() and old.name != partial.name:
            shutil.rmtree(old, ignore_errors=True)
    partial.rename(target)
    return target / "datastore"
