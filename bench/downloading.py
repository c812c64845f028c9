"""Download throughput over HTTP and HTTPS, each figure next to baselines measured in the same run:

- the same 2 GiB of bytes read straight from the raw image file (page cache, 1 MiB ``readinto``);
- openflr's own HTTP stack streaming a plain local copy of that file (``bench.plainserver``): the
  ceiling a download through the disk engine is measured against.

Rows: a 2 GiB file from a raw disk, from 3-layer qcow2 / VMDK / VHDX chains, a monolithicFlat VMDK,
ESXi vmfsSparse and seSparse delta chains and a 32-layer VHDX chain, and folders as ZIPs (10,000 small
files; ten 100 MiB files). Every figure is the median of five curl runs into /dev/null, taken in
turns with five runs of the plain-file stream whose median is that row's baseline (``paired``); every
download of the file must reach 90% of the plain-file stream.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
from tests.support import free_port

from bench.common import Client, Row, server
from openflr.guestfs.view import open_view
from openflr.inventory.manifest import FILE_NAME

VM = "big-files"
CHAINS = {
    "big-qcow2": "a 3-layer qcow2 chain",
    "big-vmdk": "a 3-layer VMDK chain (monolithicSparse)",
    "big-vhdx": "a 3-layer VHDX chain",
    "big-vmdk-flat": "a monolithicFlat VMDK",
    "big-esxi-vmfssparse": "an ESXi chain: flat base, 2 vmfsSparse deltas",
    "big-esxi-sesparse": "an ESXi chain: flat base, 2 seSparse deltas",
    "big-vhdx-32": "a 32-layer VHDX chain",
}
"""The bench VMs holding the same volume as ``VM`` (bench/fixtures.py), by what each row calls them."""
TARGET, NEED = ">= 90% of the plain-file stream", 0.90
FILE = "bigfiles:/big/two-gib.bin"
SMALL = "bigfiles:/small"
LARGE = "bigfiles:/large"
CHUNK = 1024 * 1024
ROUNDS = 5
"""Runs of each download and of its plain-file stream, in turns (``paired``)."""
SMALL_FILES_PER_S = 20_000
"""The target for the folder of 10,000 small files as a ZIP (files a second, whatever the stream)."""


def plain_copy(datastore: Path) -> Path:
    """A plain local copy of the 2 GiB file (outside the datastore), made once through the engine."""
    target = datastore.parent / "plain-two-gib.bin"
    if target.exists():
        return target
    doc = tomllib.loads((datastore / VM / FILE_NAME).read_text())
    view = open_view([[datastore / VM / d] for d in doc["points"][0]["disks"]])
    try:
        reader = view.open(view.locate(FILE))
        partial = target.with_suffix(".partial")
        with open(partial, "wb") as out:
            offset = 0
            while offset < reader.size:
                data = reader.pread(CHUNK, offset)
                out.write(data)
                offset += len(data)
        partial.rename(target)
    finally:
        view.close()
    return target


def raw_read_rate(path: Path, size: int) -> float:
    """MB/s of reading ``size`` bytes of ``path`` in 1 MiB ``readinto`` calls (better of two)."""
    buffer = bytearray(CHUNK)
    best = 0.0
    for _ in range(2):
        start = time.perf_counter()
        done = 0
        with open(path, "rb", buffering=0) as fh:
            while done < size:
                n = fh.readinto(buffer)
                if not n:
                    break
                done += n
        best = max(best, done / (time.perf_counter() - start) / 1e6)
    return best


def curl(url: str, token: str = "") -> tuple[float, int]:
    """(MB/s, bytes) of one download by curl into /dev/null (a C client: the measure is the server)."""
    args = ["curl", "-sS", "-k", "-f", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url]
    if token:
        args[1:1] = ["-H", f"X-RestSvcSessionId: {token}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=600).stdout.split()
    size, seconds = int(out[0]), float(out[1])
    return size / seconds / 1e6, size


def best_of_two(url: str, token: str = "") -> tuple[float, int]:
    runs = [curl(url, token) for _ in range(2)]
    return max(r[0] for r in runs), runs[0][1]


@contextmanager
def plain_server(data: Path, path: Path, https: bool) -> Iterator[str]:
    """``bench.plainserver`` on a free port; yields the URL of the plain file."""
    port = free_port()
    args = [sys.executable, "-m", "bench.plainserver", str(path), str(port)] + ([] if https else ["--http"])
    env = dict(os.environ, OPENFLR_DATA_DIR=str(data))
    log = open(data / f"plain-{port}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"{'https' if https else 'http'}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/api/", verify=False, timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((data / f"plain-{port}.log").read_text()) from None
                time.sleep(0.1)
        yield base + "/plain"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def _row(figure: str, rate: float, plain: float, raw: float, target: str, need: float | None) -> Row:
    ratio = rate / plain
    return Row(
        figure,
        f"{rate:,.0f} MB/s",
        f"plain-file stream {plain:,.0f} MB/s; raw image read {raw:,.0f} MB/s",
        f"{ratio:.0%} of plain ({rate / raw:.0%} of raw)",
        target,
        None if need is None else ratio >= need,
        data={"mbps": rate, "plain_mbps": plain, "raw_mbps": raw},
    )


def paired(url: str, plain_url: str, token: str) -> tuple[float, int, float]:
    """(MB/s, bytes, plain-file MB/s) of a download and of the plain-file stream, each the median of
    ``ROUNDS`` runs taken in turns (plain, download, plain, download, ...). On a machine others share
    the load moves within a minute, so a baseline taken minutes before would move every ratio with
    it; and one pair of runs moves a ratio by 10-15 points either way (a slow run of one side or a
    fast one of the other), which the medians of five pairs settle."""
    plain_runs, runs = [], []
    for _ in range(ROUNDS):
        plain_runs.append(curl(plain_url)[0])
        runs.append(curl(url, token))
    return statistics.median(r[0] for r in runs), runs[0][1], statistics.median(plain_runs)


def download_rates(datastore: Path, data: Path) -> list[Row]:
    plain_file = plain_copy(datastore)
    size = plain_file.stat().st_size
    raw = raw_read_rate(datastore / VM / "disk0.raw", size)
    rows = []
    for https in (False, True):
        scheme = "HTTPS" if https else "HTTP"
        with plain_server(data, plain_file, https) as url, server(data, datastore, https=https) as srv:
            client = Client(srv.base)
            mount, _ = client.mount(client.point(VM))
            rate, got, plain = paired(f"{mount}/{FILE}?action=download", url, client.token)
            assert got == size, (got, size)
            target, need = (TARGET, NEED) if not https else ("reported", None)
            figure = f"download of a 2 GiB file over {scheme} (raw disk)"
            rows.append(_row(figure, rate, plain, raw, target, need))
            if https:
                client.close()
                continue
            for chain, label in CHAINS.items():
                m, _ = client.mount(client.point(chain))
                rate, got, plain = paired(f"{m}/{FILE}?action=download", url, client.token)
                assert got == size, (chain, got, size)
                figure = f"download of the 2 GiB file from {label} over HTTP"
                rows.append(_row(figure, rate, plain, raw, TARGET, NEED))
            for folder, label in ((SMALL, "10,000 small files"), (LARGE, "10 files of 100 MiB")):
                zip_rate, zip_size, plain = paired(f"{mount}/{folder}?action=download", url, client.token)
                elapsed = zip_size / zip_rate / 1e6
                figure = f"folder of {label} as a STORED ZIP over HTTP"
                if folder == LARGE:
                    rows.append(_row(figure, zip_rate, plain, raw, ">= 80% of the plain-file stream", 0.80))
                    continue
                row = _row(figure, zip_rate, plain, raw, f">= {SMALL_FILES_PER_S:,} files/s", None)
                files_per_s = 10_000 / elapsed
                row.value = f"{zip_rate:,.0f} MB/s ({files_per_s:,.0f} files/s)"
                row.met = files_per_s >= SMALL_FILES_PER_S
                rows.append(row)
            client.close()
    return rows
