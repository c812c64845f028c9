"""Which restore target an item goes to, and under which name (docs/RESTORE.md, "Restore targets")."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from openflr.config import DatastoreSettings, GuestAccess, Settings
from openflr.core.restores import NoTargetError, guest_access, resolve_target
from openflr.inventory.model import Replica
from openflr.restore.writer import restored_name

ACCESS = GuestAccess(
    vm="*",
    targets={
        "C:": "smb://fs01/C$",
        "d:\\": "smb://fs01/D$/shares",
        "/": "sftp://web01/",
        "/srv": "file:///mnt/srv",
        "/srv/www": "sftp://web01:2222/var/www",
    },
)


@pytest.mark.parametrize(
    ("path", "url", "rest"),
    [
        ("C:/Users/alice/a.txt", "smb://fs01/C$", ["Users", "alice", "a.txt"]),
        ("c:/Users/alice", "smb://fs01/C$", ["Users", "alice"]),
        ("C:/a\\b/c", "smb://fs01/C$", ["a\\b", "c"]),  # a "\\" in a name is no separator
        ("/srv\\www/x", "sftp://web01/", ["srv\\www", "x"]),
        ("C:", "smb://fs01/C$", []),
        ("D:/Data/x", "smb://fs01/D$/shares", ["Data", "x"]),
        ("/etc/hosts", "sftp://web01/", ["etc", "hosts"]),
        ("/srv/data/db.bin", "file:///mnt/srv", ["data", "db.bin"]),
        ("/srv/www/index.html", "sftp://web01:2222/var/www", ["index.html"]),
        ("/srvx/a", "sftp://web01/", ["srvx", "a"]),  # a prefix of a name is not a folder
        ("/", "sftp://web01/", []),
    ],
)
def test_longest_guest_root_wins(path: str, url: str, rest: list[str]) -> None:
    address, parts, _key = resolve_target(ACCESS, path)
    assert address.url.rstrip("/") == url.rstrip("/")
    assert parts == rest


@pytest.mark.parametrize("path", ["E:/x", "Volume$3:/x"])
def test_no_target(path: str) -> None:
    with pytest.raises(NoTargetError, match="No restore target is configured"):
        resolve_target(ACCESS, path)
    with pytest.raises(NoTargetError):
        resolve_target(None, "C:/x")


def test_datastore_config_wins_over_the_manifest() -> None:
    manifest = GuestAccess(vm="fs01", username="from-manifest", targets={"C:": "smb://a/C$"})
    configured = GuestAccess(vm="FS0?", username="from-config", targets={"C:": "smb://b/C$"})
    other = GuestAccess(vm="*", username="other-datastore")
    settings = Settings(
        datastores=[
            DatastoreSettings("elsewhere", Path("/e"), guests=[other]),
            DatastoreSettings("prod", Path("/p"), guests=[configured]),
        ]
    )
    replica = Replica("r", "prod", "job", "fs01_replica", "fs01", "KVM", Path("/p/fs01"), (), guest=manifest)
    assert guest_access(settings, replica) is configured
    lone = Replica("r", "prod", "job", "web01_replica", "web01", "KVM", Path("/p/web01"), (), guest=manifest)
    assert guest_access(settings, lone) is manifest
    assert guest_access(Settings(), Replica("r", "x", "j", "v", "v", "KVM", Path("/"), ())) is None


def test_restored_names() -> None:
    when = datetime(2026, 11, 27, 9, 5, 7, tzinfo=UTC)
    assert restored_name("report.txt", when) == "RESTORED_20261127_090507_report.txt"
    assert restored_name("report.txt", when, 2) == "RESTORED_20261127_090507_report (2).txt"
    assert restored_name("Makefile", when, 3) == "RESTORED_20261127_090507_Makefile (3)"
