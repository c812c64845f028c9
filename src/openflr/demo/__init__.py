"""The demo datastore shipped in the package: two VMs (Windows-like and Linux-like), three points each.

``openflr demo`` unpacks it into the data directory once (again when the package carries a new one)
and serves it as the datastore ``demo``, with a ``file://`` restore target per guest root under
``<data_dir>/restored`` so that restores to the original location work too. It writes this as
``<data_dir>/openflr.toml`` (unless the data directory holds a configuration of its own), so the other
commands (``scan``, ``users``, ``audit``, ``serve``) see the demo as well. Built by
``python -m tests.imagebuilder.demo``.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import tomli_w

from openflr.config import DATA_DIR_CONFIG, DatastoreSettings, GuestAccess

ARCHIVE = Path(__file__).with_name("demo-datastore.tar.xz")
DATASTORE_NAME = "demo"
JOB_NAME = "Demo Replication"
RESTORED = "restored"
"""Folder of the data directory that the demo's restore targets write into."""
GUEST_ROOTS = {"Win File Server": ("win-file-server", ("C:", "S:")), "lin-web01": ("lin-web01", ("/",))}
"""Each demo VM: its folder under ``restored/`` and the guest roots given a target (``/`` covers the
Linux VM's grafted file systems too)."""
CONFIG_HEADER = "# Written by `openflr demo`; openflr reads it when no other configuration is named.\n"


@dataclass(frozen=True)
class DemoSetup:
    datastore: DatastoreSettings
    restored: Path
    """Where restores to the original location land (one folder per VM)."""
    config_file: Path | None
    """The configuration written for the other commands; None when the data directory has its own."""


def prepare(data_dir: Path) -> DatastoreSettings:
    """Unpack the demo datastore under ``data_dir`` (if not already current) and describe it."""
    target = data_dir / "demo-datastore"
    stamp = target / ".archive-sha256"
    digest = hashlib.sha256(ARCHIVE.read_bytes()).hexdigest()
    if not (stamp.exists() and stamp.read_text().strip() == digest):
        partial = data_dir / "demo-datastore.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        unpack(ARCHIVE, partial)
        (partial / ".archive-sha256").write_text(digest)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return DatastoreSettings(name=DATASTORE_NAME, path=target, job=JOB_NAME)


def set_up(data_dir: Path) -> DemoSetup:
    """Unpack the datastore, make its restore target folders and write ``<data_dir>/openflr.toml``."""
    store = prepare(data_dir)
    restored = data_dir / RESTORED
    for vm, (folder, roots) in GUEST_ROOTS.items():
        targets = {}
        for root in roots:
            path = restored / folder / (root.strip("/:") or "")
            path.mkdir(parents=True, exist_ok=True)
            targets[root] = path.as_uri()
        store.guests.append(GuestAccess(vm=vm, targets=targets))
    config = data_dir / DATA_DIR_CONFIG
    if config.exists() and not config.read_text(encoding="utf-8").startswith(CONFIG_HEADER):
        return DemoSetup(store, restored, None)
    document: dict[str, Any] = {
        "datastores": [
            {
                "name": store.name,
                "path": str(store.path),
                "job": store.job,
                "guests": [{"vm": g.vm, "targets": g.targets} for g in store.guests],
            }
        ]
    }
    partial = config.with_name(config.name + ".partial")
    partial.write_text(CONFIG_HEADER + tomli_w.dumps(document), encoding="utf-8")
    partial.replace(config)
    return DemoSetup(store, restored, config)


def unpack(archive: Path, into: Path) -> None:
    """Extract the regular files and folders of ``archive`` under ``into``.

    Written out rather than ``extractall(filter="data")``: that argument only exists from Python
    3.11.4, and Debian 12 ships 3.11.2. Anything but a plain relative file or folder is refused.
    """
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            parts = PurePosixPath(member.name).parts
            if not parts or member.name.startswith("/") or ".." in parts or "\\" in member.name:
                raise ValueError(f"{archive.name}: unsafe member name {member.name!r}")
            destination = into.joinpath(*parts)
            if member.isdir():
                destination.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has data
                with source, open(destination, "xb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
            else:
                raise ValueError(f"{archive.name}: {member.name!r} is not a regular file or folder")
