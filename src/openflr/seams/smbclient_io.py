"""smbprotocol's ``smbclient._io`` and ``smbclient._pool`` internals the ``smb://`` target uses.

What is touched, and why:

- ``smbclient._io.SMBRawIO`` and ``SMBFileTransaction``: smbclient's public functions read and write
  file data and basic attributes, never security descriptors. ``read_security`` and ``write_security``
  send one SMB2 QUERY_INFO or SET_INFO (info type SECURITY) the way smbclient's own ``query_info`` and
  ``set_info`` helpers do: an ``SMBRawIO`` made but not opened, a transaction that compounds CREATE,
  the request and CLOSE (``raw.fd.file_id`` is the "file just opened" placeholder while the file is not
  open), our unpack function called with what ``raw.fd.connection.send_compound`` returned, and its
  results in ``transaction.results`` (without the CREATE's and CLOSE's).
- The key of smbclient's connection cache (``"host:port"``, host lower-cased, as
  ``smbclient._pool.register_session`` makes it): the target connects (and negotiates) itself, then
  puts the connection in its own cache under that key so smbclient's functions use it.

What openflr needs from upstream: public functions to read and write a file's security descriptor,
and a public way to hand smbclient a connection made by the caller.
"""

from __future__ import annotations

from typing import Any

from smbclient._io import SMBFileTransaction, SMBRawIO  # type: ignore[import-untyped,unused-ignore]
from smbprotocol.file_info import InfoType  # type: ignore[import-untyped,unused-ignore]
from smbprotocol.open import (  # type: ignore[import-untyped,unused-ignore]
    FilePipePrinterAccessMask,
    SMB2QueryInfoRequest,
    SMB2QueryInfoResponse,
    SMB2SetInfoRequest,
    SMB2SetInfoResponse,
)

__all__ = ["connection_cache_key", "read_security", "write_security"]


def connection_cache_key(host: str, port: int) -> str:
    """The key smbclient keeps the connection to ``host:port`` under in a connection cache."""
    return f"{host.lower()}:{port}"


def _unopened(path: str, access: int, session: dict[str, Any]) -> Any:
    """An ``SMBRawIO`` for ``path``, not opened yet: the transaction opens and closes it."""
    return SMBRawIO(path, mode="r", share_access="rwd", desired_access=access, **session)


def _commit(raw: Any, request: Any, unpack: Any) -> Any:
    """Send CREATE, ``request`` and CLOSE as one compound request; what ``unpack`` made of the reply."""
    with SMBFileTransaction(raw) as transaction:
        transaction += (request, unpack)
    return transaction.results[0]


def read_security(path: str, parts: int, max_length: int, session: dict[str, Any]) -> bytes:
    """The self-relative security descriptor of ``path`` (the ``parts`` of it: owner, group, DACL, SACL
    flags), read with SMB2 QUERY_INFO; ``session`` is smbclient's keyword arguments (credentials, cache)."""
    raw = _unopened(path, FilePipePrinterAccessMask.READ_CONTROL, session)
    request = SMB2QueryInfoRequest()
    request["info_type"] = InfoType.SMB2_0_INFO_SECURITY
    request["additional_information"] = parts
    request["output_buffer_length"] = max_length
    request["file_id"] = raw.fd.file_id

    def unpack(sent: Any) -> bytes:
        response = SMB2QueryInfoResponse()
        response.unpack(raw.fd.connection.receive(sent)["data"].get_value())
        return bytes(response["buffer"].get_value())

    return bytes(_commit(raw, request, unpack))


def write_security(path: str, parts: int, descriptor: bytes, session: dict[str, Any]) -> None:
    """Write the ``parts`` (owner, group, DACL flags) of a self-relative security descriptor onto
    ``path`` with SMB2 SET_INFO."""
    access = FilePipePrinterAccessMask.WRITE_DAC | FilePipePrinterAccessMask.WRITE_OWNER
    raw = _unopened(path, access, session)
    request = SMB2SetInfoRequest()
    request["info_type"] = InfoType.SMB2_0_INFO_SECURITY
    request["additional_information"] = parts
    request["file_id"] = raw.fd.file_id  # "the file just opened" within the compound request
    request["buffer"] = descriptor

    def unpack(sent: Any) -> Any:
        response = SMB2SetInfoResponse()
        response.unpack(raw.fd.connection.receive(sent)["data"].get_value())
        return response

    _commit(raw, request, unpack)
