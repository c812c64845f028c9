"""openflr side by side with the kernel and with peer tools, on the same folders and file in one run.

Listings: the 100,000-entry folders of ``many-ntfs``, ``many-ext4`` and ``many-xfs`` (the ``list``
group's folders), each
- through openflr's API (``listAll``, pageSize=1000, one curl, cold mount: as bench/mounting.py);
- by openflr's engine in this process (``open_view`` / ``locate`` / ``scandir``);
- by the kernel: ``os.scandir`` + ``lstat`` on a fresh read-only loop mount (ext4, XFS) or ntfs-3g
  FUSE mount (NTFS) of the raw disk (bench/kernel.py);
- by Dissect (``Target.open``, then scandir + stat) and by libguestfs (``guestfish ls``: names only,
  no stat) (bench/peers.py).

Read: the 2 GiB file of ``big-files`` (the ``download`` group's file)
- by openflr's engine in this process (``open_view`` / ``locate`` / ``open``, 1 MiB chunks, as a
  download reads it) and through the API (curl into /dev/null);
- by the kernel (1 MiB ``readinto`` on a fresh mount);
- by Dissect (1 MiB ``readinto`` in its process) and libguestfs (``download`` to /dev/null).

Targets: the API's listing rate >= 50 % of the kernel's walk on ext4 and XFS and >= ntfs-3g's on
NTFS; the engine's in-process read >= the fastest peer's. openflr, the kernel's walk and the
engine's read take the best of ``ROUNDS``, alternating; each peer runs once (Dissect's listing of
the three folders takes about a minute, libguestfs boots an appliance).
"""

from __future__ import annotations

import subprocess
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import kernel, peers
from bench.common import Client, Row, server
from bench.downloading import FILE, VM, best_of_two
from bench.mounting import LISTED, _curl_pages, _engine_walk
from openflr.guestfs.view import open_view
from openflr.inventory.manifest import FILE_NAME

ROUNDS = 3
KIND = {"NTFS": "ntfs", "ext4": "ext4", "XFS": "xfs"}
KERNEL_NAME = {"ntfs": "ntfs-3g (FUSE)", "ext4": "kernel ext4", "xfs": "kernel XFS"}
CHUNK = 1024 * 1024
DISSECT_TIMEOUT = 300.0
GUESTFISH_TIMEOUT = 240.0


@dataclass
class Outcome:
    """One party's figure: a rate, or why there is none."""

    rate: float | None = None
    why: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def disk_of(datastore: Path, vm: str) -> Path:
    """The (top) disk file of a bench VM's point."""
    doc = tomllib.loads((datastore / vm / FILE_NAME).read_text())
    return datastore / vm / str(doc["points"][0]["disks"][0])


def guest_path(path: str) -> str:
    """'many:/many' -> '/many': the path inside the volume."""
    return "/" + path.partition(":")[2].lstrip("/")


def engine_read(datastore: Path, vm: str, path: str) -> tuple[int, float]:
    """(bytes, seconds) of the engine reading ``path`` in this process, 1 MiB chunks as a download
    does (``FileReader.chunk``); the view's opening is not timed."""
    doc = tomllib.loads((datastore / vm / FILE_NAME).read_text())
    view = open_view([[datastore / vm / d] for d in doc["points"][0]["disks"]], doc.get("os", ""))
    try:
        reader = view.open(view.locate(path))
        start = time.perf_counter()
        offset = 0
        while offset < reader.size:
            offset += len(reader.chunk(CHUNK, offset))
        return offset, time.perf_counter() - start
    finally:
        view.close()


def _why(e: BaseException) -> str:
    """A failed command's last words, else the exception's."""
    err = getattr(e, "stderr", None)
    text = err.decode(errors="replace") if isinstance(err, bytes) else str(err or e)
    return text.strip().splitlines()[-1][:160] if text.strip() else type(e).__name__


def judge(ratio: float, need: float, unit: str) -> tuple[str, bool]:
    """The ratio as shown, and whether it meets ``need``; a miss says by how much."""
    shown = f"{ratio:.0%} of {unit}"
    if ratio >= need:
        return shown, True
    return f"{shown} (target missed by {(need - ratio) * 100:.0f} points)", False


def rate_text(o: Outcome, unit: str) -> str:
    if o.rate is None:
        return o.why
    return f"{o.rate:,.0f}{unit}" if unit.startswith("/") else f"{o.rate:,.0f} {unit}"


def _ratio(o: Outcome, base: Outcome, name: str) -> str:
    if o.rate is None or base.rate is None:
        return "—"
    return f"{o.rate / base.rate:.0%} of {name}"


def baselines(datastore: Path, data: Path, log: Any = print) -> list[Row]:
    tmp = data / "raw"
    tmp.mkdir()
    ntfs_why = kernel.ensure_ntfs3g()
    raw = {vm: kernel.raw_disk(disk_of(datastore, vm), tmp) for vm, _, _ in LISTED}
    raw[VM] = kernel.raw_disk(disk_of(datastore, VM), tmp)
    offsets = {vm: kernel.partition_offset(path) for vm, path in raw.items()}
    listing: dict[str, dict[str, Outcome]] = {}
    counts: dict[str, int] = {}
    with server(data, datastore, extra="[mounts]\nkeep_idle = 0\n") as srv:
        for vm, folder, fs in LISTED:
            kind = KIND[fs]
            kernel_why = kernel.available(kind) or (ntfs_why if kind == "ntfs" else "")
            best = {"api": float("inf"), "engine": float("inf"), "kernel": float("inf"), "warm": float("inf")}
            count = 0
            for _ in range(ROUNDS):
                count, walk_s = _engine_walk(datastore, vm, folder)
                best["engine"] = min(best["engine"], walk_s)
                client = Client(srv.base)
                mount, _ = client.mount(client.point(vm))
                url = f"{mount}/{folder}?action=listAll&pageSize=1000&page="
                pages = -(-count // 1000)
                seconds = _curl_pages(url, client.token, pages, data / f"pages-{vm}")
                best["api"] = min(best["api"], seconds)
                client.unmount(mount)
                client.close()
                if not kernel_why:
                    try:
                        got, seconds, warm = kernel.timed_walk(raw[vm], kind, guest_path(folder), offsets[vm])
                    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
                        kernel_why = f"mount failed: {_why(e)}"
                        continue
                    assert got == count, (vm, got, count)
                    best["kernel"] = min(best["kernel"], seconds)
                    best["warm"] = min(best["warm"], warm)
            counts[fs] = count
            listing[fs] = {
                "api": Outcome(count / best["api"]),
                "engine": Outcome(count / best["engine"]),
                "kernel": Outcome(
                    None if kernel_why else count / best["kernel"],
                    kernel_why,
                    extra={} if kernel_why else {"warm": count / best["warm"]},
                ),
            }
            log(f"  {fs}: " + ", ".join(f"{k} {rate_text(v, '/s')}" for k, v in listing[fs].items()))
        # The 2 GiB file: the engine in this process, the API, the kernel, alternating.
        client = Client(srv.base)
        mount, _ = client.mount(client.point(VM))
        engine_s = kernel_s = warm_s = float("inf")
        http = 0.0
        size = 0
        read_why = kernel.available("ext4")
        for _ in range(2):
            size, seconds = engine_read(datastore, VM, FILE)
            engine_s = min(engine_s, seconds)
            rate, got = best_of_two(f"{mount}/{FILE}?action=download", client.token)
            assert got == size, (got, size)
            http = max(http, rate)
            if not read_why:
                try:
                    got, seconds, warm = kernel.timed_read(raw[VM], "ext4", guest_path(FILE), offsets[VM])
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
                    read_why = f"mount failed: {_why(e)}"
                    continue
                assert got == size, (got, size)
                kernel_s = min(kernel_s, seconds)
                warm_s = min(warm_s, warm)
        client.unmount(mount)
        client.close()
    reads = {
        "engine": Outcome(size / engine_s / 1e6),
        "api": Outcome(http),
        "kernel": Outcome(
            None if read_why else size / kernel_s / 1e6,
            read_why,
            extra={} if read_why else {"warm": size / warm_s / 1e6},
        ),
    }
    log("  read: " + ", ".join(f"{k} {rate_text(v, 'MB/s')}" for k, v in reads.items()))
    _dissect(raw, counts, size, listing, reads, log)
    _guestfish(raw, counts, size, listing, reads, log)
    return _rows(counts, size, listing, reads)


def _dissect(
    raw: dict[str, Path],
    counts: dict[str, int],
    size: int,
    listing: dict[str, dict[str, Outcome]],
    reads: dict[str, Outcome],
    log: Any,
) -> None:
    python, why = peers.dissect_python(log)
    result: dict[str, Any] = {}
    if python is not None:
        spec = {
            "list": [[str(raw[vm]), guest_path(folder)] for vm, folder, _ in LISTED],
            "read": [str(raw[VM]), guest_path(FILE)],
        }
        try:
            result = peers.run_dissect(python, spec, DISSECT_TIMEOUT)
        except Exception as e:  # a peer's failure is a row, not a failed run
            why = f"failed: {e}"[:200]
    for (_, _, fs), got in zip(LISTED, result.get("list") or [None] * len(LISTED), strict=True):
        if got is None:
            listing[fs]["dissect"] = Outcome(None, why)
        elif got["count"] != counts[fs]:
            listing[fs]["dissect"] = Outcome(None, f"listed {got['count']:,} of {counts[fs]:,} entries")
        else:
            extra = {"open_s": got["open_s"], "version": result.get("version", "")}
            listing[fs]["dissect"] = Outcome(got["count"] / got["seconds"], extra=extra)
    got = result.get("read")
    if got is None:
        reads["dissect"] = Outcome(None, why)
    elif got["bytes"] != size:
        reads["dissect"] = Outcome(None, f"read {got['bytes']:,} of {size:,} bytes")
    else:
        extra = {"open_s": got["open_s"], "version": result.get("version", "")}
        reads["dissect"] = Outcome(size / got["seconds"] / 1e6, extra=extra)
    log("  Dissect: " + (why or f"{result.get('version')}, {result.get('warmup_s', 0):.1f} s to load"))


def _guestfish(
    raw: dict[str, Path],
    counts: dict[str, int],
    size: int,
    listing: dict[str, dict[str, Outcome]],
    reads: dict[str, Outcome],
    log: Any,
) -> None:
    why = peers.ensure_guestfish()
    result: dict[str, Any] = {}
    disks = [raw[vm] for vm, _, _ in LISTED] + [raw[VM]]
    devices = [f"/dev/sd{chr(ord('a') + i)}" for i in range(len(disks))]
    steps: list[peers.Step] = [
        (devices[i], "ls", guest_path(folder), 0) for i, (_, folder, _) in enumerate(LISTED)
    ]
    steps.append((devices[-1], "download", guest_path(FILE), size))
    if not why:
        try:
            result = peers.run_guestfish(disks, steps, GUESTFISH_TIMEOUT)
        except Exception as e:  # a peer that does not start is a row, not a failed run
            why = f"does not start here ({e})"[:240]
    extra = {k: result.get(k) for k in ("backend", "launch_s", "why_tcg", "limit")}
    for i, (_, _, fs) in enumerate(LISTED):
        if not result:
            listing[fs]["libguestfs"] = Outcome(None, why)
            continue
        step = result["steps"][i]
        if step["lines"] != counts[fs]:
            listing[fs]["libguestfs"] = Outcome(None, f"ls printed {step['lines']:,} of {counts[fs]:,} names")
        else:
            listing[fs]["libguestfs"] = Outcome(counts[fs] / step["seconds"], extra=extra)
    if result:
        read = min(size, result["limit"]) if result["limit"] else size
        reads["libguestfs"] = Outcome(
            read / result["steps"][-1]["seconds"] / 1e6, extra={**extra, "bytes": read}
        )
    else:
        reads["libguestfs"] = Outcome(None, why)
    log("  libguestfs: " + (why or f"{result['backend']}, launch {result['launch_s']:.0f} s"))


def _peer_note(name: str, o: Outcome) -> str:
    e = o.extra
    if name == "dissect":
        return f"Dissect {e.get('version', '')}; Target.open {e.get('open_s', 0):.2f} s, not timed"
    if name == "libguestfs":
        why = e.get("why_tcg") or ""
        tcg = f" ({why.split(': ', 1)[-1]} under KVM)" if why else ""
        return f"appliance {e.get('backend')}{tcg}, booted in {e.get('launch_s', 0):.0f} s, not timed"
    return ""


def _rows(
    counts: dict[str, int], size: int, listing: dict[str, dict[str, Outcome]], reads: dict[str, Outcome]
) -> list[Row]:
    rows = []
    for _, _, fs in LISTED:
        got = listing[fs]
        kind = KIND[fs]
        k = got["kernel"]
        kname = KERNEL_NAME[kind]
        base = f"{kname} walk {rate_text(k, '/s')}" + (f" (warm {k.extra['warm']:,.0f}/s)" if k.extra else "")
        head = f"list {counts[fs]:,} entries, {fs}"
        api = got["api"]
        need = 1.0 if kind == "ntfs" else 0.5
        target = f">= the {kname} walk" if kind == "ntfs" else f">= 50% of the {kname} walk"
        label = f"{head}: openflr API (listAll pageSize=1000, cold mount)"
        data = {"api": api.rate, "kernel": k.rate, "kernel_why": k.why}
        if api.rate is not None and k.rate is not None:
            shown, met = judge(api.rate / k.rate, need, kname)
            rows.append(Row(label, rate_text(api, "/s"), base, shown, target, met, data=data))
        else:
            rows.append(Row(label, rate_text(api, "/s"), base, "—", target, data=data))
        labels = {
            "engine": "openflr engine walk in-process (open_view/scandir)",
            "dissect": "Dissect in-process (scandir + stat)",
            "libguestfs": "libguestfs (guestfish ls: names only)",
        }
        for name, label in labels.items():
            o = got.get(name)
            if o is None:
                continue
            note = _peer_note(name, o) if o.rate is not None else ""
            rows.append(
                Row(
                    f"{head}: {label}",
                    rate_text(o, "/s") + (f" ({note})" if note else ""),
                    base,
                    _ratio(o, k, kname),
                    note=note,
                    data={"rate": o.rate, "why": o.why, **o.extra},
                )
            )
    k = reads["kernel"]
    base = f"kernel ext4 read {rate_text(k, 'MB/s')}" + (
        f" (warm {k.extra['warm']:,.0f} MB/s)" if k.extra else ""
    )
    gib = size / 2**30
    read_head = f"read of a {gib:.0f} GiB file (ext4, raw disk)"
    peer_rates = {n: reads[n].rate for n in ("dissect", "libguestfs") if reads.get(n) and reads[n].rate}
    engine = reads["engine"]
    if peer_rates and engine.rate is not None:
        fastest = max(peer_rates, key=lambda n: peer_rates[n] or 0)
        shown, met = judge(engine.rate / (peer_rates[fastest] or 1), 1.0, f"the fastest peer ({fastest})")
        engine_row = Row(
            f"{read_head}: openflr engine in-process (open_view/locate/open)",
            rate_text(engine, "MB/s"),
            f"{base}; fastest peer {fastest} {peer_rates[fastest]:,.0f} MB/s",
            f"{shown}; {_ratio(engine, k, 'the kernel')}",
            ">= the fastest peer",
            met,
        )
    else:
        engine_row = Row(
            f"{read_head}: openflr engine in-process (open_view/locate/open)",
            rate_text(engine, "MB/s"),
            f"{base}; no peer ran",
            _ratio(engine, k, "the kernel"),
            ">= the fastest peer",
        )
    rows.append(engine_row)
    labels = {
        "api": "openflr API download over HTTP (curl)",
        "dissect": "Dissect in-process (readinto 1 MiB)",
        "libguestfs": "libguestfs (guestfish download to /dev/null)",
    }
    for name, label in labels.items():
        o = reads.get(name)
        if o is None:
            continue
        note = _peer_note(name, o) if o.rate is not None else ""
        if name == "libguestfs" and o.rate is not None and o.extra.get("bytes", size) < size:
            label += f", first {o.extra['bytes'] / 2**20:.0f} MiB"
        rows.append(
            Row(
                f"{read_head}: {label}",
                rate_text(o, "MB/s") + (f" ({note})" if note else ""),
                base,
                _ratio(o, k, "the kernel"),
                note=note,
                data={"mbps": o.rate, "why": o.why, **o.extra},
            )
        )
    return rows
