"""Real restore-target servers for the tests: Samba's smbd and OpenSSH's sshd on loopback.

Each server runs in the foreground under a small reaper process (a child subreaper in its own session), with
every file it touches under one run folder in ``/tmp/openflr-restore-servers``. Some of a server's processes
leave its session: smbd starts ``samba-dcerpcd`` (and its ``rpcd_*`` workers) on demand as a daemon, and sshd
puts each connection in a session of its own. Orphaned, they come back to the reaper, which stops every one
of them when the server ends; the teardown then kills any process still referring to the server's folder.
A run folder whose owning pytest process is gone is a leftover of a crashed run: its servers are killed and
its tmpfs mounts unmounted before a new run starts. Needs root (tmpfs mounts, a unix user, smbd and sshd).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
USER = "openflr-rst"
PASSWORD = "Rst-7pw!q9Zx-4e1b"
"""Distinctive enough that finding it in a message or a log line is a real leak."""
ROOT = Path(tempfile.gettempdir()) / "openflr-restore-servers"
SMBD = "/usr/sbin/smbd"
SSHD = "/usr/sbin/sshd"
TOOLS = (SMBD, "/usr/bin/smbpasswd", "/usr/bin/smbclient", SSHD, "/usr/bin/ssh-keygen")
FULL_SIZE = "4m"
"""Size of the tmpfs behind the ``full`` targets: a few 1 MiB chunks fill it."""
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
"""How long a stopping server and everything it started may take to end before they are killed."""


@dataclass(frozen=True)
class SambaServer:
    host: str
    port: int
    username: str
    password: str
    url: str
    """``smb://127.0.0.1:PORT/data/restore``: a folder inside the ``data`` share (``acl_xattr``)."""
    folder: Path
    """Where ``url`` is on disk."""
    full_url: str
    """``smb://127.0.0.1:PORT/full``: the root of a share on a small tmpfs."""
    full_folder: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass(frozen=True)
class SshServer:
    host: str
    port: int
    username: str
    password: str
    url: str
    """``sftp://127.0.0.1:PORT/<absolute folder>``."""
    folder: Path
    full_url: str
    """An SFTP folder on a small tmpfs."""
    full_folder: Path
    known_hosts: Path
    """Lists the server's real host key for ``[127.0.0.1]:PORT``."""
    wrong_known_hosts: Path
    """Lists another key for ``[127.0.0.1]:PORT``."""
    empty_known_hosts: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def missing_tools() -> list[str]:
    """The server binaries this module needs that are not installed."""
    return [tool for tool in TOOLS if not os.access(tool, os.X_OK)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _run(*args: str, stdin: str | None = None) -> None:
    proc = subprocess.run(list(args), input=stdin, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")


def ensure_user() -> pwd.struct_passwd:
    """The unix user the servers log the tests on as, with the known password (idempotent)."""
    try:
        pwd.getpwnam(USER)
    except KeyError:
        proc = subprocess.run(
            ["useradd", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", USER],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 and proc.returncode != 9:  # 9: created meanwhile by a parallel run
            raise RuntimeError(f"useradd {USER} failed:\n{proc.stderr}") from None
    _run("chpasswd", stdin=f"{USER}:{PASSWORD}\n")
    return pwd.getpwnam(USER)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _mounts_under(folder: Path) -> list[str]:
    prefix = str(folder) + "/"
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    return sorted((p for p in points if p.startswith(prefix)), reverse=True)


Proc = tuple[int, int]
"""A process as (pid, start time in clock ticks since boot): a pid alone may be reused."""


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces and parens
    return int(fields[1]), fields[0], int(fields[19])


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def process_tree(pid: int) -> set[Proc]:
    """``pid`` and its living descendants."""
    children: dict[int, list[int]] = {}
    for child in _pids():
        stat = _stat(child)
        if stat is not None and stat[1] != "Z":
            children.setdefault(stat[0], []).append(child)
    found: set[Proc] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        stat = _stat(current)
        if stat is not None and stat[1] != "Z":
            found.add((current, stat[2]))
            todo.extend(children.get(current, ()))
    return found


def processes_using(folder: Path) -> set[Proc]:
    """Living processes (other than this one) whose command line names something in ``folder``, or whose
    working directory or an open file is in it. Also finds a server's processes that left its session."""
    inside = str(folder) + "/"

    def within(link: str) -> bool:
        return link == str(folder) or link.startswith(inside)

    found: set[Proc] = set()
    for pid in _pids():
        if pid == os.getpid():
            continue
        stat = _stat(pid)
        if stat is None or stat[1] == "Z":
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            links = [os.readlink(f"/proc/{pid}/cwd")]
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with suppress(OSError):
                    links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
        if inside in cmdline or any(within(link) for link in links):
            found.add((pid, stat[2]))
    return found


def still_running(procs: set[Proc]) -> set[Proc]:
    """Those of ``procs`` that are alive (neither gone, nor a zombie, nor a reused pid)."""
    alive = set()
    for pid, start in procs:
        stat = _stat(pid)
        if stat is not None and stat[1] != "Z" and stat[2] == start:
            alive.add((pid, start))
    return alive


def _kill_all(procs: set[Proc]) -> None:
    """SIGKILL each of ``procs`` that is still the process it was; wait a little until they are dead."""
    for pid, _ in still_running(procs):
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while still_running(procs) and time.monotonic() < deadline:
        time.sleep(0.02)


def _kill_group(pid: int, run_dir: Path) -> None:
    """Kill a server we started (a session leader) and its workers, if it is still ours."""
    try:
        ours = str(run_dir).encode() in Path(f"/proc/{pid}/cmdline").read_bytes() and os.getsid(pid) == pid
    except OSError:
        return
    if not ours:  # the pid was reused by something else
        return
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def clean_leftovers() -> None:
    """Stop servers and unmount tmpfs left by test runs whose pytest process is gone."""
    if not ROOT.is_dir():
        return
    for run_dir in ROOT.glob("run-*"):
        owner = _read_pid(run_dir / "owner.pid")
        if owner is not None and _alive(owner):
            continue  # a run in progress (another pytest)
        for pid_file in run_dir.glob("*.server-pid"):
            pid = _read_pid(pid_file)
            if pid is not None:
                _kill_group(pid, run_dir)
        _kill_all(processes_using(run_dir))  # e.g. samba-dcerpcd, which runs in a session of its own
        for point in _mounts_under(run_dir):
            subprocess.run(["umount", "-l", point], capture_output=True)
        shutil.rmtree(run_dir, ignore_errors=True)


@contextmanager
def run_dir() -> Iterator[Path]:
    """A fresh folder for this run's servers, owned by this process; removed at the end."""
    clean_leftovers()
    ROOT.mkdir(mode=0o755, exist_ok=True)
    os.chmod(ROOT, 0o755)
    path = Path(tempfile.mkdtemp(prefix="run-", dir=ROOT))
    os.chmod(path, 0o755)  # the servers' user must reach the share folders
    (path / "owner.pid").write_text(f"{os.getpid()}\n")
    try:
        yield path
    finally:
        for point in _mounts_under(path):
            subprocess.run(["umount", "-l", point], capture_output=True)
        shutil.rmtree(path, ignore_errors=True)


def _user_folder(path: Path, user: pwd.struct_passwd) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, user.pw_uid, user.pw_gid)
    os.chmod(path, 0o755)
    return path


@contextmanager
def _tmpfs(path: Path, user: pwd.struct_passwd) -> Iterator[Path]:
    path.mkdir(parents=True)
    _run("mount", "-t", "tmpfs", "-o", f"size={FULL_SIZE},mode=0755", "tmpfs", str(path))
    try:
        _user_folder(path, user)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


REAPER = """\
import ctypes, os, signal, subprocess, sys, time
libc = ctypes.CDLL(None)
libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphaned descendants, daemons too, come back to us
libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG: SIGTERM when pytest dies
server = None
signal.signal(signal.SIGTERM, lambda *_: server.terminate() if server else sys.exit(1))
server = subprocess.Popen(sys.argv[1:])
code = 1
while True:
    pid, status = os.wait()
    if pid == server.pid:
        code = os.waitstatus_to_exitcode(status)
        break
signal.signal(signal.SIGTERM, signal.SIG_IGN)


def children():
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except (OSError, ValueError):
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.append(int(name))
    return found


# The server is gone: stop what it left (workers, on-demand daemons, their children once orphaned).
signalled = set()
deadline = time.monotonic() + 3
while True:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        break
    for pid in children():
        if pid not in signalled or time.monotonic() > deadline:
            try:
                os.kill(pid, signal.SIGTERM if time.monotonic() < deadline else signal.SIGKILL)
            except ProcessLookupError:
                pass
            signalled.add(pid)
    time.sleep(0.02)
sys.exit(code)
"""
"""Runs a server, stops it when pytest dies, and when the server ends stops and reaps every process it left
behind (those that left its session too: as a child subreaper it inherits them; the sandbox's pid 1 may never
reap them)."""


@contextmanager
def _server(
    name: str, args: list[str], folder: Path, home: Path, port: int, log_path: Path
) -> Iterator[None]:
    """Run a server in its own session until the context ends; wait until it accepts connections.

    ``home`` is the server's own folder: when the context ends, no process may still refer to it."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", REAPER, *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (folder / f"{name}.server-pid").write_text(f"{proc.pid}\n")
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.returncode} at start:\n{log_path.read_text(errors='replace')}"
                )
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{name} does not accept connections on {HOST}:{port} after {START_TIMEOUT} s:\n"
                        + log_path.read_text(errors="replace")
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        started = process_tree(proc.pid)
        try:  # the reaper forwards this to the server, then stops and reaps all it left behind
            proc.terminate()
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        with suppress(ProcessLookupError):  # workers that outlived the main process
            os.killpg(proc.pid, signal.SIGKILL)
        _kill_all(started | processes_using(home))  # anything that escaped the reaper


SMB_CONF = """\
[global]
    server role = standalone server
    netbios name = OPENFLRTEST
    workgroup = WORKGROUP
    security = user
    map to guest = never
    passdb backend = tdbsam:{d}/private/passdb.tdb
    smb ports = {port}
    bind interfaces only = yes
    interfaces = lo
    disable netbios = yes
    lock directory = {d}/lock
    state directory = {d}/state
    cache directory = {d}/cache
    pid directory = {d}/pid
    private dir = {d}/private
    ncalrpc dir = {d}/ncalrpc
    binddns dir = {d}/bind-dns
    usershare path =
    log file = {d}/log/smbd.log
    log level = 1
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes

[data]
    path = {d}/smb-data
    read only = no
    valid users = {user}
    vfs objects = acl_xattr
    acl_xattr:ignore system acls = yes

[full]
    path = {d}/smb-full
    read only = no
    valid users = {user}
"""


@contextmanager
def run_samba(folder: Path) -> Iterator[SambaServer]:
    """smbd with a private configuration, passdb and state, serving ``data`` and ``full`` on a free port."""
    user = ensure_user()
    d = folder / "samba"
    for sub in ("lock", "state", "cache", "pid", "private", "ncalrpc", "bind-dns", "log"):
        (d / sub).mkdir(parents=True)
    os.chmod(d / "private", 0o700)
    data = _user_folder(d / "smb-data", user)
    restore = _user_folder(data / "restore", user)
    port = free_port()
    conf = d / "smb.conf"
    conf.write_text(SMB_CONF.format(d=d, port=port, user=USER))
    _run("smbpasswd", "-c", str(conf), "-a", "-s", USER, stdin=f"{PASSWORD}\n{PASSWORD}\n")
    log_path = d / "log" / "smbd.stdout"
    args = [SMBD, "--foreground", "--no-process-group", "--debug-stdout", "-s", str(conf)]
    with ExitStack() as stack:
        full = stack.enter_context(_tmpfs(d / "smb-full", user))
        stack.enter_context(_server("smbd", args, folder, d, port, log_path))
        yield SambaServer(
            host=HOST,
            port=port,
            username=USER,
            password=PASSWORD,
            url=f"smb://{HOST}:{port}/data/restore",
            folder=restore,
            full_url=f"smb://{HOST}:{port}/full",
            full_folder=full,
            log_path=log_path,
        )


SSHD_CONFIG = """\
Port {port}
ListenAddress {host}
HostKey {d}/ssh_host_ed25519_key
PidFile {d}/sshd.pid
AuthorizedKeysFile none
PubkeyAuthentication no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitEmptyPasswords no
PermitRootLogin no
UsePAM no
StrictModes no
UseDNS no
AllowUsers {user}
AllowTcpForwarding no
X11Forwarding no
ForceCommand internal-sftp
Subsystem sftp internal-sftp
LogLevel VERBOSE
"""


def _host_key(path: Path) -> str:
    """Generate an ed25519 key pair; the public key as ``type base64``."""
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "openflr-test", "-f", str(path))
    kind, key, *_ = path.with_suffix(".pub").read_text().split()
    return f"{kind} {key}"


@contextmanager
def run_sshd(folder: Path) -> Iterator[SshServer]:
    """OpenSSH sshd with its own host key, password logons and internal-sftp only, on a free port."""
    user = ensure_user()
    d = folder / "ssh"
    d.mkdir()
    os.chmod(d, 0o755)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    host_key = _host_key(d / "ssh_host_ed25519_key")
    other_key = _host_key(d / "other_ed25519_key")
    port = free_port()
    known_hosts = d / "known_hosts"
    known_hosts.write_text(f"[{HOST}]:{port} {host_key}\n")
    wrong_known_hosts = d / "wrong_known_hosts"
    wrong_known_hosts.write_text(f"[{HOST}]:{port} {other_key}\n")
    empty_known_hosts = d / "empty_known_hosts"
    empty_known_hosts.write_text("")
    conf = d / "sshd_config"
    conf.write_text(SSHD_CONFIG.format(d=d, port=port, host=HOST, user=USER))
    _run(SSHD, "-t", "-f", str(conf))
    data = _user_folder(d / "sftp-data", user)
    log_path = d / "sshd.log"
    with ExitStack() as stack:
        full = stack.enter_context(_tmpfs(d / "sftp-full", user))
        stack.enter_context(_server("sshd", [SSHD, "-D", "-e", "-f", str(conf)], folder, d, port, log_path))
        yield SshServer(
            host=HOST,
            port=port,
            username=USER,
            password=PASSWORD,
            url=f"sftp://{HOST}:{port}{data}",
            folder=data,
            full_url=f"sftp://{HOST}:{port}{full}",
            full_folder=full,
            known_hosts=known_hosts,
            wrong_known_hosts=wrong_known_hosts,
            empty_known_hosts=empty_known_hosts,
            log_path=log_path,
        )
