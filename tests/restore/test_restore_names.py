"""Restores keep every name (docs/STORAGE-NOTES.md, "Names"): a file:// and an SFTP target get each
path component's original on-disk bytes (a guest's ``b"caf\\xe9"`` is ``b"caf\\xe9"`` on the target, a
newline in a name is a newline), an SMB target gets the shown name (UTF-16 text) and refuses, item by
item, the names Windows cannot hold. Through the API of a real server, into a real OpenSSH and Samba
server and a local folder, checked on the target's disk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.api import odd_names
from tests.api.flr import headers, list_all, mount, roots, wait_task
from tests.api.odd_names import LIN_VM, RAW_VM, WIN_VM, shown
from tests.api.test_downloads import points_of
from tests.restore.services import SambaServer, SshServer
from tests.restore.test_restore_api import SMB_PASSWORD_ENV, original, owned_folder, restore
from tests.support import SHARED_SERVER, Api, RunningServer, add_users, plain_client, run_server

JOB = "NAMES Replication"
LIN_SFTP, RAW_SFTP = "names-lin-sftp", "names-raw-sftp"
WINDOWS_REFUSES = set('\\:*?"<>|')


@dataclass(frozen=True)
class Targets:
    lin_local: Path
    raw_local: Path
    lin_sftp: Path
    raw_sftp: Path
    win_smb: Path


@pytest.fixture(scope="module")
def targets(
    samba_server: SambaServer, ssh_server: SshServer, tmp_path_factory: pytest.TempPathFactory
) -> Targets:
    local = tmp_path_factory.mktemp("names-targets")
    return Targets(
        lin_local=owned_folder(local / "lin"),
        raw_local=owned_folder(local / "raw"),
        lin_sftp=owned_folder(ssh_server.folder / "names-lin"),
        raw_sftp=owned_folder(ssh_server.folder / "names-raw"),
        win_smb=owned_folder(samba_server.folder / "names-win"),
    )


def _config(store: Path, t: Targets, ssh: SshServer, samba: SambaServer, secret: Path) -> str:
    sftp = f"sftp://127.0.0.1:{ssh.port}"
    smb = f"smb://127.0.0.1:{samba.port}/data/restore/{t.win_smb.name}"
    guests = [
        (LIN_VM, {"/": f"file://{t.lin_local}"}),
        (RAW_VM, {"/": f"file://{t.raw_local}"}),
        (LIN_SFTP, {"/": f"{sftp}{t.lin_sftp}"}),
        (RAW_SFTP, {"/": f"{sftp}{t.raw_sftp}"}),
        (WIN_VM, {"Volume$0:": smb, "C:": smb}),
    ]
    text = f'{SHARED_SERVER}\n[restore]\nknown_hosts = "{ssh.known_hosts}"\nconnect_timeout = 5\n\n'
    text += f'[[datastores]]\nname = "names"\npath = "{store}"\njob = "{JOB}"\n'
    for vm, where in guests:
        pairs = ", ".join(f'"{k}" = "{v}"' for k, v in where.items())
        if vm == WIN_VM:
            creds = f'username = "WORKGROUP\\\\{samba.username}"\npassword_env = "{SMB_PASSWORD_ENV}"\n'
        else:
            creds = f'username = "{ssh.username}"\npassword_file = "{secret}"\n'
        text += f'\n[[datastores.guests]]\nvm = "{vm}"\n{creds}targets = {{ {pairs} }}\n'
    return text


@pytest.fixture(scope="module")
def names_restore_server(
    targets: Targets,
    ssh_server: SshServer,
    samba_server: SambaServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("names-restore-server")
    add_users(data)
    store = odd_names.build_datastore(data / "store", data / "work", {LIN_SFTP: LIN_VM, RAW_SFTP: RAW_VM})
    secret = data / "guest-password"
    secret.write_text(ssh_server.password + "\n")
    secret.chmod(0o600)
    config = _config(store, targets, ssh_server, samba_server, secret)
    env = {SMB_PASSWORD_ENV: samba_server.password}
    with run_server(data, https=False, config=config, env=env) as server:
        yield server


@pytest.fixture(scope="module")
def rapi(names_restore_server: RunningServer) -> Iterator[Api]:
    with plain_client(timeout=120) as http:
        yield Api(http, names_restore_server.base, "http")


@pytest.fixture(scope="module")
def token(rapi: Api) -> str:
    return rapi.logon("flrop")


def _restore_n(api: Api, token: str, vm: str) -> dict[str, object]:
    """Restore the guest's folder ``n`` to its original location; the finished task."""
    href = mount(api, token, points_of(api, token, JOB, vm)[-1])
    top = next(iter(roots(api, token, href)))
    path = "/n" if top == "/" else f"{top}/n"
    return restore(api, token, href, path, original(overwrite=True))


def on_disk(folder: Path) -> dict[bytes, bytes]:
    """Every file below ``folder``: path relative to it (bytes, as the disk holds them) -> content."""
    out = {}
    top = os.fsencode(folder)
    for here, _dirs, files in os.walk(top):
        for name in files:
            path = os.path.join(here, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, top)] = fh.read()
    return out


@pytest.mark.parametrize(
    ("vm", "where"),
    [(LIN_VM, "lin_local"), (LIN_SFTP, "lin_sftp")],
)
def test_posix_targets_get_the_bytes_of_each_name(
    rapi: Api, token: str, targets: Targets, vm: str, where: str
) -> None:
    task = _restore_n(rapi, token, vm)
    assert task["Result"]["Success"], task  # type: ignore[index]
    assert on_disk(getattr(targets, where) / "n") == odd_names.lin_files()


@pytest.mark.parametrize(
    ("vm", "where"),
    [(RAW_VM, "raw_local"), (RAW_SFTP, "raw_sftp")],
)
def test_names_that_are_not_utf8_are_restored_as_the_same_bytes(
    rapi: Api, token: str, targets: Targets, vm: str, where: str
) -> None:
    """Needs an ext4 engine that reads names as bytes (the one before it left these out)."""
    task = _restore_n(rapi, token, vm)
    assert task["Result"]["Success"], task  # type: ignore[index]
    assert on_disk(getattr(targets, where) / "n") == odd_names.raw_files()


def test_an_smb_target_gets_the_shown_names(rapi: Api, token: str, targets: Targets) -> None:
    task = _restore_n(rapi, token, WIN_VM)
    message = str(task["Result"]["Message"])  # type: ignore[index]
    expected, refused = {}, set()
    for rel, data in odd_names.win_files().items():
        names = [shown(p) for p in rel.split(b"/")]
        bad = next((i for i, n in enumerate(names) if set(n) & WINDOWS_REFUSES), None)
        if bad is None:
            expected["/".join(names).encode()] = data  # Samba keeps names as UTF-8 on its disk
        else:  # the item itself fails; nothing inside a folder that failed is tried
            refused.add(tuple(names[: bad + 1]))
    assert on_disk(targets.win_smb / "n") == expected
    assert not task["Result"]["Success"]  # type: ignore[index]
    assert f"{len(refused)} item(s) failed" in message, message
    assert "cannot be written to an SMB share: Windows names cannot hold" in message


@pytest.mark.parametrize(
    ("vm", "where"), [(LIN_VM, "lin_local"), (LIN_SFTP, "lin_sftp"), (RAW_VM, "raw_local")]
)
def test_each_entrys_restore_link_restores_that_entry(
    rapi: Api, token: str, targets: Targets, vm: str, where: str
) -> None:
    """The ``Restore`` link of every listed entry restores that entry, under its on-disk name."""
    href = mount(rapi, token, points_of(rapi, token, JOB, vm)[-1])
    files, dirs = list_all(rapi, token, href + "/n")
    folder = getattr(targets, where) / "n"
    files_of = odd_names.FILES_OF[{LIN_SFTP: LIN_VM, RAW_SFTP: RAW_VM}.get(vm, vm)]
    raw = {shown(rel): rel for rel in files_of if b"/" not in rel}
    for entry in files:
        link = next(lk["Href"] for lk in entry["Links"] if lk["Rel"] == "Restore")
        r = rapi.post(link, json=original(overwrite=True), headers=headers(token))
        assert r.status_code == 202, r.text
        task = wait_task(rapi, token, r.json()["Href"], 120)
        assert task["Result"]["Success"], (entry["Name"], task)
        name = raw[entry["Name"]]
        with open(os.fsencode(folder) + b"/" + name, "rb") as fh:
            assert fh.read() == files_of[name], entry["Name"]
    assert files and dirs
