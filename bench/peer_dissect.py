"""Dissect's timings of the bench's listings and read, printed as one JSON line.

Run by bench/peers.py with the python of Dissect's own throw-away virtualenv (.cache/bench-peers/):
this file imports nothing of openflr's, and openflr never imports Dissect.

    python peer_dissect.py '{"list": [["disk.raw", "/many"], ...], "read": ["disk.raw", "/big/f.bin"]}'

For each listing: ``Target.open`` of the disk (timed), then ``scandir`` of the folder on the target's
file system object with ``stat(follow_symlinks=False)`` of every entry (timed). Listing through
``target.fs`` instead (the target's root view) looks up every entry's path again in its folder,
about 16 ms an entry in a 100,000-entry ext4 folder: the file system object is how a user who
cares for speed lists. The read: ``open`` of the file, 1 MiB ``readinto`` calls.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

CHUNK = 1024 * 1024


def _filesystem(target: Any, folder: str) -> Any:
    for fs in target.filesystems:
        if fs.exists(folder):
            return fs
    raise FileNotFoundError(f"{folder} is on none of the target's file systems")


def listing(image: str, folder: str) -> dict[str, Any]:
    from dissect.target import Target

    start = time.perf_counter()
    target = Target.open(image)
    opened = time.perf_counter()
    fs = _filesystem(target, folder)
    count = 0
    for entry in fs.scandir(folder):
        entry.stat(follow_symlinks=False)
        count += 1
    return {
        "image": image,
        "folder": folder,
        "open_s": opened - start,
        "count": count,
        "seconds": time.perf_counter() - opened,
    }


def read(image: str, path: str) -> dict[str, Any]:
    from dissect.target import Target

    start = time.perf_counter()
    target = Target.open(image)
    opened = time.perf_counter()
    fh = _filesystem(target, path).get(path).open()
    buffer = bytearray(CHUNK)
    size = 0
    while n := fh.readinto(buffer):
        size += n
    return {
        "image": image,
        "path": path,
        "open_s": opened - start,
        "bytes": size,
        "seconds": time.perf_counter() - opened,
    }


def main(spec: dict[str, Any]) -> dict[str, Any]:
    from importlib.metadata import version

    start = time.perf_counter()
    from dissect.target import Target

    if spec.get("list"):  # the first open loads Dissect's plugins: not part of any figure
        Target.open(spec["list"][0][0])
    out: dict[str, Any] = {
        "version": version("dissect.target"),
        "warmup_s": time.perf_counter() - start,
        "list": [listing(image, folder) for image, folder in spec.get("list", [])],
    }
    if spec.get("read"):
        out["read"] = read(*spec["read"])
    return out


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
