"""The growth group's plot: matplotlib in a throw-away virtualenv of the bench's own
(``.cache/bench-plot/``, like the peers' in bench/peers.py), never a dependency of openflr.
``bench/plot_growth.py``, run with that virtualenv's python, reads ``growth.json`` and writes the image."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from bench.fixtures import REPO
from bench.peers import throwaway_venv

VENV = REPO / ".cache" / "bench-plot"
PACKAGES = ("matplotlib==3.11.2",)
SCRIPT = Path(__file__).with_name("plot_growth.py")
IMAGE = REPO / "docs" / "images" / "growth.png"


def plot_python(log: Any = print) -> tuple[Path | None, str]:
    """(the python of the plot's virtualenv, '') once matplotlib is installed there, or (None, why not)."""
    return throwaway_venv(VENV, list(PACKAGES), ", ".join(PACKAGES), log)


def draw(results: Path, image: Path = IMAGE, log: Any = print) -> str:
    """Draw ``results`` (growth.json) into ``image``; '' when done, else why not."""
    python, why = plot_python(log)
    if python is None:
        return why
    image.parent.mkdir(parents=True, exist_ok=True)
    got = subprocess.run(
        [str(python), str(SCRIPT), str(results), str(image)], capture_output=True, text=True, timeout=120
    )
    if got.returncode:
        return f"plot script failed: {got.stderr.strip()[-300:]}"
    log(f"  plot: {image}")
    return ""
