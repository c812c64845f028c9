"""Scanning the fixture datastores finds exactly the VMs, points, times and chains the builder made."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from openflr.config import DatastoreSettings, Settings
from openflr.inventory.catalog import Catalog
from openflr.inventory.model import Inventory
from openflr.inventory.scanner import scan
from tests.imagebuilder import Fixtures


def settings_for(*stores: tuple[str, Path]) -> Settings:
    s = Settings()
    s.inventory.server_name = "flr-test"
    s.datastores = [DatastoreSettings(name, path, job=f"{name} job") for name, path in stores]
    return s


def summary(inv: Inventory, root: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for r in inv.replicas.values():
        out[r.folder.relative_to(root).as_posix()] = {
            "vm_name": r.vm_name,
            "display_name": r.display_name,
            "platform": r.platform,
            "points": [
                (p.created, [[f.relative_to(root).as_posix() for f in d.files] for d in p.disks])
                for p in r.points
            ],
        }
    return out


def expected(fx: Fixtures, name: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for folder, vm in fx.expected(name).items():
        if folder == "problems":
            continue
        out[folder] = {
            "vm_name": vm["vm_name"],
            "display_name": vm["display_name"],
            "platform": vm["platform"],
            "points": [
                (datetime.fromisoformat(p["time"].replace("Z", "+00:00")), p["disks"]) for p in vm["points"]
            ],
        }
    return out


@pytest.mark.parametrize("layout", ["vmware", "hyperv", "qcow2"])
def test_scan_finds_exactly_what_was_built(fixtures: Fixtures, layout: str) -> None:
    root = fixtures.datastore(layout)
    inv = scan(settings_for((layout, root)))
    assert inv.problems == []
    assert summary(inv, root) == expected(fixtures, layout)
    assert all(len(r.points) == 3 for r in inv.replicas.values())


def test_vmware_snapshot_names_are_labels(fixtures: Fixtures) -> None:
    inv = scan(settings_for(("vmware", fixtures.datastore("vmware"))))
    labels = sorted(p.label for p in inv.points.values())
    assert labels == sorted(["Restore point 1", "Restore point 2", "Restore point 3"] * 2)


def test_ids_are_stable_across_scans_and_restarts(fixtures: Fixtures) -> None:
    stores = [(n, fixtures.datastore(n)) for n in ("vmware", "hyperv", "qcow2")]
    first = scan(settings_for(*stores))
    second = scan(settings_for(*stores))  # a new Settings object: what a restart sees
    assert sorted(first.replicas) == sorted(second.replicas)
    assert sorted(first.points) == sorted(second.points)
    assert len(first.points) == 18 and len(set(first.points)) == 18
    assert first.server.id == second.server.id


def test_ids_follow_the_datastore_name_not_its_path(fixtures: Fixtures, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    moved.symlink_to(fixtures.datastore("qcow2"))
    a = scan(settings_for(("q", fixtures.datastore("qcow2"))))
    b = scan(settings_for(("q", moved)))
    c = scan(settings_for(("other-name", moved)))
    assert sorted(a.points) == sorted(b.points)
    assert not set(a.points) & set(c.points)


def test_broken_folders_are_reported_and_skipped(fixtures: Fixtures) -> None:
    root = fixtures.datastore("broken")
    inv = scan(settings_for(("broken", root), ("missing", Path("/nonexistent/datastore"))))
    assert [r.vm_name for r in inv.replicas.values()] == ["Good VM"]
    problems = {p.folder.name: p.message for p in inv.problems}
    for folder, file_name in fixtures.expected("broken")["problems"].items():
        assert file_name in problems[folder], problems
    assert "not a VMDK descriptor" in problems["Corrupt VM"]
    assert "parent dangling.vhdx not found" in problems["Dangling VM"]
    assert "file not found" in problems["Missing Delta"]
    assert "datastore folder not found" in problems["datastore"]


def _clone(src: Path, dst: Path) -> Path:
    """A writable copy of a datastore: configuration files copied, disk images hard-linked (cheap).
    Tests must only ever edit the copied configuration files."""

    def copy(s: str, d: str) -> None:
        if Path(s).suffix.lower() in (".vmx", ".vmsd", ".toml"):
            shutil.copy2(s, d)
        else:
            Path(d).hardlink_to(s)

    shutil.copytree(src, dst, copy_function=copy)
    return dst


def test_rescan_sees_new_and_removed_snapshots(fixtures: Fixtures, tmp_path: Path) -> None:
    root = _clone(fixtures.datastore("vmware"), tmp_path / "ds")
    catalog = Catalog(settings_for(("vmware", root)))
    changes: list[tuple[int, int]] = []
    catalog.add_listener(lambda old, new: changes.append((len(old.points), len(new.points))))
    before = catalog.rescan()
    vm = root / "Win File Server_replica"
    vmsd = vm / "Win File Server_replica.vmsd"
    text = vmsd.read_text()
    # A fourth snapshot freezes the current delta (-000003) ...
    vmsd.write_text(
        text.replace('snapshot.numSnapshots = "3"', 'snapshot.numSnapshots = "4"')
        + 'snapshot3.uid = "4"\nsnapshot3.displayName = "Restore point 4"\n'
        'snapshot3.createTimeHigh = "417657"\nsnapshot3.createTimeLow = "0"\n'
        'snapshot3.numDisks = "1"\nsnapshot3.disk0.fileName = "Win File Server_replica-000003.vmdk"\n'
        'snapshot3.disk0.node = "scsi0:0"\n'
    )
    added = catalog.rescan()
    new_ids = set(added.points) - set(before.points)
    assert len(new_ids) == 1
    assert added.points[new_ids.pop()].label == "Restore point 4"
    # ... and deleting the first snapshot's entry removes that point.
    vmsd.write_text(text.replace('snapshot0.uid = "1"', 'snapshotX.uid = "1"'))
    removed = catalog.rescan()
    assert len(removed.points) == len(before.points) - 1
    assert set(removed.points) < set(before.points)
    assert changes == [(0, 6), (6, 7), (7, 5)]


def test_unreadable_vmsd_numbers_are_a_problem(fixtures: Fixtures, tmp_path: Path) -> None:
    root = _clone(fixtures.datastore("vmware"), tmp_path / "ds")
    vmsd = root / "lin-web01_replica" / "lin-web01_replica.vmsd"
    vmsd.write_text(vmsd.read_text().replace('snapshot1.numDisks = "2"', 'snapshot1.numDisks = "two"'))
    inv = scan(settings_for(("vmware", root)))
    assert [r.display_name for r in inv.replicas.values()] == ["Win File Server"]
    assert "snapshot1.numdisks is not a number" in inv.problems[0].message


def test_manifest_restore_table(fixtures: Fixtures, tmp_path: Path) -> None:
    """A manifest's ``[restore]`` table becomes the VM's restore targets; a bad one is a problem."""
    vm = tmp_path / "ds" / "fs01"
    vm.mkdir(parents=True)
    (vm / "disk0.qcow2").hardlink_to(fixtures.datastore("broken") / "Good VM" / "disk0.qcow2")
    head = 'name = "fs01"\n[[points]]\ntime = "2026-11-01T21:00:00Z"\ndisks = ["disk0.qcow2"]\n'
    (vm / "openflr-vm.toml").write_text(
        head + '[restore]\nusername = "FS01\\\\restore"\npassword_env = "X"\n'
        'targets = { "C:" = "smb://fs01.corp/C$" }\n'
    )
    (replica,) = scan(settings_for(("ds", tmp_path / "ds"))).replicas.values()
    assert replica.guest is not None
    assert replica.guest.vm == "fs01" and replica.guest.username == "FS01\\restore"
    assert replica.guest.targets == {"C:": "smb://fs01.corp/C$"}
    (vm / "openflr-vm.toml").write_text(head + '[restore]\ntargets = { "C:" = "nfs://fs01/C" }\n')
    inv = scan(settings_for(("ds", tmp_path / "ds")))
    assert not inv.replicas
    assert "scheme must be smb://, sftp:// or file://" in inv.problems[0].message
