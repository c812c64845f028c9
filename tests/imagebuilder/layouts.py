"""Lay the fixture VMs' points out as datastores, and record what a scanner must find in each.

Each function returns ``{vm folder: {"vm_name", "display_name", "points": [{"time", "disks"}]}}``
where ``disks`` lists, per VM disk, the chain of files of that point from the top layer down to
the base, relative to the datastore root.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.imagebuilder import esxi as esx
from tests.imagebuilder import trees
from tests.imagebuilder.build import (
    LIN_VM,
    MISC_VM,
    POINTS,
    WIN_VM,
    qemu_chain,
    run,
    set_time,
    vhdx_chain,
)

Raws = dict[str, list[Path]]


def _point_time(point: str) -> tuple[int, int]:
    return trees.POINT_TIMES[point]


def _iso(point: str) -> str:
    secs, micros = _point_time(point)
    return datetime.fromtimestamp(secs, UTC).replace(microsecond=micros).isoformat().replace("+00:00", "Z")


def _rel(paths: Sequence[Path], root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in paths]


# --- VMware --------------------------------------------------------------------------------------------


def _vmx(display: str, disks: Sequence[str]) -> str:
    lines = [
        '.encoding = "UTF-8"',
        'config.version = "8"',
        'virtualHW.version = "19"',
        f'displayName = "{display}"',
        'guestOS = "windows2019srv-64"',
        'scsi0.present = "TRUE"',
        'scsi0.virtualDev = "lsisas1068"',
    ]
    for i, name in enumerate(disks):
        lines += [f'scsi0:{i}.present = "TRUE"', f'scsi0:{i}.fileName = "{name}"']
    return "\n".join(lines) + "\n"


def _vmsd(snapshots: Sequence[tuple[str, int, int, Sequence[str]]]) -> str:
    """snapshots: (display name, seconds, microseconds, disk file per scsi0:N)."""
    lines = [
        '.encoding = "UTF-8"',
        f'snapshot.lastUID = "{len(snapshots)}"',
        f'snapshot.current = "{len(snapshots)}"',
        f'snapshot.numSnapshots = "{len(snapshots)}"',
    ]
    for i, (name, secs, micros, disks) in enumerate(snapshots):
        us = secs * 1_000_000 + micros
        high, low = us >> 32, us & 0xFFFFFFFF
        low_signed = low - (1 << 32) if low >= 1 << 31 else low
        p = f"snapshot{i}"
        lines += [
            f'{p}.uid = "{i + 1}"',
            f'{p}.filename = "vm-Snapshot{i + 1}.vmsn"',
            f'{p}.displayName = "{name}"',
            f'{p}.createTimeHigh = "{high}"',
            f'{p}.createTimeLow = "{low_signed}"',
            f'{p}.numDisks = "{len(disks)}"',
        ]
        if i:
            lines.append(f'{p}.parent = "{i}"')
        for d, file in enumerate(disks):
            lines += [f'{p}.disk{d}.fileName = "{file}"', f'{p}.disk{d}.node = "scsi0:{d}"']
    return "\n".join(lines) + "\n"


def _vmware_vm(
    root: Path, folder: str, display: str, raws: Raws, base_opts: Sequence[str], work: Path
) -> dict[str, Any]:
    vm = root / folder
    vm.mkdir(parents=True)
    ndisks = len(raws["p1"])
    chains: list[list[Path]] = []
    for d in range(ndisks):
        stem = folder if d == 0 else f"{folder}_{d}"
        names = [vm / f"{stem}.vmdk", *[vm / f"{stem}-{i:06d}.vmdk" for i in range(1, len(POINTS) + 1)]]
        qemu_chain("vmdk", [raws[p][d] for p in POINTS], names, work, base_opts[d])
        chains.append(names)
    (vm / f"{folder}.vmx").write_text(_vmx(display, [c[-1].name for c in chains]))
    snaps = [
        (f"Restore point {i + 1}", *_point_time(p), [c[i].name for c in chains]) for i, p in enumerate(POINTS)
    ]
    (vm / f"{folder}.vmsd").write_text(_vmsd(snaps))
    points = []
    for i, p in enumerate(POINTS):
        disks = []
        for chain in chains:
            disks.append(_rel([chain[j] for j in range(i, -1, -1)], root))
        points.append({"name": f"Restore point {i + 1}", "time": _iso(p), "disks": disks})
    return {"vm_name": display, "points": points}


def vmware(root: Path, win: Raws, lin: Raws, work: Path) -> dict[str, Any]:
    root.mkdir(parents=True)
    return {
        f"{WIN_VM}_replica": {
            **_vmware_vm(root, f"{WIN_VM}_replica", f"{WIN_VM}_replica", win, [""], work),
            "display_name": WIN_VM,
            "platform": "VMware",
        },
        f"{LIN_VM}_replica": {
            **_vmware_vm(
                root,
                f"{LIN_VM}_replica",
                f"{LIN_VM}_replica",
                lin,
                ["subformat=monolithicFlat", "subformat=streamOptimized"],
                work,
            ),
            "display_name": LIN_VM,
            "platform": "VMware",
        },
    }


# --- Hyper-V -------------------------------------------------------------------------------------------


def _hyperv_vm(root: Path, folder: str, disk_stems: Sequence[str], raws: Raws) -> dict[str, Any]:
    vhd_dir = root / folder / "Virtual Hard Disks"
    vhd_dir.mkdir(parents=True)
    (root / folder / "Virtual Machines").mkdir()
    chains = []
    for d, stem in enumerate(disk_stems):
        names = [vhd_dir / f"{stem}.vhdx"]
        names += [vhd_dir / f"{stem}_{str(uuid.uuid4()).upper()}.avhdx" for _ in POINTS]
        vhdx_chain([raws[p][d] for p in POINTS], names)
        for i, p in enumerate(POINTS):
            set_time(names[i], *_point_time(p))
        set_time(names[-1], _point_time("p3")[0] + 86_400)
        chains.append(names)
    points = [
        {
            "name": None,
            "time": _iso(p),
            "disks": [_rel([c[j] for j in range(i, -1, -1)], root) for c in chains],
        }
        for i, p in enumerate(POINTS)
    ]
    return {"vm_name": folder, "points": points}


def hyperv(root: Path, win: Raws, lin: Raws, work: Path) -> dict[str, Any]:
    root.mkdir(parents=True)
    return {
        WIN_VM: {**_hyperv_vm(root, WIN_VM, [WIN_VM], win), "display_name": WIN_VM, "platform": "HyperV"},
        f"{LIN_VM}_replica": {
            **_hyperv_vm(root, f"{LIN_VM}_replica", [f"{LIN_VM}-disk0", f"{LIN_VM}-disk1"], lin),
            "display_name": LIN_VM,
            "platform": "HyperV",
        },
    }


# --- qcow2 ---------------------------------------------------------------------------------------------


def _qcow2_vm(root: Path, folder: str, raws: Raws, work: Path) -> dict[str, Any]:
    vm = root / folder
    vm.mkdir(parents=True)
    chains = []
    for d in range(len(raws["p1"])):
        names = [
            vm / f"disk{d}.qcow2",
            vm / f"disk{d}-p2.qcow2",
            vm / f"disk{d}-p3.qcow2",
            vm / f"disk{d}-current.qcow2",
        ]
        qemu_chain("qcow2", [raws[p][d] for p in POINTS], names, work)
        for i, p in enumerate(POINTS):
            set_time(names[i], *_point_time(p))
        set_time(names[-1], _point_time("p3")[0] + 86_400)
        chains.append(names)
    points = [
        {
            "name": None,
            "time": _iso(p),
            "disks": [_rel([c[j] for j in range(i, -1, -1)], root) for c in chains],
        }
        for i, p in enumerate(POINTS)
    ]
    return {"vm_name": folder, "points": points}


def qcow2(root: Path, win: Raws, lin: Raws, work: Path) -> dict[str, Any]:
    root.mkdir(parents=True)
    return {
        WIN_VM: {**_qcow2_vm(root, WIN_VM, win, work), "display_name": WIN_VM, "platform": "KVM"},
        LIN_VM: {**_qcow2_vm(root, LIN_VM, lin, work), "display_name": LIN_VM, "platform": "KVM"},
    }


# --- broken datastore ----------------------------------------------------------------------------------


def broken(root: Path, work: Path) -> dict[str, Any]:
    """VM folders with a corrupt or missing file, next to one good VM: the scan reports and skips them."""
    root.mkdir(parents=True)
    tiny = work / "tiny.raw"
    run(["truncate", "-s", str(4 * 1024 * 1024), tiny])
    # A good qcow2 VM: one frozen layer and the current one.
    good = root / "Good VM"
    good.mkdir()
    run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", tiny, good / "disk0.qcow2"])
    run(
        [
            "qemu-img",
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            "disk0.qcow2",
            "-F",
            "qcow2",
            good / "disk0-current.qcow2",
        ]
    )
    set_time(good / "disk0.qcow2", *_point_time("p1"))
    # VMware VM whose base disk is garbage.
    bad = root / "Corrupt VM"
    bad.mkdir()
    run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", tiny, bad / "Corrupt VM.vmdk"])
    run(
        [
            "qemu-img",
            "create",
            "-q",
            "-f",
            "vmdk",
            "-b",
            "Corrupt VM.vmdk",
            "-F",
            "vmdk",
            bad / "Corrupt VM-000001.vmdk",
        ]
    )
    with open(bad / "Corrupt VM.vmdk", "r+b") as fh:
        fh.write(b"\x00GARBAGE" * 64)
    (bad / "Corrupt VM.vmx").write_text(_vmx("Corrupt VM", ["Corrupt VM-000001.vmdk"]))
    (bad / "Corrupt VM.vmsd").write_text(
        _vmsd([("Restore point 1", *_point_time("p1"), ["Corrupt VM.vmdk"])])
    )
    # VMware VM whose snapshot names a delta that is not there.
    gone = root / "Missing Delta"
    gone.mkdir()
    run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", tiny, gone / "Missing Delta.vmdk"])
    (gone / "Missing Delta.vmx").write_text(_vmx("Missing Delta", ["Missing Delta-000002.vmdk"]))
    (gone / "Missing Delta.vmsd").write_text(
        _vmsd(
            [
                ("Restore point 1", *_point_time("p1"), ["Missing Delta.vmdk"]),
                ("Restore point 2", *_point_time("p2"), ["Missing Delta-000001.vmdk"]),
            ]
        )
    )
    # Hyper-V VM whose differencing disk's parent was removed.
    hv = root / "Dangling VM" / "Virtual Hard Disks"
    hv.mkdir(parents=True)
    vhdx_chain([tiny], [hv / "dangling.vhdx", hv / "dangling_0A1B2C3D-0000-4000-8000-000000000001.avhdx"])
    (hv / "dangling.vhdx").unlink()
    shutil.copyfile(tiny, work / "unused.raw")
    return {
        "Good VM": {
            "vm_name": "Good VM",
            "display_name": "Good VM",
            "platform": "KVM",
            "points": [{"name": None, "time": _iso("p1"), "disks": [["Good VM/disk0.qcow2"]]}],
        },
        "problems": {
            "Corrupt VM": "Corrupt VM.vmdk",
            "Missing Delta": "Missing Delta-000001.vmdk",
            "Dangling VM": "dangling.vhdx",
        },
    }


# --- ESXi: flat bases with seSparse and vmfsSparse (COWD) deltas ---------------------------------------


def _esxi_vm(root: Path, folder: str, raws: Raws, delta: str) -> dict[str, Any]:
    """Base ``-flat.vmdk`` (createType vmfs) plus one delta per later point and an empty current delta."""
    vm = root / folder
    vm.mkdir(parents=True)
    chains: list[list[Path]] = []
    for d in range(len(raws["p1"])):
        stem = folder if d == 0 else f"{folder}_{d}"
        sectors = raws["p1"][d].stat().st_size // 512
        shutil.copyfile(raws["p1"][d], vm / f"{stem}-flat.vmdk")
        (vm / f"{stem}.vmdk").write_text(
            esx.descriptor("vmfs", sectors, "VMFS", f"{stem}-flat.vmdk", None, 1, None)
        )
        names = [vm / f"{stem}.vmdk"]
        for i in range(1, len(POINTS) + 1):
            before = raws[POINTS[i - 1]][d]
            after = raws[POINTS[i]][d] if i < len(POINTS) else before
            name = f"{stem}-{i:06d}"
            if delta == "seSparse":
                esx.write_sesparse(before, after, vm / f"{name}-sesparse.vmdk")
                text = esx.descriptor(
                    "seSparse", sectors, "SESPARSE", f"{name}-sesparse.vmdk", names[-1].name, i + 1, i
                )
            else:
                esx.write_cowd(before, after, vm / f"{name}-delta.vmdk")
                text = esx.descriptor(
                    "vmfsSparse", sectors, "VMFSSPARSE", f"{name}-delta.vmdk", names[-1].name, i + 1, i
                )
            (vm / f"{name}.vmdk").write_text(text)
            names.append(vm / f"{name}.vmdk")
        for i, p in enumerate(POINTS):
            run(["qemu-img", "compare", "-q", "-f", "vmdk", "-F", "raw", names[i], raws[p][d]])
        chains.append(names)
    (vm / f"{folder}.vmx").write_text(_vmx(folder, [c[-1].name for c in chains]))
    snaps = [
        (f"Restore point {i + 1}", *_point_time(p), [c[i].name for c in chains]) for i, p in enumerate(POINTS)
    ]
    (vm / f"{folder}.vmsd").write_text(_vmsd(snaps))
    points = [
        {
            "name": f"Restore point {i + 1}",
            "time": _iso(p),
            "disks": [_rel([c[j] for j in range(i, -1, -1)], root) for c in chains],
        }
        for i, p in enumerate(POINTS)
    ]
    return {"vm_name": folder, "points": points}


def esxi(root: Path, win: Raws, lin: Raws, work: Path) -> dict[str, Any]:
    root.mkdir(parents=True)
    return {
        f"{WIN_VM}_replica": {
            **_esxi_vm(root, f"{WIN_VM}_replica", win, "seSparse"),
            "display_name": WIN_VM,
            "platform": "VMware",
        },
        f"{LIN_VM}_replica": {
            **_esxi_vm(root, f"{LIN_VM}_replica", lin, "vmfsSparse"),
            "display_name": LIN_VM,
            "platform": "VMware",
        },
    }


# --- misc: a manifest VM over raw disks ----------------------------------------------------------------


def misc(root: Path, raws: Raws) -> dict[str, Any]:
    vm = root / MISC_VM
    vm.mkdir(parents=True)
    disks = []
    for d, raw in enumerate(raws["p1"]):
        shutil.copyfile(raw, vm / f"disk{d}.raw")
        disks.append(f"disk{d}.raw")
    files = ", ".join(f'"{d}"' for d in disks)
    (vm / "openflr-vm.toml").write_text(
        f'name = "{MISC_VM}"\nplatform = "KVM"\nos = "Linux"\n\n[[points]]\nname = "Only point"\n'
        f'time = "{_iso("p1")}"\ndisks = [{files}]\n'
    )
    return {
        MISC_VM: {
            "vm_name": MISC_VM,
            "display_name": MISC_VM,
            "platform": "KVM",
            "points": [
                {"name": "Only point", "time": _iso("p1"), "disks": [[f"{MISC_VM}/{d}"] for d in disks]}
            ],
        }
    }
