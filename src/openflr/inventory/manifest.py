"""Manifest VM folders: an ``openflr-vm.toml`` declares the VM, its points and each point's disks.

name = "fs01"                    # the source VM's name
replica_name = "fs01_replica"    # optional; defaults to name
platform = "VMware"              # optional
os = "Windows"                   # optional: Windows or Linux

[[points]]
name = "Nightly"
time = 2026-11-01T21:00:00Z      # TOML date-time or ISO text; no zone means UTC
disks = ["disk0-p1.qcow2", "disk1-p1.vmdk"]   # the top image of each disk; parents are followed

[restore]                        # optional: where restores to the original location write
username = "FS01\\restore"
password_env = "FS01_RESTORE_PASSWORD"
targets = { "C:" = "smb://fs01.example.local/C$" }
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openflr.config import ConfigError, GuestAccess, guest_access
from openflr.inventory.model import DiskChain, ReplicaPoint, stable_id
from openflr.inventory.points import ScanContext, ScanError

FILE_NAME = "openflr-vm.toml"


def _time(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ScanError(f"{FILE_NAME}: {where}: time {value!r} is not an ISO 8601 date-time") from None
        return _time(parsed, where)
    raise ScanError(f"{FILE_NAME}: {where}: time must be a date-time")


def scan(ctx: ScanContext, folder: Path) -> tuple[dict[str, str], list[ReplicaPoint], GuestAccess | None]:
    try:
        doc = tomllib.loads((folder / FILE_NAME).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScanError(f"{FILE_NAME}: {exc}") from None
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ScanError(f"{FILE_NAME}: name (the VM's name) is required")
    meta = {
        "name": name.strip(),
        "replica_name": str(doc.get("replica_name") or name).strip(),
        "platform": str(doc.get("platform") or "Other"),
        "os": str(doc.get("os") or ""),
    }
    raw_points = doc.get("points", [])
    if not isinstance(raw_points, list):
        raise ScanError(f"{FILE_NAME}: points must be an array of tables ([[points]])")
    replica_id = ctx.replica_id(folder)
    points = []
    for i, raw in enumerate(raw_points):
        where = f"points[{i}]"
        if not isinstance(raw, dict):
            raise ScanError(f"{FILE_NAME}: {where} must be a table")
        created = _time(raw.get("time"), where)
        label = str(raw.get("name") or "")
        disks_raw = raw.get("disks")
        if not isinstance(disks_raw, list) or not disks_raw or not all(isinstance(d, str) for d in disks_raw):
            raise ScanError(f"{FILE_NAME}: {where}: disks must list at least one image file")
        disks = []
        for d, rel in enumerate(disks_raw):
            try:
                top = (folder / rel).resolve()
            except (OSError, RuntimeError) as exc:  # a symbolic-link loop
                raise ScanError(f"{FILE_NAME}: {where}: disk {rel!r} cannot be resolved ({exc})") from None
            if folder.resolve() not in top.parents:
                raise ScanError(f"{FILE_NAME}: {where}: disk {rel!r} lies outside the VM folder")
            chain = ctx.chain(top)
            disks.append(
                DiskChain(f"disk{d}", tuple(c.path for c in chain), chain[0].format, chain[0].virtual_size)
            )
        point_id = stable_id("point", replica_id, "manifest", label, created.isoformat())
        points.append(ReplicaPoint(point_id, replica_id, created, tuple(disks), label))
    access = None
    if "restore" in doc:
        if not isinstance(doc["restore"], dict):
            raise ScanError(f"{FILE_NAME}: restore must be a table ([restore])")
        try:
            access = guest_access({**doc["restore"], "vm": name.strip()}, f"{FILE_NAME} [restore]")
        except ConfigError as exc:
            raise ScanError(str(exc)) from None
    return meta, sorted(points, key=lambda p: p.created), access
