"""Properties only a real `openflr serve` process shows: bytes on the wire, TLS, logging, faults."""

from __future__ import annotations

import socket
import ssl
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from openflr.tls import make_self_signed
from tests.api.flr import mount, point_href
from tests.support import Api, RunningServer, add_users, plain_client, run_server

TOKEN = "X-RestSvcSessionId"


def raw_request(server: RunningServer, request: bytes) -> bytes:
    sock: socket.socket = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    if server.base.startswith("https"):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(sock, server_hostname="localhost")
    with sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


@pytest.fixture(params=["http", "https"])
def server(request: pytest.FixtureRequest) -> RunningServer:
    srv: RunningServer = request.getfixturevalue(f"{request.param}_server")
    return srv


def test_session_header_case_on_the_wire(server: RunningServer) -> None:
    import base64

    auth = base64.b64encode(b"flrop:Secret1").decode()
    data = raw_request(
        server,
        (
            "POST /api/sessionMngr/?v=latest HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Basic {auth}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ).encode(),
    )
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 201 Created"
    names = [line.split(b":", 1)[0] for line in lines[1:]]
    assert b"X-RestSvcSessionId" in names, head
    assert b"Location" in names and b"Set-Cookie" in names
    assert b"<LogonSession" in body and b'xmlns="http://www.veeam.com/ent/v1.0"' in body


def test_realm_header_case_on_the_wire(server: RunningServer) -> None:
    data = raw_request(
        server,
        b"POST /api/sessionMngr/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    assert b'\r\nWWW-Authenticate: Basic realm="RestSvc"\r\n' in data


def test_body_bytes_are_never_rewritten(server: RunningServer) -> None:
    # A header-looking body must reach the client untouched (only the header block is re-cased).
    data = raw_request(server, b"GET /api/no-such HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 404")


def test_one_log_line_per_request_without_secrets(server: RunningServer) -> None:
    with plain_client() as c:
        r = c.post(server.base + "/api/sessionMngr/?v=latest", auth=("flrop", "Secret1"))
        token = r.headers[TOKEN]
        c.get(server.base + "/api/logonSessions", headers={TOKEN: token})
    time.sleep(0.3)
    log = server.log()
    assert "POST /api/sessionMngr?v=latest 201" in log
    assert "GET /api/logonSessions 200" in log
    assert token not in log
    assert "Secret1" not in log


def test_self_signed_certificate_is_made_once_and_kept(https_server: RunningServer) -> None:
    cert = https_server.data_dir / "tls" / "openflr-selfsigned.crt"
    assert cert.exists()
    served = ssl.get_server_certificate(("127.0.0.1", https_server.port))
    assert served.strip() == cert.read_text().strip()
    key = https_server.data_dir / "tls" / "openflr-selfsigned.key"
    assert key.stat().st_mode & 0o077 == 0


def _client_context(max_version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # Security level 0 lets this client offer TLS 1.0/1.1 (checked against a permissive server
    # during development), so a refusal comes from openflr, not from the client's own policy.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = max_version
    return ctx


def test_tls_refuses_old_protocols(https_server: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", https_server.port), timeout=5) as sock:
        with pytest.raises(ssl.SSLError):
            _client_context(ssl.TLSVersion.TLSv1_1).wrap_socket(sock, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", https_server.port), timeout=5) as sock:
        tls = _client_context(ssl.TLSVersion.TLSv1_2).wrap_socket(sock, server_hostname="localhost")
        assert tls.version() == "TLSv1.2"
        tls.close()


@pytest.fixture(scope="module")
def configured_cert_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Path]]:
    data = tmp_path_factory.mktemp("cert-server")
    cert, key = data / "mine.crt", data / "mine.key"
    make_self_signed(cert, key, hostname="flr.example.test")
    config = f'[server]\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
    with run_server(data, https=True, config=config) as server:
        yield server, cert


def test_configured_certificate_is_used(configured_cert_server: tuple[RunningServer, Path]) -> None:
    server, cert = configured_cert_server
    served = ssl.get_server_certificate(("127.0.0.1", server.port))
    assert served.strip() == cert.read_text().strip()
    assert not (server.data_dir / "tls" / "openflr-selfsigned.crt").exists()


@pytest.fixture(scope="module")
def short_timeout_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("short-timeout")
    add_users(data)
    config = "[sessions]\nidle_timeout = 1.5\nsweep_interval = 0.2\n"
    with run_server(data, https=False, config=config) as server:
        yield server


def test_idle_session_expires_over_http(short_timeout_server: RunningServer) -> None:
    base = short_timeout_server.base
    with plain_client() as c:
        kept = c.post(base + "/api/sessionMngr/", auth=("flrop", "Secret1")).headers[TOKEN]
        idle = c.post(base + "/api/sessionMngr/", auth=("flrop", "Secret1")).headers[TOKEN]
        for _ in range(4):  # activity keeps a session alive past the idle timeout
            time.sleep(0.6)
            assert c.get(base + "/api/logonSessions", headers={TOKEN: kept}).status_code == 200
        r = c.get(base + "/api/logonSessions", headers={TOKEN: idle})
        assert r.status_code == 401
        assert b"<Error" in r.content
    assert "ended (expired)" in short_timeout_server.log()


def test_internal_error_is_500_without_stack_and_logged(tmp_path: Path) -> None:
    add_users(tmp_path)
    with run_server(tmp_path, https=False) as server:
        # Fault: the database file is overwritten with garbage while the server runs.
        (tmp_path / "openflr.db").write_bytes(b"not a database" * 1000)
        for leftover in ("openflr.db-wal", "openflr.db-shm"):
            (tmp_path / leftover).unlink(missing_ok=True)
        r = httpx.post(
            server.base + "/api/sessionMngr/",
            auth=("flrop", "Secret1"),
            headers={"Accept": "application/json"},
        )
        assert r.status_code == 500
        body = r.json()
        assert body["StatusCode"] == 500 and body["StackTrace"] is None
        assert "Traceback" not in r.text
        assert httpx.get(server.base + "/api/").status_code == 200  # still serving
        time.sleep(0.3)
        assert "Traceback (most recent call last)" in server.log()


def _readers_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` and that run a folder reader."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"openflr.core.folderreaders" in cmdline:
            found.append(int(proc.name))
    return found


@pytest.mark.parametrize("readers", [2, 0])
def test_the_server_starts_its_folder_readers_and_they_end_with_it(tmp_path: Path, readers: int) -> None:
    add_users(tmp_path)
    config = f"[mounts]\nfolder_readers = {readers}\n"
    with run_server(tmp_path, https=False, config=config) as srv:
        deadline = time.monotonic() + 30
        while len(_readers_of(srv.process.pid)) < readers and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # none beyond the number asked for
        children = _readers_of(srv.process.pid)
        assert len(children) == readers
    for pid in children:  # the server stopped: so did its readers
        deadline = time.monotonic() + 10
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(pid)


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text(errors="replace")
    except OSError:
        return False
    return "State:\tZ" not in status  # a zombie has ended; only its exit status is left


def _body_of(response: bytes) -> bytes:
    """The body of a raw HTTP/1.1 response, de-chunked when it was sent in chunks."""
    head, _, body = response.partition(b"\r\n\r\n")
    fields = {
        k.strip().lower(): v.strip() for k, _, v in (x.partition(b":") for x in head.split(b"\r\n")[1:])
    }
    if fields.get(b"transfer-encoding") == b"chunked":
        whole = b""
        while True:
            size, _, body = body.partition(b"\r\n")
            if int(size, 16) == 0:
                return whole
            whole, body = whole + body[: int(size, 16)], body[int(size, 16) + 2 :]
    assert int(fields[b"content-length"]) == len(body), head
    return body


def test_every_body_ends_with_a_newline(server: RunningServer) -> None:
    """A shell prompt after `curl` starts on its own line: XML and JSON bodies, whole or streamed, end
    with a newline (counted in Content-Length)."""
    with plain_client() as c:
        api = Api(c, server.base, "real")
        token = api.logon()
        listing = mount(api, token, point_href(api, token, "KVM", "Win File Server")) + "/C:?action=listAll"
    listing = listing.removeprefix(server.base)  # streamed: its entries are rendered as they are sent
    seen = []
    for accept in ("application/xml", "application/json"):
        for path in ("/api/", "/api/no-such", "/api/logonSessions", listing, "/api/openapi.json"):
            request = (
                f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\n{TOKEN}: {token}\r\n"
                "Connection: close\r\n\r\n"
            )
            body = _body_of(raw_request(server, request.encode()))
            assert body.endswith(b">\n") or body.endswith(b"}\n"), (path, accept, body[-80:])
            assert not body.endswith(b"\n\n"), (path, accept)
            seen.append(body[:1])
    assert b"<" in seen and b"{" in seen
    refused = raw_request(server, b"GET /api/ HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")  # parser's 400
    assert refused.startswith(b"HTTP/1.1 400") and _body_of(refused).endswith(b"/>\n"), refused
