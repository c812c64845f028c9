"""The growth group's plot: matplotlib in a throw-away virtualenv of the bench's own
(``.cache/bench-plot/``, like the peers' in bench/peers.py), never a dependency of openflr.
``bench/plot_growth.py``, run with that virtualenv's python, reads ``growth.json`` and writes the image."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.fixtures import REPO

VENV = REPO / ".cache" / "bench-plot"
PACKAGES = ("matplotlib==3.11.2",)
SCRIPT = Path(__file__).with_name("plot_growth.py")
IMAGE = REPO / "docs" / "images" / "growth.png"


def plot_python(log: Any = print) -> tuple[Path | None, str]:
    """(the python of the plot's virtualenv, '') once matplotlib is installed there, or (None, why not)."""
    python = VENV / "bin" / "python"
    marker = VENV / "installed.json"
    wanted = list(PACKAGES)
    if marker.exists() and json.loads(marker.read_text()) == wanted and python.exists():
        return python, ""
    log(f"  installing {', '.join(wanted)} into {VENV} ...")
    shutil.rmtree(VENV, ignore_errors=True)
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=120
        )
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *wanted], check=True, capture_output=True, timeout=600
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        err = getattr(e, "stderr", b"") or b""
        return None, f"pip install failed: {err.decode(errors='replace').strip()[-200:] or e}"
    marker.write_text(json.dumps(wanted))
    return python, ""


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
