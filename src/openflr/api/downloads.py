"""``GET …/{filepath}?action=download``: a file (with ranges, for resuming) or a folder as a ZIP.

Files carry ``Content-Length``, a type guessed from the name, ``Content-Disposition`` with an RFC 6266
/ RFC 5987 UTF-8 name, ``Last-Modified``, a strong ``ETag`` (a point never changes) and answer single
``Range`` requests with 206 (``If-Range`` honoured; several ranges get the whole file; a range past the
end is 416). Folders stream as a ZIP while they are read. Every download is in the audit log with the
bytes actually sent and whether the client took it all.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from openflr import malloc
from openflr.api.auth import service_of
from openflr.core import rules
from openflr.core.audit import FAILED, INTERRUPTED, SUCCESS
from openflr.core.budget import Budget
from openflr.core.mounts import Mount
from openflr.core.names import shown
from openflr.core.service import Service
from openflr.core.sessions import LogonSession
from openflr.errors import RangeNotSatisfiableError
from openflr.guestfs.filesystems.base import Chunk
from openflr.guestfs.view import Located
from openflr.restore.items import item_of, read_chunks
from openflr.restore.pump import pump
from openflr.restore.zipstream import PIECE, ZipReport, zip_parts

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


def _etag(mount: Mount, path: str, size: int, mtime_ns: int | None) -> str:
    digest = hashlib.sha256(f"{mount.point_id}\0{path}\0{size}\0{mtime_ns}".encode()).hexdigest()
    return f'"{digest[:32]}"'


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
    service = service_of(request)
    user = session.user
    rules.check_download(user)
    view = mount.view
    path = shown(view.path_of(where.root, where.parts))
    entry = where.entry
    if entry is None or entry.is_dir:
        return _zip(request, session, mount, where, path)
    rules.check_file(user, entry.name)
    size = entry.size
    etag = _etag(mount, path, size, entry.mtime_ns)
    last_modified = formatdate(entry.mtime_ns / 1e9, usegmt=True) if entry.mtime_ns is not None else None
    media = mimetypes.guess_type(entry.name, strict=False)[0] or "application/octet-stream"
    headers = {
        "Content-Disposition": content_disposition(entry.name.replace(":", "_")),
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
    item = item_of(view, where)
    target = f"HTTP bytes {start}-{end - 1}/{size}" if status == 206 else "HTTP"
    service.download_budget.acquire()
    audit = _DownloadAudit(service, _audit_start(request, session, mount, path, target), end - start, 1)
    body = _body(service, session, mount, audit, lambda: read_chunks(view, item, start, end))
    return _AuditedStream(service.download_budget, audit, body, status, headers, media)


def _zip(request: Request, session: LogonSession, mount: Mount, where: Located, path: str) -> Response:
    service = service_of(request)
    user = session.user
    view = mount.view
    item = item_of(view, where)
    name = item.rel[0] + ".zip"
    headers = {"Content-Disposition": content_disposition(name), "Cache-Control": "private, no-transform"}
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers, media_type="application/zip")
    report = ZipReport()

    def allowed(file_name: str) -> str | None:
        return rules.refusal(user, file_name, "download")

    service.download_budget.acquire()
    record = _audit_start(request, session, mount, path, "HTTP (ZIP)")
    audit = _DownloadAudit(service, record, None, 0, report)
    body = _body(service, session, mount, audit, lambda: zip_parts(view, item, report, allowed), PIECE)
    return _AuditedStream(service.download_budget, audit, body, 200, headers, "application/zip")


@dataclass
class _DownloadAudit:
    """One download's audit record and what the server was handed of its body.

    Complete is decided by what reached the server, never by who closed the connection first: curl
    closes as soon as it holds the ``Content-Length``-th byte, and the server may learn of that close
    (and cancel the stream) before the response's own end. A file whose every byte was handed over is
    complete; a ZIP (its length unknown in advance) once its end was handed over."""

    service: Service
    record: int
    expected: int | None
    """Body bytes of a file; None for a ZIP."""
    items: int
    report: ZipReport | None = None
    sent: int = 0
    """Body bytes handed to the server."""
    ended: bool = False
    """The response's last message (``more_body`` false) was handed to the server."""
    client_gone: bool = False
    """The server told of the client's disconnect: what is sent after that goes nowhere."""
    error: str = ""
    """Why reading the body failed, if it did."""
    finished: bool = False

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        if self.error:
            result, message = FAILED, self.error
        elif self.ended or (self.expected is not None and self.sent == self.expected):
            result, message = SUCCESS, ""
        else:
            result, message = INTERRUPTED, "the client closed the connection before the end"
        items, failed = self.items, 0
        if self.report is not None:
            items = self.report.files + self.report.folders
            failed = len(self.report.skipped)
            if failed and result == SUCCESS:
                message = f"{failed} item(s) left out: " + "; ".join(
                    f"{'/'.join(p.rel)}: {p.reason}" for p in self.report.skipped[:10]
                )
        self.service.audit.finish(
            self.record, result, bytes_done=self.sent, items=items, failed_items=failed, message=message
        )


class _AuditedStream(StreamingResponse):
    """A download's streaming response: holds one unit of the download budget until it is done or
    dropped, counts the body bytes it hands to the server and then finishes the audit record."""

    def __init__(
        self,
        budget: Budget,
        audit: _DownloadAudit,
        body: AsyncGenerator[Chunk, None],
        status: int,
        headers: dict[str, str],
        media: str,
    ) -> None:
        super().__init__(body, status_code=status, headers=headers, media_type=media)
        self._budget: Budget | None = budget
        self._audit = audit
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        audit = self._audit

        async def counting_send(message: Message) -> None:
            gone = audit.client_gone
            await send(message)  # a send cancelled while it waits to write is not counted
            if message["type"] == "http.response.body" and not gone:
                audit.sent += len(message.get("body", b""))
                audit.ended = not message.get("more_body", False)

        try:
            await super().__call__(scope, receive, counting_send)
        finally:
            try:
                # A client that leaves cancels the stream wherever it is, perhaps with the body paused
                # at a chunk it yielded: close it now (ending its hold on the mount and the session).
                await self._body.aclose()
            finally:
                self._release()
                audit.finish()

    async def listen_for_disconnect(self, receive: Receive) -> None:
        await super().listen_for_disconnect(receive)
        self._audit.client_gone = True

    def _release(self) -> None:
        budget, self._budget = self._budget, None
        if budget is not None:
            budget.release()
            if budget.in_use == 0:  # the last download ended: give what the burst freed back
                malloc.trim_soon()

    def __del__(self) -> None:  # never sent (the request failed before the response started)
        self._release()


def _audit_start(request: Request, session: LogonSession, mount: Mount, path: str, target: str) -> int:
    return service_of(request).audit.start(
        user=session.user.name,
        client=client_of(request),
        action="download",
        vm=mount.replica.display_name,
        point_id=mount.point_id,
        point_time=mount.point.created,
        path=path,
        target=target,
    )


async def _body(
    service: Service,
    session: LogonSession,
    mount: Mount,
    audit: _DownloadAudit,
    producer: Callable[[], Iterator[Chunk]] | Callable[[], Iterator[list[Chunk]]],
    piece: int = 0,
) -> AsyncGenerator[Chunk, None]:
    """The body: keeps the session alive and the mount's files open while it streams; a failure to
    read it is noted for the audit record.

    A chunk may be a list of parts (a ZIP's), sent one by one and dropped once sent; with ``piece``,
    nothing larger is sent at once. For a body without a length (chunked encoding) the server copies
    what it sends and holds the copy until the client takes it: a ZIP stream holds a part of its
    chunk that way, not all of it."""
    session.active_streams += 1
    try:
        with service.mounts.hold(mount) as _view:
            async with aclosing(pump(producer())) as chunks:
                async for data in chunks:
                    if not isinstance(data, list):
                        yield data
                        continue
                    while data:
                        part = data.pop(0)
                        if piece and len(part) > piece:
                            view = memoryview(part)
                            del part
                            for at in range(0, len(view), piece):
                                yield view[at : at + piece]
                            del view
                        else:
                            yield part
                            del part
    except Exception as exc:
        audit.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise
    finally:
        session.active_streams -= 1
