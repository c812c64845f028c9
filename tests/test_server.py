"""The server process's own defences before the app runs: slow heads and connection floods."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.support import RunningServer, run_server

CONFIG = "[limits]\nheader_timeout = 1.5\nmax_connections_per_address = 4\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("defences"), https=False, config=CONFIG) as srv:
        yield srv


def _read_all(s: socket.socket) -> bytes:
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return out


def test_a_head_sent_one_byte_at_a_time_is_cut_off(server: RunningServer) -> None:
    """Slowloris: the head must arrive within header_timeout of its first byte, or 408 and close."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /api/ HTTP/1.1\r\n")
        answer = b""
        try:
            for byte in b"Host: x\r\nX-Slow: " + b"a" * 40:
                s.sendall(bytes([byte]))
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _read_all(s)
    took = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b'Status="RequestTimeout"' in answer and b"within 1.5 seconds" in answer
    assert took < 6


def test_a_silent_connection_is_closed(server: RunningServer) -> None:
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        assert _read_all(s) == b""
    assert 1 <= time.monotonic() - start < 6


def test_a_slow_download_is_not_a_slow_head(server: RunningServer) -> None:
    """Only the head is timed: a response read slowly, over twice header_timeout, arrives whole and
    the connection then serves another request."""
    request = b"GET /api/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the server cannot send it all at once
        s.settimeout(10)
        s.connect(("127.0.0.1", server.port))
        s.sendall(request)
        data = b""
        deadline = time.monotonic() + 3.5  # the document is about 90 KB: read at 5 KB/s
        while time.monotonic() < deadline:
            data += s.recv(512)
            time.sleep(0.1)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(
            next(
                v
                for k, _, v in (h.partition(b": ") for h in head.split(b"\r\n"))
                if k.lower() == b"content-length"
            )
        )
        assert len(body) < length, "the answer arrived before the slow part began"
        while len(body) < length:
            body += s.recv(65536)
        assert len(body) == length and body.rstrip().endswith(b"}")
        s.sendall(request)
        assert s.recv(65536).startswith(b"HTTP/1.1 200 ")


def test_connections_per_address_are_capped(server: RunningServer) -> None:
    held = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(4)]
    try:
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as extra:
            answer = _read_all(extra)
        assert answer.startswith(b"HTTP/1.1 503 ") and b"Too many connections" in answer
        # another address is not held up by this one's connections
        other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        with other:
            assert other.get(server.base + "/api/").status_code == 200
    finally:
        for s in held:
            s.close()
    time.sleep(0.3)
    assert httpx.get(server.base + "/api/").status_code == 200  # the count went down again


def test_the_limits_are_settings(tmp_path: Path) -> None:
    from openflr.config import load_settings

    settings = load_settings(env={"OPENFLR_DATA_DIR": str(tmp_path), "OPENFLR_LIMITS_HEADER_TIMEOUT": "3"})
    assert settings.limits.header_timeout == 3 and settings.limits.max_connections_per_address == 256
