"""``openflr.seams.uvicorn_protocol``: what uvicorn's httptools protocol does that the seam relies on,
checked in-process (a real protocol object, a stand-in transport, a real event loop)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import uvicorn

from tests.seams import changed

try:  # the private module, and the seam and server that import names from it
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
    from uvicorn.server import ServerState

    from openflr.seams.uvicorn_protocol import HttpToolsHooks
    from openflr.server import CasePreservingHttpTools
except ImportError as exc:
    raise ImportError(changed("uvicorn", f"its httptools protocol module: {exc}")) from exc

PEER = ("192.0.2.7", 50123)
REQUEST = b"GET /api/ HTTP/1.1\r\nHost: x\r\n\r\n"


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.handed: list[Any] = []
        """Every object given to ``write`` or ``writelines``, as it was given."""
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": PEER, "sockname": ("127.0.0.1", 9398)}.get(name, default)

    def write(self, data: Any) -> None:
        self.handed.append(data)
        self.writes.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.handed.extend(list_of_data)
        self.writes.append(b"".join(list_of_data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _app(scope: Any, receive: Any, send: Any) -> None:
    headers = [(b"X-RestSvcSessionId", b"abc"), (b"Content-Length", b"4")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"body"})


def _run(
    protocol_class: type[HttpToolsProtocol],
    data: bytes,
    check: Callable[[Any, _Transport], None],
    app: Any = _app,
) -> None:
    """Connect a ``protocol_class`` to a stand-in transport, feed it ``data``, let the app answer, and
    call ``check(protocol, transport)``."""

    async def main() -> None:
        config = uvicorn.Config(
            app, http=protocol_class, lifespan="off", log_config=None, proxy_headers=False
        )
        config.load()
        state = ServerState()
        state.default_headers = [(b"date", b"Wed, 02 Dec 2026 00:00:00 GMT")]
        protocol = protocol_class(
            config=config, server_state=state, app_state={}, _loop=asyncio.get_running_loop()
        )
        transport = _Transport()
        protocol.connection_made(transport)
        protocol.data_received(data)
        for _ in range(100):
            if transport.closed or any(w.endswith((b"body", b"0\r\n\r\n")) for w in transport.writes):
                break
            await asyncio.sleep(0.01)
        check(protocol, transport)
        protocol.connection_lost(None)

    asyncio.run(main())


def test_the_hooks_the_seam_overrides_exist() -> None:
    expected = {
        "on_message_begin": ["self"],
        "on_headers_complete": ["self"],
        "send_400_response": ["self", "msg"],
        "connection_made": ["self", "transport"],
        "connection_lost": ["self", "exc"],
        "data_received": ["self", "data"],
    }
    for name, parameters in expected.items():
        method = getattr(HttpToolsProtocol, name, None)
        assert callable(method), changed("uvicorn", f"HttpToolsProtocol: {name} is gone")
        found = list(inspect.signature(method).parameters)
        assert found == parameters, changed("uvicorn", f"HttpToolsProtocol.{name}{inspect.signature(method)}")


def test_openflr_s_names_are_not_uvicorn_s() -> None:
    """A subclass's own attributes must not shadow (or be shadowed by) uvicorn's."""
    overridden = {
        "on_message_begin",
        "on_headers_complete",
        "send_400_response",
        "connection_made",
        "connection_lost",
        "data_received",
    }
    ours = {
        n for cls in (HttpToolsHooks, CasePreservingHttpTools) for n in vars(cls) if not n.startswith("__")
    }

    def check(protocol: Any, transport: _Transport) -> None:
        clash = (set(dir(protocol)) & ours) - overridden
        assert not clash, changed("uvicorn", f"HttpToolsProtocol: it has attributes named {sorted(clash)}")

    _run(HttpToolsProtocol, REQUEST, check)


def test_the_attributes_the_seam_reads() -> None:
    def check(protocol: Any, transport: _Transport) -> None:
        assert protocol.client == PEER, changed("uvicorn", f"HttpToolsProtocol.client: {protocol.client!r}")
        assert protocol.transport is transport, changed("uvicorn", "HttpToolsProtocol.transport")
        assert isinstance(protocol.loop, asyncio.AbstractEventLoop), changed(
            "uvicorn", "HttpToolsProtocol.loop"
        )
        assert protocol.server_state.default_headers == [(b"date", b"Wed, 02 Dec 2026 00:00:00 GMT")], (
            changed("uvicorn", "HttpToolsProtocol.server_state.default_headers")
        )
        cycle = protocol.cycle
        assert type(cycle) is RequestResponseCycle, changed(
            "uvicorn", f"HttpToolsProtocol.cycle after on_headers_complete: {type(cycle)!r}"
        )
        assert cycle.response_started is True and cycle.transport is transport, changed(
            "uvicorn", "RequestResponseCycle: response_started or transport"
        )
        assert inspect.iscoroutinefunction(RequestResponseCycle.send), changed(
            "uvicorn", "RequestResponseCycle.send: no longer a coroutine function"
        )

    _run(HttpToolsProtocol, REQUEST, check)


def test_the_status_line_and_headers_are_one_write_before_the_body() -> None:
    def check(protocol: Any, transport: _Transport) -> None:
        assert len(transport.writes) == 2, changed(
            "uvicorn", f"RequestResponseCycle.send wrote {transport.writes!r}"
        )
        head, body = transport.writes
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n"), changed(
            "uvicorn", f"RequestResponseCycle.send: the head is not one write: {head!r}"
        )
        assert b"\r\nx-restsvcsessionid: abc\r\n" in head.lower() and body == b"body", changed(
            "uvicorn", f"RequestResponseCycle.send: {transport.writes!r}"
        )

    _run(HttpToolsProtocol, REQUEST, check)


class _Recording(HttpToolsHooks):
    events: list[str]

    def head_begun(self) -> None:
        self.events = [*getattr(self, "events", []), "begun"]

    def head_complete(self) -> None:
        self.events.append("complete")

    def rewrite_response_head(self, block: bytes) -> bytes:
        return block.replace(b"x-restsvcsessionid", b"X-RestSvcSessionId")

    def malformed_request(self, message: str) -> None:
        self.events = [*getattr(self, "events", []), f"malformed: {message}"]
        self.close()


def test_the_seam_s_hooks_run_and_only_the_head_is_rewritten() -> None:
    def check(protocol: Any, transport: _Transport) -> None:
        assert protocol.events == ["begun", "complete"], changed(
            "uvicorn", f"HttpToolsProtocol parser callbacks: hooks ran as {protocol.events}"
        )
        assert protocol.peer_host == PEER[0]
        head, body = transport.writes
        assert b"\r\nX-RestSvcSessionId: abc\r\n" in head and body == b"body", changed(
            "uvicorn", f"RequestResponseCycle (class swapped): {transport.writes!r}"
        )

    _run(_Recording, REQUEST, check)


def test_a_request_the_parser_rejects_goes_to_send_400_response() -> None:
    def check(protocol: Any, transport: _Transport) -> None:
        events = getattr(protocol, "events", [])
        assert any(e.startswith("malformed: ") for e in events), changed(
            "uvicorn",
            f"HttpToolsProtocol.data_received: a bad request did not call send_400_response ({events})",
        )
        assert transport.writes == [] and transport.closed, changed(
            "uvicorn", f"a bad request was answered: {transport.writes!r}"
        )

    _run(_Recording, b"NOT HTTP AT ALL\r\n\r\n", check)


_PIECES = [bytes(range(256)) * 512, memoryview(bytearray(b"z" * 70_000)), b"tail", b"x" * 65_536]


async def _chunked_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"x/y")]})
    for piece in _PIECES:
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b"end", "more_body": False})


def test_large_pieces_of_a_chunked_body_are_written_as_they_are_with_uvicorn_s_framing() -> None:
    """A folder ZIP's body: the seam writes its large pieces without uvicorn's joined copy, and the
    bytes on the wire are exactly uvicorn's own (size line, piece, CRLF; the end by uvicorn)."""
    wire: dict[str, bytes] = {}

    def record(name: str) -> Callable[[Any, _Transport], None]:
        def check(protocol: Any, transport: _Transport) -> None:
            assert protocol.cycle.response_complete, changed(
                "uvicorn", "RequestResponseCycle: response_complete"
            )
            wire[name] = b"".join(transport.writes[1:])
            if name == "seam":
                handed = [id(x) for x in transport.handed]
                assert id(_PIECES[0]) in handed and id(_PIECES[1]) in handed and id(_PIECES[3]) in handed
                assert id(_PIECES[2]) not in handed  # small: uvicorn's own write

        return check

    _run(HttpToolsProtocol, REQUEST, record("uvicorn"), _chunked_app)
    _run(_Recording, REQUEST, record("seam"), _chunked_app)
    expected = b"".join(b"%x\r\n%s\r\n" % (len(p), bytes(p)) for p in [*_PIECES, b"end"]) + b"0\r\n\r\n"
    assert wire["uvicorn"] == expected, changed("uvicorn", "its chunked framing")
    assert wire["seam"] == expected
