"""A VM with one 2 GiB file (mostly holes, random data at the start, the middle and the end), for
streaming tests that must show flat server memory. Built straight on disk, never held in memory."""

from __future__ import annotations

import hashlib
import os
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.imagebuilder import trees
from tests.imagebuilder.build import run, set_time

LARGE_VM = "big-vm"
BIG_FILE = "data/sparse-2g.bin"
BIG_SIZE = 2 * 1024**3 + 12_345  # not a multiple of anything the server reads in
SMALL_FILE = "data/small.txt"
FS_UUID = "2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091"


def _write_big(path: Path) -> str:
    rng = random.Random("sparse-2g")
    with open(path, "wb") as f:
        f.truncate(BIG_SIZE)
        for offset in (0, BIG_SIZE // 2 - 777, BIG_SIZE - 3 * 1024 * 1024):
            f.seek(offset)
            f.write(rng.randbytes(3 * 1024 * 1024))
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * 1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


def build(root: Path, work: Path) -> dict[str, Any]:
    """The ``large`` datastore: a manifest VM with a whole-disk ext4 holding the 2 GiB file."""
    src = work / "large-src"
    (src / "data").mkdir(parents=True)
    big_sha = _write_big(src / BIG_FILE)
    small = b"the small neighbour of a big file\n"
    (src / SMALL_FILE).write_bytes(small)
    when = trees.POINT_TIMES["p1"][0] - 7200
    for p in (src / BIG_FILE, src / SMALL_FILE, src / "data"):
        set_time(p, when)
    vm = root / LARGE_VM
    vm.mkdir(parents=True)
    image = vm / "disk0.raw"
    run(
        [
            "mkfs.ext4",
            "-q",
            "-F",
            "-L",
            "big",
            "-U",
            FS_UUID,
            "-E",
            f"hash_seed={FS_UUID},root_owner=0:0",
            "-b",
            "4096",
            "-d",
            src,
            image,
            f"{(BIG_SIZE + 256 * 1024 * 1024) // 1024}K",
        ]
    )
    for p in src.rglob("*"):
        if p.is_file():
            p.unlink()
    os.sync()
    stamp = datetime.fromtimestamp(trees.POINT_TIMES["p1"][0], UTC).isoformat().replace("+00:00", "Z")
    (vm / "openflr-vm.toml").write_text(
        f'name = "{LARGE_VM}"\nplatform = "KVM"\nos = "Linux"\n\n[[points]]\nname = "Only point"\n'
        f'time = "{stamp}"\ndisks = ["disk0.raw"]\n'
    )
    return {
        LARGE_VM: {
            "vm_name": LARGE_VM,
            "display_name": LARGE_VM,
            "platform": "KVM",
            "points": [{"name": "Only point", "time": stamp, "disks": [[f"{LARGE_VM}/disk0.raw"]]}],
            "files": {
                BIG_FILE: {"size": BIG_SIZE, "sha256": big_sha, "mtime": when},
                SMALL_FILE: {"size": len(small), "sha256": hashlib.sha256(small).hexdigest(), "mtime": when},
            },
        }
    }
