"""Other tools that read files out of disk images, timed on the bench's disks as external baselines.

None of them is a dependency of openflr, and none runs inside it:

- **Dissect** (``dissect.target``, Python): installed by the bench with pip into its own throw-away
  virtualenv, ``.cache/bench-peers/dissect/``, and driven by ``bench/peer_dissect.py`` run with that
  virtualenv's python, which prints its timings as one JSON line.
- **libguestfs** (``guestfish``): Debian's ``libguestfs-tools``, installed with apt-get when missing.
  It boots a small appliance VM; where KVM is unusable it is tried again under TCG (emulation), and
  where it does not start at all within its time limit, its rows say so instead of failing the run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.fixtures import REPO

PEERS = REPO / ".cache" / "bench-peers"
DISSECT_PACKAGES = ("dissect.target", "dissect.ntfs", "dissect.extfs", "dissect.xfs")
DRIVER = Path(__file__).with_name("peer_dissect.py")


def throwaway_venv(venv: Path, packages: list[str], what: str, log: Any = print) -> tuple[Path | None, str]:
    """(the python of ``venv``, '') once ``packages`` are installed there (again when the list
    changed), or (None, why not): the bench's own tools, never dependencies of openflr."""
    python = venv / "bin" / "python"
    marker = venv / "installed.json"
    if marker.exists() and json.loads(marker.read_text()) == packages and python.exists():
        return python, ""
    log(f"  installing {what} into {venv} ...")
    shutil.rmtree(venv, ignore_errors=True)
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120
        )
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *packages],
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        err = getattr(e, "stderr", b"") or b""
        return None, f"pip install failed: {err.decode(errors='replace').strip()[-200:] or e}"
    marker.write_text(json.dumps(packages))
    return python, ""


def dissect_python(log: Any = print) -> tuple[Path | None, str]:
    """(the python of Dissect's virtualenv, '') once it is installed, or (None, why not)."""
    return throwaway_venv(PEERS / "dissect", list(DISSECT_PACKAGES), "Dissect", log)


def last_json(stdout: str) -> dict[str, Any]:
    """The last line of ``stdout`` that is a JSON object (a driver may log before it)."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            value = json.loads(line)
            if isinstance(value, dict):
                return value
    raise ValueError("no JSON object in the driver's output")


def run_dissect(python: Path, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Dissect's timings of ``spec`` (see bench/peer_dissect.py); raises on failure or timeout."""
    got = subprocess.run(
        [str(python), str(DRIVER), json.dumps(spec)], capture_output=True, text=True, timeout=timeout
    )
    if got.returncode:
        raise RuntimeError(f"Dissect driver failed: {got.stderr.strip()[-300:]}")
    return last_json(got.stdout)


# libguestfs


ELAPSED = re.compile(r"^elapsed time: ([0-9.]+) seconds$", re.M)


def ensure_guestfish() -> str:
    """Install Debian's libguestfs-tools when guestfish is missing; '' when it is there, else why not."""
    if shutil.which("guestfish"):
        return ""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "guestfish is missing and cannot be installed here (needs root and apt-get)"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        got = subprocess.run(
            ["apt-get", "install", "-y", "-q", "libguestfs-tools"],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
    except subprocess.TimeoutExpired:
        return "apt-get install libguestfs-tools took over 10 minutes"
    if not shutil.which("guestfish"):
        return f"apt-get install libguestfs-tools failed: {got.stderr.strip()[-200:]}"
    return ""


Step = tuple[str, str, str, int]
"""(device, 'ls' or 'download', path in the guest, bytes to download: 0 for all)."""


def guestfish_script(steps: list[Step], limit: int = 0) -> str:
    """A guestfish script: launch, then for each step mount its device read-only and time ``ls`` of
    a folder or the download of a file to /dev/null (its first ``limit`` bytes when ``limit`` is set
    and smaller: an emulated appliance reads a few MB/s, and the run has minutes, not hours)."""
    lines = ["time run"]
    for device, verb, path, size in steps:
        if verb == "ls":
            command = f"ls {path}"
        else:
            size = min(size, limit) if limit else size
            command = f"download-offset {path} /dev/null 0 {size}" if size else f"download {path} /dev/null"
        lines += [f"mount-ro {device} /", f"time {command}", "umount /"]
    return "\n".join(lines) + "\n"


def parse_guestfish(stdout: str, steps: list[Step]) -> dict[str, Any]:
    """Seconds of the launch and of each step, from guestfish's ``time`` lines; the count of names
    printed by each ``ls`` (its lines between the time lines)."""
    times = [float(t) for t in ELAPSED.findall(stdout)]
    if len(times) != len(steps) + 1:
        raise ValueError(f"guestfish printed {len(times)} times for {len(steps) + 1} timed commands")
    counts, names = [], 0
    for line in stdout.splitlines():
        if ELAPSED.match(line):
            counts.append(names)
            names = 0
        elif line:
            names += 1
    return {
        "launch_s": times[0],
        "steps": [{"seconds": t, "lines": n} for t, n in zip(times[1:], counts[1:], strict=True)],
    }


def run_guestfish(
    disks: list[Path], steps: list[Step], timeout: float, tcg_limit: int = 256 * 1024 * 1024
) -> dict[str, Any]:
    """One guestfish over ``disks`` (read-only, /dev/sda, /dev/sdb, ... in order) running ``steps``.
    The default backend first; if the appliance dies at launch (KVM present but unusable, as in a
    nested VM), once more under TCG. Raises RuntimeError with the reason when it does not start."""
    args = ["guestfish", "--ro", *(a for d in disks for a in ("-a", str(d)))]
    deadline = time.monotonic() + timeout
    reasons = []
    for backend in ("", "force_tcg"):
        env = dict(os.environ, LIBGUESTFS_BACKEND_SETTINGS=backend) if backend else dict(os.environ)
        left = deadline - time.monotonic()
        if left <= 10:
            reasons.append("out of time")
            break
        script = guestfish_script(steps, tcg_limit if backend else 0)
        try:
            got = subprocess.run(args, input=script, capture_output=True, text=True, env=env, timeout=left)
        except subprocess.TimeoutExpired:
            reasons.append(f"{backend or 'default backend'}: not done within {timeout:.0f} s")
            break
        if got.returncode == 0:
            out = parse_guestfish(got.stdout, steps)
            out["backend"] = "TCG (emulated)" if backend else "default (KVM if usable)"
            out["why_tcg"] = reasons[-1] if backend and reasons else ""
            out["limit"] = tcg_limit if backend else 0
            return out
        reasons.append(f"{backend or 'default backend'}: {launch_error(got.stderr)}")
    raise RuntimeError("; ".join(reasons))


def launch_error(stderr: str) -> str:
    """The telling line of a failed guestfish launch."""
    for pattern in (
        r"qemu-system\S* killed by signal \d+ \([^)]*\)",
        r"qemu-system[^:]*: error: (.+)",
        r"Assertion `[^']+' failed",
        r"libguestfs: error: (.+)",
    ):
        found = re.search(pattern, stderr)
        if found:
            return found.group(0).strip()[:160]
    return stderr.strip().splitlines()[-1][:160] if stderr.strip() else "failed"
