"""``openflr.seams.smbclient_io``: what smbprotocol's ``smbclient._io`` and ``smbclient._pool`` do that
the ``smb://`` target relies on, checked in-process with stand-ins for the network side."""

from __future__ import annotations

import inspect
import io
from types import SimpleNamespace
from typing import Any

import pytest
import smbclient  # type: ignore[import-untyped,unused-ignore]
from smbprotocol.open import (  # type: ignore[import-untyped,unused-ignore]
    Open,
    SMB2CloseRequest,
    SMB2CreateRequest,
    SMB2QueryInfoRequest,
)

from tests.seams import changed

try:  # the private modules, and the seam that imports names from them
    import smbclient._io  # type: ignore[import-untyped,unused-ignore]
    import smbclient._pool  # type: ignore[import-untyped,unused-ignore]

    from openflr.seams.smbclient_io import connection_cache_key
except ImportError as exc:
    raise ImportError(changed("smbprotocol", f"smbclient's private modules: {exc}")) from exc

RELATED_FILE_ID = b"\xff" * 16
"""MS-SMB2 3.2.4.1.4: the file id that names "the file the previous CREATE of this compound opened"."""


def test_smbrawio_takes_the_arguments_the_seam_passes() -> None:
    raw_io = getattr(smbclient._io, "SMBRawIO", None)
    assert raw_io is not None, changed("smbprotocol", "smbclient._io: SMBRawIO is gone")
    assert issubclass(raw_io, io.RawIOBase), changed("smbprotocol", "SMBRawIO: no longer an io.RawIOBase")
    parameters = inspect.signature(raw_io.__init__).parameters
    missing = {"path", "mode", "share_access", "desired_access"} - set(parameters)
    assert not missing, changed("smbprotocol", f"SMBRawIO(): no parameter {sorted(missing)}")
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()), changed(
        "smbprotocol", "SMBRawIO(): it no longer passes **kwargs (credentials, connection cache) on"
    )


def test_a_new_smbrawio_is_not_open_and_names_the_file_a_compound_create_opens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connection = object()
    tree = SimpleNamespace(session=SimpleNamespace(connection=connection))
    asked: list[tuple[str, dict[str, Any]]] = []

    def get_smb_tree(path: str, **kwargs: Any) -> tuple[Any, str]:
        asked.append((path, kwargs))
        return tree, "folder\\file"

    monkeypatch.setattr(smbclient._io, "get_smb_tree", get_smb_tree)
    raw = smbclient._io.SMBRawIO(
        r"\\host\share\folder\file", mode="r", share_access="rwd", desired_access=0x20000, username="u"
    )
    assert asked == [(r"\\host\share\folder\file", {"username": "u"})], changed(
        "smbprotocol", f"SMBRawIO(): smbclient._io.get_smb_tree was called as {asked!r}"
    )
    assert raw.closed, changed("smbprotocol", "SMBRawIO(): it opens the file when made")
    assert isinstance(raw.fd, Open), changed("smbprotocol", f"SMBRawIO.fd: {type(raw.fd)!r}, not an Open")
    assert raw.fd.file_id == RELATED_FILE_ID, changed(
        "smbprotocol", f"Open.file_id of a file not opened: {raw.fd.file_id!r}, not the related-compound id"
    )
    assert raw.fd.connection is connection, changed(
        "smbprotocol", "Open.connection: not the tree's connection"
    )


class _Connection:
    def __init__(self) -> None:
        self.sent: list[tuple[list[Any], int, int, bool]] = []

    def send_compound(self, messages: list[Any], sid: int, tid: int, related: bool = False) -> list[str]:
        self.sent.append((messages, sid, tid, related))
        return [f"request {i}" for i in range(len(messages))]


class _Raw:
    """An SMBRawIO not opened yet: what ``SMBFileTransaction`` uses of it."""

    name = r"\\host\share\file"

    def __init__(self) -> None:
        self.closed = True
        self.connection = _Connection()
        self.fd = SimpleNamespace(
            file_id=RELATED_FILE_ID,
            tree_connect=SimpleNamespace(session=SimpleNamespace(session_id=7), tree_connect_id=9),
            connection=self.connection,
        )
        self.create, self.close_request = SMB2CreateRequest(), SMB2CloseRequest()

    def open(self, transaction: Any) -> None:
        transaction += (self.create, lambda sent: "created")

    def close(self, transaction: Any) -> None:
        transaction += (self.close_request, lambda sent: "closed")


def test_a_transaction_on_a_file_not_open_compounds_create_request_close() -> None:
    transaction_class = getattr(smbclient._io, "SMBFileTransaction", None)
    assert transaction_class is not None, changed("smbprotocol", "smbclient._io: SMBFileTransaction is gone")
    raw, request, unpacked = _Raw(), SMB2QueryInfoRequest(), []

    def unpack(sent: Any) -> str:
        unpacked.append(sent)
        return "the descriptor"

    with transaction_class(raw) as transaction:
        transaction += (request, unpack)
    sent = raw.connection.sent
    assert len(sent) == 1, changed("smbprotocol", f"SMBFileTransaction: {len(sent)} compound sends, not 1")
    messages, sid, tid, related = sent[0]
    assert messages == [raw.create, request, raw.close_request], changed(
        "smbprotocol",
        f"SMBFileTransaction: sent {[type(m).__name__ for m in messages]}, not CREATE, ours, CLOSE",
    )
    assert (sid, tid, related) == (7, 9, True), changed(
        "smbprotocol", f"SMBFileTransaction: send_compound(..., {sid}, {tid}, related={related})"
    )
    assert unpacked == ["request 1"], changed(
        "smbprotocol", f"SMBFileTransaction: our unpack function got {unpacked!r}"
    )
    assert transaction.results == ("the descriptor",), changed(
        "smbprotocol", f"SMBFileTransaction.results: {transaction.results!r}, not only our result"
    )


def test_the_connection_cache_key_is_the_one_smbclient_looks_up(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_new_connection(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(
            changed("smbprotocol", "smbclient's connection cache key: register_session did not find ours")
        )

    monkeypatch.setattr(smbclient._pool, "Connection", no_new_connection)
    session = SimpleNamespace(username="u", encrypt_data=False)
    connection = SimpleNamespace(transport=SimpleNamespace(connected=True), session_table={1: session})
    cache = {connection_cache_key("FileServer.Example", 4455): connection}
    found = smbclient.register_session("FileServer.Example", username="u", port=4455, connection_cache=cache)
    assert found is session, changed("smbprotocol", "register_session: it did not use the cached connection")
