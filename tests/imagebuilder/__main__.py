"""``python -m tests.imagebuilder [OUTDIR]``: build the fixture set (into the cache by default)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tests.imagebuilder import ensure_fixtures
from tests.imagebuilder.build import build_all

start = time.perf_counter()
if len(sys.argv) > 1:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    build_all(out)
else:
    fx = ensure_fixtures()
