"""Absolute Hrefs built from ``[server] public_url`` or the request's scheme and Host, tolerant
query-string access, and the guest path of a request below a mount."""

from __future__ import annotations

import re

from starlette.requests import Request

from openflr.core.names import from_url, shown

_HOST_RE = re.compile(r"^[A-Za-z0-9.\-_]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def api_base(request: Request) -> str:
    """``https://host:9398/api`` as the client reached us (a garbled Host falls back to the socket),
    or under ``[server] public_url`` when that is set (behind a reverse proxy): a client's Host
    header then never reaches an Href."""
    public: str = request.app.state.service.settings.server.public_url
    if public:
        return public.rstrip("/") + "/api"
    scheme = request.url.scheme
    host = request.headers.get("host", "")
    if not _HOST_RE.match(host):
        server = request.scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else "localhost"
    return f"{scheme}://{host}/api"


class Query:
    """Query parameters with case-insensitive names; the first occurrence of a name wins."""

    def __init__(self, request: Request) -> None:
        self._values: dict[str, str] = {}
        for key, value in request.query_params.multi_items():
            self._values.setdefault(key.lower(), value)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(name.lower(), default)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._values


_BELOW_MOUNT = re.compile(rb"/api/+[^/]+/+[^/]+/+mounts/+[^/]+/?", re.IGNORECASE)
"""The raw path up to the guest path: ``/api/vmRestorePoints/{id}/mounts/{mount}/``."""
_SLASHES = re.compile(rb"/{2,}")
_RAW_SEPARATOR = re.compile(rb"[/\\]")
_TEXT_SEPARATOR = re.compile(r"[/\\]")


def guest_parts(request: Request) -> list[str]:
    """The guest path of a ``…/mounts/{mount}/{path}`` request, as its components.

    Read from the raw request path: a raw ``/`` or ``\\`` separates (EM clients send Windows-style
    paths), while anything percent-encoded, ``%5C`` included, is a character of a name. Names come
    back as shown names: a byte that is not UTF-8 or a control character as its escape. Without a raw
    path (a server that gives none) the decoded path is split at both."""
    raw: bytes | None = request.scope.get("raw_path")
    path = raw.partition(b"?")[0] if raw else b""
    found = _BELOW_MOUNT.search(path)
    if found is None:
        text: str = request.path_params.get("filepath", "")
        return [shown(p) for p in _TEXT_SEPARATOR.split(text)]
    tail = _SLASHES.sub(b"/", path[found.end() :])
    return [from_url(p) for p in _RAW_SEPARATOR.split(tail)]
