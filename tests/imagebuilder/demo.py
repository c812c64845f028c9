"""Build the demo datastore shipped inside the package (``src/openflr/demo/demo-datastore.tar.xz``).

The two fixture VMs, as qcow2 chains with an ``openflr-vm.toml`` manifest each (explicit point times:
file modification times do not survive packaging). Run after changing the fixture trees:

    python -m tests.imagebuilder.demo
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

from tests.imagebuilder import REPO, ensure_fixtures, trees
from tests.imagebuilder.build import LIN_VM, POINTS, WIN_VM

ARCHIVE = REPO / "src" / "openflr" / "demo" / "demo-datastore.tar.xz"
VMS = {WIN_VM: ("Windows", 1), LIN_VM: ("Linux", 2)}


def manifest(vm: str, os_kind: str, disks: int) -> str:
    lines = [f'name = "{vm}"', f'replica_name = "{vm}_replica"', 'platform = "KVM"', f'os = "{os_kind}"', ""]
    layers = ["disk{d}.qcow2", "disk{d}-p2.qcow2", "disk{d}-p3.qcow2"]
    for i, point in enumerate(POINTS):
        secs, micros = trees.POINT_TIMES[point]
        from datetime import UTC, datetime

        when = (
            datetime.fromtimestamp(secs, UTC).replace(microsecond=micros).isoformat().replace("+00:00", "Z")
        )
        files = ", ".join(f'"{layers[i].format(d=d)}"' for d in range(disks))
        lines += [
            "[[points]]",
            f'name = "Restore point {i + 1}"',
            f'time = "{when}"',
            f"disks = [{files}]",
            "",
        ]
    return "\n".join(lines)


def build(archive: Path = ARCHIVE) -> Path:
    fx = ensure_fixtures()
    src = fx.datastore("qcow2")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for vm, (os_kind, disks) in VMS.items():
            for image in sorted((src / vm).glob("*.qcow2")):
                info = tar.gettarinfo(str(image), arcname=f"{vm}/{image.name}")
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                with open(image, "rb") as fh:
                    tar.addfile(info, fh)
            text = manifest(vm, os_kind, disks).encode()
            info = tarfile.TarInfo(f"{vm}/openflr-vm.toml")
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text))
    archive.parent.mkdir(parents=True, exist_ok=True)
    import lzma

    archive.write_bytes(lzma.compress(buf.getvalue(), preset=9 | lzma.PRESET_EXTREME))
    return archive


if __name__ == "__main__":
    out = build()
    shutil.rmtree(out.parent / "__pycache__", ignore_errors=True)
