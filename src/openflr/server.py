"""Run the ASGI app on uvicorn: HTTPS by default, header names written with their documented case."""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import math
import socket
from types import FrameType
from typing import Any

import uvicorn

from openflr import malloc
from openflr.api.app import create_app
from openflr.api.emtypes import ERROR
from openflr.api.render import xml_document
from openflr.config import Settings
from openflr.core.service import Service
from openflr.errors import OpenflrError
from openflr.seams.uvicorn_protocol import HttpToolsHooks
from openflr.tls import certificate_paths, harden

log = logging.getLogger(__name__)

_CANONICAL = {
    b"x-restsvcsessionid": b"X-RestSvcSessionId",
    b"www-authenticate": b"WWW-Authenticate",
    b"etag": b"ETag",
}


def canonical_header_block(block: bytes) -> bytes:
    """Restore ``Title-Case`` header names (and EM's exact spellings) in a response header block."""
    lines = block.split(b"\r\n")
    for i in range(1, len(lines)):
        name, sep, rest = lines[i].partition(b":")
        if not sep:
            continue
        lower = name.lower()
        fixed = _CANONICAL.get(lower) or b"-".join(p[:1].upper() + p[1:] for p in lower.split(b"-"))
        lines[i] = fixed + sep + rest
    return b"\r\n".join(lines)


_CONNECTIONS: dict[str, int] = {}
"""Open connections per client address, in this server process."""


class CasePreservingHttpTools(HttpToolsHooks):
    """uvicorn's httptools protocol lower-cases every response header name on the wire; EM clients
    such as the Zabbix PHP script compare ``X-RestSvcSessionId`` case-sensitively. Only the header
    block write is touched, never body bytes (``openflr.seams.uvicorn_protocol``)."""

    max_head_bytes = 256 * 1024
    """Bytes a request line and header block may take before the parser is fed no more (httptools
    itself buffers any amount; the app's own limits answer 414/431 far below this)."""
    head_timeout = 10.0
    """Seconds a request's line and headers may take from their first byte, and a new connection
    may stay silent ([limits] header_timeout): a client that sends one byte a second is cut off. A
    request's body and a response (a slow download) have no such limit."""
    max_per_address = 256
    """Connections one client address may hold at once ([limits] max_connections_per_address)."""
    _head_bytes = 0
    _in_head = True
    _head_timer: asyncio.TimerHandle | None = None
    _head_started = False
    """A request's first byte arrived and its headers have not all arrived yet."""
    _counted: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = self.peer_host
        if address is not None:
            held = _CONNECTIONS.get(address, 0) + 1
            _CONNECTIONS[address] = held
            self._counted = address
            if held > self.max_per_address:
                message = f"Too many connections from your address ({self.max_per_address} at most)."
                self._refuse(503, "Service Unavailable", "ServiceUnavailable", message)
                return
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        address, self._counted = self._counted, None
        if address is not None:
            left = _CONNECTIONS.get(address, 1) - 1
            if left > 0:
                _CONNECTIONS[address] = left
            else:
                _CONNECTIONS.pop(address, None)
        super().connection_lost(exc)

    def head_begun(self) -> None:
        self._head_bytes = 0
        self._in_head = True
        self._head_started = True
        self._start_head_timer()

    def _start_head_timer(self) -> None:
        self._stop_head_timer()
        self._head_timer = self.call_later(self.head_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_head or self.is_closing():
            return
        if not self._head_started:  # a connection that never said anything: hang up
            self.close()
            return
        self._in_head = False
        message = f"The request line and headers did not arrive within {self.head_timeout:g} seconds."
        self._refuse(408, "Request Timeout", "RequestTimeout", message)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # Checked after parsing: a chunk that completes the head and carries a large body is fine.
        if self._in_head and self._head_bytes > self.max_head_bytes and not self.is_closing():
            self._refuse_head()

    def head_complete(self) -> None:
        self._in_head = False
        self._head_started = False
        self._stop_head_timer()

    def rewrite_response_head(self, block: bytes) -> bytes:
        return canonical_header_block(block)

    def _refuse_head(self) -> None:
        self._in_head = False
        message = f"The request line and headers exceed {self.max_head_bytes} bytes."
        self._refuse(431, "Request Header Fields Too Large", "RequestHeaderFieldsTooLarge", message)

    def malformed_request(self, msg: str) -> None:
        """A request the HTTP parser rejects (bad request line, bad header) still gets an EM Error."""
        self._refuse(400, "Bad Request", "BadRequest", f"Malformed HTTP request: {msg}")

    def _refuse(self, status: int, reason: str, status_name: str, message: str) -> None:
        """Answer with an EM Error before any app runs, then close the connection."""
        body = xml_document(ERROR, {"Message": message, "StatusCode": status, "Status": status_name})
        head = [f"HTTP/1.1 {status} {reason}\r\n".encode("ascii")]
        head += [name + b": " + value + b"\r\n" for name, value in self.default_headers]
        head += [
            b"Content-Type: application/xml; charset=utf-8\r\n",
            b"Content-Length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"Connection: close\r\n\r\n",
        ]
        self.write(canonical_header_block(b"".join(head)) + body)
        self.close()


class ListenError(OpenflrError):
    """The server cannot listen on the configured address and port."""


def check_listen(host: str, port: int) -> None:
    """Bind every address ``host`` names at ``port`` the way the server will, and let go again: a
    port in use is then reported before any start-up work rather than by uvicorn after all of it."""
    shown = f"[{host}]" if ":" in host else host
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {shown}: {exc.strerror}") from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server does
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise ListenError(f"port {port} on {shown} is already in use") from None
                raise ListenError(f"cannot listen on {shown} port {port}: {exc.strerror or exc}") from None


def build_config(settings: Settings, app: Any) -> uvicorn.Config:
    kwargs: dict[str, Any] = {}
    if not settings.server.http:
        cert, key = certificate_paths(settings)
        kwargs.update(ssl_certfile=str(cert), ssl_keyfile=str(key))
    http: Any = "h11"
    if settings.server.http_impl == "httptools":
        limits = settings.limits
        http = type(
            "OpenflrHttpTools",
            (CasePreservingHttpTools,),
            {"head_timeout": limits.header_timeout, "max_per_address": limits.max_connections_per_address},
        )
    config = uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        http=http,
        loop="uvloop" if _has_uvloop() else "asyncio",
        lifespan="on",
        access_log=False,
        server_header=False,
        date_header=True,
        log_config=None,
        timeout_keep_alive=30,
        # SIGTERM: stop accepting, let running requests (downloads) finish this long, then cut them.
        timeout_graceful_shutdown=math.ceil(settings.server.grace_seconds),
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 by default: any local process could then
        # choose the address that logon throttling counts. Only configured proxies are believed.
        proxy_headers=bool(settings.server.trusted_proxies.strip()),
        forwarded_allow_ips=settings.server.trusted_proxies.strip() or None,
        h11_max_incomplete_event_size=64 * 1024,
        **kwargs,
    )
    config.load()
    if config.ssl is not None:
        harden(config.ssl)
    return config


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


GC_THRESHOLDS = (10_000, 20, 20)
"""Python's default (700, 10, 10) runs a young collection every 700 new containers. A listing page
makes about 7,000 (an entry's dicts and links) while the listing cache keeps hundreds of thousands of
entries alive, which older collections keep walking: measured with ``python -m bench --only list``,
collecting less often serves 100,000-entry listings 20-40% faster. Cycles are rare in openflr; they
are still collected, a little later."""


def _tune_gc() -> None:
    """Move what start-up made (modules, the app) out of the collector's way and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def serve(settings: Settings) -> None:
    """Serve until interrupted."""
    malloc.tune()
    service = Service(settings)
    if service.folder_readers is not None:
        service.folder_readers.start()  # ready before the first big listing
    app = create_app(service)
    _tune_gc()
    config = build_config(settings, app)
    scheme = "http" if settings.server.http else "https"
    log.info(
        "openflr serving %s://%s:%d/api/ (data directory %s)",
        scheme,
        settings.server.host,
        settings.server.port,
        settings.data_dir,
    )
    _StoppingServer(config, service).run()


class _StoppingServer(uvicorn.Server):
    """uvicorn's server, telling the service when a stop is asked for: the grace period of running
    restores starts with it, as the one of running requests does."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self._service = service

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._service.begin_stop()
        super().handle_exit(sig, frame)
