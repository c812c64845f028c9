"""Who is calling: the logon session named by the ``X-RestSvcSessionId`` cookie or header, or by the
web page's cookie (``openflr-web``), which is never enough alone for a request that changes something:
such a request must also carry the session's CSRF token (docs/SECURITY.md, "The web page")."""

from __future__ import annotations

import base64
import binascii
import hmac
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

from starlette.requests import Request

from openflr.core.roles import Permission, allows
from openflr.core.service import Service
from openflr.core.sessions import LogonSession
from openflr.errors import BadRequestError, ForbiddenError, UnauthorizedError

TOKEN_NAME = "X-RestSvcSessionId"
WEB_COOKIE = "openflr-web"
CSRF_HEADER = "X-Openflr-Csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REALM_HEADER = {"WWW-Authenticate": 'Basic realm="RestSvc"'}


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def cookie_tokens(request: Request, cookie: str = TOKEN_NAME) -> list[str]:
    """Every value of the cookie ``cookie`` in the Cookie header(s), in order (clients repeat it)."""
    tokens: list[str] = []
    for key, value in request.headers.raw:
        if key != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            name, sep, token = part.strip().partition("=")
            if sep and name.strip().lower() == cookie.lower() and token.strip():
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


def current_session(request: Request, csrf: str | None = None) -> LogonSession:
    """The caller's live session, or 401. When a cookie carries a token it wins over the header; the
    web page's cookie counts only when neither is sent, and for a request that is not a safe read
    only with the session's CSRF token (``X-Openflr-Csrf``, or ``csrf`` from a form the route read):
    403 without it."""
    sessions = service_of(request).sessions
    candidates = cookie_tokens(request)
    if not candidates:
        header = request.headers.get(TOKEN_NAME)
        if header:
            candidates = [header.strip()]
    from_page = False
    if not candidates:
        candidates = cookie_tokens(request, WEB_COOKIE)
        from_page = True
    if not candidates:
        raise UnauthorizedError("No logon session: send the X-RestSvcSessionId header from a logon.")
    for token in candidates:
        session = sessions.resolve(token)
        if session is not None:
            if from_page and request.method not in SAFE_METHODS:
                _check_page_request(request, session, csrf)
            request.state.session = session
            return session
    raise UnauthorizedError("The logon session is unknown, has expired or has been logged out; log on again.")


def _check_page_request(request: Request, session: LogonSession, csrf: str | None) -> None:
    """A change asked with the web cookie: the CSRF token must come with it, and a browser that says
    where the request comes from must say it comes from this server."""
    given = request.headers.get(CSRF_HEADER) or csrf or ""
    if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), session.csrf.encode("ascii")):
        raise ForbiddenError(
            f"Refused: a request that changes something needs the {CSRF_HEADER} header of the web page "
            "(the session cookie alone is not enough)."
        )
    origin = request.headers.get("origin")
    if origin is not None and not _same_origin(request, origin):
        raise ForbiddenError(f"Refused: the request comes from another site ({origin[:80]}).")
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise ForbiddenError("Refused: the request comes from another site.")


def _same_origin(request: Request, origin: str) -> bool:
    """Whether a browser's ``Origin`` is this server as the browser reached it (``[server]
    public_url`` behind a reverse proxy)."""
    public: str = service_of(request).settings.server.public_url
    if public:
        parts = urlsplit(public)
        ours = f"{parts.scheme}://{parts.netloc}"
    else:
        ours = f"{request.url.scheme}://{request.headers.get('host', '')}"
    return origin.rstrip("/").lower() == ours.lower()


def require(request: Request, permission: Permission, csrf: str | None = None) -> LogonSession:
    session = current_session(request, csrf)
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
