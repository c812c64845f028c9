"""The demo datastore shipped in the package."""

from __future__ import annotations

import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

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


def _archive(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(path, "w:xz") as tar:
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    return path


@pytest.mark.parametrize(
    ("name", "kind", "message"),
    [
        ("../evil.txt", tarfile.REGTYPE, "unsafe member name"),
        ("/etc/evil.txt", tarfile.REGTYPE, "unsafe member name"),
        ("vm/link", tarfile.SYMTYPE, "not a regular file or folder"),
        ("vm/dev", tarfile.CHRTYPE, "not a regular file or folder"),
    ],
)
def test_unpack_refuses_what_is_not_a_plain_file(
    tmp_path: Path, name: str, kind: bytes, message: str
) -> None:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
    archive = _archive(tmp_path / "bad.tar.xz", member, b"x" if kind == tarfile.REGTYPE else b"")
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(ValueError, match=message):
        demo.unpack(archive, into)
    assert not (tmp_path / "evil.txt").exists()
    assert not (into / "vm" / "link").exists()


def test_unpack_needs_no_tarfile_filter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Debian 12's Python 3.11.2 has no ``extractall(filter=...)``: the demo must not need it."""

    def no_extractall(*_args: object, **_kw: object) -> None:
        raise AssertionError("extractall is not used")

    monkeypatch.setattr(tarfile.TarFile, "extractall", no_extractall)
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    store = demo.prepare(tmp_path)
    assert sorted(p.name for p in store.path.iterdir() if p.is_dir()) == ["Win File Server", "lin-web01"]


def test_set_up_gives_every_guest_root_a_restore_target(tmp_path: Path) -> None:
    """The demo's targets cover every root its points show (a restore from any of them works)."""
    setup = demo.set_up(tmp_path)
    assert setup.config_file == tmp_path / "openflr.toml"
    settings = Settings()
    settings.datastores = [setup.datastore]
    inv = scan(settings)
    for replica in inv.replicas.values():
        (access,) = [g for g in setup.datastore.guests if g.vm == replica.display_name]
        for url in access.targets.values():
            assert url.startswith(setup.restored.as_uri() + "/") and Path(url[len("file://") :]).is_dir()
        for point in replica.points:
            view = open_view([d.files for d in point.disks], replica.os_kind)
            try:
                roots = [root.name for root in view.roots]
            finally:
                view.close()
            for root in roots:
                assert any(root == t or root.startswith(t.rstrip("/") + "/") for t in access.targets), root
