"""EM responses: render a value of an EM type in the negotiated format, streamed when it is lazy."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from openflr.api import emtypes
from openflr.api.negotiation import Format, negotiate
from openflr.api.render import json_document, render_json, render_xml, xml_document
from openflr.api.schema import EmType, Value

XML_TYPE = "application/xml; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"


def response_format(request: Request) -> Format:
    """The format the client's ``Accept`` asks for, negotiated once per request."""
    fmt: Format | None = request.scope.get(_FORMAT_KEY)
    if fmt is None:
        fmt = request.scope[_FORMAT_KEY] = negotiate(request.headers.get("accept"))
    return fmt


_FORMAT_KEY = "openflr.format"


def camel_json(request: Request) -> bool:
    service = getattr(request.app.state, "service", None)
    return service is not None and service.settings.api.json_casing == "camel"


def _is_lazy(type_: EmType, value: Value) -> bool:
    for v in value.values():
        if callable(v) or (not isinstance(v, list | tuple | dict | str | bytes) and hasattr(v, "__next__")):
            return True
    return False


def em_response(
    request: Request,
    type_: EmType,
    value: Value,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    root: str | None = None,
) -> Response:
    """Render ``value`` as ``type_``; lazy values (iterators, callables) are streamed."""
    fmt = response_format(request)
    camel = camel_json(request)
    media = JSON_TYPE if fmt is Format.JSON else XML_TYPE
    if _is_lazy(type_, value):
        chunks: Iterator[bytes]
        if fmt is Format.JSON:
            chunks = render_json(type_, value, camel)
        else:
            chunks = (c.encode("utf-8") for c in render_xml(type_, value, root))
        return StreamingResponse(chunks, status_code=status, headers=headers, media_type=media)
    body = json_document(type_, value, camel) if fmt is Format.JSON else xml_document(type_, value, root)
    return Response(body, status_code=status, headers=headers, media_type=media)


_DOTNET_STATUS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "RequestEntityTooLarge",
    414: "RequestUriTooLong",
    416: "RequestedRangeNotSatisfiable",
    431: "RequestHeaderFieldsTooLarge",
    500: "InternalServerError",
    501: "NotImplemented",
    503: "ServiceUnavailable",
}


def status_name(status: int) -> str:
    """The .NET ``HttpStatusCode`` name EM puts in ``Error/@Status``."""
    if status in _DOTNET_STATUS:
        return _DOTNET_STATUS[status]
    try:
        return HTTPStatus(status).phrase.replace(" ", "")
    except ValueError:
        return str(status)


def error_response(
    request: Request, status: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    value = {"Message": message, "StatusCode": status, "Status": status_name(status)}
    return em_response(request, emtypes.ERROR, value, status=status, headers=headers)
