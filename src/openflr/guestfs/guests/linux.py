"""Linux guests: one tree from ``/``, the file systems of the guest's ``/etc/fstab`` (by UUID, LABEL,
PARTUUID or LVM name) grafted at their mount points, owner names from ``/etc/passwd``; file systems
it does not mount, and guests without an fstab, get drive-style roots named by label (``data:``) or
``Volume$N:``."""

from __future__ import annotations

import re

from openflr.guestfs.guests.base import Opened, Root, volume_label
from openflr.guestfs.volumes import Volume

LINUX_KINDS = ("ext", "xfs")
"""File systems that may hold a Linux root (``/etc/fstab``) and whose owners are uids."""
_FSTAB_SKIP_TYPES = {
    "swap",
    "proc",
    "sysfs",
    "tmpfs",
    "devpts",
    "devtmpfs",
    "nfs",
    "nfs4",
    "cifs",
    "none",
    "cgroup",
    "cgroup2",
    "debugfs",
    "securityfs",
    "binfmt_misc",
    "autofs",
    "fuse",
    "iso9660",
}


def roots(opened: Opened, _os_hint: str, notes: list[str]) -> tuple[list[Root], bool]:
    """The Linux tree (or label-named roots); takes any guest, so it comes last in ``GUESTS``."""
    return _linux_roots(opened, notes)


def _linux_roots(opened: Opened, notes: list[str]) -> tuple[list[Root], bool]:
    root_fs_volume = None
    fstab: list[tuple[str, str, str]] = []
    damaged: Volume | None = None  # the first whose /etc/fstab cannot be used: the root if no other has one
    for v, fs, _ in opened:
        if fs is not None and fs.kind in LINUX_KINDS:
            fstab_file = fs.read_text(["etc", "fstab"])
            if fstab_file.problem is not None:
                notes.append(
                    f"{fstab_file.problem}: its mounts are not grafted, and volumes other than the root "
                    "keep their labels or numbers"
                )
                damaged = damaged or v
                continue
            if fstab_file.text is not None:
                fstab, skipped = _parse_fstab(fstab_file.text)
                if skipped:
                    notes.append(f"/etc/fstab: {skipped} line(s) could not be read and were skipped")
                root_fs_volume = v
                break
    root_fs_volume = root_fs_volume or damaged
    mounts: dict[int, tuple[str, ...]] = {}
    if root_fs_volume is not None:
        for spec, mountpoint, fstype in fstab:
            if fstype in _FSTAB_SKIP_TYPES or not mountpoint.startswith("/"):
                continue
            target = _match_spec(spec, opened)
            if target is not None and target.index not in mounts:
                mounts[target.index] = tuple(p for p in mountpoint.split("/") if p)
        if () not in mounts.values():
            mounts[root_fs_volume.index] = ()
        _load_passwd(opened, root_fs_volume, notes)
    roots: list[Root] = []
    used: set[str] = set()
    for v, fs, problem in opened:
        if v.index in mounts and fs is not None:
            mount = mounts[v.index]
            roots.append(Root("/" + "/".join(mount), v, fs, None, mount))
            continue
        label = fs.label if fs is not None else ""
        name = f"{label}:" if label and re.match(r"^[^/\\:\x00]+$", label) else volume_label(v.index)
        if name.lower() in used:
            name = volume_label(v.index)
        used.add(name.lower())
        roots.append(Root(name, v, fs, problem))
    roots.sort(key=lambda r: (r.mount is None, r.mount or (), r.volume.index))
    return roots, bool(mounts)


_FSTAB_LINE_LIMIT = 4096


def _parse_fstab(text: str) -> tuple[list[tuple[str, str, str]], int]:
    """The (spec, mount point, type) lines of an fstab, and how many lines were skipped as unreadable."""
    out = []
    skipped = 0
    for line in text.splitlines():
        if len(line) > _FSTAB_LINE_LIMIT:
            skipped += 1
            continue
        line = line.split("#", 1)[0].strip()
        fields = line.split()
        if not fields:
            continue
        if not 3 <= len(fields) <= 6 or not (fields[1].startswith("/") or fields[1] in ("none", "swap")):
            skipped += 1
            continue
        out.append((fields[0], fields[1].replace("\\040", " "), fields[2].lower()))
    return out, skipped


def _match_spec(spec: str, opened: Opened) -> Volume | None:
    key, _, value = spec.partition("=")
    value = value.strip('"')
    by = key.upper() if value else ""
    if spec.startswith("/dev/disk/by-uuid/"):
        by, value = "UUID", spec.rsplit("/", 1)[1]
    elif spec.startswith("/dev/disk/by-label/"):
        by, value = "LABEL", spec.rsplit("/", 1)[1].replace("\\x20", " ")
    elif spec.startswith("/dev/disk/by-partuuid/"):
        by, value = "PARTUUID", spec.rsplit("/", 1)[1]
    elif spec.startswith(("/dev/mapper/", "/dev/")) and "=" not in spec:
        by, value = "DEV", spec
    for v, fs, _ in opened:
        if by == "UUID" and fs is not None and fs.uuid and fs.uuid.lower() == value.lower():
            return v
        if by == "LABEL" and fs is not None and fs.label == value:
            return v
        if by == "PARTUUID" and (v.part_guid or "").lower() == value.lower():
            return v
        if (
            by == "PARTUUID"
            and v.disk_signature is not None
            and v.number is not None
            and value.lower() == f"{v.disk_signature:08x}-{v.number:02x}"
        ):
            return v
        if by == "DEV" and v.scheme == "lvm" and v.name:
            vg, lv = v.name.split("/", 1)
            mapper = f"/dev/mapper/{vg.replace('-', '--')}-{lv.replace('-', '--')}"
            if value in (mapper, f"/dev/{vg}/{lv}"):
                return v
    return None


def _load_passwd(opened: Opened, root_volume: Volume, notes: list[str]) -> None:
    """Account names of the root file system's /etc/passwd for every Linux file system; owners stay
    numbers (with a note) when it cannot be read."""
    root_fs = next(fs for v, fs, _ in opened if v is root_volume)
    assert root_fs is not None
    passwd = root_fs.read_text(["etc", "passwd"])
    if passwd.problem is not None:
        notes.append(f"{passwd.problem}: owners are shown as numbers")
        return
    text = passwd.text
    if not text:
        return
    names: dict[int, str] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isascii() and fields[2].isdigit() and len(fields[2]) <= 10:
            name = fields[0]
            if name and name.isprintable() and len(name) <= 256:
                names.setdefault(int(fields[2]), name)
    if not names:
        notes.append("/etc/passwd holds no account lines: owners are shown as numbers")
        return
    for _, fs, _ in opened:
        if fs is not None and fs.kind in LINUX_KINDS:
            fs.owner_names.update(names)
