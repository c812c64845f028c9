"""uvicorn's httptools protocol (``uvicorn.protocols.http.httptools_impl``), which has no public API
for what openflr's server does before the app runs.

What is touched, and why:

- ``HttpToolsProtocol`` is subclassed. uvicorn's own hooks (the httptools parser callbacks
  ``on_message_begin`` and ``on_headers_complete``, ``send_400_response``) are turned into the hooks
  ``head_begun``, ``head_complete`` and ``malformed_request``; its attributes ``client``, ``loop``,
  ``transport`` and ``server_state.default_headers`` are read through ``peer_host``, ``call_later``,
  ``write``/``close``/``is_closing`` and ``default_headers``. ``connection_made``, ``connection_lost``
  and ``data_received`` are asyncio's public ``Protocol`` methods and may be overridden as they are.
- ``RequestResponseCycle``, the per-request object uvicorn makes in ``on_headers_complete``
  (``protocol.cycle``): its class is swapped (``cycle.__class__``) for a subclass whose ``send`` hands
  the response's status line and header block, which uvicorn writes with one ``transport.write`` while
  ``response_started`` is still False, to ``rewrite_response_head`` (uvicorn lower-cases every header
  name; EM clients compare ``X-RestSvcSessionId`` case-sensitively). The same ``send`` writes a
  large piece of a chunked body (a folder ZIP's, whose length is not known ahead) itself: uvicorn
  joins the chunk's size line, the piece and its CRLF into one new bytes object, a copy of every byte
  sent that the transport then holds until the client takes it; ``transport.writelines`` of the three
  sends the piece as it is (uvloop keeps a reference, it does not copy). What uvicorn does for such a
  piece is only that write (after its flow-control wait and disconnect check, which are repeated
  here: ``flow.write_paused``, ``flow.drain``, ``disconnected``, ``chunked_encoding``,
  ``response_started``, ``response_complete``); every other message goes to uvicorn's ``send``.

What openflr needs from upstream: a hook (or option) for response header name case, and public hooks
for a request head's start, its completion and a parser error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle as _Cycle

__all__ = ["HttpToolsHooks"]

IN_PLACE = 64 * 1024
"""Chunked-body pieces at least this large are written without uvicorn's joined copy."""


class _HeadWriter:
    """Transport stand-in for exactly one write: the response's status line and header block."""

    def __init__(self, transport: Any, rewrite: Callable[[bytes], bytes]) -> None:
        self._transport = transport
        self._rewrite = rewrite

    def write(self, data: bytes) -> None:
        self._transport.write(self._rewrite(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _RewritingCycle(_Cycle):
    rewrite: Callable[[bytes], bytes]

    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.start" and not self.response_started:
            real = self.transport
            self.transport = _HeadWriter(real, self.rewrite)  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self.transport = real
        elif self._in_place(message):
            if self.flow.write_paused and not self.disconnected:
                await self.flow.drain()
            if self.disconnected:
                return
            body = message["body"]
            self.transport.writelines([b"%x\r\n" % len(body), body, b"\r\n"])
        else:
            await super().send(message)

    def _in_place(self, message: Any) -> bool:
        """A large piece of a chunked body that is not its last (uvicorn ends the body itself)."""
        return (
            message["type"] == "http.response.body"
            and bool(message.get("more_body", False))
            and len(message.get("body", b"")) >= IN_PLACE
            and self.response_started
            and not self.response_complete
            and bool(self.chunked_encoding)
            and self.scope["method"] != "HEAD"
        )


class HttpToolsHooks(HttpToolsProtocol):
    """uvicorn's httptools protocol with openflr's hooks; a subclass overrides the hooks (and asyncio's
    ``connection_made``, ``connection_lost``, ``data_received``) and uses only the names below."""

    # Hooks.

    def head_begun(self) -> None:
        """A request's first byte was parsed."""

    def head_complete(self) -> None:
        """A request's line and headers were parsed; called before uvicorn starts the app on them."""

    def malformed_request(self, message: str) -> None:
        """The HTTP parser rejected the request; uvicorn's own answer is a plain-text 400."""
        super().send_400_response(message)

    def rewrite_response_head(self, block: bytes) -> bytes:
        """The status line and header block of a response the app sends, as they go on the wire."""
        return block

    # What a subclass may use.

    @property
    def peer_host(self) -> str | None:
        """The client's address (no port), once connected."""
        return self.client[0] if self.client else None

    @property
    def default_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers uvicorn adds to every response (``Date``), as (name, value)."""
        return list(self.server_state.default_headers)

    def call_later(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return self.loop.call_later(delay, callback)

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def close(self) -> None:
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    # uvicorn's own hooks, turned into the ones above.

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_begun()

    def on_headers_complete(self) -> None:
        self.head_complete()
        super().on_headers_complete()
        cycle = self.cycle
        if type(cycle) is _Cycle:
            cycle.__class__ = _RewritingCycle
            cycle.rewrite = self.rewrite_response_head  # type: ignore[attr-defined]

    def send_400_response(self, msg: str) -> None:
        self.malformed_request(msg)
