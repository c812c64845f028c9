"""The pieces of the baselines benchmark (bench/baselines.py, bench/kernel.py, bench/peers.py) that can
be checked without running it: partition offsets, the peers' output parsing, the judging of a
target, and the kernel's walk and read of a small loop-mounted ext4 image (root only)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from bench import baselines, kernel, peers

MiB = 1024 * 1024


def _mbr(entries: list[tuple[int, int, int]]) -> bytes:
    """A boot sector with (type, first LBA, sectors) partition entries."""
    sector = bytearray(512)
    for i, (kind, lba, count) in enumerate(entries):
        sector[446 + 16 * i + 4] = kind
        struct.pack_into("<II", sector, 446 + 16 * i + 8, lba, count)
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)


def test_a_disk_that_is_one_file_system_starts_at_zero(tmp_path: Path) -> None:
    ntfs = bytearray(4096)
    ntfs[3:11] = b"NTFS    "
    ntfs[510:512] = b"\x55\xaa"  # an NTFS boot sector ends like an MBR: the file system wins
    ext = bytearray(4096)
    ext[1080:1082] = b"\x53\xef"
    xfs = b"XFSB" + bytes(4092)
    for name, head in (("ntfs", ntfs), ("ext4", ext), ("xfs", xfs)):
        (tmp_path / name).write_bytes(bytes(head))
        assert kernel.fs_at(bytes(head)) == name
        assert kernel.partition_offset(tmp_path / name) == 0


def test_mbr_partitions(tmp_path: Path) -> None:
    disk = tmp_path / "mbr.img"
    disk.write_bytes(_mbr([(0x05, 63, 100), (0x83, 2048, 8192), (0x07, 10240, 8192)]) + bytes(4096))
    assert kernel.partition_offset(disk) == 2048 * 512  # the extended partition holds no file system
    assert kernel.partition_offset(disk, 3) == 10240 * 512
    with pytest.raises(ValueError, match="no partition 1"):
        kernel.partition_offset(disk, 1)
    (tmp_path / "blank.img").write_bytes(bytes(4096))
    with pytest.raises(ValueError, match="no partition table"):
        kernel.partition_offset(tmp_path / "blank.img")


def test_gpt_partitions(tmp_path: Path) -> None:
    header = bytearray(512)
    header[:8] = b"EFI PART"
    struct.pack_into("<QII", header, 72, 2, 128, 128)
    table = bytearray(128 * 128)
    for index, first in ((0, 2048), (2, 409600)):  # entry 2 (partition 2) left empty
        table[index * 128 : index * 128 + 16] = b"\x01" * 16
        struct.pack_into("<QQ", table, index * 128 + 32, first, first + 1000)
    disk = tmp_path / "gpt.img"
    disk.write_bytes(_mbr([(0xEE, 1, 0xFFFFFFFF)]) + bytes(header) + bytes(table))
    assert kernel.partition_offset(disk) == 2048 * 512
    assert kernel.partition_offset(disk, 3) == 409600 * 512
    with pytest.raises(ValueError, match="no partition 2"):
        kernel.partition_offset(disk, 2)


@pytest.mark.skipif(not shutil.which("sfdisk"), reason="needs sfdisk")
def test_partition_offset_of_tables_sfdisk_wrote(tmp_path: Path) -> None:
    for label in ("dos", "gpt"):
        disk = tmp_path / f"{label}.img"
        disk.write_bytes(b"")
        os.truncate(disk, 8 * MiB)
        script = f"label: {label}\nstart=4096, size=4096\nstart=10240, size=2048\n"
        subprocess.run(["sfdisk", "-q", str(disk)], input=script.encode(), check=True, capture_output=True)
        assert kernel.partition_offset(disk) == 4096 * 512
        assert kernel.partition_offset(disk, 2) == 10240 * 512


def test_raw_disk_converts_only_what_is_not_raw(tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"x" * 65536)
    assert kernel.raw_disk(raw, tmp_path) == raw
    qcow = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(qcow)], check=True)
    copy = kernel.raw_disk(qcow, tmp_path)
    assert copy != qcow and copy.read_bytes() == raw.read_bytes()


def test_mount_commands_replay_nothing() -> None:
    assert "ro,noload" in kernel.mount_command("ext4", "/dev/loop9", Path("/m"))
    assert "ro,norecovery,nouuid" in kernel.mount_command("xfs", "/dev/loop9", Path("/m"))
    assert kernel.mount_command("ntfs", "/dev/loop9", Path("/m"))[:3] == ["ntfs-3g", "-o", "ro"]


def _root_and_loop() -> str:
    if os.geteuid() != 0:
        return "needs root"
    if not shutil.which("losetup") or not Path("/dev/loop-control").exists():
        return "needs loop devices"
    return ""


@pytest.mark.skipif(bool(_root_and_loop()), reason=_root_and_loop() or "-")
def test_kernel_walk_and_read_of_a_partitioned_ext4_image(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "many").mkdir(parents=True)
    for i in range(300):
        (src / "many" / f"file_{i:04d}.txt").write_bytes(b"")
    (src / "many" / "sub").mkdir()
    (src / "data.bin").write_bytes(bytes(range(256)) * 4096 * 3)  # 3 MiB
    disk = tmp_path / "disk.raw"
    disk.write_bytes(b"")
    os.truncate(disk, 20 * MiB)
    subprocess.run(
        ["sfdisk", "-q", str(disk)],
        input=b"label: dos\nstart=2048, type=83\n",
        check=True,
        capture_output=True,
    )
    offset = kernel.partition_offset(disk)
    assert offset == MiB
    size_kib = (20 * MiB - offset) // 1024
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-E", f"offset={offset}", "-d", str(src), str(disk), f"{size_kib}K"],
        check=True,
        capture_output=True,
    )
    count, seconds, warm = kernel.timed_walk(disk, "ext4", "/many", offset)
    assert count == 301 and seconds > 0 and warm > 0
    size, _, _ = kernel.timed_read(disk, "ext4", "data.bin", offset)
    assert size == 3 * MiB
    # Unmounted and detached afterwards.
    loops = subprocess.run(["losetup", "-j", str(disk)], capture_output=True, text=True).stdout
    assert loops.strip() == ""


def test_the_dissect_driver_s_json_is_read_past_its_logging() -> None:
    out = 'loading plugins\n{"version": "3.25.1", "list": [{"count": 3, "seconds": 0.5}]}\n\n'
    assert peers.last_json(out)["list"][0]["count"] == 3
    with pytest.raises(ValueError, match="no JSON"):
        peers.last_json("Traceback ...\n")


def test_the_dissect_driver_runs_standalone(tmp_path: Path) -> None:
    # Only its argument handling: without Dissect installed it must fail on the import, and its JSON
    # spec must be what bench/baselines.py sends.
    spec: dict[str, object] = {"list": [], "read": None}
    got = subprocess.run(
        ["python3", str(peers.DRIVER), json.dumps(spec)], capture_output=True, text=True, cwd=tmp_path
    )
    if got.returncode == 0:
        assert peers.last_json(got.stdout)["list"] == []
    else:
        assert "dissect" in got.stderr


GUESTFISH_OUT = """elapsed time: 29.18 seconds
file_000000.txt
file_000001.txt
file_000002.txt
elapsed time: 8.10 seconds
a
b
elapsed time: 4.91 seconds
elapsed time: 135.70 seconds
"""


def test_guestfish_script_and_its_timings() -> None:
    steps: list[peers.Step] = [
        ("/dev/sda", "ls", "/many", 0),
        ("/dev/sdb", "ls", "/many", 0),
        ("/dev/sdc", "download", "/big/f.bin", 2 * 1024 * MiB),
    ]
    script = peers.guestfish_script(steps, limit=256 * MiB)
    assert script.splitlines()[0] == "time run"
    assert "mount-ro /dev/sda /\ntime ls /many\numount /" in script
    assert f"time download-offset /big/f.bin /dev/null 0 {256 * MiB}" in script
    assert f"download-offset /big/f.bin /dev/null 0 {2048 * MiB}" in peers.guestfish_script(
        steps[2:], limit=0
    )
    assert "time download /big/f.bin /dev/null" in peers.guestfish_script(
        [("/dev/sdc", "download", "/big/f.bin", 0)]
    )
    got = peers.parse_guestfish(GUESTFISH_OUT, steps)
    assert got["launch_s"] == 29.18
    assert [s["lines"] for s in got["steps"]] == [3, 2, 0]
    assert [s["seconds"] for s in got["steps"]] == [8.10, 4.91, 135.70]
    with pytest.raises(ValueError, match="printed 2 times"):
        peers.parse_guestfish("elapsed time: 1.00 seconds\nelapsed time: 2.00 seconds\n", steps)


def test_a_guestfish_launch_failure_names_its_cause() -> None:
    stderr = (
        "*stdin*:0: libguestfs: error: appliance closed the connection unexpectedly.\n"
        "*stdin*:0: libguestfs: error: /usr/bin/qemu-system-x86_64 killed by signal 6 (Aborted).\n"
    )
    assert peers.launch_error(stderr) == "qemu-system-x86_64 killed by signal 6 (Aborted)"


def test_a_missed_target_says_by_how_much() -> None:
    assert baselines.judge(0.72, 0.5, "kernel ext4") == ("72% of kernel ext4", True)
    shown, met = baselines.judge(0.41, 0.5, "kernel ext4")
    assert not met and shown == "41% of kernel ext4 (target missed by 9 points)"
    shown, met = baselines.judge(0.8, 1.0, "ntfs-3g")
    assert not met and shown == "80% of ntfs-3g (target missed by 20 points)"
    assert baselines.judge(1.96, 1.0, "ntfs-3g") == ("196% of ntfs-3g", True)
    assert baselines.guest_path("Volume$0:/many") == "/many"
    assert baselines.guest_path("bigfiles:/big/two-gib.bin") == "/big/two-gib.bin"


def test_rows_side_by_side_with_a_missed_target_and_a_peer_that_does_not_start() -> None:
    out = baselines.Outcome
    down = "does not start here (default backend: qemu-system-x86_64 killed by signal 6 (Aborted))"
    listing = {
        fs: {
            "api": out(40_000.0),
            "engine": out(50_000.0),
            "kernel": out(100_000.0 if fs == "ext4" else 20_000.0, extra={"warm": 900_000.0}),
            "dissect": out(4_000.0, extra={"open_s": 0.02, "version": "3.25.1"}),
            "libguestfs": out(None, down),
        }
        for fs in ("NTFS", "ext4", "XFS")
    }
    reads = {
        "engine": out(1_000.0),
        "api": out(900.0),
        "kernel": out(300.0, extra={"warm": 5_000.0}),
        "dissect": out(1_250.0, extra={"open_s": 0.01, "version": "3.25.1"}),
        "libguestfs": out(None, down),
    }
    counts = dict.fromkeys(("NTFS", "ext4", "XFS"), 100_000)
    rows = baselines._rows(counts, 2 * 1024 * MiB, listing, reads)
    assert len(rows) == 3 * 4 + 4
    by = {r.figure: r for r in rows}
    ntfs = by["list 100,000 entries, NTFS: openflr API (listAll pageSize=1000, cold mount)"]
    assert ntfs.met is True and ntfs.ratio == "200% of ntfs-3g (FUSE)"
    assert ntfs.baseline == "ntfs-3g (FUSE) walk 20,000/s (warm 900,000/s)"
    ext4 = by["list 100,000 entries, ext4: openflr API (listAll pageSize=1000, cold mount)"]
    assert ext4.met is False and ext4.ratio == "40% of kernel ext4 (target missed by 10 points)"
    guestfs = by["list 100,000 entries, XFS: libguestfs (guestfish ls: names only)"]
    assert guestfs.value == down and guestfs.met is None
    engine = next(r for r in rows if "openflr engine in-process" in r.figure)
    assert (
        engine.met is False
        and "80% of the fastest peer (dissect) (target missed by 20 points)" in engine.ratio
    )
    assert "fastest peer dissect 1,250 MB/s" in engine.baseline


def test_a_failed_mount_is_told_by_its_last_words() -> None:
    e = subprocess.CalledProcessError(32, ["mount"], stderr=b"mount: warning\nmount: /m: wrong fs type.\n")
    assert baselines._why(e) == "mount: /m: wrong fs type."
    assert baselines._why(FileNotFoundError("losetup")) == "losetup"
