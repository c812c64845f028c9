"""scripts/demo and scripts/test say what they are doing while they make the virtualenv and install
openflr (a first run takes about 20 s), and say nothing when there is nothing to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, venv: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OPENFLR_VENV=str(venv), PYTHON=sys.executable)
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def fake_venv(venv: Path) -> Path:
    """A virtualenv whose python and openflr only note how they were called."""
    calls = venv / "calls"
    (venv / "bin").mkdir(parents=True)
    for name in ("python", "openflr"):
        tool = venv / "bin" / name
        tool.write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\n')
        tool.chmod(0o755)
    return calls


def test_the_demo_script_says_when_it_installs_and_is_quiet_when_it_need_not(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    calls = fake_venv(venv)
    first = run("demo", venv, "--http", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stderr.splitlines() == [
        "installing openflr and its dependencies into venv (about 20 s the first time)"
    ]
    assert calls.read_text().splitlines() == [
        f"python -m pip install -q -e {ROOT}",
        "openflr demo --http",
    ]
    again = run("demo", venv, "--http", cwd=tmp_path)
    assert again.returncode == 0 and again.stderr == ""
    assert calls.read_text().splitlines()[2:] == ["openflr demo --http"]  # no second install
    stamp = venv / ".openflr-installed"
    older = (ROOT / "pyproject.toml").stat().st_mtime - 60
    os.utime(stamp, (older, older))  # pyproject.toml changed since: install again
    third = run("demo", venv, cwd=ROOT)
    assert third.stderr.splitlines() == [
        f"installing openflr and its dependencies into {venv} (about 20 s the first time)"
    ]


def test_the_test_script_installs_the_test_tools_once(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    calls = fake_venv(venv)
    first = run("test", venv, "-k", "nothing")
    assert first.returncode == 0, first.stderr
    assert (
        f"installing openflr, its dependencies and its test tools into {venv} (about 20 s the first time)"
        in first.stderr.splitlines()
    )
    assert calls.read_text().splitlines() == [
        f"python -m pip install -q -e {ROOT}[test]",
        "python -m pytest -k nothing",
    ]
    again = run("test", venv, "-k", "nothing")
    assert "installing" not in again.stderr
    assert calls.read_text().splitlines()[2:] == ["python -m pytest -k nothing"]


def test_the_test_script_fast_flag_leaves_the_server_and_slow_tests_out(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    calls = fake_venv(venv)
    done = run("test", venv, "-x", "--fast", "-k", "sessions")
    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines()[-1] == "python -m pytest -x -m not server and not slow -k sessions"


def test_make_venv_says_it_creates_the_virtualenv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    script = f'source "{ROOT}/scripts/_env.sh"; make_venv'
    env = dict(os.environ, OPENFLR_VENV=str(venv), PYTHON=sys.executable)
    first = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600
    )
    assert first.returncode == 0, first.stderr
    version = ".".join(str(n) for n in sys.version_info[:3])
    assert f"creating virtualenv venv with {sys.executable} {version}" in first.stderr.splitlines()
    assert (venv / "bin" / "python").exists()
    again = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600
    )
    assert again.returncode == 0 and again.stderr == "" and again.stdout == ""
