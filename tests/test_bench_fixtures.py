"""The download bench's added chains (bench/fixtures.py ``add_chains``), built over a small stand-in
for the ``big-files`` disk: each VM opens through the inventory's chain and reads the disk's bytes
with its layers' 4 KiB changes in the last 128 KiB, qemu agrees where it reads the format, and a
second call builds nothing. The download rows name every one of them (bench/downloading.py)."""

from __future__ import annotations

import random
import subprocess
import tomllib
from pathlib import Path

from bench import downloading, fixtures

from openflr.guestfs import images
from openflr.guestfs.disks import open_chain

MiB = 1024 * 1024
SIZE = 8 * MiB


def _datastore(tmp_path: Path) -> tuple[Path, bytes]:
    ds = tmp_path / "datastore"
    (ds / "big-files").mkdir(parents=True)
    (ds / "big-vhdx").mkdir()
    data = random.Random(5).randbytes(SIZE)
    raw = ds / "big-files" / "disk0.raw"
    raw.write_bytes(data)
    vhdx = ds / "big-vhdx" / "layer0.vhdx"
    subprocess.run(
        ["qemu-img", "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic", str(raw), str(vhdx)],
        check=True,
        capture_output=True,
    )
    return ds, data


def _expected(data: bytes, layers: int) -> bytes:
    out = bytearray(data)
    for i in range(1, layers):
        at = SIZE - 128 * 1024 + i * 4096
        out[at : at + 4096] = bytes([i]) * 4096
    return bytes(out)


def _read(top: Path) -> bytes:
    chain = open_chain([i.path for i in images.chain(top)])
    try:
        out = bytearray(chain.size)
        for pos in range(0, chain.size, MiB):
            chain.fill(memoryview(out)[pos : pos + MiB], pos)
        return bytes(out)
    finally:
        chain.close()


def test_added_chains_read_the_big_files_disk(tmp_path: Path) -> None:
    ds, data = _datastore(tmp_path)
    fixtures.add_chains(ds)
    layers = {"big-vmdk-flat": 1, "big-esxi-vmfssparse": 3, "big-esxi-sesparse": 3, "big-vhdx-32": 32}
    assert set(layers) == set(fixtures.CHAINS)
    for name, depth in layers.items():
        doc = tomllib.loads((ds / name / "openflr-vm.toml").read_text())
        assert doc["name"] == name
        top = ds / name / doc["points"][0]["disks"][0]
        assert len(images.chain(top)) == depth, name
        expected = _expected(data, depth)
        assert _read(top) == expected, name
        if name != "big-vhdx-32":  # qemu reads flat and ESXi VMDKs, not differencing VHDX
            subprocess.run(
                ["qemu-img", "convert", "-O", "raw", str(top), str(tmp_path / "q.raw")], check=True
            )
            assert (tmp_path / "q.raw").read_bytes() == expected, name
    # the bases are links to the disks already there, not copies
    assert (ds / "big-vmdk-flat" / "disk0-flat.vmdk").stat().st_ino == (
        ds / "big-files" / "disk0.raw"
    ).stat().st_ino
    assert (ds / "big-vhdx-32" / "layer00.vhdx").stat().st_ino == (
        ds / "big-vhdx" / "layer0.vhdx"
    ).stat().st_ino
    built = {p: p.stat().st_mtime_ns for p in ds.rglob("*")}
    fixtures.add_chains(ds)  # all there: nothing is built again
    assert {p: p.stat().st_mtime_ns for p in ds.rglob("*")} == built
    assert not [p for p in ds.parent.iterdir() if p.name.endswith(".partial") or p.name.startswith("chains-")]


def test_every_chain_has_a_download_row() -> None:
    assert set(fixtures.CHAINS) <= set(downloading.CHAINS)
    assert {"big-qcow2", "big-vmdk", "big-vhdx"} <= set(downloading.CHAINS)
    assert len(set(downloading.CHAINS.values())) == len(downloading.CHAINS)  # rows tell them apart
    assert downloading.NEED == 0.90
