"""The guest file trees of the fixture VMs, point by point, and their ground-truth manifest.

Every fixture image is built from these trees, so the manifest written from them is the truth the
tests compare against. Times are whole even seconds (FAT keeps 2 s, ``mke2fs -d`` whole seconds);
XFS images get one frozen build time per point (its protofile carries no times).
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from tests.imagebuilder import regf

MiB = 1024 * 1024
WIN_DISK_GUID = "6b1f0e2a-3c4d-4e5f-8a9b-0c1d2e3f4a00"
WIN_PARTITION_GUIDS = {i: f"{WIN_DISK_GUID[:-2]}{i:02d}" for i in (1, 2)}


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


T0 = ts("2026-10-01T08:00:00")
POINT_TIMES = {
    # (seconds, microseconds) of each replica point; the third carries milliseconds on purpose.
    "p1": (ts("2026-11-01T21:00:00"), 0),
    "p2": (ts("2026-11-02T21:00:00"), 0),
    "p3": (ts("2026-11-03T21:00:12"), 407000),
}


@dataclass(frozen=True)
class FileSpec:
    data: bytes
    mtime: int
    uid: int = 0
    gid: int = 0
    mode: int = 0o644

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class LinkSpec:
    target: str
    mtime: int
    uid: int = 0


@dataclass
class Tree:
    """One file system's content: directories (with times) and files, by POSIX relative path."""

    label: str
    fs: str
    dirs: dict[str, int] = field(default_factory=dict)
    files: dict[str, FileSpec] = field(default_factory=dict)
    links: dict[str, LinkSpec] = field(default_factory=dict)
    dir_uids: dict[str, int] = field(default_factory=dict)
    streams: dict[str, dict[str, bytes]] = field(default_factory=dict)
    """NTFS alternate data streams: file path -> stream name -> content."""

    def copy(self) -> Tree:
        return Tree(
            self.label,
            self.fs,
            dict(self.dirs),
            dict(self.files),
            dict(self.links),
            dict(self.dir_uids),
            {p: dict(s) for p, s in self.streams.items()},
        )

    def add(self, path: str, spec: FileSpec) -> None:
        parts = path.split("/")
        for i in range(1, len(parts)):
            self.dirs.setdefault("/".join(parts[:i]), spec.mtime)
        self.files[path] = spec

    def mkdir(self, path: str, mtime: int, uid: int = 0) -> None:
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            self.dirs.setdefault("/".join(parts[:i]), mtime)
        if uid:
            self.dir_uids[path] = uid


@dataclass
class Change:
    """What one point changes relative to the previous one (for incremental NTFS builds)."""

    modified: dict[str, FileSpec] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    added: dict[str, FileSpec] = field(default_factory=dict)


def apply(tree: Tree, change: Change) -> Tree:
    out = tree.copy()
    for path in change.deleted:
        del out.files[path]
        out.streams.pop(path, None)
    for path, spec in {**change.modified, **change.added}.items():
        out.add(path, spec)
    return out


def _rand(seed: str, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _bulky(seed: str, size: int) -> bytes:
    """Multi-MiB content that differs per seed but compresses well (keeps the shipped demo small)."""
    block = _rand(seed, 64 * 1024)
    whole, rest = divmod(size, len(block))
    return block * whole + block[:rest][::-1]


def _text(line: str, repeat: int, crlf: bool = False) -> bytes:
    end = "\r\n" if crlf else "\n"
    return ((line + end) * repeat).encode("utf-8")


class _Clock:
    def __init__(self, start: int) -> None:
        self.t = start

    def __call__(self) -> int:
        self.t += 2 * 97
        return self.t


LONG_DIRS = [f"Long directory name number {i:02d} with padding to make the path long" for i in range(1, 6)]
MANY_COUNT = 10_000

# Names that exercise Unicode handling: CJK, emoji (astral plane), combining marks (kept in NFD),
# spaces and mixed case.
COMBINING_NAME = unicodedata.normalize("NFD", "Café résumé")  # 'e' + U+0301


def windows_trees() -> tuple[dict[str, Tree], dict[str, Change]]:
    """The Windows-like VM: an ESP (FAT32) and the system volume (NTFS), three points."""
    clock = _Clock(T0)
    esp = Tree("ESP", "fat")
    esp.add("EFI/BOOT/BOOTX64.EFI", FileSpec(b"MZ" + _rand("bootx64", 60_000), clock()))
    esp.add("EFI/Microsoft/Boot/BCD", FileSpec(_rand("bcd", 16_384), clock()))
    esp.add("EFI/Microsoft/Boot/bootmgfw.efi", FileSpec(b"MZ" + _rand("bootmgfw", 40_000), clock()))
    esp.add("startup.nsh", FileSpec(b"fs0:\\EFI\\BOOT\\BOOTX64.EFI\r\n", clock()))
    esp.add("Long File Name Ünï.txt", FileSpec(_text("vfat long file name", 3, True), clock()))

    c = Tree("Windows", "ntfs")
    c.add("Windows/System32/config/SOFTWARE.sample", FileSpec(_rand("software", 3000), clock()))
    # The guest's own drive letters: C: is the system volume, S: (unusually) the ESP.
    hive = regf.mounted_devices(
        {
            "C:": regf.gpt_volume_id(uuid.UUID(WIN_PARTITION_GUIDS[2]).bytes_le),
            "S:": regf.gpt_volume_id(uuid.UUID(WIN_PARTITION_GUIDS[1]).bytes_le),
            "Q:": regf.mbr_volume_id(0xDEADBEEF, 1048576),  # a letter for a disk this VM no longer has
        }
    )
    c.add("Windows/System32/config/SYSTEM", FileSpec(hive, clock()))
    c.add("Windows/System32/drivers/etc/hosts", FileSpec(_text("127.0.0.1 localhost", 2, True), clock()))
    c.add("Windows/System32/small.dll", FileSpec(_rand("small.dll", 700), clock()))
    c.add("Windows/win.ini", FileSpec(_text("; for 16-bit app support", 1, True), clock()))
    c.add("Program Files/App/app.exe", FileSpec(b"MZ" + _bulky("app.exe", 300_000), clock()))
    c.add("Program Files/App/config.ini", FileSpec(_text("[main]\r\nkey=value", 1, True), clock()))
    c.add("Users/Public/Desktop/desktop.ini", FileSpec(_text("[.ShellClassInfo]", 1, True), clock()))
    c.add("Users/alice/Documents/Budget 2026.xlsx", FileSpec(_rand("budget", 48_000), clock()))
    c.add("Documents/report.txt", FileSpec(_text("Quarterly numbers v1", 200, True), clock()))
    c.add("Documents/todelete.txt", FileSpec(_text("deleted in point 2", 50, True), clock()))
    c.add("Documents/Quarterly Report 2024.docx", FileSpec(_rand("docx", 50_000), clock()))
    c.add("Documents/Ünïcödé файл 文件.txt", FileSpec("unicode name ✓\r\n".encode(), clock()))
    c.add("Documents/emoji 😀 name.txt", FileSpec(b"astral plane name\r\n", clock()))
    c.add(f"Documents/{COMBINING_NAME}.txt", FileSpec(b"combining marks\r\n", clock()))
    c.add("Documents/日本語のファイル.txt", FileSpec("日本語\r\n".encode(), clock()))
    c.add("Documents/Mixed Case/ReadMe.TXT", FileSpec(b"case kept, lookup ignores it\r\n", clock()))
    c.add("Documents/empty.txt", FileSpec(b"", clock()))
    c.add("Data/medium.bin", FileSpec(_bulky("medium", 5 * MiB + 123), clock()))
    c.add(
        "/".join(["Deep", *LONG_DIRS, "deep file at the end of a long path.txt"]),
        FileSpec(b"more than 260 characters from the root\r\n", clock()),
    )
    many_time = clock()
    for i in range(MANY_COUNT):
        c.add(f"Many/file_{i:05d}.txt", FileSpec(f"small file {i}\r\n".encode() * (i % 5), many_time))
    c.mkdir("Empty Folder", clock())
    # Alternate data streams: a browser's download mark and a bigger named stream.
    c.streams["Users/alice/Documents/Budget 2026.xlsx"] = {
        "Zone.Identifier": _text("[ZoneTransfer]\r\nZoneId=3", 1, True),
        "summary": _rand("budget-summary", 70_000),
    }

    p2 = Change(
        modified={
            "Documents/report.txt": FileSpec(
                _text("Quarterly numbers v2, modified in point 2", 150, True), POINT_TIMES["p2"][0] - 3600
            )
        },
        deleted=["Documents/todelete.txt"],
        added={"new_in_p2.txt": FileSpec(b"created in point 2\r\n", POINT_TIMES["p2"][0] - 1800)},
    )
    p3 = Change(
        modified={
            "Program Files/App/config.ini": FileSpec(
                _text("[main]\r\nkey=value3", 1, True), POINT_TIMES["p3"][0] - 3600
            )
        },
        deleted=["Documents/Quarterly Report 2024.docx"],
        added={
            "Documents/new in p3 新しい.txt": FileSpec(b"created in point 3\r\n", POINT_TIMES["p3"][0] - 1800)
        },
    )
    return {"esp": esp, "c": c}, {"p2": p2, "p3": p3}


FSTAB_UUID_ROOT = "0f3a9e2c-1d4b-4c5e-8f60-7a8b9c0d1e2f"
FSTAB_UUID_SCRATCH = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
XFS_UUID = "11111111-2222-4333-8444-555555555555"
XFS_LABEL = "srvdata"


def linux_trees() -> tuple[dict[str, Tree], dict[str, Change]]:
    """The Linux-like VM: root ext4 and /srv XFS on an MBR disk, /scratch ext4 on a bare disk."""
    clock = _Clock(T0 + 86_400)
    root = Tree("linuxroot", "ext4")
    root.add("etc/hostname", FileSpec(b"lin-web01\n", clock()))
    root.add(
        "etc/fstab",
        FileSpec(
            (
                f"UUID={FSTAB_UUID_ROOT} / ext4 defaults 0 1\n"
                f"LABEL={XFS_LABEL} /srv xfs defaults 0 2\n"
                f"UUID={FSTAB_UUID_SCRATCH} /scratch ext4 defaults,nofail 0 2\n"
                "tmpfs /tmp tmpfs defaults 0 0\n"
            ).encode(),
            clock(),
        ),
    )
    root.add(
        "etc/passwd",
        FileSpec(
            b"root:x:0:0:root:/root:/bin/bash\n"
            b"www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
            b"alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
            b"bob:x:1001:1001:Bob:/home/bob:/bin/bash\n",
            clock(),
        ),
    )
    root.add("etc/group", FileSpec(b"root:x:0:\nwww-data:x:33:\nalice:x:1000:\nbob:x:1001:\n", clock()))
    root.mkdir("home/alice", clock(), uid=1000)
    for name, data in (
        ("notes.txt", b"private notes\n"),
        ("report.txt", _text("report v1", 300)),
        ("todelete.txt", _text("deleted in point 2", 40)),
    ):
        root.add(f"home/alice/{name}", FileSpec(data, clock(), uid=1000, gid=1000, mode=0o600))
    root.add("home/bob/script.sh", FileSpec(b"#!/bin/sh\necho hi\n", clock(), uid=1001, gid=1001, mode=0o755))
    root.add("data/name with spaces.txt", FileSpec(b"spaces\n", clock()))
    root.add("data/Ünïcödé файл.txt", FileSpec(b"unicode\n", clock()))
    root.add("data/emoji 🎉 party.txt", FileSpec(b"party\n", clock()))
    root.add(f"data/{COMBINING_NAME}.txt", FileSpec(b"combining\n", clock()))
    root.add("data/漢字 ファイル.txt", FileSpec(b"kanji\n", clock()))
    root.add("data/CaseSensitive.txt", FileSpec(b"upper C\n", clock()))
    root.add("data/casesensitive.txt", FileSpec(b"lower c, a different file\n", clock()))
    root.add("data/medium.bin", FileSpec(_bulky("lin-medium", 3 * MiB + 7), clock()))
    root.add("data/empty.txt", FileSpec(b"", clock()))
    root.links["data/link_to_hostname"] = LinkSpec("../etc/hostname", clock())
    root.add(
        "/".join(["deep", *LONG_DIRS, "deep file at the end of a long path.txt"]),
        FileSpec(b"more than 260 characters from the root\n", clock()),
    )
    many_time = clock()
    for i in range(MANY_COUNT):
        root.add(f"var/many/file_{i:05d}.log", FileSpec(f"log line {i}\n".encode() * (i % 4), many_time))

    srv = Tree(XFS_LABEL, "xfs")
    srv.add("www/index.html", FileSpec(b"<html><body>v1</body></html>\n", 0, uid=33, gid=33))
    srv.add("www/app.js", FileSpec(b"console.log('hi');\n" * 20, 0, uid=33, gid=33))
    srv.add("data/db.bin", FileSpec(_bulky("xfs-db", 1 * MiB + 5), 0))
    srv.add("notes_漢字.txt", FileSpec(b"xfs unicode\n", 0))

    scratch = Tree("scratch", "ext4")
    scratch.add("tmp/scratch.txt", FileSpec(b"scratch space\n", clock()))

    p2 = Change(
        modified={
            "home/alice/report.txt": FileSpec(
                _text("report v2, modified in point 2", 250),
                POINT_TIMES["p2"][0] - 3600,
                uid=1000,
                gid=1000,
                mode=0o600,
            )
        },
        deleted=["home/alice/todelete.txt"],
        added={"new_in_p2.txt": FileSpec(b"created in point 2\n", POINT_TIMES["p2"][0] - 1800)},
    )
    p3 = Change(
        modified={"etc/hostname": FileSpec(b"lin-web01-renamed\n", POINT_TIMES["p3"][0] - 3600)},
        deleted=["data/emoji 🎉 party.txt"],
        added={"new_in_p3 ✓.txt": FileSpec(b"created in point 3\n", POINT_TIMES["p3"][0] - 1800)},
    )
    return {"root": root, "srv": srv, "scratch": scratch}, {"p2": p2, "p3": p3}


def srv_changes() -> dict[str, Change]:
    """XFS is rebuilt per point; these are its own per-point changes."""
    return {
        "p2": Change(
            modified={"www/index.html": FileSpec(b"<html><body>v2</body></html>\n", 0, uid=33, gid=33)},
            added={"www/new_in_p2.css": FileSpec(b"body{}\n", 0, uid=33, gid=33)},
        ),
        "p3": Change(
            deleted=["www/app.js"], added={"data/new_in_p3.bin": FileSpec(_rand("xfs-p3", 70_000), 0)}
        ),
    }


def point_trees(
    base: dict[str, Tree], changes: dict[str, Change], per_volume: dict[str, dict[str, Change]]
) -> dict[str, dict[str, Tree]]:
    """{point: {volume: tree}}: ``changes`` apply to the system volume, ``per_volume`` to the others."""
    out: dict[str, dict[str, Tree]] = {"p1": {k: v.copy() for k, v in base.items()}}
    prev = out["p1"]
    for point in ("p2", "p3"):
        cur: dict[str, Tree] = {}
        for name, tree in prev.items():
            if name in per_volume:
                cur[name] = apply(tree, per_volume[name].get(point, Change()))
            elif name in ("c", "root"):
                cur[name] = apply(tree, changes[point])
            else:
                cur[name] = tree.copy()
        out[point] = cur
        prev = cur
    return out


def with_build_time(tree: Tree, when: int) -> Tree:
    """XFS: every inode carries the (frozen) build time."""
    out = tree.copy()
    out.files = {k: replace(v, mtime=when) for k, v in tree.files.items()}
    out.dirs = dict.fromkeys(tree.dirs, when)
    return out


def misc_trees() -> dict[str, Tree]:
    """A VM with the rarer volume systems: MBR with an extended partition, LVM2, a bare exFAT disk.
    It has no /etc/fstab, so its roots are named after the volume labels."""
    clock = _Clock(T0 + 2 * 86_400)
    boot = Tree("boot", "ext4")
    boot.add("grub/grub.cfg", FileSpec(b"set timeout=5\nmenuentry 'Linux' { linux /vmlinuz }\n", clock()))
    boot.add("vmlinuz", FileSpec(_rand("vmlinuz", 200_000), clock()))
    data16 = Tree("DATA16", "fat")
    data16.add("DOCS/readme.txt", FileSpec(b"FAT16 in a logical partition\r\n", clock()))
    data16.add("Report 2026.txt", FileSpec(_text("fat16 report", 40, True), clock()))
    lvroot = Tree("lvroot", "ext4")
    lvroot.add("etc/hostname", FileSpec(b"lvm-vm\n", clock()))
    lvroot.add("srv/app/config.yml", FileSpec(b"key: value\n", clock(), uid=0))
    lvdata = Tree("lvdata", "ext4")
    lvdata.add("db/data.bin", FileSpec(_bulky("lvdata", 300_000), clock()))
    exfat = Tree("EXFAT", "exfat")
    return {"boot": boot, "data16": data16, "lvroot": lvroot, "lvdata": lvdata, "exfat": exfat}
