"""The restore target contract, against a local folder, a real Samba share and a real OpenSSH SFTP server.

Every test checks what the target did on disk, not only what it answered. Time stamps are compared at
each target's resolution: the local file system keeps nanoseconds, SMB carries FILETIME (100 ns units),
SFTP version 3 (OpenSSH) whole seconds; the sub-resolution part is dropped (rounded down).
"""

from __future__ import annotations

import errno
import logging
import os
import pwd
import socket
import stat as stat_mode
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
import smbclient  # type: ignore[import-untyped,unused-ignore]
from smbprotocol.security_descriptor import (  # type: ignore[import-untyped,unused-ignore]
    AccessAllowedAce,
    AclPacket,
    SIDPacket,
    SMB2CreateSDBuffer,
)

from openflr.restore.targets.base import (
    Credentials,
    Target,
    TargetAddress,
    TargetAuthError,
    TargetError,
    TargetFullError,
    TargetLinkError,
    TargetNameError,
    TargetUnreachableError,
    TargetUnsupportedError,
)
from openflr.restore.targets.connect import ConnectOptions, connect
from openflr.restore.targets.smb import get_security
from tests.restore import services
from tests.restore.sd import allowed_aces, owner_and_group
from tests.restore.services import SambaServer, SshServer

pytestmark = pytest.mark.anyio

MiB = 1 << 20
SCHEMES = ("file", "smb", "sftp")
SERVERS = ("smb", "sftp")
MTIME_NS = 1_600_000_000_123_456_789
PRECISION_NS = {"file": 1, "smb": 100, "sftp": 1_000_000_000}
USERS_SID = "S-1-5-32-545"  # BUILTIN\Users
FILE_GENERIC_READ = 0x120089


@dataclass(frozen=True)
class Place:
    """Where a test writes: a fresh folder, its target URL and how to log on."""

    scheme: str
    url: str
    folder: Path
    """The folder ``url`` names, on this machine's disk."""
    credentials: Credentials | None
    options: ConnectOptions

    async def connect(self) -> Target:
        return await connect(TargetAddress.parse(self.url), self.credentials, self.options)


@dataclass(frozen=True)
class Case:
    place: Place
    target: Target

    @property
    def scheme(self) -> str:
        return self.place.scheme

    @property
    def folder(self) -> Path:
        return self.place.folder


def fresh_folder(parent: Path) -> Path:
    """A new empty folder below ``parent`` that the servers' user owns."""
    return put(parent / f"t-{uuid.uuid4().hex[:12]}", None)


def put(path: Path, data: bytes | None) -> Path:
    """A file (or with None a folder) made directly on disk, owned by the user the servers log on as."""
    if data is None:
        path.mkdir()
    else:
        path.write_bytes(data)
    user = pwd.getpwnam(services.USER)
    os.chown(path, user.pw_uid, user.pw_gid)
    return path


def place(request: pytest.FixtureRequest, scheme: str, *, full: bool = False) -> Place:
    """A fresh folder for ``scheme``; with ``full`` on a 4 MiB tmpfs."""
    if scheme == "file":  # "full": the tmpfs behind Samba's "full" share will do
        full_folder = request.getfixturevalue("samba_server").full_folder if full else None
        folder = fresh_folder(full_folder or request.getfixturevalue("tmp_path"))
        return Place(scheme, f"file://{folder}", folder, None, ConnectOptions(timeout=10))
    if scheme == "smb":
        smb: SambaServer = request.getfixturevalue("samba_server")
        base_url, parent = (smb.full_url, smb.full_folder) if full else (smb.url, smb.folder)
        folder = fresh_folder(parent)
        credentials = Credentials(smb.username, smb.password)
        return Place(scheme, f"{base_url}/{folder.name}", folder, credentials, ConnectOptions(timeout=10))
    ssh: SshServer = request.getfixturevalue("ssh_server")
    base_url, parent = (ssh.full_url, ssh.full_folder) if full else (ssh.url, ssh.folder)
    folder = fresh_folder(parent)
    options = ConnectOptions(timeout=10, known_hosts=ssh.known_hosts)
    return Place(
        scheme, f"{base_url}/{folder.name}", folder, Credentials(ssh.username, ssh.password), options
    )


@pytest.fixture(params=SCHEMES)
def where(request: pytest.FixtureRequest) -> Place:
    return place(request, request.param)


@pytest.fixture
async def case(where: Place) -> AsyncIterator[Case]:
    """An open target on a fresh folder, for each of file://, smb:// and sftp://."""
    async with await where.connect() as target:
        yield Case(where, target)


@pytest.fixture(params=("file", "sftp"))
async def posix_case(request: pytest.FixtureRequest) -> AsyncIterator[Case]:
    """An open target on a fresh folder, for the targets that have symbolic links."""
    where = place(request, request.param)
    async with await where.connect() as target:
        yield Case(where, target)


async def write_file(target: Target, parts: tuple[str, ...], data: bytes) -> None:
    writer = await target.create(parts)
    for start in range(0, len(data), MiB):
        await writer.write(data[start : start + MiB])
    await writer.close()


def exception_texts(exc: BaseException) -> list[str]:
    """The text of an exception and of every exception chained to it."""
    texts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(texts) < 20:
        texts += [str(seen), repr(seen), getattr(seen, "message", "")]
        seen = seen.__cause__ or seen.__context__
    return texts


# --- writing files --------------------------------------------------------------------------------------


async def test_write_in_chunks_lands_on_disk(case: Case) -> None:
    data = os.urandom(4 * MiB + 12345)
    await write_file(case.target, ("restored.bin",), data)  # 1 MiB chunks, as the restore writer writes
    assert (case.folder / "restored.bin").read_bytes() == data
    item = await case.target.stat(("restored.bin",))
    assert item is not None and not item.is_dir and item.size == len(data) and item.name == "restored.bin"


async def test_create_refuses_an_existing_file(case: Case) -> None:
    put(case.folder / "there.txt", b"keep me")
    with pytest.raises(TargetError) as info:
        await case.target.create(("there.txt",))
    assert "there.txt" in info.value.message
    assert (case.folder / "there.txt").read_bytes() == b"keep me"


async def test_empty_file(case: Case) -> None:
    await write_file(case.target, ("empty",), b"")
    assert (case.folder / "empty").read_bytes() == b""


async def test_abort_removes_the_partial_file(case: Case) -> None:
    writer = await case.target.create(("partial.bin",))
    await writer.write(os.urandom(MiB))
    assert (case.folder / "partial.bin").exists()
    await writer.abort()
    assert not (case.folder / "partial.bin").exists()
    assert await case.target.stat(("partial.bin",)) is None
    await writer.abort()  # twice is fine and still does not raise


async def test_abort_of_a_closed_file_removes_it(case: Case) -> None:
    writer = await case.target.create(("done.bin",))
    await writer.write(b"x" * 1000)
    await writer.close()
    await writer.abort()
    assert not (case.folder / "done.bin").exists()


# --- stat, folders, names -------------------------------------------------------------------------------


async def test_stat_of_file_folder_and_missing(case: Case) -> None:
    put(case.folder / "sub", None)
    put(case.folder / "sub" / "f.txt", b"12345")
    os.utime(case.folder / "sub" / "f.txt", ns=(MTIME_NS, MTIME_NS))
    item = await case.target.stat(("sub", "f.txt"))
    assert item is not None
    assert (item.name, item.is_dir, item.size) == ("f.txt", False, 5)
    precision = PRECISION_NS[case.scheme]
    assert item.mtime_ns == MTIME_NS // precision * precision
    folder = await case.target.stat(("sub",))
    assert folder is not None and folder.is_dir and folder.name == "sub" and folder.size == 0
    root = await case.target.stat(())
    assert root is not None and root.is_dir
    assert await case.target.stat(("missing",)) is None
    assert await case.target.stat(("missing", "deeper")) is None


async def test_makedirs_nested_and_existing(case: Case) -> None:
    await case.target.makedirs(("a", "b", "c"))
    assert (case.folder / "a" / "b" / "c").is_dir()
    await case.target.makedirs(("a", "b", "c"))  # existing is fine
    await case.target.makedirs(("a",))
    await case.target.makedirs(("a", "b2"))
    assert sorted(os.listdir(case.folder / "a")) == ["b", "b2"]
    item = await case.target.stat(("a", "b", "c"))
    assert item is not None and item.is_dir


async def test_makedirs_over_a_file_fails(case: Case) -> None:
    put(case.folder / "file", b"x")
    for parts in (("file",), ("file", "sub")):
        with pytest.raises(TargetError):
            await case.target.makedirs(parts)
    assert (case.folder / "file").read_bytes() == b"x"
    assert os.listdir(case.folder) == ["file"]


async def test_unicode_names(case: Case) -> None:
    folder, name, renamed = "資料 フォルダ 📁", "报告 2024 🎉.txt", "결과 ✅ final copy.txt"
    await case.target.makedirs((folder,))
    data = "ünïcødé ✓".encode() * 1000
    await write_file(case.target, (folder, name), data)
    assert os.listdir(case.folder) == [folder]
    assert (case.folder / folder / name).read_bytes() == data
    item = await case.target.stat((folder, name))
    assert item is not None and item.name == name and item.size == len(data)
    await case.target.rename((folder, name), (folder, renamed), replace=False)
    assert os.listdir(case.folder / folder) == [renamed]
    await case.target.set_mtime((folder, renamed), MTIME_NS)
    assert (case.folder / folder / renamed).stat().st_mtime_ns // 1_000_000_000 == MTIME_NS // 1_000_000_000


async def test_posix_targets_write_the_bytes_of_each_name(posix_case: Case) -> None:
    """Shown names (docs/STORAGE-NOTES.md, "Names") become their on-disk bytes on file:// and SFTP:
    an escaped byte is that byte, an escaped control character is the character, ``\\`` is a
    character."""
    case = posix_case
    folder, name, renamed = "caf\uefe9 \\ dir", "new\uef0aline", "bad\uefff\uef01"
    await case.target.makedirs((folder,))
    await write_file(case.target, (folder, name), b"x")
    top = os.fsencode(case.folder)
    assert os.listdir(top) == [b"caf\xe9 \\ dir"]
    assert os.listdir(top + b"/caf\xe9 \\ dir") == [b"new\nline"]
    item = await case.target.stat((folder, name))
    assert item is not None and item.name == name and item.size == 1
    await case.target.rename((folder, name), (folder, renamed), replace=False)
    await case.target.set_mtime((folder, renamed), MTIME_NS)
    assert os.listdir(top + b"/caf\xe9 \\ dir") == [b"bad\xff\x01"]
    await case.target.remove((folder, renamed))
    assert os.listdir(top + b"/caf\xe9 \\ dir") == []


@pytest.mark.parametrize("name", ["\uef2f", "a\uef2fb", "\uef00", "\uef2e\uef2e", ""])
async def test_a_shown_name_whose_bytes_would_leave_the_folder_is_refused(
    posix_case: Case, name: str
) -> None:
    """An escape of ``/`` or NUL, or one spelling ``..``, never reaches the target's file system."""
    with pytest.raises(TargetNameError):
        await posix_case.target.create(("ok", name))
    with pytest.raises(TargetNameError):
        await posix_case.target.makedirs((name,))
    assert os.listdir(posix_case.folder) == []


@pytest.mark.parametrize("name", ["a\\b", "a:b", "q?", "star*", 'quote"', "p|q", "<x>", "\x01"])
async def test_smb_refuses_names_windows_cannot_hold(request: pytest.FixtureRequest, name: str) -> None:
    """A ``:`` would name a stream of another file; the others Windows refuses outright."""
    where = place(request, "smb")
    async with await where.connect() as target:
        with pytest.raises(TargetNameError, match="Windows names cannot hold"):
            await target.create((name,))
        await write_file(target, ("new\uef0aline",), b"x")  # the shown name: UTF-16 text, kept as is
    assert os.listdir(where.folder) == ["new\uef0aline"]


# --- rename and remove ----------------------------------------------------------------------------------


async def test_rename_with_replace_replaces(case: Case) -> None:
    put(case.folder / "new.tmp", b"new content")
    put(case.folder / "file.txt", b"old content")
    await case.target.rename(("new.tmp",), ("file.txt",), replace=True)
    assert (case.folder / "file.txt").read_bytes() == b"new content"
    assert not (case.folder / "new.tmp").exists()


async def test_rename_without_replace_keeps_both(case: Case) -> None:
    put(case.folder / "new.tmp", b"new content")
    put(case.folder / "file.txt", b"old content")
    with pytest.raises(TargetError) as info:
        await case.target.rename(("new.tmp",), ("file.txt",), replace=False)
    assert not isinstance(info.value, TargetUnreachableError | TargetAuthError | TargetFullError)
    assert "new.tmp" in info.value.message
    assert (case.folder / "file.txt").read_bytes() == b"old content"
    assert (case.folder / "new.tmp").read_bytes() == b"new content"


async def test_rename_to_a_free_name(case: Case) -> None:
    put(case.folder / "new.tmp", b"content")
    await case.target.rename(("new.tmp",), ("free.txt",), replace=False)
    assert os.listdir(case.folder) == ["free.txt"]
    put(case.folder / "again.tmp", b"again")
    await case.target.rename(("again.tmp",), ("free2.txt",), replace=True)
    assert sorted(os.listdir(case.folder)) == ["free.txt", "free2.txt"]


async def test_remove(case: Case) -> None:
    put(case.folder / "gone.txt", b"x")
    await case.target.remove(("gone.txt",))
    assert not (case.folder / "gone.txt").exists()
    await case.target.remove(("gone.txt",))  # missing is fine


# --- time stamps ----------------------------------------------------------------------------------------


async def test_set_mtime_of_file_and_folder(case: Case) -> None:
    await case.target.makedirs(("dir",))
    await write_file(case.target, ("dir", "f.bin"), b"data")
    precision = PRECISION_NS[case.scheme]
    expected = MTIME_NS // precision * precision
    for parts in (("dir", "f.bin"), ("dir",)):
        await case.target.set_mtime(parts, MTIME_NS)
        on_disk = case.folder.joinpath(*parts).stat()
        assert on_disk.st_mtime_ns == expected, parts
        assert on_disk.st_atime_ns == expected, parts
        item = await case.target.stat(parts)
        assert item is not None and item.mtime_ns == expected


async def test_set_mtime_far_ahead(case: Case) -> None:
    await write_file(case.target, ("f",), b"x")
    when = 4_102_444_800 * 1_000_000_000  # 2100-01-01: past 2038, still within SFTP 3's unsigned 32 bits
    await case.target.set_mtime(("f",), when)
    assert (case.folder / "f").stat().st_mtime_ns == when


# --- links and permissions ------------------------------------------------------------------------------


async def test_symlink(case: Case) -> None:
    if case.scheme == "smb":
        with pytest.raises(TargetUnsupportedError):
            await case.target.symlink(("link",), "elsewhere/file")
        assert not os.path.lexists(case.folder / "link")
        return
    await case.target.symlink(("link",), "elsewhere/file")
    assert os.readlink(case.folder / "link") == "elsewhere/file"
    item = await case.target.stat(("link",))
    assert item is not None and not item.is_dir


async def test_set_mtime_of_a_link_leaves_what_it_points_to(posix_case: Case) -> None:
    case = posix_case
    real = put(case.folder / "real", b"x")
    os.utime(real, ns=(0, 0))
    await case.target.symlink(("link",), "real")
    await case.target.set_mtime(("link",), MTIME_NS)
    precision = PRECISION_NS[case.scheme]
    assert os.lstat(case.folder / "link").st_mtime_ns == MTIME_NS // precision * precision
    assert real.stat().st_mtime_ns == 0


async def test_set_security_is_smb_only(case: Case) -> None:
    put(case.folder / "f", b"x")
    if case.scheme == "smb":
        assert case.target.supports_security
        return  # the round trip is test_smb_security_round_trip
    assert not case.target.supports_security
    with pytest.raises(TargetUnsupportedError):
        await case.target.set_security(("f",), b"\x01\x00\x04\x80" + bytes(16))


def with_users_read(descriptor: bytes) -> bytes:
    """``descriptor`` with an extra ACE: BUILTIN\\Users may read (FILE_GENERIC_READ)."""
    current = SMB2CreateSDBuffer()
    current.unpack(descriptor)
    ace = AccessAllowedAce()
    ace["mask"] = FILE_GENERIC_READ
    sid = SIDPacket()
    sid.from_string(USERS_SID)
    ace["sid"] = sid
    dacl = AclPacket()
    dacl["aces"] = [*current.get_dacl()["aces"].get_value(), ace]
    new = SMB2CreateSDBuffer()
    new["control"].set_value(current["control"].get_value())
    new.set_owner(current.get_owner())
    new.set_group(current.get_group())
    new.set_dacl(dacl)
    return bytes(new.pack())


def stored_descriptor(path: Path) -> bytes | None:
    """What Samba's acl_xattr keeps for ``path`` (None before anything was written over SMB)."""
    try:
        return os.getxattr(path, "security.NTACL")
    except OSError as exc:
        if exc.errno != errno.ENODATA:
            raise
        return None


async def test_smb_security_round_trip(request: pytest.FixtureRequest) -> None:
    where = place(request, "smb")
    put(where.folder / "dir", None)
    put(where.folder / "dir" / "f.txt", b"x")
    async with await where.connect() as target:
        for parts in (("dir", "f.txt"), ("dir",)):
            before = await get_security(target, parts)
            assert USERS_SID not in allowed_aces(before)
            stored_before = stored_descriptor(where.folder.joinpath(*parts))
            await target.set_security(parts, with_users_read(before))
            after = await get_security(target, parts)
            assert allowed_aces(after)[USERS_SID] == FILE_GENERIC_READ
            assert owner_and_group(after) == owner_and_group(before)
            assert {**allowed_aces(before), USERS_SID: FILE_GENERIC_READ} == allowed_aces(after)
            # acl_xattr keeps the descriptor in an extended attribute of the file on disk
            stored_after = stored_descriptor(where.folder.joinpath(*parts))
            assert stored_after is not None and stored_after != stored_before
            # a new connection reads the same descriptor back
            async with await where.connect() as again:
                assert allowed_aces(await get_security(again, parts)) == allowed_aces(after)


async def test_smb_security_of_a_missing_item(request: pytest.FixtureRequest) -> None:
    where = place(request, "smb")
    async with await where.connect() as target:
        with pytest.raises(TargetError) as info:
            await target.set_security(("missing",), b"\x01\x00\x04\x80" + bytes(16))
        assert "missing" in info.value.message


@pytest.mark.parametrize("scheme", SERVERS)
async def test_permission_denied_is_a_plain_error(request: pytest.FixtureRequest, scheme: str) -> None:
    where = place(request, scheme)
    (where.folder / "locked").mkdir(mode=0o755)  # root's: the servers' user may look but not write
    async with await where.connect() as target:
        for attempt in (
            lambda: target.create(("locked", "f")),
            lambda: target.makedirs(("locked", "sub")),
        ):
            with pytest.raises(TargetError) as info:
                await attempt()
            assert type(info.value) is TargetError
            assert "locked" in info.value.message
    assert os.listdir(where.folder / "locked") == []


# --- full disks -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_full_disk(request: pytest.FixtureRequest, scheme: str) -> None:
    where = place(request, scheme, full=True)
    async with await where.connect() as target:
        writer = await target.create(("big.bin",))

        async def write_8_mib() -> None:  # into a 4 MiB file system
            for _ in range(8):
                await writer.write(os.urandom(MiB))
            await writer.close()

        with pytest.raises(TargetFullError) as info:
            await write_8_mib()
        assert "big.bin" in info.value.message
        await writer.abort()
        assert not (where.folder / "big.bin").exists()
        vfs = os.statvfs(where.folder)
        assert vfs.f_bavail * vfs.f_frsize > 3 * MiB  # the space is back
        await write_file(target, ("small.bin",), b"fits")
        assert (where.folder / "small.bin").read_bytes() == b"fits"


# --- logons and connections -----------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SERVERS)
async def test_wrong_password(
    request: pytest.FixtureRequest, scheme: str, caplog: pytest.LogCaptureFixture
) -> None:
    where = place(request, scheme)
    assert where.credentials is not None
    wrong = f"Wr0ng-{uuid.uuid4().hex}"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TargetAuthError) as info:
        await connect(
            TargetAddress.parse(where.url), Credentials(where.credentials.username, wrong), where.options
        )
    assert where.url in info.value.message
    assert caplog.records, "the client libraries log the logon: the check below must see something"
    texts = [*exception_texts(info.value), caplog.text, *(r.getMessage() for r in caplog.records)]
    for secret in (wrong, services.PASSWORD):
        assert not [text for text in texts if secret in text]


@pytest.mark.parametrize("scheme", SERVERS)
async def test_unknown_user(request: pytest.FixtureRequest, scheme: str) -> None:
    where = place(request, scheme)
    with pytest.raises(TargetAuthError):
        await connect(TargetAddress.parse(where.url), Credentials("nobody-here", "x"), where.options)


@pytest.mark.parametrize("scheme", SERVERS)
async def test_domain_user_name(request: pytest.FixtureRequest, scheme: str) -> None:
    where = place(request, scheme)
    assert where.credentials is not None
    credentials = Credentials(f"WORKGROUP\\{where.credentials.username}", where.credentials.password)
    async with await connect(TargetAddress.parse(where.url), credentials, where.options) as target:
        await write_file(target, ("f",), b"domain")
    assert (where.folder / "f").read_bytes() == b"domain"


@pytest.mark.parametrize("scheme", SERVERS)
async def test_closed_port(scheme: str, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    port = services.free_port()
    url = f"{scheme}://127.0.0.1:{port}/share/folder"
    start = time.monotonic()
    with pytest.raises(TargetUnreachableError) as info:
        await connect(
            TargetAddress.parse(url),
            Credentials("u", "p"),
            ConnectOptions(timeout=10, known_hosts=known_hosts),
        )
    assert time.monotonic() - start < 5
    assert url in info.value.message


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and then never says anything."""
    with socket.socket() as listener:
        listener.bind((services.HOST, 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


@pytest.mark.parametrize("scheme", SERVERS)
async def test_silent_server_times_out(scheme: str, silent_port: int, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    url = f"{scheme}://127.0.0.1:{silent_port}/share/folder"
    start = time.monotonic()
    with pytest.raises(TargetUnreachableError) as info:
        await connect(
            TargetAddress.parse(url),
            Credentials("u", "p"),
            ConnectOptions(timeout=1, known_hosts=known_hosts),
        )
    assert 0.9 < time.monotonic() - start < 5
    assert "timed out" in info.value.message


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_missing_folder(request: pytest.FixtureRequest, scheme: str) -> None:
    where = place(request, scheme)
    with pytest.raises(TargetUnreachableError) as info:
        await connect(TargetAddress.parse(where.url + "/not-there"), where.credentials, where.options)
    assert "does not exist" in info.value.message


async def test_smb_missing_share(samba_server: SambaServer) -> None:
    url = f"smb://{samba_server.host}:{samba_server.port}/no-such-share"
    credentials = Credentials(samba_server.username, samba_server.password)
    with pytest.raises(TargetError) as info:
        await connect(TargetAddress.parse(url), credentials, ConnectOptions(timeout=10))
    assert "share does not exist" in info.value.message


# --- SSH host keys --------------------------------------------------------------------------------------


def ssh_place(
    ssh: SshServer, known_hosts: Path | None, check: bool = True
) -> tuple[TargetAddress, ConnectOptions]:
    return TargetAddress.parse(ssh.url), ConnectOptions(
        timeout=10, known_hosts=known_hosts, check_host_keys=check
    )


@pytest.mark.parametrize("which", ["empty", "wrong"])
async def test_untrusted_host_key(ssh_server: SshServer, which: str) -> None:
    known_hosts = ssh_server.empty_known_hosts if which == "empty" else ssh_server.wrong_known_hosts
    address, options = ssh_place(ssh_server, known_hosts)
    with pytest.raises(TargetUnreachableError) as info:
        await connect(address, Credentials(ssh_server.username, ssh_server.password), options)
    assert "host key is not trusted" in info.value.message
    assert str(known_hosts) in info.value.message
    assert ("differs" in info.value.message) == (which == "wrong")


@pytest.mark.parametrize("known_hosts", [None, "missing"])
async def test_no_known_hosts_file(ssh_server: SshServer, tmp_path: Path, known_hosts: str | None) -> None:
    path = tmp_path / known_hosts if known_hosts else None
    address, options = ssh_place(ssh_server, path)
    with pytest.raises(TargetUnreachableError) as info:
        await connect(address, Credentials(ssh_server.username, ssh_server.password), options)
    assert "no known-hosts file is configured" in info.value.message


async def test_host_key_checking_off_warns_on_every_connection(
    ssh_server: SshServer, caplog: pytest.LogCaptureFixture
) -> None:
    address, options = ssh_place(ssh_server, ssh_server.wrong_known_hosts, check=False)
    credentials = Credentials(ssh_server.username, ssh_server.password)
    caplog.set_level(logging.WARNING, logger="openflr")
    for _ in range(2):
        async with await connect(address, credentials, options) as target:
            assert await target.stat(()) is not None
    warnings = [
        r
        for r in caplog.records
        if r.name.startswith("openflr.restore")
        and r.levelno == logging.WARNING
        and "host key" in r.getMessage()
    ]
    assert len(warnings) == 2
    assert f"{ssh_server.host}:{ssh_server.port}" in warnings[0].getMessage()


# --- links on the target are never followed --------------------------------------------------------------
#
# A link below the target folder (restored earlier from another point, or already on a mounted share) must
# not lead a later write outside the folder: every target refuses it with TargetLinkError, for that item.

LINK_TARGETS = ("absolute", "relative")


def link_to(outside: Path, link: Path, how: str) -> None:
    """``link`` -> ``outside``, as an absolute path or as ``../../..`` from the link's folder."""
    text = str(outside) if how == "absolute" else os.path.relpath(outside, link.parent)
    os.symlink(text, link)
    assert link.resolve() == outside.resolve()


async def assert_refused(attempt: Awaitable[object], link: str) -> None:
    with pytest.raises(TargetLinkError) as info:
        await attempt
    assert f"{link} is a symbolic link on the target: not followed" in info.value.message


async def refused_everywhere(target: Target, outside: Path, up: tuple[str, ...]) -> None:
    """Every call whose path goes through the link ``up`` fails and leaves ``outside`` as it was."""
    shown = "/".join(up)
    put(outside / "a", b"outside")
    os.utime(outside / "a", ns=(0, 0))
    before = sorted(os.listdir(outside))
    await assert_refused(target.makedirs((*up, "etc", "cron.d")), shown)
    await assert_refused(target.create((*up, "evil")), shown)
    await assert_refused(target.create((*up, "etc", "evil")), shown)
    await assert_refused(target.rename((*up, "a"), (*up, "b"), replace=False), shown)
    await assert_refused(target.rename((*up, "a"), (*up, "b"), replace=True), shown)
    await assert_refused(target.set_mtime((*up, "a"), MTIME_NS), shown)
    await assert_refused(target.remove((*up, "a")), shown)
    await assert_refused(target.stat((*up, "a")), shown)
    await assert_refused(target.symlink((*up, "l"), "/etc"), shown)
    assert sorted(os.listdir(outside)) == before
    assert (outside / "a").read_bytes() == b"outside"
    assert (outside / "a").stat().st_mtime_ns == 0


@pytest.mark.parametrize("how", LINK_TARGETS)
async def test_a_link_on_the_way_is_not_followed(posix_case: Case, how: str) -> None:
    case = posix_case
    outside = fresh_folder(case.folder.parent)  # beside the target folder: outside it
    link_to(outside, case.folder / "up", how)
    await refused_everywhere(case.target, outside, ("up",))
    put(case.folder / "home", None)  # deeper: the walk goes through a real folder first
    link_to(outside, case.folder / "home" / "up", how)
    await refused_everywhere(case.target, outside, ("home", "up"))
    assert sorted(os.listdir(case.folder)) == ["home", "up"]  # the links themselves are still there
    item = await case.target.stat(("up",))  # the link itself (a final name) is seen, not followed
    assert item is not None and not item.is_dir


@pytest.mark.parametrize("how", LINK_TARGETS)
async def test_a_link_named_by_bytes_that_are_not_utf8_is_not_followed(posix_case: Case, how: str) -> None:
    """The walk goes by each name's on-disk bytes (docs/STORAGE-NOTES.md, "Names"): a link whose name
    is not UTF-8 (shown ``caf\\uefe9``) is refused like any other."""
    case = posix_case
    outside = fresh_folder(case.folder.parent)
    put(case.folder / "real", None)
    os.symlink(
        str(outside) if how == "absolute" else "../" * 8 + str(outside).lstrip("/"),
        os.fsencode(case.folder / "real") + b"/caf\xe9",
    )
    await refused_everywhere(case.target, outside, ("real", "caf\uefe9"))


@pytest.mark.parametrize("how", LINK_TARGETS)
async def test_a_restored_link_may_point_anywhere_and_is_never_followed(posix_case: Case, how: str) -> None:
    case = posix_case
    outside = fresh_folder(case.folder.parent)
    text = str(outside) if how == "absolute" else "../" * 8 + str(outside).lstrip("/")
    await case.target.makedirs(("home",))
    await case.target.symlink(("home", "up"), text)  # stored as the guest had it
    assert os.readlink(case.folder / "home" / "up") == text
    await refused_everywhere(case.target, outside, ("home", "up"))


@pytest.mark.parametrize("how", LINK_TARGETS)
async def test_smb_a_link_out_of_the_share_is_not_followed(request: pytest.FixtureRequest, how: str) -> None:
    # Samba follows links itself and shows them as plain folders; out of the share (wide links = no) it
    # refuses them (the client sees "access denied"). Nothing may be written outside either way.
    where = place(request, "smb")
    outside = fresh_folder(request.getfixturevalue("tmp_path"))
    link_to(outside, where.folder / "up", how)
    put(outside / "a", b"outside")
    async with await where.connect() as target:
        for attempt in (
            lambda: target.makedirs(("up", "etc", "cron.d")),
            lambda: target.create(("up", "evil")),
            lambda: target.rename(("up", "a"), ("up", "b"), replace=True),
            lambda: target.set_mtime(("up", "a"), MTIME_NS),
        ):
            with pytest.raises(TargetError):
                await attempt()
        with suppress(TargetError):  # Samba hides the link: "missing is fine" may answer too
            await target.remove(("up", "a"))
    assert os.listdir(outside) == ["a"] and (outside / "a").read_bytes() == b"outside"


@pytest.mark.parametrize("kind", ["symlink", "junction"])
async def test_smb_a_reparse_point_on_the_way_is_not_followed(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A Windows server shows a symbolic link or junction as a reparse point: the target refuses it.

    Samba 4.17 cannot show one (it follows its links itself), so its answer for ``up`` (a link inside the
    share, which it follows) is made to carry the attributes a Windows server gives a folder link.
    """
    where = place(request, "smb")
    outside = fresh_folder(where.folder.parent)  # inside the share, outside the target folder
    link_to(outside, where.folder / "up", "absolute")
    real_lstat = smbclient.lstat

    def windows_lstat(path: str, **kwargs: object) -> object:
        st = real_lstat(path, **kwargs)
        if path.endswith("\\up"):
            mode = (stat_mode.S_IFLNK | 0o777) if kind == "symlink" else st.st_mode
            tag = 0xA000000C if kind == "symlink" else 0xA0000003  # IO_REPARSE_TAG_SYMLINK, _MOUNT_POINT
            return st._replace(
                st_mode=mode, st_file_attributes=st.st_file_attributes | 0x400, st_reparse_tag=tag
            )
        return st

    monkeypatch.setattr(smbclient, "lstat", windows_lstat)
    put(outside / "a", b"outside")
    os.utime(outside / "a", ns=(0, 0))
    async with await where.connect() as target:
        for attempt in (
            lambda: target.makedirs(("up", "etc", "cron.d")),
            lambda: target.create(("up", "evil")),
            lambda: target.rename(("up", "a"), ("up", "b"), replace=True),
            lambda: target.rename(("up", "a"), ("up", "b"), replace=False),
            lambda: target.set_mtime(("up", "a"), MTIME_NS),
            lambda: target.remove(("up", "a")),
            lambda: target.stat(("up", "a")),
        ):
            with pytest.raises(TargetLinkError) as info:
                await attempt()
            assert "up is a " in info.value.message and "not followed" in info.value.message
    assert os.listdir(outside) == ["a"]
    assert (outside / "a").read_bytes() == b"outside" and (outside / "a").stat().st_mtime_ns == 0


@pytest.mark.parametrize("scheme", ["smb", "sftp"])
async def test_each_folder_on_the_way_is_checked_once_per_connection(
    request: pytest.FixtureRequest, scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Restoring many files into one deep folder costs one link check per folder, not three per file
    (create, rename, set the time): each check is a round trip to the guest."""
    looked_at: list[str | bytes] = []
    if scheme == "smb":
        real_lstat = smbclient.lstat

        def counting_lstat(path: str, **kw: object) -> object:
            looked_at.append(path)
            return real_lstat(path, **kw)

        monkeypatch.setattr(smbclient, "lstat", counting_lstat)
    async with await place(request, scheme).connect() as target:
        if scheme == "sftp":
            sftp = target.sftp  # type: ignore[attr-defined]
            real = sftp.lstat

            async def counting(path: bytes, *args: object, **kw: object) -> object:
                looked_at.append(path)
                return await real(path, *args, **kw)

            monkeypatch.setattr(sftp, "lstat", counting)
        folder = ("a", "b", "c")
        await target.makedirs(folder)
        for n in range(20):
            await write_file(target, (*folder, f".tmp{n}"), b"x")
            await target.rename((*folder, f".tmp{n}"), (*folder, f"f{n}.txt"), replace=False)
            await target.set_mtime((*folder, f"f{n}.txt"), 1_700_000_000 * 10**9)
    shown = [p if isinstance(p, str) else p.decode() for p in looked_at]  # SFTP paths are bytes
    on_the_way = [p for p in shown if not p.rstrip("/\\").endswith(".txt") and ".tmp" not in p]
    assert len(on_the_way) <= len(folder), on_the_way


@pytest.mark.parametrize(
    "when",
    [-1_234_567_890 * 10**9 + 500, 13_569_465_600 * 10**9 + 123_456_789],
    ids=["1930", "2400"],
)
async def test_set_mtime_over_the_whole_range(case: Case, when: int) -> None:
    """Times file systems store beyond 1970-2106: exact where the protocol carries them (to its
    precision); SFTP 3 (OpenSSH) cannot, which is a plain error the restore notes, never a crash."""
    await write_file(case.target, ("f",), b"x")
    if case.scheme == "sftp":
        with pytest.raises(TargetError, match="1970 to 2106") as caught:
            await case.target.set_mtime(("f",), when)
        assert not isinstance(caught.value, TargetUnsupportedError)  # not fatal for the restore
        return
    await case.target.set_mtime(("f",), when)
    precision = PRECISION_NS[case.scheme]
    assert (case.folder / "f").stat().st_mtime_ns == when // precision * precision
