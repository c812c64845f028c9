"""Absolute Hrefs built from ``[server] public_url`` or the request's scheme and Host, and tolerant
query-string access."""

from __future__ import annotations

import re

from starlette.requests import Request

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
