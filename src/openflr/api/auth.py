"""Who is calling: the logon session named by the ``X-RestSvcSessionId`` cookie or header."""

from __future__ import annotations

import base64
import binascii
from http.cookies import CookieError, SimpleCookie

from starlette.requests import Request

from openflr.core.roles import Permission, allows
from openflr.core.service import Service
from openflr.core.sessions import LogonSession
from openflr.errors import BadRequestError, ForbiddenError, UnauthorizedError

TOKEN_NAME = "X-RestSvcSessionId"
REALM_HEADER = {"WWW-Authenticate": 'Basic realm="RestSvc"'}


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def cookie_tokens(request: Request) -> list[str]:
    """Every ``X-RestSvcSessionId`` value in the Cookie header(s), in order (clients repeat it)."""
    tokens: list[str] = []
    for key, value in request.headers.raw:
        if key != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            name, sep, token = part.strip().partition("=")
            if sep and name.strip().lower() == TOKEN_NAME.lower() and token.strip():
                tokens.append(_unquote(token.strip()))
    return tokens


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] == '"':
        try:
            jar: SimpleCookie = SimpleCookie()
            jar.load(f"x={token}")
            return jar["x"].value
        except CookieError:
            return token[1:-1]
    return token


def current_session(request: Request) -> LogonSession:
    """The caller's live session, or 401. When a cookie carries a token it wins over the header."""
    sessions = service_of(request).sessions
    candidates = cookie_tokens(request)
    if not candidates:
        header = request.headers.get(TOKEN_NAME)
        if header:
            candidates = [header.strip()]
    if not candidates:
        raise UnauthorizedError("No logon session: send the X-RestSvcSessionId header from a logon.")
    for token in candidates:
        session = sessions.resolve(token)
        if session is not None:
            request.state.session = session
            return session
    raise UnauthorizedError("The logon session is unknown, has expired or has been logged out; log on again.")


def require(request: Request, permission: Permission) -> LogonSession:
    session = current_session(request)
    if not allows(session.user.role, permission):
        raise ForbiddenError(f"Access denied: the role {session.user.role.value} may not {permission.value}.")
    return session


def basic_credentials(request: Request) -> tuple[str, str]:
    """User name and password from ``Authorization: Basic``; 401 when absent, 400 when garbled."""
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise UnauthorizedError("Log on with HTTP Basic authentication (user name and password).")
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequestError("The Basic authorization header is not valid base64.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    name, sep, password = text.partition(":")
    if not sep or not name:
        raise BadRequestError("The Basic authorization header must hold 'name:password'.")
    return name, password
