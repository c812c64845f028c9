"""The demo datastore shipped in the package: two VMs (Windows-like and Linux-like), three points each.

``openflr demo`` unpacks it into the data directory once (again when the package carries a new one)
and serves it as the datastore ``demo``. Built by ``python -m tests.imagebuilder.demo``.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
from pathlib import Path

from openflr.config import DatastoreSettings

ARCHIVE = Path(__file__).with_name("demo-datastore.tar.xz")
DATASTORE_NAME = "demo"
JOB_NAME = "Demo Replication"


def prepare(data_dir: Path) -> DatastoreSettings:
    """Unpack the demo datastore under ``data_dir`` (if not already current) and describe it."""
    target = data_dir / "demo-datastore"
    stamp = target / ".archive-sha256"
    digest = hashlib.sha256(ARCHIVE.read_bytes()).hexdigest()
    if not (stamp.exists() and stamp.read_text().strip() == digest):
        partial = data_dir / "demo-datastore.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with tarfile.open(ARCHIVE, "r:xz") as tar:
            tar.extractall(partial, filter="data")
        (partial / ".archive-sha256").write_text(digest)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return DatastoreSettings(name=DATASTORE_NAME, path=target, job=JOB_NAME)
