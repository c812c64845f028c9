"""Downloads, the use case: a file (whole or a byte range) or a folder as a ZIP, streamed while it is
read from the point.

``prepare`` says what a download of an item would send and applies the user's rules (403 before
anything is read); ``start`` takes a unit of the download budget (503 when none is free), opens the
audit record and returns the ``Download`` whose ``body`` a front end sends. While the body streams
the logon session stays alive and the mount's files stay open. The front end tells the download
what reached its transport (``handed``) and closes it at the end: the audit record then says how many
bytes were sent and whether the client took them all. Ranges, validators and headers are the front
end's business (``api/downloads.py`` for HTTP).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING

from openflr import malloc
from openflr.core import rules
from openflr.core.audit import FAILED, INTERRUPTED, SUCCESS
from openflr.core.mounts import Mount
from openflr.core.names import shown
from openflr.core.sessions import LogonSession
from openflr.errors import BadRequestError
from openflr.guestfs.filesystems.base import Chunk
from openflr.guestfs.view import GuestView, Located
from openflr.restore.items import Item, item_of, read_chunks, top_name
from openflr.restore.pump import pump
from openflr.restore.zipstream import ZipReport, zip_parts

if TYPE_CHECKING:
    from openflr.core.service import Service


@dataclass(frozen=True)
class FileFacts:
    """A file to download: what the front end needs for its headers before any byte is read."""

    path: str
    """The shown guest path."""
    name: str
    size: int
    mtime_ns: int | None
    etag: str
    """A strong validator (quoted): a point never changes, so path, size and time name the bytes."""


@dataclass(frozen=True)
class FolderFacts:
    """A folder to download as a ZIP, streamed while it is read (its length is not known ahead)."""

    path: str
    zip_name: str


def prepare(session: LogonSession, mount: Mount, where: Located) -> FileFacts | FolderFacts:
    """What a download of ``where`` sends; 403 when the user's rules refuse it."""
    user = session.user
    rules.check_download(user)
    view = mount.view
    path = shown(view.path_of(where.root, where.parts))
    entry = where.entry
    if entry is None or entry.is_dir:
        return FolderFacts(path, top_name(view, where) + ".zip")
    rules.check_file(user, entry.name)
    digest = hashlib.sha256(f"{mount.point_id}\0{path}\0{entry.size}\0{entry.mtime_ns}".encode()).hexdigest()
    return FileFacts(path, entry.name, entry.size, entry.mtime_ns, f'"{digest[:32]}"')


LIST_ZIP_NAME = "restore-list.zip"
MAX_LIST_ITEMS = 1000
"""Items one list download may name."""


def prepare_list(
    session: LogonSession, mount: Mount, wheres: Sequence[Located], limit: int = MAX_LIST_ITEMS
) -> FolderFacts:
    """A download of several items of one mount as one ZIP, each under its guest path (``C/Users/x``,
    ``etc/hosts``); 403 when the user may not download, 400 for an empty list or one of more than
    ``limit`` items (a list the user names; lists the server makes, like a diff's files, go further)."""
    rules.check_download(session.user)
    if not wheres:
        raise BadRequestError("Name at least one item to download.")
    if len(wheres) > limit:
        raise BadRequestError(f"A list download holds at most {limit} items, not {len(wheres)}.")
    view = mount.view
    paths = [shown(view.path_of(w.root, w.parts)) for w in wheres]
    shown_paths = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return FolderFacts(f"{len(paths)} item(s): {shown_paths}", LIST_ZIP_NAME)


def start(
    service: Service,
    session: LogonSession,
    mount: Mount,
    where: Located | Sequence[Located],
    facts: FileFacts | FolderFacts,
    client: str,
    byte_range: tuple[int, int] | None = None,
    channel: str = "HTTP",
) -> Download:
    """Start sending ``facts`` (from ``prepare`` or ``prepare_list``): the whole file, bytes
    ``[start, end)`` of it, or the ZIP of a folder or of a list of items.

    ``client`` is the client's address and ``channel`` how the bytes leave (both for the audit log)."""
    view = mount.view
    if isinstance(where, Located):
        item: Item | list[Item] = item_of(view, where)
    else:
        item = _list_items(view, where)
    producer: Callable[[], Iterator[Chunk]] | Callable[[], Iterator[list[Chunk]]]
    report: ZipReport | None = None
    if isinstance(facts, FileFacts):
        assert isinstance(item, Item)
        file_item = item
        start_at, end = byte_range if byte_range is not None else (0, facts.size)
        target = f"{channel} bytes {start_at}-{end - 1}/{facts.size}" if byte_range is not None else channel
        expected: int | None = end - start_at
        producer = lambda: read_chunks(view, file_item, start_at, end)  # noqa: E731
    else:
        report = ZipReport()
        user = session.user
        target, expected = f"{channel} (ZIP)", None
        zip_report = report
        producer = lambda: zip_parts(  # noqa: E731
            view, item, zip_report, lambda name: rules.refusal(user, name, "download")
        )
    service.download_budget.acquire()
    try:
        record = service.audit.start(
            user=session.user.name,
            client=client,
            action="download",
            vm=mount.replica.display_name,
            point_id=mount.point_id,
            point_time=mount.point.created,
            path=facts.path,
            target=target,
        )
    except BaseException:
        service.download_budget.release()
        raise
    return Download(service, session, mount, record, expected, report, producer)


def _list_items(view: GuestView, wheres: Sequence[Located]) -> list[Item]:
    """The items of a list download, each named by its guest path; an item inside another one of the
    list (or named twice) is left to that one."""
    named: dict[tuple[str, ...], Item] = {}
    for where in wheres:
        item = item_of(view, where)
        named.setdefault(_guest_rel(where), item)
    kept: list[Item] = []
    for rel in sorted(named):
        if not any(rel[: len(k.rel)] == k.rel and len(rel) > len(k.rel) for k in kept):
            kept.append(dataclasses.replace(named[rel], rel=rel))
    return kept


def _guest_rel(where: Located) -> tuple[str, ...]:
    root = where.root
    if root is None:
        return ("guest",)
    if root.mount is None:
        return (root.name.rstrip(":") or "volume", *where.parts)
    return (*root.mount, *where.parts) or ("root",)


class Download:
    """One download under way: its body, its hold on the download budget and its audit record.

    Complete is decided by what reached the transport, never by who closed the connection first:
    curl closes as soon as it holds the ``Content-Length``-th byte, and the server may learn of that
    close (and cancel the stream) before the response's own end. A file whose every byte was handed
    over is complete; a ZIP (its length unknown in advance) once its end was handed over."""

    def __init__(
        self,
        service: Service,
        session: LogonSession,
        mount: Mount,
        record: int,
        expected: int | None,
        report: ZipReport | None,
        producer: Callable[[], Iterator[Chunk]] | Callable[[], Iterator[list[Chunk]]],
    ) -> None:
        self._service = service
        self._record = record
        self.expected = expected
        """Body bytes of a file; None for a ZIP."""
        self.report = report
        self.sent = 0
        """Body bytes handed to the transport."""
        self.ended = False
        """The body's last piece was handed to the transport."""
        self.client_gone = False
        """The transport told of the client's disconnect: what is sent after that goes nowhere."""
        self.error = ""
        """Why reading the body failed, if it did."""
        self._held = True
        self._finished = False
        self.body: AsyncGenerator[Chunk, None] = self._stream(session, mount, producer)

    def handed(self, size: int, last: bool) -> None:
        """``size`` body bytes reached the transport; ``last``: they were the end of the body."""
        self.sent += size
        self.ended = last

    async def close(self) -> None:
        """End the download however it went: stop reading, give back its budget unit and finish its
        audit record (idempotent)."""
        try:
            await self.body.aclose()
        finally:
            self.release()
            self._finish()

    def release(self) -> None:
        """Give back the unit of the download budget (also for a download whose body never started)."""
        if not self._held:
            return
        self._held = False
        budget = self._service.download_budget
        budget.release()
        if budget.in_use == 0:  # the last download ended: give what the burst freed back
            malloc.trim_soon()

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self.error:
            result, message = FAILED, self.error
        elif self.ended or (self.expected is not None and self.sent == self.expected):
            result, message = SUCCESS, ""
        else:
            result, message = INTERRUPTED, "the client closed the connection before the end"
        items, failed = 1, 0
        if self.report is not None:
            items = self.report.files + self.report.folders
            failed = len(self.report.skipped)
            if failed and result == SUCCESS:
                message = f"{failed} item(s) left out: " + "; ".join(
                    f"{'/'.join(p.rel)}: {p.reason}" for p in self.report.skipped[:10]
                )
        self._service.audit.finish(
            self._record, result, bytes_done=self.sent, items=items, failed_items=failed, message=message
        )

    async def _stream(
        self,
        session: LogonSession,
        mount: Mount,
        producer: Callable[[], Iterator[Chunk]] | Callable[[], Iterator[list[Chunk]]],
    ) -> AsyncGenerator[Chunk, None]:
        """The body: keeps the session alive and the mount's files open while it streams; a failure
        to read it is noted for the audit record.

        A chunk may be a list of parts (a ZIP's: up to 1 MiB each), sent one by one and dropped once
        sent. The transport keeps the part it could not send yet, not a copy of it: a ZIP has no
        length, and openflr's HTTP protocol writes the pieces of its chunked body as they are
        (``seams/uvicorn_protocol.py``), so a part is sent whole: splitting it cost a trip through
        the event loop per piece for nothing."""
        try:
            with session.streaming(), self._service.mounts.hold(mount):
                async with aclosing(pump(producer())) as chunks:
                    async for data in chunks:
                        if not isinstance(data, list):
                            yield data
                            continue
                        while data:
                            part = data.pop(0)
                            yield part
                            del part
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            raise
