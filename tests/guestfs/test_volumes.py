"""Volume systems on the fixture disks and on damaged tables."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from openflr.guestfs.disks import open_top
from openflr.guestfs.errors import CorruptImageError
from openflr.guestfs.volumes import GPT_ESP, is_lvm, logical_volumes, partitions
from tests.imagebuilder import Fixtures

MiB = 1024 * 1024


def raw_disk(fixtures: Fixtures, vm: str, disk: int, point: str = "p1") -> Path:
    return fixtures.root / str(fixtures.manifest["raw"][vm][point][disk])


def test_gpt_partitions_have_their_exact_size(fixtures: Fixtures) -> None:
    disk = open_top(raw_disk(fixtures, "Win File Server", 0))
    vols = partitions(0, disk)
    assert [(v.scheme, v.number, v.start, v.source.size) for v in vols] == [
        ("gpt", 1, MiB, 40 * MiB),
        ("gpt", 2, 41 * MiB, 160 * MiB),
    ]
    assert vols[0].type_id == GPT_ESP and vols[0].is_esp
    assert vols[1].part_guid == "6b1f0e2a-3c4d-4e5f-8a9b-0c1d2e3f4a02"
    # GPT's last LBA is inclusive: the NTFS backup boot sector in the partition's last sector is reachable.
    last = vols[1].source.pread(512, vols[1].source.size - 512)
    assert last[3:11] == b"NTFS    "


def test_mbr_with_extended_partition_and_lvm(fixtures: Fixtures) -> None:
    disk = open_top(raw_disk(fixtures, "lvm-vm", 0))
    vols = partitions(0, disk)
    assert [(v.number, v.type_id, v.start // MiB) for v in vols] == [
        (1, "83", 1),
        (5, "06", 34),
        (3, "8e", 51),
    ]
    assert all(v.disk_signature == 0x6D697363 for v in vols)
    pvs = [v for v in vols if is_lvm(v)]
    lvs = logical_volumes(pvs)
    assert [(v.name, v.source.size) for v in lvs] == [("vg0/root", 16 * MiB), ("vg0/data", 8 * MiB)]
    assert struct.unpack_from("<H", lvs[0].source.pread(2, 1080))[0] == 0xEF53  # ext superblock inside the LV


def test_whole_disk_file_systems(fixtures: Fixtures) -> None:
    for vm, disk in (("lin-web01", 1), ("lvm-vm", 1)):
        vols = partitions(0, open_top(raw_disk(fixtures, vm, disk)))
        assert [v.scheme for v in vols] == ["disk"]


def _copy(fixtures: Fixtures, tmp_path: Path, vm: str) -> bytearray:
    return bytearray(raw_disk(fixtures, vm, 0).read_bytes()[: 2 * MiB])


def test_damaged_gpt_is_refused(fixtures: Fixtures, tmp_path: Path) -> None:
    data = _copy(fixtures, tmp_path, "Win File Server")
    data[512 + 56] ^= 0xFF  # the disk GUID, inside the checksummed header
    (tmp_path / "d.raw").write_bytes(bytes(data) + b"\0" * (300 * MiB - len(data)))
    with pytest.raises(CorruptImageError, match="GPT header checksum"):
        partitions(0, open_top(tmp_path / "d.raw"))


def test_extended_partition_loop_is_cut_with_a_note(fixtures: Fixtures, tmp_path: Path) -> None:
    data = bytearray(raw_disk(fixtures, "lvm-vm", 0).read_bytes())
    ext = 17 * MiB
    second = ext + MiB
    # EBR 1 links to a second EBR one MiB further on, which links to itself.
    struct.pack_into("<BBBBBBBBII", data, ext + 462, 0, 0, 0, 0, 5, 0, 0, 0, 2048, 2048)
    data[second : second + 512] = b"\0" * 512
    struct.pack_into("<BBBBBBBBII", data, second + 462, 0, 0, 0, 0, 5, 0, 0, 0, 2048, 2048)
    data[second + 510 : second + 512] = b"\x55\xaa"
    (tmp_path / "loop.raw").write_bytes(bytes(data))
    notes: list[str] = []
    vols = partitions(0, open_top(tmp_path / "loop.raw"), notes)
    assert [(v.number, v.type_id) for v in vols] == [(1, "83"), (5, "06"), (3, "8e")]
    assert notes == [
        "disk 0: the extended partition chain loops after logical partition 5; the rest of the chain "
        "was skipped"
    ]


def test_reserved_and_boot_partitions_are_named_not_offered(tmp_path: Path) -> None:
    """An MSR and a BIOS boot partition hold no files: no volume, and the mount's notes say why."""
    image = tmp_path / "gpt.raw"
    image.write_bytes(bytes(8 * MiB))
    subprocess.run(
        [
            "sgdisk",
            "-n",
            "1:2048:+1M",
            "-t",
            "1:EF02",
            "-n",
            "2:0:+1M",
            "-t",
            "2:0C01",
            "-n",
            "3:0:+2M",
            "-t",
            "3:8300",
            str(image),
        ],
        check=True,
        capture_output=True,
    )
    notes: list[str] = []
    vols = partitions(0, open_top(image), notes)
    assert [v.number for v in vols] == [3]
    assert notes == [
        "disk 0: GPT partition 1 is not a root: BIOS boot partition",
        "disk 0: GPT partition 2 is not a root: Microsoft reserved partition",
    ]
