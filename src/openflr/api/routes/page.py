"""The web page: ``/`` and its files under ``/static/``, from the package (``openflr/web/static``),
with the headers that keep hostile file names and other sites out (docs/SECURITY.md, "The web page")."""

from __future__ import annotations

import hashlib
import re
from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

from openflr.api.routing import Route
from openflr.errors import NotFoundError

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Not no-referrer: under it a browser posts a form with "Origin: null", which the CSRF defence
    # refuses as another site. same-origin sends nothing to other sites either.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
_MEDIA = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}
_NAME = re.compile(r"^(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*/)*[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
"""A static file's path: plain names, no dot files, nothing that climbs."""


@cache
def _static_file(path: str) -> tuple[bytes, str] | None:
    """(content, strong ETag) of a file of the page, or None; read once per process."""
    if not _NAME.match(path) or ".." in path.split("/"):
        return None
    node = resources.files("openflr.web").joinpath("static")
    for part in path.split("/"):
        node = node.joinpath(part)
    if not node.is_file():
        return None
    data = node.read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def _serve(request: Request, path: str) -> Response:
    suffix = "." + path.rsplit(".", 1)[-1] if "." in path else ""
    found = _static_file(path) if suffix in _MEDIA else None
    if found is None:
        raise NotFoundError(f"The web page has no file {path[:200]!r}.")
    data, etag = found
    headers = {**PAGE_HEADERS, "ETag": etag}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else data
    response = Response(body, headers=headers, media_type=_MEDIA[suffix])
    if request.method == "HEAD":
        response.headers["Content-Length"] = str(len(data))
    return response


async def index(request: Request) -> Response:
    return _serve(request, "index.html")


async def static(request: Request) -> Response:
    return _serve(request, request.path_params["path"])


routes = [
    Route("/", index, ["GET", "HEAD"]),
    Route("/static/{path:path}", static, ["GET", "HEAD"]),
]
