"""Small guests whose files have every kind of awkward name, built here from a directory tree: an ext4
Linux guest (``mke2fs -d``, with an fstab so the names live at ``/n``), the same names on NTFS
(``tests/imagebuilder/ntfsbuild.c``) and an ext4 guest of names that are not UTF-8 or hold characters
of the escape range. Each is a manifest VM over one raw disk; ``shown`` is what the API must call a
name (``guestfs/filesystems/names.py``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from openflr.guestfs.filesystems.names import name_from_bytes
from tests.imagebuilder.build import build_ntfs
from tests.imagebuilder.trees import T0, FileSpec, Tree

LIN_VM, WIN_VM, RAW_VM = "names-lin", "names-win", "names-raw"
TIME = "2026-11-01T21:00:00Z"
MiB = 1024 * 1024

COMMON = [
    b"back\\slash",
    b"ctl\x01x\x7f",
    b"esc\x1b[1m",
    b"pct%41",
    b"pct%2F",
    b"pct%",
    b"hash#x",
    b"q?x",
    b"plus+x",
    b"semi;x",
    b"colon:x",
    b"star*x",
    b" lead",
    b"trail ",
    b"..foo",
    b"...",
    b"amp&<x>\"'",
    "pua\ue000x".encode(),
    "caf\u00e9 \u00fc\u00df".encode(),
]
"""File names (on-disk bytes) both engines can read today, in ``/n``."""
LIN_ONLY = [b"new\nline", b"tab\tx", b"cr\rx"]
"""Names that ntfsbuild's line-per-command input cannot carry."""
DIRS = {b"dir\\x": [b"inner ?#%", b"a\\b"], b"sp dir ": [b"f"], b"ctl\x02dir": [b"f\x03"]}
"""Folders of ``/n`` (awkward names too) and the files in each."""
RAW_NAMES = [b"caf\xe9", b"bad\xff\xfe", "esc\uef41x".encode(), b"mix\xe9\n"]
"""Not UTF-8, or holding a character of the escape range: shown escaped by the engines that read
names as bytes (the ext4 engine that does is on its way; until then these are left out or shown
unescaped)."""


def content(raw: bytes) -> bytes:
    """What the file named ``raw`` holds (long enough for ranges)."""
    return b"file " + raw + b" " + bytes(range(64)) * 4


def shown(raw: bytes) -> str:
    return name_from_bytes(raw)


def tree_files(names: list[bytes], dirs: dict[bytes, list[bytes]]) -> dict[bytes, bytes]:
    """Relative path (bytes, below ``/n``) -> content."""
    files = {n: content(n) for n in names}
    for d, inside in dirs.items():
        files |= {d + b"/" + n: content(d + b"/" + n) for n in inside}
    return files


def _write_tree(top: Path, files: dict[bytes, bytes]) -> None:
    for rel, data in files.items():
        path = os.fsencode(top) + b"/" + rel
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
        os.utime(path, (T0, T0))


def _ext4_disk(work: Path, disk: Path, files: dict[bytes, bytes]) -> None:
    src = work / f"src-{disk.stem}"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "fstab").write_text("LABEL=names / ext4 defaults 0 1\n")
    _write_tree(src / "n", files)
    subprocess.run(["truncate", "-s", "16M", disk], check=True)
    mke2fs = ["mke2fs", "-q", "-F", "-t", "ext4", "-L", "names", "-d", str(src), str(disk)]
    subprocess.run(mke2fs, check=True, capture_output=True)


def _ntfs_disk(work: Path, disk: Path, files: dict[bytes, bytes]) -> None:
    tree = Tree("NAMES", "ntfs")
    for rel, data in files.items():
        tree.add("n/" + rel.decode(), FileSpec(data, T0))
    build_ntfs(tree, 16 * MiB, disk, 0, work)


def _vm(root: Path, name: str, os_kind: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "openflr-vm.toml").write_text(
        f'name = "{name}"\nplatform = "KVM"\nos = "{os_kind}"\n\n'
        f'[[points]]\nname = "Only"\ntime = "{TIME}"\ndisks = ["disk.raw"]\n'
    )
    return folder / "disk.raw"


def lin_files() -> dict[bytes, bytes]:
    return tree_files(COMMON + LIN_ONLY, DIRS)


def win_files() -> dict[bytes, bytes]:
    return tree_files(COMMON, DIRS)


def raw_files() -> dict[bytes, bytes]:
    return tree_files(RAW_NAMES, {b"d\xe9": [b"\xe9"]})


def build_datastore(root: Path, work: Path, copies: dict[str, str] | None = None) -> Path:
    """A datastore of the three guests, and of ``copies`` (VM name -> the guest whose disk it shares)."""
    work.mkdir(parents=True, exist_ok=True)
    _ext4_disk(work, _vm(root, LIN_VM, "Linux"), lin_files())
    _ntfs_disk(work, _vm(root, WIN_VM, "Windows"), win_files())
    _ext4_disk(work, _vm(root, RAW_VM, "Linux"), raw_files())
    for name, source in (copies or {}).items():
        kind = "Windows" if source == WIN_VM else "Linux"
        os.link(root / source / "disk.raw", _vm(root, name, kind))
    return root


FILES_OF = {LIN_VM: lin_files(), WIN_VM: win_files(), RAW_VM: raw_files()}
"""Each guest's files below ``/n``."""
