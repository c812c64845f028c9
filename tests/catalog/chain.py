"""A catalog fixture: one Linux VM with five points of real disks, and the truth of every point.

The VM (a manifest VM over qcow2 chains) has an ext4 root (``/``, with ``/etc/fstab`` and
``/etc/passwd``) and a FAT volume at ``/boot/efi`` (case-insensitive names):

- p1: the base tree: ~1,500 small files, every name escape the engine makes, a symbolic link;
- p2: a file and a folder renamed, a hard link made, one file rewritten with the same size and time
  (a new inode: only its file number and its sha256 tell), another's owner changed;
- p3: 1% of the files changed, one added on the FAT volume;
- p4: the disks change layout: the root moves from partition 1 to partition 2 and a second disk with
  an ext4 volume mounted at ``/data`` appears (its items are new);
- p5: one folder's directory block is damaged (the catalog skips it with a note).

The truth is a model kept beside the images (path -> type, size, mtime, owner uid, sha256, hard-link
group); each change is applied to the model and, as debugfs/mtools commands, to a copy of the previous
point's volume image. ``ensure_chain()`` builds once into ``.cache/catalog-fixtures/<hash of this
builder>/`` and reuses it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from openflr.guestfs.filesystems.names import name_from_bytes
from tests.imagebuilder import REPO
from tests.imagebuilder.build import ENV, Partition, mbr_disk, qemu_chain, run

CACHE = Path(os.environ.get("OPENFLR_CATALOG_FIXTURE_CACHE", REPO / ".cache" / "catalog-fixtures"))
MiB = 1024 * 1024
VM_NAME = "catalog-vm"
POINTS = ("p1", "p2", "p3", "p4", "p5")
T0 = 1_767_000_000
"""2025-12-29: every time in the trees is T0 plus whole seconds (FAT: even seconds)."""
POINT_TIMES = {p: T0 + (i + 1) * 86_400 for i, p in enumerate(POINTS)}
ROOT_UUID = "c47a1000-0000-4000-8000-00000000000a"
DATA_UUID = "c47a1000-0000-4000-8000-00000000000d"
USERS = {0: "root", 1000: "alice", 1001: "bob"}
NOBODY_UID = 4242
"""An owner with no /etc/passwd line: shown as its number."""
FAT_DIR_TIME = T0 - 86_400
LOST_FOUND_TIME = T0 - 20 * 86_400
FAT_LABEL = "ESP"
BULK_DIRS, BULK_FILES = 30, 50
DAMAGED = "/bulk/d07"
"""The folder whose directory block p5 damages."""

WEIRD_NAMES: tuple[bytes, ...] = (
    b"bad-\xff\xfe-latin1-caf\xe9.txt",
    b"ctl-\x01\x1f\x7f-tab\t-nl\n.txt",
    "pua-\uef41\uefff-escape.txt".encode(),
    "nfc-caf\u00e9.txt".encode(),
    "nfd-cafe\u0301-e\u0308.txt".encode(),
    "rtl-\u202e\u200f-\u05d0\u05d1.txt".encode(),
    "emoji-\U0001f600\U0001f9d1\u200d\U0001f4bb.txt".encode(),
    b"L" * 251 + b".txt",
    "\u0436".encode() * 127,
)
WEIRD_DIR = b"dir-\xc3\x28-bad"
IN_PLACE = b"home/alice/in-place.bin"
"""Rewritten in place in p2: the same inode, size and time, new content."""


@dataclass(frozen=True)
class Item:
    """The truth of one path in one point."""

    kind: str
    """File, Directory or Link (the catalog's labels)."""
    size: int
    mtime: int
    """Seconds since the epoch (every time here is whole seconds)."""
    uid: int | None
    sha256: str | None = None
    group: str | None = None
    """Files that are hard links of each other share a group."""
    data: bytes = b""
    """Content (files) or target (links); not stored in truth.json."""


Tree = dict[bytes, Item]
"""One volume's tree: raw path below its root (``etc/fstab``) -> item."""


def file_item(data: bytes, mtime: int, uid: int, group: str) -> Item:
    return Item("File", len(data), mtime, uid, hashlib.sha256(data).hexdigest(), group, data)


def dir_item(mtime: int, uid: int | None) -> Item:
    return Item("Directory", 0, mtime, uid)


def shown(raw: bytes) -> str:
    """A raw path as the engine shows it (each name through ``name_from_bytes``)."""
    return "/".join(name_from_bytes(part) for part in raw.split(b"/"))


# --- the trees ----------------------------------------------------------------------------------------


def _root_p1() -> Tree:
    t = T0 - 10 * 86_400
    tree: Tree = {}

    def d(path: str | bytes, uid: int = 0, mtime: int = t) -> None:
        tree[path.encode() if isinstance(path, str) else path] = dir_item(mtime, uid)

    def f(path: str | bytes, data: bytes, uid: int = 0, mtime: int = t) -> None:
        raw = path.encode() if isinstance(path, str) else path
        tree[raw] = file_item(data, mtime, uid, raw.decode(errors="surrogateescape"))

    d("lost+found", 0, LOST_FOUND_TIME)
    for folder in ("etc", "boot", "boot/efi", "home", "home/alice", "home/bob", "srv", "srv/app", "bulk"):
        d(folder)
    d("home/alice", 1000)
    d("home/bob", 1001)
    d("srv/app/old-name", 1000)
    f("etc/fstab", _fstab(data_disk=False), mtime=t + 1)
    f("etc/passwd", "".join(f"{n}:x:{u}:{u}::/home/{n}:/bin/sh\n" for u, n in USERS.items()).encode())
    f("etc/hostname", b"catalog-vm\n")
    f("home/alice/README.md", b"# alice\n", 1000, t + 2)
    f("home/alice/readme.lower", b"lower case name\n", 1000, t + 3)
    f("home/alice/Report.TXT", b"upper-case extension\n", 1000, t + 4)
    f("home/alice/report.txt", b"lower-case extension, same folder\n", 1000, t + 5)
    f("home/alice/notes.txt", b"notes " * 40, 1000, t + 6)
    f("home/alice/same-size.bin", b"A" * 4000, 1000, t + 7)
    f("home/alice/in-place.bin", b"C" * 3000, 1000, t + 7)
    f("home/alice/shared.dat", b"shared data\n", 1000, t + 8)
    f("home/bob/owned.txt", b"bob's file\n", 1001, t + 9)
    f("home/bob/big.bin", bytes(range(256)) * 1024, 1001, t + 10)
    f("home/bob/empty", b"", 1001, t + 11)
    f("srv/app/old-name/config.ini", b"[app]\nport = 8080\n", 1000, t + 12)
    f("srv/app/old-name/data.json", b'{"a": 1}\n', 1000, t + 13)
    f("srv/app/orphan.log", b"no account for this owner\n", NOBODY_UID, t + 14)
    f("srv/app/rename-me.txt", b"renamed in p2\n", 0, t + 15)
    tree[b"srv/app/current"] = Item("Link", len(b"old-name"), t + 16, 0, None, None, b"old-name")
    d(b"srv/" + WEIRD_DIR)
    f(b"srv/" + WEIRD_DIR + b"/inner.txt", b"inside a folder whose name is not UTF-8\n", 0, t + 17)
    for n, raw in enumerate(WEIRD_NAMES):
        f(b"srv/" + raw, b"weird %d\n" % n, 0, t + 18 + n)
    for i in range(BULK_DIRS):
        d(f"bulk/d{i:02d}", 1000 if i % 2 else 0, t + 100 + i)
        for j in range(BULK_FILES):
            f(f"bulk/d{i:02d}/f{j:03d}.log", b"line %d %d\n" % (i, j) * (1 + (i * j) % 7), 1000, t + 200 + j)
    return tree


def _fstab(*, data_disk: bool) -> bytes:
    lines = [f"UUID={ROOT_UUID} / ext4 defaults 0 1", f"LABEL={FAT_LABEL} /boot/efi vfat umask=0077 0 1"]
    if data_disk:
        lines.append(f"UUID={DATA_UUID} /data ext4 defaults 0 2")
    return ("\n".join(lines) + "\n").encode()


def _fat_p1() -> Tree:
    t = T0 - 5 * 86_400
    return {
        b"EFI": dir_item(FAT_DIR_TIME, None),
        b"EFI/BOOT": dir_item(FAT_DIR_TIME, None),
        b"EFI/Debian": dir_item(FAT_DIR_TIME, None),
        b"EFI/BOOT/BOOTX64.EFI": _fat_file(b"MZ boot loader" * 100, t),
        b"EFI/Debian/grub.cfg": _fat_file(b"set root=hd0,msdos1\n", t + 2),
        b"ReadMe.TXT": _fat_file(b"mixed-case name on FAT\n", t + 4),
        b"Long Name Notes.txt": _fat_file(b"a long file name\n", t + 6),
    }


def _fat_file(data: bytes, mtime: int) -> Item:
    return replace(file_item(data, mtime, 0, ""), uid=None, group=None)


def _data_p4() -> Tree:
    t = POINT_TIMES["p4"] - 3600
    return {
        b"lost+found": dir_item(LOST_FOUND_TIME, 0),
        b"projects": dir_item(t, 1000),
        b"projects/plan.txt": file_item(b"the plan\n", t + 1, 1000, "data/plan"),
        b"projects/ReadMe.TXT": file_item(b"case-sensitive here\n", t + 2, 1000, "data/readme"),
        b"archive.tar": file_item(b"\0" * 10_000, t + 3, 0, "data/archive"),
    }


# --- building ext4 and FAT volumes -------------------------------------------------------------------------


def _materialize(tree: Tree, dest: Path) -> None:
    """Write a tree under ``dest`` with raw names, times and (as root) owners; hard links as links."""
    dest.mkdir(parents=True, exist_ok=True)
    base = bytes(dest)
    tree = {raw: item for raw, item in tree.items() if raw != b"lost+found"}  # mke2fs makes it
    for raw, item in sorted(tree.items()):
        if item.kind == "Directory":
            os.makedirs(base + b"/" + raw, exist_ok=True)
    first_of_group: dict[str, bytes] = {}
    for raw, item in sorted(tree.items()):
        target = base + b"/" + raw
        if item.kind == "File":
            if item.group in first_of_group:
                os.link(first_of_group[item.group], target)
                continue
            first_of_group[item.group or ""] = target
            with open(target, "wb") as fh:
                fh.write(item.data)
            os.chmod(target, 0o644)
            os.utime(target, (item.mtime, item.mtime))
        elif item.kind == "Link":
            os.symlink(item.data, target)
            os.utime(target, (item.mtime, item.mtime), follow_symlinks=False)
    for raw, item in sorted(tree.items(), key=lambda kv: -kv[0].count(b"/")):
        if item.kind == "Directory":
            os.utime(base + b"/" + raw, (item.mtime, item.mtime))


def _safe(raw: bytes) -> str:
    """A path for a debugfs command (only ever plain names are changed after p1)."""
    text = raw.decode()
    if not text.isprintable() or '"' in text:
        raise ValueError(f"not a debugfs-safe path: {raw!r}")
    return f'"/{text}"'


def build_ext4(tree: Tree, image: Path, size: int, uuid: str, label: str, work: Path) -> None:
    src = work / f"src-{image.stem}"
    shutil.rmtree(src, ignore_errors=True)
    _materialize(tree, src)
    image.unlink(missing_ok=True)
    run(
        [
            "mkfs.ext4", "-q", "-F", "-L", label, "-U", uuid, "-E", f"hash_seed={uuid},root_owner=0:0",
            "-b", "4096", "-I", "256", "-N", "4096", "-d", src, image, f"{size // 1024}K",
        ]
    )  # fmt: skip
    # lost+found (mke2fs makes it) gets a known time and owner; owners come from the tree whoever
    # builds it, but names debugfs cannot spell keep the builder's uid, as their truth does (_fix_uids).
    cmds = [f"sif /lost+found mtime @{LOST_FOUND_TIME}", "sif /lost+found uid 0", "sif /lost+found gid 0"]
    for raw, item in sorted(tree.items()):
        if raw == b"lost+found":
            continue
        try:
            path = _safe(raw)
        except (ValueError, UnicodeDecodeError):
            continue
        if item.uid is not None:
            cmds += [f"sif {path} uid {item.uid}", f"sif {path} gid {item.uid}"]
    _debugfs(image, cmds, work)
    shutil.rmtree(src)


def _fix_uids(tree: Tree) -> Tree:
    me = os.getuid()
    out = {}
    for raw, item in tree.items():
        try:
            _safe(raw)
            out[raw] = item
        except (ValueError, UnicodeDecodeError):
            out[raw] = replace(item, uid=me)
    return out


def _debugfs(image: Path, cmds: list[str], work: Path) -> None:
    if not cmds:
        return
    script = work / "debugfs.cmds"
    script.write_text("\n".join(cmds) + "\n")
    proc = subprocess.run(["debugfs", "-w", "-f", str(script), str(image)], capture_output=True, env=ENV)
    complaints = [line for line in proc.stderr.decode(errors="replace").splitlines() if line.strip()]
    complaints = [line for line in complaints if not line.startswith("debugfs ")]  # its banner
    if proc.returncode != 0 or complaints:
        raise RuntimeError("debugfs failed:\n" + "\n".join(complaints[-30:]))


class Ext4Change:
    """Changes to an ext4 tree, kept as the truth and as the debugfs script that makes them."""

    def __init__(self, tree: Tree, work: Path, when: int) -> None:
        self.tree = dict(tree)
        self.work = work
        self.when = when
        self.cmds: list[str] = []
        self.touched: set[bytes] = set()
        self._n = 0

    def _parent(self, raw: bytes) -> None:
        self.touched.add(raw.rpartition(b"/")[0])

    def _host(self, data: bytes, mtime: int) -> Path:
        self._n += 1
        host = self.work / f"new{self._n}"
        host.write_bytes(data)
        os.utime(host, (mtime, mtime))
        return host

    def _write(self, path: str, data: bytes, mtime: int, uid: int) -> None:
        host = self._host(data, mtime)
        self.cmds += [
            f"write {host} {path}",
            f"sif {path} mtime @{mtime}",
            f"sif {path} uid {uid}",
            f"sif {path} gid {uid}",
            f"sif {path} mode 0100644",
        ]

    def add(self, raw: bytes, data: bytes, mtime: int, uid: int) -> None:
        self._write(_safe(raw), data, mtime, uid)
        self.tree[raw] = file_item(data, mtime, uid, raw.decode())
        self._parent(raw)

    def modify(self, raw: bytes, data: bytes, mtime: int) -> None:
        """New content in a new inode written over the name (as an editor that saves a copy does)."""
        old = self.tree[raw]
        tmp = raw + b".tmp"
        self._write(_safe(tmp), data, mtime, old.uid or 0)
        self.cmds += [f"rm {_safe(raw)}", f"ln {_safe(tmp)} {_safe(raw)}", f"unlink {_safe(tmp)}"]
        self.tree[raw] = replace(file_item(data, mtime, old.uid or 0, raw.decode() + "@" + str(self.when)))
        self._parent(raw)

    def chown(self, raw: bytes, uid: int) -> None:
        self.cmds += [f"sif {_safe(raw)} uid {uid}", f"sif {_safe(raw)} gid {uid}"]
        self.tree[raw] = replace(self.tree[raw], uid=uid)

    def hardlink(self, existing: bytes, new: bytes) -> None:
        self.cmds += [f"ln {_safe(existing)} {_safe(new)}", f"sif {_safe(existing)} links_count 2"]
        self.tree[new] = self.tree[existing]
        self._parent(new)

    def rename(self, old: bytes, new: bytes) -> None:
        """Within one folder (a folder's ``..`` stays right)."""
        assert old.rpartition(b"/")[0] == new.rpartition(b"/")[0]
        self.cmds += [f"ln {_safe(old)} {_safe(new)}", f"unlink {_safe(old)}"]
        for raw in [r for r in self.tree if r == old or r.startswith(old + b"/")]:
            self.tree[new + raw[len(old) :]] = self.tree.pop(raw)
        self._parent(new)

    def mkdir(self, raw: bytes, uid: int) -> None:
        path = _safe(raw)
        self.cmds += [f"mkdir {path}", f"sif {path} uid {uid}", f"sif {path} gid {uid}"]
        self.cmds.append(f"sif {path} mtime @{self.when}")
        self.tree[raw] = dir_item(self.when, uid)
        self._parent(raw)

    def apply(self, image: Path) -> Tree:
        """Run the script on ``image``; folders whose entries changed get the point's time."""
        for raw in sorted(self.touched):
            if raw:
                self.cmds.append(f"sif {_safe(raw)} mtime @{self.when}")
                self.tree[raw] = replace(self.tree[raw], mtime=self.when)
        _debugfs(image, self.cmds, self.work)
        return self.tree


def build_fat(tree: Tree, image: Path, size: int, work: Path) -> None:
    src = work / "src-fat"
    shutil.rmtree(src, ignore_errors=True)
    _materialize(tree, src)
    image.unlink(missing_ok=True)
    run(["mkfs.fat", "-F", "16", "-n", FAT_LABEL, "-i", "0E5F0E5F", "-C", image, str(size // 1024)])
    for raw, item in sorted(tree.items()):
        if item.kind == "Directory":
            _mtools_at(FAT_DIR_TIME, ["mmd", "-i", str(image), f"::/{raw.decode()}"])
    for raw, item in sorted(tree.items()):
        if item.kind == "File":
            run(["mcopy", "-m", "-i", image, src / raw.decode(), f"::/{raw.decode()}"])
    shutil.rmtree(src)


def _mtools_at(when: int, cmd: list[str]) -> None:
    from datetime import UTC, datetime

    frozen = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S")
    run(["faketime", "-f", frozen, *cmd])


def fat_add(image: Path, tree: Tree, raw: bytes, data: bytes, mtime: int, work: Path) -> Tree:
    host = work / "fat-new"
    host.write_bytes(data)
    os.utime(host, (mtime, mtime))
    run(["mcopy", "-m", "-i", image, host, f"::/{raw.decode()}"])
    return {**tree, raw: _fat_file(data, mtime)}


def rewrite_in_place(image: Path, raw: bytes, data: bytes, item: Item) -> Item:
    """New content in a file's own data block: same inode, size and times (only sha256 tells)."""
    out = run(["debugfs", "-R", f"blocks {_safe(raw)}", image])
    assert len(data) == item.size <= 4096
    with open(image, "r+b") as fh:
        fh.seek(int(out.split()[0]) * 4096)
        fh.write(data)
    return replace(item, sha256=hashlib.sha256(data).hexdigest(), data=data)


def damage_folder(image: Path, raw: bytes, work: Path) -> None:
    """Overwrite the first directory block of a folder with garbage."""
    out = run(["debugfs", "-R", f"blocks {_safe(raw)}", image])
    block = int(out.split()[0])
    with open(image, "r+b") as fh:
        fh.seek(block * 4096)
        fh.write(hashlib.sha256(b"garbage").digest() * 128)


# --- the chain --------------------------------------------------------------------------------------------


def _point_trees(work: Path) -> tuple[dict[str, dict[str, Tree]], dict[str, dict[str, Path]]]:
    """Every point's volume trees and volume images (root, fat, and from p4 data)."""
    trees: dict[str, dict[str, Tree]] = {}
    images: dict[str, dict[str, Path]] = {}
    vols = work / "vols"
    vols.mkdir()

    root = vols / "root-p1.img"
    root_tree = _fix_uids(_root_p1())
    build_ext4(_root_p1(), root, 40 * MiB, ROOT_UUID, "root", work)
    fat = vols / "fat-p1.img"
    fat_tree = _fat_p1()
    build_fat(fat_tree, fat, 16 * MiB, work)
    trees["p1"], images["p1"] = {"root": root_tree, "fat": fat_tree}, {"root": root, "fat": fat}

    def next_root(point: str, prev: str) -> tuple[Path, Ext4Change]:
        image = vols / f"root-{point}.img"
        shutil.copyfile(images[prev]["root"], image)
        return image, Ext4Change(trees[prev]["root"], work, POINT_TIMES[point] - 3600)

    # p2: renames, a hard link, a same-size rewrite, an owner change.
    image, ch = next_root("p2", "p1")
    ch.rename(b"srv/app/rename-me.txt", b"srv/app/renamed.txt")
    ch.rename(b"srv/app/old-name", b"srv/app/new-name")
    ch.hardlink(b"home/alice/shared.dat", b"home/bob/shared-link.dat")
    same = ch.tree[b"home/alice/same-size.bin"]
    ch.modify(b"home/alice/same-size.bin", b"B" * same.size, same.mtime)
    ch.chown(b"home/bob/owned.txt", 1000)
    root2 = ch.apply(image)
    root2[IN_PLACE] = rewrite_in_place(image, IN_PLACE, b"D" * root2[IN_PLACE].size, root2[IN_PLACE])
    trees["p2"], images["p2"] = {"root": root2, "fat": fat_tree}, {"root": image, "fat": fat}

    # p3: 1% of the files change (15 of ~1,500), one file added on FAT.
    image, ch = next_root("p3", "p2")
    for i in range(15):
        raw = f"bulk/d{i * 2:02d}/f{i:03d}.log".encode()
        ch.modify(raw, ch.tree[raw].data + b"appended in p3\n", POINT_TIMES["p3"] - 7200 + i)
    ch.add(b"home/alice/new-in-p3.txt", b"new\n", POINT_TIMES["p3"] - 7000, 1000)
    fat3 = vols / "fat-p3.img"
    shutil.copyfile(fat, fat3)
    fat_tree3 = fat_add(
        fat3, fat_tree, b"EFI/Debian/NewKernel.EFI", b"kernel" * 50, POINT_TIMES["p3"] - 7200, work
    )
    trees["p3"], images["p3"] = {"root": ch.apply(image), "fat": fat_tree3}, {"root": image, "fat": fat3}

    # p4: a second disk mounted at /data (the layout change itself is in the disks).
    image, ch = next_root("p4", "p3")
    ch.mkdir(b"data", 0)
    fstab = ch.tree[b"etc/fstab"]
    ch.modify(b"etc/fstab", _fstab(data_disk=True), POINT_TIMES["p4"] - 3000)
    data = vols / "data-p4.img"
    data_tree = _fix_uids(_data_p4())
    build_ext4(_data_p4(), data, 16 * MiB, DATA_UUID, "data", work)
    assert fstab.uid == 0
    trees["p4"] = {"root": ch.apply(image), "fat": fat_tree3, "data": data_tree}
    images["p4"] = {"root": image, "fat": fat3, "data": data}

    # p5: a damaged folder (and nothing else changes).
    image = vols / "root-p5.img"
    shutil.copyfile(images["p4"]["root"], image)
    damage_folder(image, DAMAGED[1:].encode(), work)
    below = DAMAGED[1:].encode() + b"/"  # what the damaged folder held is not shown
    root5 = {raw: item for raw, item in trees["p4"]["root"].items() if not raw.startswith(below)}
    trees["p5"], images["p5"] = {**trees["p4"], "root": root5}, {**images["p4"], "root": image}
    return trees, images


def catalog_truth(vols: dict[str, Tree]) -> dict[str, Item]:
    """What a point shows, by guest path (the FAT volume below /boot/efi, data below /data)."""
    out: dict[str, Item] = {}
    for vol, base in (("root", ""), ("fat", "/boot/efi"), ("data", "/data")):
        for raw, item in vols.get(vol, {}).items():
            out[f"{base}/{shown(raw)}"] = item
    return out


ROOT_PART = {"p1": 1, "p2": 1, "p3": 1, "p4": 2, "p5": 2}


def _disks(images: dict[str, dict[str, Path]], raw_dir: Path) -> dict[str, list[Path]]:
    """disk0 of every point (layout A for p1-p3, B from p4), disk1 from p4."""
    out: dict[str, list[Path]] = {}
    for point in POINTS:
        disk0 = raw_dir / f"disk0-{point}.raw"
        root = Partition(1 * MiB, 40 * MiB, images[point]["root"], "83")
        if ROOT_PART[point] == 1:
            parts = [root, Partition(41 * MiB, 16 * MiB, images[point]["fat"], "ef")]
        else:
            parts = [
                Partition(1 * MiB, 16 * MiB, images[point]["fat"], "ef"),
                replace(root, start=17 * MiB),
            ]
        mbr_disk(disk0, 64 * MiB, parts, "0xc47a10c0")
        out[point] = [disk0]
        if "data" in images[point]:
            disk1 = raw_dir / f"disk1-{point}.raw"
            shutil.copyfile(images[point]["data"], disk1)
            out[point].append(disk1)
    return out


def build(out: Path) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="catwork-", dir=out))
    trees, images = _point_trees(work)
    raw_dir = work / "raw"
    raw_dir.mkdir()
    disks = _disks(images, raw_dir)
    vm = out / "datastore" / VM_NAME
    vm.mkdir(parents=True)
    d0 = [vm / f"disk0-{p}.qcow2" for p in POINTS] + [vm / "disk0-current.qcow2"]
    qemu_chain("qcow2", [disks[p][0] for p in POINTS], d0, work)
    with_d1 = [p for p in POINTS if len(disks[p]) > 1]
    d1 = [vm / f"disk1-{p}.qcow2" for p in with_d1] + [vm / "disk1-current.qcow2"]
    qemu_chain("qcow2", [disks[p][1] for p in with_d1], d1, work)
    toml = [f'name = "{VM_NAME}"', 'platform = "KVM"', 'os = "Linux"', ""]
    for i, point in enumerate(POINTS):
        names = [d0[i].name] + ([d1[with_d1.index(point)].name] if point in with_d1 else [])
        when = _iso(POINT_TIMES[point])
        toml += ["[[points]]", f'name = "{point}"', f'time = "{when}"', f"disks = {json.dumps(names)}", ""]
    (vm / "openflr-vm.toml").write_text("\n".join(toml))
    parts = out / "partitions"
    parts.mkdir()
    for point in POINTS:
        for vol in ("root", "data"):
            if vol in images[point]:
                shutil.copyfile(images[point][vol], parts / f"{vol}-{point}.img")
    truth = {
        p: {
            path: {k: v for k, v in asdict(item).items() if k != "data"}
            for path, item in sorted(catalog_truth(trees[p]).items())
        }
        for p in POINTS
    }
    manifest = {"vm": VM_NAME, "points": {p: _iso(POINT_TIMES[p]) for p in POINTS}, "truth": truth}
    shutil.rmtree(work)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _iso(secs: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(secs, UTC).isoformat().replace("+00:00", "Z")


# --- the cache ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chain:
    root: Path
    manifest: dict[str, Any]

    @property
    def datastore(self) -> Path:
        return self.root / "datastore"

    def partition(self, volume: str, point: str) -> Path:
        """The raw image of a volume (``root`` or ``data``) in a point, for mounting by the kernel."""
        return self.root / "partitions" / f"{volume}-{point}.img"

    def truth(self, point: str) -> dict[str, Item]:
        return {path: Item(**fields) for path, fields in self.manifest["truth"][point].items()}


def chain_key() -> str:
    h = hashlib.sha256()
    here = Path(__file__).resolve()
    for path in (here, REPO / "tests" / "imagebuilder" / "build.py"):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def ensure_chain(cache: Path = CACHE) -> Chain:
    """The built catalog fixture, building it first when this version of the builder has not yet."""
    target = cache / chain_key()
    done = target / "manifest.json"
    if not done.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not done.exists():
                partial = cache / (target.name + ".partial")
                shutil.rmtree(partial, ignore_errors=True)
                partial.mkdir()
                build(partial)
                for old in cache.iterdir():
                    if old.is_dir() and old.name != partial.name:
                        shutil.rmtree(old, ignore_errors=True)
                partial.rename(target)
    return Chain(target, json.loads(done.read_text()))
