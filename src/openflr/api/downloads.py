"""``GET …/{filepath}?action=download`` over HTTP: a file (with ranges, for resuming) or a folder as
a ZIP; what is downloaded and its audit are core's (``core/downloads.py``), the HTTP is here.

Files carry ``Content-Length``, a type guessed from the name, ``Content-Disposition`` with an RFC 6266
/ RFC 5987 UTF-8 name, ``Last-Modified``, a strong ``ETag`` (a point never changes) and answer single
``Range`` requests with 206 (``If-Range`` honoured; several ranges get the whole file; a range past the
end is 416). Folders stream as a ZIP while they are read. Every download is in the audit log with the
bytes actually sent and whether the client took it all.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from openflr.api.auth import service_of
from openflr.core import downloads
from openflr.core.downloads import Download, FileFacts
from openflr.core.guest import Located
from openflr.core.mounts import Mount
from openflr.core.names import shown
from openflr.core.sessions import LogonSession
from openflr.errors import RangeNotSatisfiableError

_RANGE = re.compile(r"^\s*bytes\s*=\s*(.+)$", re.IGNORECASE)
_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int
    """Exclusive."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range to send, or None for the whole file (no header, several ranges or bad syntax,
    which RFC 9110 lets a server ignore). Raises 416 when no byte of the file is named."""
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    specs = [s for s in match.group(1).split(",") if s.strip()]
    if len(specs) != 1:
        return None
    spec = _SPEC.match(specs[0])
    if spec is None or spec.group(1) == spec.group(2) == "":
        return None
    first, last = spec.group(1), spec.group(2)
    if first == "":  # suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiableError(
                f"The range {header.strip()!r} names no byte of a {size}-byte file.", size
            )
        return ByteRange(max(0, size - length), size)
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if last != "" and int(last) < start:
        return None  # invalid: ignore
    if start >= size:
        raise RangeNotSatisfiableError(
            f"The range {header.strip()!r} starts past the end of a {size}-byte file.", size
        )
    return ByteRange(start, end)


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact UTF-8 name (RFC 6266, RFC 5987).

    The fallback has no ``%`` (RFC 6266 asks for none: some clients decode it) and no quote or
    backslash; the exact name is the shown one (escaped bytes as private-use characters)."""
    name = shown(name)
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%' else "_" for c in name) or "download"
    exact = quote(name, safe="", errors="surrogatepass")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"


def _if_range_ok(request: Request, etag: str, last_modified: str | None) -> bool:
    value = request.headers.get("if-range")
    if value is None:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        return value == etag  # strong comparison: a weak tag never matches
    return last_modified is not None and value == last_modified


def client_of(request: Request) -> str:
    return request.client.host if request.client else ""


async def download(request: Request, session: LogonSession, mount: Mount, where: Located) -> Response:
    """Stream the located file or folder."""
    facts = downloads.prepare(session, mount, where)
    service = service_of(request)
    if not isinstance(facts, FileFacts):
        headers = {
            "Content-Disposition": content_disposition(facts.zip_name),
            "Cache-Control": "private, no-transform",
        }
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers, media_type="application/zip")
        started = downloads.start(service, session, mount, where, facts, client_of(request))
        return _DownloadResponse(started, 200, headers, "application/zip")
    size, etag = facts.size, facts.etag
    last_modified = formatdate(facts.mtime_ns / 1e9, usegmt=True) if facts.mtime_ns is not None else None
    media = mimetypes.guess_type(facts.name, strict=False)[0] or "application/octet-stream"
    headers = {
        "Content-Disposition": content_disposition(facts.name.replace(":", "_")),
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Cache-Control": "private, no-transform",
    }
    if last_modified:
        headers["Last-Modified"] = last_modified
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    honour = _if_range_ok(request, etag, last_modified)
    wanted = parse_range(request.headers.get("range"), size) if honour else None
    status = 200
    start, end = 0, size
    if wanted is not None:
        start, end = wanted.start, wanted.end
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media)
    started = downloads.start(
        service, session, mount, where, facts, client_of(request), (start, end) if status == 206 else None
    )
    return _DownloadResponse(started, status, headers, media)


def download_list(
    request: Request,
    session: LogonSession,
    mount: Mount,
    wheres: list[Located],
    limit: int = downloads.MAX_LIST_ITEMS,
) -> Response:
    """Several items of one mount as one ZIP (``core.downloads.prepare_list``)."""
    facts = downloads.prepare_list(session, mount, wheres, limit)
    headers = {
        "Content-Disposition": content_disposition(facts.zip_name),
        "Cache-Control": "private, no-transform",
    }
    started = downloads.start(service_of(request), session, mount, wheres, facts, client_of(request))
    return _DownloadResponse(started, 200, headers, "application/zip")


class _DownloadResponse(StreamingResponse):
    """A download's streaming response: tells the download what reached the server, and closes it
    (budget, audit) when the response ends or is dropped."""

    def __init__(self, started: Download, status: int, headers: dict[str, str], media: str) -> None:
        super().__init__(started.body, status_code=status, headers=headers, media_type=media)
        self._download = started

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = self._download

        async def counting_send(message: Message) -> None:
            gone = started.client_gone
            await send(message)  # a send cancelled while it waits to write is not counted
            if message["type"] == "http.response.body" and not gone:
                started.handed(len(message.get("body", b"")), not message.get("more_body", False))

        try:
            await super().__call__(scope, receive, counting_send)
        finally:
            # A client that leaves cancels the stream wherever it is, perhaps with the body paused at
            # a chunk it yielded: close it now (ending its hold on the mount and the session).
            await started.close()

    async def listen_for_disconnect(self, receive: Receive) -> None:
        await super().listen_for_disconnect(receive)
        self._download.client_gone = True

    def __del__(self) -> None:  # never sent (the request failed before the response started)
        self._download.release()
