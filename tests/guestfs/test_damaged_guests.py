"""Degrade, never fail: a damaged part of a guest costs only itself. Each test damages one place of a
real guest (built here with the tools a distribution uses, or a copy of a fixture disk) and checks
that the point still opens, that the rest is there, and that ``notes`` names what was skipped."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from openflr.guestfs.view import open_view

MiB = 1024 * 1024


def _linux_disk(tmp_path: Path, make_etc: Callable[[Path], None]) -> Path:
    """A GPT disk of an ext4 root (label ``root``, its /etc made by ``make_etc``) and an ext4 data
    volume (label ``data``) that a good fstab mounts at /srv."""
    disk = tmp_path / "disk.raw"
    subprocess.run(["truncate", "-s", "40M", disk], check=True)
    subprocess.run(
        ["sgdisk", "-n1:2048:+16M", "-t1:8300", "-n2:0:+16M", "-t2:8300", disk],
        check=True,
        capture_output=True,
    )
    etc = tmp_path / "root" / "etc"
    etc.mkdir(parents=True)
    (etc / "hostname").write_text("damaged\n")
    make_etc(etc)
    data = tmp_path / "data"
    (data / "www").mkdir(parents=True)
    (data / "www" / "index.html").write_text("hello\n")
    for tree, label, start in ((etc.parent, "root", 2048), (data, "data", 2048 + 16 * 2048)):
        mke2fs = ["mke2fs", "-q", "-F", "-t", "ext4", "-L", label, "-E", f"offset={start * 512}"]
        subprocess.run([*mke2fs, "-d", str(tree), str(disk), "16M"], check=True, capture_output=True)
    return disk


GOOD_FSTAB = "LABEL=root / ext4 defaults 0 1\nLABEL=data /srv ext4 defaults 0 2\n"
GOOD_PASSWD = "root:x:0:0:root:/root:/bin/sh\n"


def _fstab(kind: str) -> Callable[[Path], None]:
    def make(etc: Path) -> None:
        (etc / "passwd").write_text(GOOD_PASSWD)
        fstab = etc / "fstab"
        if kind == "binary":
            fstab.write_bytes(bytes(range(256)) * 16)
        elif kind == "huge":
            fstab.write_text(GOOD_FSTAB + "#" * (2 * MiB) + "\n")
        elif kind == "symlink-loop":
            os.symlink("fstab", fstab)
        elif kind == "directory":
            fstab.mkdir()
            (fstab / "x").write_text(GOOD_FSTAB)

    return make


@pytest.mark.parametrize("kind", ["binary", "huge", "symlink-loop", "directory"])
def test_an_unusable_fstab_costs_only_the_grafts(tmp_path: Path, kind: str) -> None:
    view = open_view([[_linux_disk(tmp_path, _fstab(kind))]], "Linux")
    try:
        assert view.linux_tree
        assert [(r.name, r.mount) for r in view.roots] == [("/", ()), ("data:", None)]
        assert view.open(view.locate("/etc/hostname")).pread(100, 0) == b"damaged\n"
        assert view.open(view.locate("data:/www/index.html")).pread(100, 0) == b"hello\n"
        (note,) = view.notes
        assert note.startswith("/etc/fstab ") and "not grafted" in note
    finally:
        view.close()


def test_garbage_lines_in_fstab_cost_only_themselves(tmp_path: Path) -> None:
    def make(etc: Path) -> None:
        (etc / "passwd").write_text(GOOD_PASSWD)
        (etc / "fstab").write_bytes(
            b"garbage\n" + b"x" * 10000 + b" /mnt ext4\n" + GOOD_FSTAB.encode() + b"a b\n# comment\n\n"
        )

    view = open_view([[_linux_disk(tmp_path, make)]], "Linux")
    try:
        assert [(r.name, r.mount) for r in view.roots] == [("/", ()), ("/srv", ("srv",))]
        assert view.open(view.locate("/srv/www/index.html")).pread(100, 0) == b"hello\n"
        assert view.notes == ["/etc/fstab: 3 line(s) could not be read and were skipped"]
    finally:
        view.close()


def _passwd(content: bytes | None) -> Callable[[Path], None]:
    def make(etc: Path) -> None:
        (etc / "fstab").write_text(GOOD_FSTAB)
        if content is None:
            (etc / "passwd").mkdir()
        else:
            (etc / "passwd").write_bytes(content)

    return make


@pytest.mark.parametrize(
    ("content", "note"),
    [
        (bytes(range(256)) * 16, "/etc/passwd is not a text file: owners are shown as numbers"),
        (None, "/etc/passwd is a folder, not a file: owners are shown as numbers"),
        # A uid of Unicode digits (str.isdigit() is true, int() refuses it) and a name of control characters.
        (
            "root:x:\u00b2:0::/:/bin/sh\n\x1b[2J:x:0:0::/:/bin/sh\n".encode(),
            "/etc/passwd holds no account lines",
        ),
    ],
)
def test_an_unusable_passwd_costs_only_the_owner_names(
    tmp_path: Path, content: bytes | None, note: str
) -> None:
    view = open_view([[_linux_disk(tmp_path, _passwd(content))]], "Linux")
    try:
        assert [r.name for r in view.roots] == ["/", "/srv"]
        owners = {e.name: e.owner for e in view.scandir(view.locate("/etc"))}
        assert owners["hostname"] == "0"
        (shown,) = view.notes
        assert shown.startswith(note)
    finally:
        view.close()


def test_a_good_passwd_names_owners(tmp_path: Path) -> None:
    view = open_view([[_linux_disk(tmp_path, _passwd(GOOD_PASSWD.encode()))]], "Linux")
    try:
        assert view.notes == []
        assert {e.name: e.owner for e in view.scandir(view.locate("/etc"))}["hostname"] == "root"
    finally:
        view.close()
