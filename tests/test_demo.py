"""The demo datastore shipped in the package."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from openflr import demo
from openflr.config import Settings
from openflr.guestfs.view import open_view
from openflr.inventory.scanner import scan
from tests.guestfs.truth import check_volume, root_for
from tests.imagebuilder import Fixtures, trees


def test_prepare_unpacks_once_and_scans_to_two_vms(tmp_path: Path) -> None:
    store = demo.prepare(tmp_path)
    assert store.name == "demo" and store.path == tmp_path / "demo-datastore"
    marker = store.path / ".archive-sha256"
    first = marker.stat().st_mtime_ns
    demo.prepare(tmp_path)
    assert marker.stat().st_mtime_ns == first  # unchanged archive: not unpacked again
    settings = Settings()
    settings.datastores = [store]
    inv = scan(settings)
    assert inv.problems == []
    by_vm = {r.display_name: r for r in inv.replicas.values()}
    assert sorted(by_vm) == ["Win File Server", "lin-web01"]
    expected_times = [
        datetime.fromtimestamp(s, UTC).replace(microsecond=us) for s, us in trees.POINT_TIMES.values()
    ]
    for replica in by_vm.values():
        assert replica.vm_name == replica.display_name + "_replica"
        assert [p.created for p in replica.points] == expected_times
        assert [p.label for p in replica.points] == ["Restore point 1", "Restore point 2", "Restore point 3"]
    assert [len(p.disks) for p in by_vm["lin-web01"].points] == [2, 2, 2]
    assert by_vm["Win File Server"].os_kind == "Windows"


def test_prepare_replaces_a_stale_copy(tmp_path: Path) -> None:
    store = demo.prepare(tmp_path)
    (store.path / ".archive-sha256").write_text("old")
    (store.path / "leftover.txt").write_text("x")
    demo.prepare(tmp_path)
    assert not (store.path / "leftover.txt").exists()


def test_archive_is_small() -> None:
    assert demo.ARCHIVE.stat().st_size < 5_000_000


def test_demo_points_hold_the_fixture_trees(tmp_path: Path, fixtures: Fixtures) -> None:
    """The shipped demo is the builder's current output: every point matches the ground truth."""
    store = demo.prepare(tmp_path)
    settings = Settings()
    settings.datastores = [store]
    inv = scan(settings)
    for replica in inv.replicas.values():
        for index, point in enumerate(replica.points):
            view = open_view([d.files for d in point.disks], replica.os_kind)
            try:
                truth = fixtures.manifest["vms"][replica.display_name][f"p{index + 1}"]
                for volume in truth["volumes"].values():
                    check_volume(view, root_for(view, volume), volume, hash_limit=40)
            finally:
                view.close()
