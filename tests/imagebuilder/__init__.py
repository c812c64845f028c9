"""openflr's test-image builder: real disk images, snapshot chains and datastores, with ground truth.

``ensure_fixtures()`` builds once into ``.cache/fixtures/<hash of the builder's sources>/`` and reuses
that directory until the builder changes; concurrent test processes wait on a lock.
Run by hand: ``python -m tests.imagebuilder [OUTDIR]``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CACHE = Path(os.environ.get("OPENFLR_FIXTURE_CACHE", REPO / ".cache" / "fixtures"))


@dataclass(frozen=True)
class Fixtures:
    root: Path
    manifest: dict[str, Any]

    def datastore(self, name: str) -> Path:
        return self.root / "datastores" / name

    def expected(self, datastore: str) -> dict[str, Any]:
        result: dict[str, Any] = self.manifest["datastores"][datastore]
        return result


def builder_key() -> str:
    h = hashlib.sha256()
    for path in sorted(HERE.glob("*.py")) + sorted(HERE.glob("*.c")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def ensure_fixtures(cache: Path = CACHE) -> Fixtures:
    """The built fixture set, building it first if this version of the builder has not yet."""
    target = cache / builder_key()
    done = target / "manifest.json"
    if done.exists():
        return Fixtures(target, json.loads(done.read_text()))
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return Fixtures(target, json.loads(done.read_text()))
        from tests.imagebuilder.build import build_all

        partial = cache / (target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        build_all(partial)
        for old in cache.iterdir():  # keep only the current build
            if old.is_dir() and old.name not in (partial.name,):
                shutil.rmtree(old, ignore_errors=True)
        partial.rename(target)
    return Fixtures(target, json.loads(done.read_text()))
