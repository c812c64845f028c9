"""Build the fixture VMs as real disk images and lay them out as VMware, Hyper-V and qcow2 datastores.

No root, loop device, FUSE or kernel mount: file systems are made from directory trees or command
scripts (``mkfs.fat`` + mtools, ``ntfsbuild`` on libntfs-3g, ``mke2fs -d`` + debugfs, ``mkfs.xfs -p``
under a frozen clock), partition tables by ``sgdisk``/``sfdisk`` on plain files, snapshot chains by
writing exactly the sectors that differ between two points into an overlay (``qemu-io`` for qcow2
and VMDK, our own writer for AVHDX). Every chain is verified against the raw image of its point.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.imagebuilder import trees, vhdx
from tests.imagebuilder.trees import Change, MiB, Tree

HERE = Path(__file__).resolve().parent
SECTOR = 512
ENV = dict(os.environ, MTOOLS_SKIP_CHECK="1", LANG="C.UTF-8", LC_ALL="C.UTF-8", TZ="UTC")
LOG: list[dict[str, Any]] = []


class BuildError(RuntimeError):
    pass


def run(cmd: Sequence[str | Path], *, stdin: bytes | None = None, env: dict[str, str] | None = None) -> str:
    start = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], input=stdin, capture_output=True, env=env or ENV)
    LOG.append({"cmd": " ".join(str(c) for c in cmd)[:300], "secs": round(time.perf_counter() - start, 3)})
    if proc.returncode != 0:
        raise BuildError(
            f"{' '.join(str(c) for c in cmd)[:500]} failed ({proc.returncode}):\n"
            f"{proc.stdout.decode(errors='replace')[-2000:]}\n{proc.stderr.decode(errors='replace')[-3000:]}"
        )
    return proc.stdout.decode(errors="replace")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


# --- trees on the host ---------------------------------------------------------------------------------


def materialize(tree: Tree, dest: Path) -> None:
    """Write ``tree`` under ``dest`` with its modes and times (owners are set in the image later)."""
    dest.mkdir(parents=True, exist_ok=True)
    for d in sorted(tree.dirs):
        (dest / d).mkdir(parents=True, exist_ok=True)
    for path, spec in tree.files.items():
        target = dest / path
        target.write_bytes(spec.data)
        os.chmod(target, spec.mode)
        os.utime(target, (spec.mtime, spec.mtime))
    for path, link in tree.links.items():
        os.symlink(link.target, dest / path)
        os.utime(dest / path, (link.mtime, link.mtime), follow_symlinks=False)
    for d in sorted(tree.dirs, key=lambda p: -p.count("/")):
        os.utime(dest / d, (tree.dirs[d], tree.dirs[d]))


# --- file systems --------------------------------------------------------------------------------------


def ntfsbuild_exe(work: Path) -> Path:
    exe = work / "ntfsbuild"
    if not exe.exists():
        flags = run(["pkg-config", "--cflags", "--libs", "libntfs-3g"]).split()
        run(["gcc", "-O2", "-o", exe, HERE / "ntfsbuild.c", *flags, "-lm"])
    return exe


def _ntfs_put_cmds(tree: Tree, src: Path, paths: Sequence[str]) -> list[str]:
    return [f"put\t/{p}\t{src / p}" for p in paths]


def _ntfs_stream_cmds(tree: Tree, folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for n, (path, streams) in enumerate(sorted(tree.streams.items())):
        for m, (name, data) in enumerate(sorted(streams.items())):
            host = folder / f"{n}-{m}"
            host.write_bytes(data)
            out.append(f"ads\t/{path}\t{name}\t{host}")
    return out


def _ntfs_time_cmds(tree: Tree, paths: Sequence[str]) -> list[str]:
    created = trees.T0 - 86_400 * 30
    out = []
    for p in paths:
        t = tree.files[p].mtime if p in tree.files else tree.dirs[p]
        out.append(f"times\t/{p}\t{created}\t{t}\t{t}\t{t}")
    return out


def build_ntfs(tree: Tree, size: int, image: Path, start_sector: int, work: Path) -> None:
    src = work / f"src-{image.stem}"
    materialize(tree, src)
    run(["truncate", "-s", str(size), image])
    run(
        [
            "mkntfs",
            "-F",
            "-Q",
            "-q",
            "-L",
            tree.label,
            "-s",
            "512",
            "-c",
            "4096",
            "-p",
            str(start_sector),
            "-H",
            "255",
            "-S",
            "63",
            image,
        ]
    )
    cmds = [f"mkdir\t/{d}" for d in sorted(tree.dirs)]
    cmds += _ntfs_put_cmds(tree, src, sorted(tree.files))
    cmds += _ntfs_stream_cmds(tree, work / f"ads-{image.stem}")
    cmds += _ntfs_time_cmds(tree, [*sorted(tree.files), *sorted(tree.dirs, key=lambda p: -p.count("/"))])
    run([ntfsbuild_exe(work), image], stdin=("\n".join(cmds) + "\n").encode())
    shutil.rmtree(src)


def update_ntfs(image: Path, prev_tree: Tree, new_tree: Tree, change: Change, work: Path) -> None:
    """Apply one point's change to a copy of the previous point's NTFS image (a real incremental write)."""
    src = work / f"src-{image.stem}"
    materialize(new_tree, src)
    cmds = [f"rm\t/{path}" for path in change.deleted]
    cmds += [f"write\t/{path}\t{src / path}" for path in change.modified]
    new_dirs = sorted(set(new_tree.dirs) - set(prev_tree.dirs), key=lambda d: d.count("/"))
    cmds += [f"mkdir\t/{d}" for d in new_dirs]
    cmds += [f"put\t/{path}\t{src / path}" for path in change.added]
    cmds += _ntfs_time_cmds(new_tree, [*change.modified, *change.added, *reversed(new_dirs)])
    run([ntfsbuild_exe(work), image], stdin=("\n".join(cmds) + "\n").encode())
    shutil.rmtree(src)


def build_fat(tree: Tree, size: int, image: Path, start_sector: int, work: Path) -> None:
    src = work / "src-esp"
    materialize(tree, src)
    image.unlink(missing_ok=True)
    run(
        [
            "mkfs.fat",
            "-F",
            "32",
            "-s",
            "1",
            "-n",
            tree.label,
            "-i",
            "1234ABCD",
            "-h",
            str(start_sector),
            "-C",
            image,
            str(size // 1024),
        ]
    )
    for d in sorted(tree.dirs):
        run(["mmd", "-i", image, f"::/{d}"])
    for f in sorted(tree.files):
        run(["mcopy", "-m", "-i", image, src / f, f"::/{f}"])
    shutil.rmtree(src)


def build_ext4(tree: Tree, size: int, image: Path, fs_uuid: str, work: Path, inodes: int = 0) -> None:
    src = work / f"src-{image.stem}"
    materialize(tree, src)
    image.unlink(missing_ok=True)
    extra = ["-N", str(inodes)] if inodes else []
    run(
        [
            "mkfs.ext4",
            "-q",
            "-F",
            "-L",
            tree.label,
            "-U",
            fs_uuid,
            "-E",
            f"hash_seed={fs_uuid},root_owner=0:0",
            "-b",
            "4096",
            "-I",
            "256",
            *extra,
            "-d",
            src,
            image,
            f"{size // 1024}K",
        ]
    )
    # Owners in the image come from the tree, whoever runs the build.
    my_uid = os.getuid()
    cmds = []
    owners = {p: (s.uid, s.gid) for p, s in tree.files.items()}
    owners |= {p: (s.uid, s.uid) for p, s in tree.links.items()}
    owners |= {d: (u, u) for d, u in tree.dir_uids.items()}
    for path, (uid, gid) in owners.items():
        if uid != my_uid or my_uid != 0:
            cmds.append(f'sif "/{path}" uid {uid}')
            cmds.append(f'sif "/{path}" gid {gid}')
    if my_uid != 0:
        for d in tree.dirs:
            if d not in tree.dir_uids:
                cmds += [f'sif "/{d}" uid 0', f'sif "/{d}" gid 0']
        cmds += ['sif "/" uid 0', 'sif "/" gid 0']
    if cmds:
        script = work / "debugfs.cmds"
        script.write_text("\n".join(cmds) + "\n")
        run(["debugfs", "-w", "-f", script, image])
    shutil.rmtree(src)


def update_ext4(image: Path, prev_tree: Tree, new_tree: Tree, change: Change, work: Path) -> None:
    """Apply one point's change to a copy of the previous point's ext4 image with debugfs."""
    src = work / f"src-{image.stem}"
    src.mkdir(parents=True, exist_ok=True)
    cmds = [f'rm "/{path}"' for path in [*change.deleted, *change.modified]]
    new_dirs = sorted(set(new_tree.dirs) - set(prev_tree.dirs), key=lambda d: d.count("/"))
    cmds += [f'mkdir "/{d}"' for d in new_dirs]
    for n, (path, spec) in enumerate({**change.modified, **change.added}.items()):
        host = src / f"f{n}"
        host.write_bytes(spec.data)
        cmds += [
            f'write {host} "/{path}"',
            f'sif "/{path}" mtime @{spec.mtime}',
            f'sif "/{path}" uid {spec.uid}',
            f'sif "/{path}" gid {spec.gid}',
            f'sif "/{path}" mode 0{0o100000 | spec.mode:o}',
        ]
    cmds += [f'sif "/{d}" mtime @{new_tree.dirs[d]}' for d in new_dirs]
    script = work / "debugfs-update.cmds"
    script.write_text("\n".join(cmds) + "\n")
    run(["debugfs", "-w", "-f", script, image])
    shutil.rmtree(src)


def build_xfs(tree: Tree, size: int, image: Path, when: int, work: Path) -> None:
    src = work / f"src-{image.stem}"
    materialize(tree, src)
    lines = ["/dev/null", "0 0", "d--755 0 0"]

    def walk(rel: str, depth: int) -> None:
        children = sorted(
            {
                p.split("/")[depth]
                for p in [*tree.files, *tree.dirs]
                if p.startswith(rel) and p.count("/") >= depth and (rel == "" or p != rel[:-1])
            }
        )
        for name in children:
            path = rel + name
            if " " in name:
                raise BuildError(f"XFS protofiles cannot hold names with spaces: {path!r}")
            ind = " " * (depth + 1)
            if path in tree.files:
                spec = tree.files[path]
                lines.append(f"{ind}{name} -{'-' * 2}{spec.mode:03o} {spec.uid} {spec.gid} {src / path}")
            else:
                lines.append(f"{ind}{name} d--755 0 0")
                walk(path + "/", depth + 1)
                lines.append(f"{ind}$")

    walk("", 0)
    lines.append("$")
    proto = work / "xfs.proto"
    proto.write_text("\n".join(lines) + "\n")
    image.unlink(missing_ok=True)
    run(["truncate", "-s", str(size), image])
    frozen = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S")
    run(
        [
            "faketime",
            "-f",
            frozen,
            "mkfs.xfs",
            "-q",
            "-f",
            "-L",
            tree.label,
            "-m",
            f"uuid={trees.XFS_UUID},bigtime=0",
            "-p",
            proto,
            image,
        ]
    )
    shutil.rmtree(src)


# --- disks ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Partition:
    start: int
    size: int
    image: Path
    type_code: str
    name: str = ""


def place(image: Path, disk: Path, offset: int) -> None:
    run(
        [
            "dd",
            f"if={image}",
            f"of={disk}",
            "bs=4M",
            f"seek={offset}",
            "oflag=seek_bytes",
            "conv=notrunc,sparse",
            "status=none",
        ]
    )


def gpt_disk(path: Path, size: int, parts: Sequence[Partition], disk_guid: str) -> None:
    path.unlink(missing_ok=True)
    run(["truncate", "-s", str(size), path])
    args = ["sgdisk", "-U", disk_guid]
    for i, p in enumerate(parts, 1):
        args += [
            f"-n{i}:{p.start // SECTOR}:+{p.size // 1024}K",
            f"-t{i}:{p.type_code}",
            f"-c{i}:{p.name}",
            f"-u{i}:{disk_guid[:-2]}{i:02d}",
        ]
    run([*args, path])
    for p in parts:
        place(p.image, path, p.start)


def mbr_disk(path: Path, size: int, parts: Sequence[Partition], disk_id: str) -> None:
    path.unlink(missing_ok=True)
    run(["truncate", "-s", str(size), path])
    table = f"label: dos\nlabel-id: {disk_id}\n" + "".join(
        f"start={p.start // SECTOR}, size={p.size // SECTOR}, type={p.type_code}\n" for p in parts
    )
    run(["sfdisk", "-q", path], stdin=table.encode())
    for p in parts:
        place(p.image, path, p.start)


# --- snapshot chains -----------------------------------------------------------------------------------


def diff_ranges(a: Path, b: Path, chunk: int = 64 * 1024) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of the sector runs where ``b`` differs from ``a`` (same size)."""
    with open(a, "rb") as fa, open(b, "rb") as fb:
        off = 0
        while True:
            x, y = fa.read(chunk), fb.read(chunk)
            if not x:
                return
            if x != y:
                start = None
                for i in range(0, len(x), SECTOR):
                    differs = x[i : i + SECTOR] != y[i : i + SECTOR]
                    if differs and start is None:
                        start = i
                    elif not differs and start is not None:
                        yield off + start, y[start:i]
                        start = None
                if start is not None:
                    yield off + start, y[start:]
            off += len(x)


def write_diff_qemu(fmt: str, overlay: Path, before: Path, after: Path, work: Path) -> None:
    chunks = work / "chunks"
    chunks.mkdir(exist_ok=True)
    cmds: list[str] = []
    for n, (off, data) in enumerate(diff_ranges(before, after)):
        f = chunks / f"c{n}.bin"
        f.write_bytes(data)
        cmds += ["-c", f"write -q -s {f} {off} {len(data)}"]
    for i in range(0, len(cmds), 800):
        run(["qemu-io", "-f", fmt, *cmds[i : i + 800], overlay])
    shutil.rmtree(chunks)


def qemu_chain(
    fmt: str, raws: Sequence[Path], names: Sequence[Path], work: Path, base_opts: str = ""
) -> None:
    """names[0]: base made from raws[0]; names[i]: overlay holding raws[i]; last name: empty current layer."""
    opts = ["-o", base_opts] if base_opts else []
    run(["qemu-img", "convert", "-f", "raw", "-O", fmt, *opts, raws[0], names[0]])
    for i in range(1, len(names)):
        run(["qemu-img", "create", "-q", "-f", fmt, "-b", names[i - 1].name, "-F", fmt, names[i]])
        if i < len(raws):
            write_diff_qemu(fmt, names[i], raws[i - 1], raws[i], work)
    for i, raw in enumerate(raws):
        run(["qemu-img", "compare", "-q", "-f", fmt, "-F", "raw", names[i], raw])
    run(["qemu-img", "compare", "-q", "-f", fmt, "-F", "raw", names[-1], raws[-1]])


def vhdx_chain(raws: Sequence[Path], names: Sequence[Path]) -> None:
    run(
        [
            "qemu-img",
            "convert",
            "-f",
            "raw",
            "-O",
            "vhdx",
            "-o",
            "subformat=dynamic,block_size=2M",
            raws[0],
            names[0],
        ]
    )
    for i in range(1, len(names)):
        before = raws[i - 1]
        after = raws[i] if i < len(raws) else raws[-1]
        vhdx.write_diff(str(names[i - 1]), str(before), str(after), str(names[i]))
    for i, raw in enumerate(raws):
        verify_with_libvhdi(names[i], raw)
    verify_with_libvhdi(names[-1], raws[-1])


def verify_with_libvhdi(top: Path, raw: Path) -> None:
    import pyvhdi

    files = []

    def open_chain(path: Path) -> Any:
        f = pyvhdi.file()
        f.open(str(path))
        files.append(f)
        if f.parent_filename:
            name = f.parent_filename.replace("\\", "/").rsplit("/", 1)[-1]
            f.set_parent(open_chain(path.parent / name))
        return f

    top_file = open_chain(top)
    h = hashlib.sha256()
    size = top_file.get_media_size()
    pos = 0
    while pos < size:
        n = min(4 * MiB, size - pos)
        h.update(top_file.read_buffer_at_offset(n, pos))
        pos += n
    if h.hexdigest() != sha256_file(raw):
        raise BuildError(f"VHDX chain {top} does not reproduce {raw}")
    for f in files:
        f.close()


def set_time(path: Path, seconds: int, micros: int = 0) -> None:
    ns = seconds * 1_000_000_000 + micros * 1000
    os.utime(path, ns=(ns, ns))


# --- the whole build -----------------------------------------------------------------------------------

WIN_VM = "Win File Server"
LIN_VM = "lin-web01"
POINTS = ("p1", "p2", "p3")


def build_windows_disks(out: Path, work: Path) -> tuple[dict[str, list[Path]], dict[str, dict[str, Tree]]]:
    base, changes = trees.windows_trees()
    points = trees.point_trees(base, changes, {})
    esp_start, esp_size = 1 * MiB, 40 * MiB
    c_start, c_size = esp_start + esp_size, 160 * MiB
    disk_size = c_start + c_size + 1 * MiB
    esp = work / "win-esp.img"
    build_fat(points["p1"]["esp"], esp_size, esp, esp_start // SECTOR, work)
    raws: dict[str, list[Path]] = {}
    ntfs_prev = None
    prev_point = "p1"
    for point in POINTS:
        ntfs = work / f"win-c-{point}.img"
        if ntfs_prev is None:
            build_ntfs(points[point]["c"], c_size, ntfs, c_start // SECTOR, work)
        else:
            shutil.copyfile(ntfs_prev, ntfs)
            update_ntfs(ntfs, points[prev_point]["c"], points[point]["c"], changes[point], work)
        ntfs_prev, prev_point = ntfs, point
        disk = out / "raw" / f"win-disk0-{point}.raw"
        gpt_disk(
            disk,
            disk_size,
            [
                Partition(esp_start, esp_size, esp, "ef00", "EFI system partition"),
                Partition(c_start, c_size, ntfs, "0700", "Basic data partition"),
            ],
            "6b1f0e2a-3c4d-4e5f-8a9b-0c1d2e3f4a00",
        )
        raws[point] = [disk]
    return raws, points


def build_linux_disks(out: Path, work: Path) -> tuple[dict[str, list[Path]], dict[str, dict[str, Tree]]]:
    base, changes = trees.linux_trees()
    points = trees.point_trees(base, changes, {"srv": trees.srv_changes()})
    for point in POINTS:  # XFS carries its build time
        points[point]["srv"] = trees.with_build_time(points[point]["srv"], trees.POINT_TIMES[point][0] - 7200)
    root_start, root_size = 1 * MiB, 96 * MiB
    srv_start, srv_size = root_start + root_size, 300 * MiB
    disk0_size = srv_start + srv_size + 1 * MiB
    raws: dict[str, list[Path]] = {}
    prev_root: Path | None = None
    prev_point = "p1"
    scratch = work / "lin-scratch.img"
    build_ext4(points["p1"]["scratch"], 16 * MiB, scratch, trees.FSTAB_UUID_SCRATCH, work)
    for point in POINTS:
        root = work / f"lin-root-{point}.img"
        if prev_root is None:
            build_ext4(points[point]["root"], root_size, root, trees.FSTAB_UUID_ROOT, work, inodes=16384)
        else:
            shutil.copyfile(prev_root, root)
            update_ext4(root, points[prev_point]["root"], points[point]["root"], changes[point], work)
        srv = work / f"lin-srv-{point}.img"
        build_xfs(points[point]["srv"], srv_size, srv, trees.POINT_TIMES[point][0] - 7200, work)
        disk0 = out / "raw" / f"lin-disk0-{point}.raw"
        mbr_disk(
            disk0,
            disk0_size,
            [Partition(root_start, root_size, root, "83"), Partition(srv_start, srv_size, srv, "83")],
            "0x4c494e31",
        )
        disk1 = out / "raw" / f"lin-disk1-{point}.raw"
        shutil.copyfile(scratch, disk1)
        raws[point] = [disk0, disk1]
        if prev_root is not None:
            prev_root.unlink()
        prev_root, prev_point = root, point
        srv.unlink()
    return raws, points


MISC_VM = "lvm-vm"


def build_misc_disks(out: Path, work: Path) -> tuple[dict[str, list[Path]], dict[str, dict[str, Tree]]]:
    """disk0: MBR with ext4 (p1), an extended partition holding FAT16 (p5) and an LVM PV (p3) with two
    ext4 logical volumes; disk1: a whole-disk exFAT volume (empty: nothing fills exFAT without a mount)."""
    from tests.imagebuilder import lvm

    vols = trees.misc_trees()
    boot, fat16, lvroot, lvdata = (work / f"misc-{n}.img" for n in ("boot", "fat16", "lvroot", "lvdata"))
    build_ext4(vols["boot"], 16 * MiB, boot, "2f0e1d2c-3b4a-4596-8877-665544332211", work)
    fat16.unlink(missing_ok=True)
    fat_start = 34 * MiB  # inside the extended partition (17 MiB + 1 MiB for the EBR)
    run(
        [
            "mkfs.fat",
            "-F",
            "16",
            "-n",
            "DATA16",
            "-i",
            "16161616",
            "-h",
            str(fat_start // SECTOR),
            "-C",
            fat16,
            str(16 * 1024),
        ]
    )
    src = work / "src-fat16"
    materialize(vols["data16"], src)
    for d in sorted(vols["data16"].dirs):
        run(["mmd", "-i", fat16, f"::/{d}"])
    for f in sorted(vols["data16"].files):
        run(["mcopy", "-m", "-i", fat16, src / f, f"::/{f}"])
    shutil.rmtree(src)
    build_ext4(vols["lvroot"], 16 * MiB, lvroot, "3a4b5c6d-7e8f-4091-a2b3-c4d5e6f70812", work)
    build_ext4(vols["lvdata"], 8 * MiB, lvdata, "4b5c6d7e-8f90-41a2-b3c4-d5e6f7081923", work)
    pv_size = 40 * MiB
    pv = lvm.physical_volume(
        pv_size,
        "vg0",
        [
            lvm.LogicalVolume("root", 4, lvroot.read_bytes()),
            lvm.LogicalVolume("data", 2, lvdata.read_bytes()),
        ],
    )
    pv_img = work / "misc-pv.img"
    pv_img.write_bytes(bytes(pv))
    disk0 = out / "raw" / "misc-disk0-p1.raw"
    disk0_size = 96 * MiB
    disk0.unlink(missing_ok=True)
    run(["truncate", "-s", str(disk0_size), disk0])
    table = (
        "label: dos\nlabel-id: 0x6d697363\n"
        f"start={MiB // SECTOR}, size={16 * MiB // SECTOR}, type=83\n"
        f"start={17 * MiB // SECTOR}, size={34 * MiB // SECTOR}, type=5\n"
        f"start={51 * MiB // SECTOR}, size={pv_size // SECTOR}, type=8e\n"
        f"start={fat_start // SECTOR}, size={16 * MiB // SECTOR}, type=6\n"
    )
    run(["sfdisk", "-q", disk0], stdin=table.encode())
    place(boot, disk0, MiB)
    place(fat16, disk0, fat_start)
    place(pv_img, disk0, 51 * MiB)
    disk1 = out / "raw" / "misc-disk1-p1.raw"
    disk1.unlink(missing_ok=True)
    run(["truncate", "-s", str(32 * MiB), disk1])
    run(["mkfs.exfat", "-L", "EXFAT", disk1])
    return {"p1": [disk0, disk1]}, {"p1": vols}


def manifest_for(points: dict[str, dict[str, Tree]], layout: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for point, vols in points.items():
        secs, micros = trees.POINT_TIMES[point]
        when = datetime.fromtimestamp(secs, UTC).replace(microsecond=micros)
        volumes = {}
        for name, tree in vols.items():
            volumes[name] = {
                **layout[name],
                "fs": tree.fs,
                "label": tree.label,
                "files": {
                    p: {"size": len(s.data), "mtime": s.mtime, "sha256": s.sha256, "uid": s.uid}
                    for p, s in sorted(tree.files.items())
                },
                "dirs": sorted(tree.dirs),
                "links": {
                    p: {"target": lk.target, "mtime": lk.mtime} for p, lk in sorted(tree.links.items())
                },
                "streams": {
                    p: {
                        name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                        for name, data in sorted(streams.items())
                    }
                    for p, streams in sorted(tree.streams.items())
                },
            }
        out[point] = {"time": when.isoformat().replace("+00:00", "Z"), "volumes": volumes}
    return out


def build_all(out: Path) -> dict[str, Any]:
    """Build everything into ``out`` and return the manifest (also written to ``out/manifest.json``)."""
    work = Path(tempfile.mkdtemp(prefix="imgwork-", dir=out))
    (out / "raw").mkdir(parents=True, exist_ok=True)
    win_raws, win_points = build_windows_disks(out, work)
    lin_raws, lin_points = build_linux_disks(out, work)
    manifest: dict[str, Any] = {
        "vms": {
            WIN_VM: manifest_for(
                win_points,
                {
                    "esp": {"disk": 0, "partition": 1, "guest_root": "S:", "system": False},
                    "c": {"disk": 0, "partition": 2, "guest_root": "C:", "system": True},
                },
            ),
            LIN_VM: manifest_for(
                lin_points,
                {
                    "root": {"disk": 0, "partition": 1, "guest_root": "/"},
                    "srv": {"disk": 0, "partition": 2, "guest_root": "/srv"},
                    "scratch": {"disk": 1, "partition": None, "guest_root": "/scratch"},
                },
            ),
        },
        "raw": {
            WIN_VM: {p: [str(r.relative_to(out)) for r in v] for p, v in win_raws.items()},
            LIN_VM: {p: [str(r.relative_to(out)) for r in v] for p, v in lin_raws.items()},
        },
        "datastores": {},
    }
    misc_raws, misc_points = build_misc_disks(out, work)
    manifest["vms"][MISC_VM] = manifest_for(
        misc_points,
        {
            "boot": {"disk": 0, "partition": 1, "guest_root": "boot:"},
            "data16": {"disk": 0, "partition": 5, "guest_root": "DATA16:"},
            "lvroot": {"disk": 0, "lv": "vg0/root", "guest_root": "lvroot:"},
            "lvdata": {"disk": 0, "lv": "vg0/data", "guest_root": "lvdata:"},
            "exfat": {"disk": 1, "partition": None, "guest_root": "EXFAT:"},
        },
    )
    manifest["raw"][MISC_VM] = {p: [str(r.relative_to(out)) for r in v] for p, v in misc_raws.items()}
    from tests.imagebuilder import layouts

    ds = out / "datastores"
    manifest["datastores"]["vmware"] = layouts.vmware(ds / "vmware", win_raws, lin_raws, work)
    manifest["datastores"]["hyperv"] = layouts.hyperv(ds / "hyperv", win_raws, lin_raws, work)
    manifest["datastores"]["qcow2"] = layouts.qcow2(ds / "qcow2", win_raws, lin_raws, work)
    manifest["datastores"]["broken"] = layouts.broken(ds / "broken", work)
    manifest["datastores"]["esxi"] = layouts.esxi(ds / "esxi", win_raws, lin_raws, work)
    manifest["datastores"]["misc"] = layouts.misc(ds / "misc", misc_raws)
    from tests.imagebuilder import large

    manifest["datastores"]["large"] = large.build(ds / "large", work)
    shutil.rmtree(work)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    (out / "build_log.json").write_text(json.dumps(LOG, indent=1, ensure_ascii=False))
    return manifest
