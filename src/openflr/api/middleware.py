"""Pure-ASGI middleware: access log, request limits, path normalisation, last-resort error handling."""

from __future__ import annotations

import logging
import re
import time

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openflr.api.metrics import RequestMetrics, route_template
from openflr.api.responses import error_response
from openflr.config import LimitSettings
from openflr.errors import OpenflrError

access_log = logging.getLogger("openflr.access")
log = logging.getLogger("openflr.api")

HEALTH_ROUTE = "/api/openflr/health"
_SLASHES = re.compile(r"/{2,}")
_MOUNT_PATH = re.compile(r"/mounts/[^/]+/", re.IGNORECASE)
"""Below a mount the path is a guest path: ``…/mounts/1/`` names the top of the guest tree."""


class ApiMiddleware:
    """One wrapper around the router for everything that applies to every request.

    - refuses, before any route runs and with an EM ``Error``: a request line whose path and query
      exceed ``limits.max_url_bytes`` (414), header fields over ``limits.max_header_bytes`` in all
      (431), more than ``limits.max_query_params`` query parameters (400), and bodies over
      ``max_body`` bytes (413, by Content-Length or while the body streams in);
    - collapses ``//`` and drops a trailing ``/`` so that ``/api//LogonSessions/`` routes normally;
    - turns an unhandled exception into a 500 ``Error`` without a stack trace (the log gets one);
    - logs one line per request: client, method, path, status, milliseconds (a health check that
      succeeds at debug level only). Never headers;
    - counts the request in ``metrics`` (``/metrics``) when given: its route's template, status,
      time and, for a download (a response with ``Content-Disposition``), the body bytes sent.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body: int,
        limits: LimitSettings | None = None,
        metrics: RequestMetrics | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.limits = limits or LimitSettings()
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path = scope["path"]
        normal = _SLASHES.sub("/", path)
        if len(normal) > 1 and normal.endswith("/") and not _MOUNT_PATH.search(normal):
            normal = normal.rstrip("/") or "/"
        if normal != path:
            scope = dict(scope, path=normal)
        status = 0
        started = False
        download: int | None = None
        """Body bytes sent, counted only for a download."""

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started, download
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                if any(k.lower() == b"content-disposition" for k, _ in message.get("headers", ())):
                    download = 0
            elif download is not None and message["type"] == "http.response.body":
                download += len(message.get("body", b""))
            await send(message)

        try:
            refused = self._refusal(scope)
            declared = _content_length(scope)
            if refused is not None:
                await self._error(scope, receive, send_wrapper, *refused)
            elif declared is not None and declared > self.max_body:
                await self._error(scope, receive, send_wrapper, 413, self._too_large())
            else:
                await self.app(scope, self._limited(receive), send_wrapper)
        except _BodyTooLarge:
            if not started:
                await self._error(scope, receive, send_wrapper, 413, self._too_large())
        except OpenflrError as exc:  # raised outside a route (e.g. while streaming a body)
            if not started:
                await self._error(scope, receive, send_wrapper, exc.status, exc.message)
            else:
                log.warning("%s %s failed after the response started: %s", scope["method"], normal, exc)
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], normal)
            if not started:
                await self._error(
                    scope, receive, send_wrapper, 500, "Internal server error; see the server log."
                )
        finally:
            client = scope.get("client")
            seconds = time.perf_counter() - start
            query = scope.get("query_string", b"").decode("latin-1")
            shown = normal + ("?" + query if query else "")
            if len(shown) > 400:
                shown = shown[:400] + "..."
            route = route_template(scope.get("route"))
            address = client[0] if client else "-"
            # a balancer's probes, every few seconds, would drown the rest: logged when they fail
            quiet = route == HEALTH_ROUTE and status == 200
            access_log.log(
                logging.DEBUG if quiet else logging.INFO,
                "%s %s %s %s %.1fms",
                address,
                scope["method"],
                shown,
                status or "-",
                seconds * 1000,
                extra={
                    "client": address,
                    "method": scope["method"],
                    "path": shown,
                    "route": route,
                    "status": status or None,
                    "duration_ms": round(seconds * 1000, 1),
                    "bytes": download,
                },
            )
            if self.metrics is not None:
                self.metrics.observe(scope["method"], route, status, seconds, download or 0)

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        """(status, message) when the request line or headers break a limit, else None."""
        limits = self.limits
        query: bytes = scope.get("query_string", b"")
        raw_path: bytes | None = scope.get("raw_path")
        path_bytes = len(raw_path) if raw_path is not None else len(scope["path"].encode("utf-8", "replace"))
        url_bytes = path_bytes + (len(query) + 1 if query else 0)
        if url_bytes > limits.max_url_bytes:
            return 414, (
                f"The request URL is {url_bytes} bytes long; the limit is {limits.max_url_bytes} bytes."
            )
        header_bytes = sum(len(k) + len(v) + 4 for k, v in scope.get("headers", ()))
        if header_bytes > limits.max_header_bytes:
            return 431, (
                f"The request header fields take {header_bytes} bytes; "
                f"the limit is {limits.max_header_bytes} bytes."
            )
        if query:
            params = sum(1 for part in query.split(b"&") if part)
            if params > limits.max_query_params:
                return 400, (
                    f"The request has {params} query parameters; the limit is {limits.max_query_params}."
                )
        return None

    def _too_large(self) -> str:
        return f"The request body is larger than the limit of {self.max_body} bytes."

    def _limited(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_body

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge
            return message

        return wrapped

    @staticmethod
    async def _error(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
        request = Request(scope, receive)
        response = error_response(request, status, message)
        await response(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
