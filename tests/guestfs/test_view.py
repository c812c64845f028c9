"""Every block format x volume system x file system of the fixtures, through the whole engine,
against the builder's ground truth: each point shows its own version of every file."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from openflr.guestfs.view import open_view
from tests.guestfs.truth import check_volume, root_for
from tests.imagebuilder import Fixtures

CASES = [
    (ds, vm, i)
    for ds, vms in (("vmware", 2), ("hyperv", 2), ("qcow2", 2), ("esxi", 2))
    for vm in range(vms)
    for i in range(3)
] + [("misc", 0, 0)]


def _vm(fixtures: Fixtures, datastore: str, index: int) -> tuple[str, dict[str, Any]]:
    """The folder and expected facts (parsed JSON) of the ``index``-th VM of ``datastore``."""
    entries = [(k, v) for k, v in fixtures.expected(datastore).items() if k != "problems"]
    return sorted(entries)[index]


@pytest.mark.parametrize(("datastore", "vm_index", "point"), CASES)
def test_point_matches_ground_truth(fixtures: Fixtures, datastore: str, vm_index: int, point: int) -> None:
    _folder, vm = _vm(fixtures, datastore, vm_index)
    pt = vm["points"][point]
    view = open_view([[fixtures.datastore(datastore) / f for f in disk] for disk in pt["disks"]])
    try:
        truth = fixtures.manifest["vms"][vm["display_name"]][f"p{point + 1}"]
        assert view.notes == []
        # the misc VM has no /etc/passwd: uids stay numbers
        owners: dict[int, str] | None = {} if datastore == "misc" else None
        for volume in truth["volumes"].values():
            check_volume(view, root_for(view, volume), volume, hash_limit=150, owners=owners)
        assert len(view.roots) == len(truth["volumes"])
    finally:
        view.close()


def test_windows_roots_come_from_the_guest_registry(fixtures: Fixtures) -> None:
    _folder, vm = _vm(fixtures, "qcow2", 0)
    view = open_view([[fixtures.datastore("qcow2") / f for f in d] for d in vm["points"][0]["disks"]])
    try:
        assert [(r.name, r.fs.kind if r.fs else None) for r in view.roots] == [("C:", "ntfs"), ("S:", "fat")]
        assert not view.linux_tree
        assert [e.name for e in view.scandir(view.locate(""))] == ["C:", "S:"]
    finally:
        view.close()


def test_linux_tree_follows_fstab(fixtures: Fixtures) -> None:
    _folder, vm = _vm(fixtures, "qcow2", 1)
    view = open_view([[fixtures.datastore("qcow2") / f for f in d] for d in vm["points"][2]["disks"]])
    try:
        assert [(r.name, r.mount) for r in view.roots] == [
            ("/", ()),
            ("/scratch", ("scratch",)),
            ("/srv", ("srv",)),
        ]
        top = {e.name for e in view.scandir(view.locate("/"))}
        assert {"etc", "home", "srv", "scratch"} <= top  # srv and scratch exist only as mount points
        index = view.locate("/srv/www/index.html")
        assert index.root is not None and index.root.name == "/srv"
        www = view.locate("srv/www")
        assert www.entry is not None and www.entry.is_dir
        assert view.path_of(view.locate("srv/www").root, ["www"]) == "/srv/www"
    finally:
        view.close()


def test_no_fstab_names_roots_by_label(fixtures: Fixtures) -> None:
    pt = fixtures.expected("misc")["lvm-vm"]["points"][0]
    view = open_view([[fixtures.datastore("misc") / f for f in d] for d in pt["disks"]])
    try:
        assert sorted(r.name for r in view.roots) == sorted(
            ["boot:", "DATA16:", "EXFAT:", "lvroot:", "lvdata:"]
        )
        schemes = {
            r.name: (r.volume.scheme, r.volume.number, r.fs.kind if r.fs else None) for r in view.roots
        }
        assert schemes["DATA16:"] == ("mbr", 5, "fat")  # a logical partition in the extended one
        assert schemes["lvroot:"][0] == "lvm" and schemes["EXFAT:"] == ("disk", None, "exfat")
        assert list(view.scandir(view.locate("EXFAT:"))) == []
    finally:
        view.close()


def test_a_damaged_registry_hive_costs_only_the_drive_letters(fixtures: Fixtures, tmp_path: Path) -> None:
    """The SYSTEM hive's header is broken in a real image: the point opens, with fallback names."""
    image = bytearray((fixtures.root / "raw" / "win-disk0-p1.raw").read_bytes())
    (at,) = [m.start() for m in re.finditer(b"regf", image) if m.start() % 4096 == 0]
    image[at + 508 : at + 512] = b"\xff\xff\xff\xff"  # the header's checksum
    damaged = tmp_path / "win.raw"
    damaged.write_bytes(image)
    view = open_view([[damaged]])
    try:
        assert [r.name for r in view.roots] == ["C:", "Volume$0:"]
        (note,) = view.notes
        assert note.startswith("drive letters could not be read from the guest registry: ")
        assert view.scandir(view.locate("C:/Windows/System32/config"))
    finally:
        view.close()


def test_swap_is_no_root_and_the_view_says_so(tmp_path: Path) -> None:
    """A Linux disk of an ext4 root and a swap partition, made by the tools a distribution uses."""
    disk = tmp_path / "disk.raw"
    subprocess.run(["truncate", "-s", "40M", disk], check=True)
    subprocess.run(
        ["sgdisk", "-n1:2048:+24M", "-t1:8300", "-n2:0:0", "-t2:8200", disk], check=True, capture_output=True
    )
    tree = tmp_path / "tree" / "etc"
    tree.mkdir(parents=True)
    (tree / "hostname").write_text("swapper\n")
    (tree / "fstab").write_text("LABEL=root / ext4 defaults 0 1\n/dev/sda2 none swap sw 0 0\n")
    mke2fs = ["mke2fs", "-q", "-F", "-t", "ext4", "-L", "root", "-E", f"offset={2048 * 512}"]
    subprocess.run([*mke2fs, "-d", str(tree.parent), str(disk), "24M"], check=True)
    swap = tmp_path / "swap.raw"
    subprocess.run(["truncate", "-s", "8M", swap], check=True)
    subprocess.run(["mkswap", swap], check=True, capture_output=True)
    with open(disk, "r+b") as out:
        out.seek((2048 + 24 * 2048) * 512)
        out.write(swap.read_bytes())
    view = open_view([[disk]], "Linux")
    try:
        assert [r.name for r in view.roots] == ["/"]
        assert view.notes == ["volume 1 is not a root: Linux swap space"]
        assert sorted(e.name for e in view.scandir(view.locate("/etc"))) == ["fstab", "hostname"]
    finally:
        view.close()


def test_names_the_engine_cannot_read_hide_none_of_their_siblings(tmp_path: Path) -> None:
    """ext4 holds names as bytes; one that is not UTF-8, or 255 bytes long (the largest allowed), must
    not make the rest of its folder 404. debugfs writes the entries in this order, so they come first."""
    content = tmp_path / "content"
    content.write_bytes(b"same")
    disk = tmp_path / "ext4.raw"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(disk), "8M"], check=True)
    commands = tmp_path / "commands"
    names = [b"a" * 255, b"caf\xe9.txt", b"ok.txt", b"sub/inner.txt"]
    writes = b"".join(b"write %s %s\n" % (os.fsencode(content), name) for name in names)
    commands.write_bytes(b"mkdir dir\ncd dir\nmkdir sub\n" + writes)
    subprocess.run(["debugfs", "-w", "-f", str(commands), str(disk)], check=True, capture_output=True)
    view = open_view([[disk]], "Linux")
    try:
        (root,) = view.roots

        def read(path: str) -> bytes:
            return view.open(view.locate(f"{root.name}/{path}")).pread(100, 0)

        assert read("dir/ok.txt") == b"same"
        assert read("dir/sub/inner.txt") == b"same"
        assert [e.name for e in view.scandir(view.locate(f"{root.name}/dir/sub"))] == ["inner.txt"]
        assert {"ok.txt", "sub"} <= {e.name for e in view.scandir(view.locate(f"{root.name}/dir"))}
    finally:
        view.close()
