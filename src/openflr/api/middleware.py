"""Pure-ASGI middleware: access log, path normalisation, body-size limit, last-resort error handling."""

from __future__ import annotations

import logging
import re
import time

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openflr.api.responses import error_response
from openflr.errors import OpenflrError

access_log = logging.getLogger("openflr.access")
log = logging.getLogger("openflr.api")

_SLASHES = re.compile(r"/{2,}")
_MOUNT_PATH = re.compile(r"/mounts/[^/]+/", re.IGNORECASE)
"""Below a mount the path is a guest path: ``…/mounts/1/`` names the top of the guest tree."""


class ApiMiddleware:
    """One wrapper around the router for everything that applies to every request.

    - collapses ``//`` and drops a trailing ``/`` so that ``/api//LogonSessions/`` routes normally;
    - refuses bodies over ``max_body`` bytes with 413 (by Content-Length, or while streaming);
    - turns an unhandled exception into a 500 ``Error`` without a stack trace (the log gets one);
    - logs one line per request: client, method, path, status, milliseconds. Never headers.
    """

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

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

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
            await send(message)

        try:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body:
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
            ms = (time.perf_counter() - start) * 1000
            query = scope.get("query_string", b"").decode("latin-1")
            shown = normal + ("?" + query if query else "")
            if len(shown) > 400:
                shown = shown[:400] + "..."
            access_log.info(
                "%s %s %s %s %.1fms", client[0] if client else "-", scope["method"], shown, status or "-", ms
            )

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
