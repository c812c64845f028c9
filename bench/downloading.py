"""Download throughput: a 1 GiB file and a ~1 GiB folder as a ZIP, over HTTP and HTTPS, next to the
engine reading the same bytes in this process (1 MiB reads, no HTTP at all)."""

from __future__ import annotations

import subprocess
import time
import tomllib
from pathlib import Path

from bench.common import Client, Row, server
from openflr.guestfs.view import open_view
from openflr.inventory.manifest import FILE_NAME

VM = "big-files"
FILE = "bigfiles:/big/one-gib.bin"
FOLDER = "bigfiles:/large"
CHUNK = 1024 * 1024


def _engine_read(datastore: Path) -> tuple[float, float, int, int]:
    """(file MB/s, folder MB/s, file bytes, folder bytes) reading straight from the engine."""
    doc = tomllib.loads((datastore / VM / FILE_NAME).read_text())
    view = open_view([[datastore / VM / d] for d in doc["points"][0]["disks"]])
    try:

        def read_all(path: str) -> int:
            reader = view.open(view.locate(path))
            offset = 0
            while offset < reader.size:
                offset += len(reader.pread(CHUNK, offset))
            return offset

        names = sorted(e.name for e in view.scandir(view.locate(FOLDER)))
        file_rate = folder_rate = 0.0
        file_bytes = folder_bytes = 0
        for _ in range(2):  # the better of two runs, as for the downloads (the first may be cold)
            start = time.perf_counter()
            file_bytes = read_all(FILE)
            file_rate = max(file_rate, file_bytes / (time.perf_counter() - start) / 1e6)
            start = time.perf_counter()
            folder_bytes = sum(read_all(f"{FOLDER}/{n}") for n in names)
            folder_rate = max(folder_rate, folder_bytes / (time.perf_counter() - start) / 1e6)
        return file_rate, folder_rate, file_bytes, folder_bytes
    finally:
        view.close()


def _curl(url: str, token: str) -> tuple[float, int]:
    """(MB/s, bytes) of one download by curl into /dev/null (a C client: the measure is the server)."""
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "-k",
            "-f",
            "-o",
            "/dev/null",
            "-H",
            f"X-RestSvcSessionId: {token}",
            "-w",
            "%{size_download} %{time_total}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout.split()
    size, seconds = int(out[0]), float(out[1])
    return size / seconds / 1e6, size


def download_rates(datastore: Path, data: Path) -> list[Row]:
    engine_file, engine_folder, file_bytes, folder_bytes = _engine_read(datastore)
    rows = []
    for https in (False, True):
        scheme = "HTTPS" if https else "HTTP"
        with server(data, datastore, https=https) as srv:
            client = Client(srv.base)
            mount, _ = client.mount(client.point(VM))
            best_file = best_zip = 0.0
            for _ in range(2):  # the better of two runs: the first may meet a cold page cache
                rate, size = _curl(f"{mount}/{FILE}?action=download", client.token)
                assert size == file_bytes, (size, file_bytes)
                best_file = max(best_file, rate)
                rate, size = _curl(f"{mount}/{FOLDER}?action=download", client.token)
                assert size > folder_bytes, (size, folder_bytes)
                best_zip = max(best_zip, rate * folder_bytes / size)  # content bytes per second
            client.close()
        rows.append(
            Row(
                f"download of a 1 GiB file over {scheme} (curl): MB/s",
                f"{best_file:,.0f} MB/s",
                f"engine read {engine_file:,.0f} MB/s",
                f"{best_file / engine_file:.0%}",
                "reported (targets: issue 7)",
                None,
                data={"mbps": best_file, "engine_mbps": engine_file},
            )
        )
        rows.append(
            Row(
                f"download of a 1,000 MiB folder (10 files) as a ZIP over {scheme}: content MB/s",
                f"{best_zip:,.0f} MB/s",
                f"engine read {engine_folder:,.0f} MB/s",
                f"{best_zip / engine_folder:.0%}",
                "reported (targets: issue 7)",
                None,
                data={"mbps": best_zip, "engine_mbps": engine_folder},
            )
        )
    return rows
