"""The ASGI application: routes, error mapping and lifecycle around one ``Service``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from openflr.api import metrics, openapi
from openflr.api.auth import REALM_HEADER
from openflr.api.middleware import ApiMiddleware
from openflr.api.responses import error_response
from openflr.api.routes import (
    admin,
    catalog,
    empty,
    health,
    hierarchy,
    inventory,
    jobs,
    mounts,
    page,
    reports,
    sessions,
    web,
)
from openflr.core.health import Health
from openflr.core.service import Service
from openflr.errors import OpenflrError

log = logging.getLogger(__name__)

_HTTP_MESSAGES = {
    404: "There is no resource at this address.",
    405: "This method is not supported on this resource.",
}


def _challenge(request: Request) -> bool:
    """Whether a 401 asks for Basic credentials: not for the web page's own calls (its fetches carry
    ``Sec-Fetch-Mode`` other than ``navigate``, and ``/api/openflr/`` is the page's), where a browser
    would stop the call to show its own password prompt instead of letting the page answer."""
    mode = request.headers.get("sec-fetch-mode", "navigate").lower()
    return mode == "navigate" and not request.url.path.startswith("/api/openflr/")


async def _openflr_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OpenflrError)
    headers = exc.headers()
    if exc.status == 401 and _challenge(request):
        headers.update(REALM_HEADER)
    return error_response(request, exc.status, exc.message, headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = _HTTP_MESSAGES.get(exc.status_code, exc.detail)
    if exc.status_code == 404:
        message = f"There is no resource at {request.url.path}."
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"{request.method} is not supported on {request.url.path}" + (
            f" (it allows {allowed})." if allowed else "."
        )
    if exc.status_code in (404, 405) and "/" in request.url.query:
        # The usual cause: a path appended to an Href that ends in "?format=Entity".
        message += (
            f" The query string ?{request.url.query} holds a path: remove the '?...' part of the"
            " Href before adding to it."
        )
    return error_response(request, exc.status_code, message, exc.headers)


def create_app(service: Service, manage_service: bool = True) -> Starlette:
    """Build the app. With ``manage_service`` the app's lifespan starts and stops ``service``."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if manage_service:
            await service.start()
        try:
            yield
        finally:
            if manage_service:
                await service.stop()

    request_metrics = metrics.RequestMetrics(service) if service.settings.metrics.enabled else None
    app = Starlette(
        routes=[
            *health.routes,
            *(metrics.routes if request_metrics is not None else []),
            *sessions.routes,
            *inventory.routes,
            *mounts.routes,
            *admin.routes,
            *web.routes,
            *reports.routes,
            *jobs.routes,
            *hierarchy.routes,
            *catalog.routes,
            *empty.routes,
            *openapi.routes,
            *page.routes,
        ],
        middleware=[
            Middleware(
                ApiMiddleware,
                max_body=service.settings.server.max_body_bytes,
                limits=service.settings.limits,
                metrics=request_metrics,
            )
        ],
        exception_handlers={OpenflrError: _openflr_error, HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.metrics = request_metrics
    app.state.health = Health(service.settings, service.db)
    app.state.metrics_networks = metrics.networks(service.settings.metrics)
    return app
