"""The browser tests' datastores, built once into ``.cache/web/<hash of this file>/`` and reused.

- ``demo``: the demo datastore shipped in the package (``openflr.demo``): ``Win File Server`` (NTFS
  ``C:`` and the FAT ``S:``, three points) and ``lin-web01`` (ext4 ``/`` with XFS ``/srv`` and an ext4
  ``/scratch``, three points), with normal files;
- ``web``: the VM ``web-edge`` (Linux, one point), made here with the fixture builder's tools
  (``mkfs.ext4 -d``, ``mkfs.xfs -p``, no root): disk 0 is an ext4 file system labelled ``edge``
  (root ``edge:``) whose folder ``names`` holds :data:`HOSTILE_NAMES`; disk 1 is an XFS file system
  labelled ``many`` (root ``many:``) whose folder ``many`` holds :data:`BIG_COUNT` files
  (``file_000000.txt``…), most of them empty, every hundredth of some size, and one,
  :data:`BIGGEST`, the largest.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from pathlib import Path

from openflr import demo
from tests.imagebuilder.build import run

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "web"
MiB = 1024 * 1024
EDGE_VM = "web-edge"
EDGE_ROOT = "edge:"
HOSTILE_FOLDER = "names"
BIG_ROOT = "many:"
BIG_FOLDER = "many"
BIG_COUNT = 100_000
BIGGEST = "file_077777.txt"
NORMAL_FILES = {"docs/readme.txt": b"an ordinary file beside the hostile names\n"}

HOSTILE_NAMES: tuple[bytes, ...] = (
    b"<img src=x onerror=window.__pwned=1>.txt",
    b"<svg onload=window.__pwned=1>.txt",
    # No file system holds a "/" in a name: the script element opens and its end tag is as close as
    # a name can get.
    b"<script>window.__pwned=1<\\script>.txt",
    b"\"quoted'.txt",
    b'x" onmouseover="window.__pwned=1" y=".txt',
    b"javascript:window.__pwned=1",
    b"&lt;b&gt;entity&amp;.txt",
    b"{{constructor.constructor('window.__pwned=1')()}}.txt",
    b"line\nbreak.txt",
    b"tab\there.txt",
    "evil\u202egnp.exe".encode(),
    b"%2e%2e%2fnot-a-path.txt",
    b"two  spaces.txt",
    b"caf\xe9-latin1.txt",  # not UTF-8
    b"\xff\xfe-bytes.txt",  # not UTF-8
)
"""The files of the ``names`` folder, as bytes on disk (ext4 holds any byte but ``/`` and NUL); the
content of the n-th is ``hostile name {n}\n``."""
HOSTILE_DIR = b"<img src=x onerror=window.__pwned=2> folder"
"""A folder of the ``names`` folder, holding :data:`INNER_FILE`."""
INNER_FILE = "inside.txt"


def size_of(i: int) -> int:
    """The size of ``file_{i:06d}.txt`` in the big folder."""
    if f"file_{i:06d}.txt" == BIGGEST:
        return 9000
    return 0 if i % 100 else 1 + (i * 37) % 4000


def build_key() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def ensure(cache: Path = CACHE) -> Path:
    """The folder holding ``datastores/demo`` and ``datastores/web``, built first if need be."""
    target = cache / build_key()
    done = target / "done"
    if done.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return target
        partial = cache / (target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        _build(partial)
        for old in cache.iterdir():  # keep only the current build
            if old.is_dir() and old != partial:
                shutil.rmtree(old, ignore_errors=True)
        partial.rename(target)
        (target / "done").write_text("")
    return target


def _build(out: Path) -> None:
    work = out / "work"
    work.mkdir()
    demo_store = demo.prepare(work / "demo").path
    (out / "datastores").mkdir()
    demo_store.rename(out / "datastores" / "demo")
    vm = out / "datastores" / "web" / EDGE_VM
    vm.mkdir(parents=True)
    _edge_ext4(vm / "disk0.raw", work)
    _many_xfs(vm / "disk1.raw", work)
    (vm / "openflr-vm.toml").write_text(
        f'name = "{EDGE_VM}"\nplatform = "KVM"\nos = "Linux"\n\n[[points]]\nname = "Only point"\n'
        'time = "2026-11-20T12:00:00Z"\ndisks = ["disk0.raw", "disk1.raw"]\n'
    )
    shutil.rmtree(work)


def _edge_ext4(image: Path, work: Path) -> None:
    src = work / "edge"
    folder = src / HOSTILE_FOLDER
    folder.mkdir(parents=True)
    for n, name in enumerate(HOSTILE_NAMES):
        with open(os.path.join(os.fsencode(folder), name), "wb") as fh:
            fh.write(f"hostile name {n}\n".encode())
    inner = os.path.join(os.fsencode(folder), HOSTILE_DIR)
    os.mkdir(inner)
    with open(os.path.join(inner, INNER_FILE.encode()), "wb") as fh:
        fh.write(b"inside the hostile folder\n")
    for path, data in NORMAL_FILES.items():
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_bytes(data)
    run(["mkfs.ext4", "-q", "-F", "-L", "edge", "-b", "4096", "-d", src, image, f"{32 * MiB // 1024}K"])


def _many_xfs(image: Path, work: Path) -> None:
    """mkfs.xfs builds the folder from a prototype file in seconds (mke2fs -d takes minutes)."""
    sources = work / "sizes"
    sources.mkdir()
    lines = ["/dev/null", "0 0", "d--755 0 0", f" {BIG_FOLDER} d--755 0 0"]
    for i in range(BIG_COUNT):
        size = size_of(i)
        source = sources / str(size)
        if not source.exists():
            source.write_bytes(b"x" * size)
        lines.append(f"  file_{i:06d}.txt ---644 0 0 {source}")
    lines += [" $", "$"]
    proto = work / "many.proto"
    proto.write_text("\n".join(lines) + "\n")
    run(["truncate", "-s", str(600 * MiB), image])
    run(["mkfs.xfs", "-q", "-f", "-L", "many", "-p", proto, image])
