"""What the web page needs beyond the EM API, under ``/api/openflr/``: its own log-on (an HttpOnly
cookie plus a CSRF token, docs/SECURITY.md "The web page"), who is logged on and what they may do,
several items of a mount as one ZIP (a restore list), where a restore would write, and the audit log.
Any client may use them with the ``X-RestSvcSessionId`` header as well."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from openflr.api import downloads, webtypes
from openflr.api.auth import WEB_COOKIE, current_session, require, service_of
from openflr.api.bodies import parse_body
from openflr.api.paging import page_request, paging_info
from openflr.api.responses import em_response
from openflr.api.routing import Route
from openflr.api.schema import Value
from openflr.api.urls import Query, api_base
from openflr.core import browse
from openflr.core.audit import RESULTS, AuditFilter, AuditRecord
from openflr.core.downloads import MAX_LIST_ITEMS
from openflr.core.families import PointFamily
from openflr.core.mounts import Mount
from openflr.core.restores import NoTargetError
from openflr.core.roles import Permission, allows
from openflr.core.service import bare_id
from openflr.core.sessions import LogonSession
from openflr.errors import BadRequestError

_MOUNT_PATH = re.compile(
    r"^(?:https?://[^/]+)?/api/+(vmReplicaPoints|vmRestorePoints)/+([^/]+)/+mounts/+([^/?#]+)/*$"
)
_FAMILY = {"vmreplicapoints": PointFamily.REPLICA, "vmrestorepoints": PointFamily.RESTORE}
ACTIONS = ("download", "restore", "restore-permissions")


# --- who is logged on -----------------------------------------------------------------------------


def me_value(request: Request, session: LogonSession) -> Value:
    user = session.user
    may_restore = allows(user.role, Permission.RESTORE)
    return {
        "Type": "Me",
        "UserName": user.name,
        "Role": user.role.value,
        "SessionId": session.session_id,
        "Csrf": session.csrf,
        "IdleTimeoutSeconds": int(service_of(request).settings.sessions.idle_timeout),
        "Permissions": {
            "Mount": allows(user.role, Permission.MOUNT),
            "BrowseFiles": allows(user.role, Permission.BROWSE_FILES),
            "Restore": may_restore,
            "Download": may_restore and not user.inplace_only,
            "Administer": allows(user.role, Permission.ADMINISTER),
        },
    }


async def web_logon(request: Request) -> Response:
    """``{"UserName", "Password"}`` -> ``Me`` and the page's HttpOnly session cookie (no EM cookie)."""
    spec = parse_body(webtypes.WEB_LOGON_SPEC, await request.body(), request.headers.get("content-type"))
    name, password = spec.get("UserName"), spec.get("Password")
    if not isinstance(name, str) or not name.strip() or not isinstance(password, str):
        raise BadRequestError("Log on with a UserName and a Password.")
    client = downloads.client_of(request)
    session, token = await service_of(request).logon(name.strip(), password, client)
    response = em_response(request, webtypes.ME, me_value(request, session))
    response.raw_headers.append((b"set-cookie", _cookie(request, token).encode("ascii")))
    return response


async def get_me(request: Request) -> Response:
    return em_response(request, webtypes.ME, me_value(request, current_session(request)))


async def web_logoff(request: Request) -> Response:
    session = current_session(request)
    service_of(request).sessions.end(session, "logout")
    response = Response(status_code=204)
    response.raw_headers.append((b"set-cookie", _cookie(request, "", expire=True).encode("ascii")))
    return response


def _cookie(request: Request, token: str, expire: bool = False) -> str:
    secure = "; Secure" if request.url.scheme == "https" else ""
    gone = "; Max-Age=0" if expire else ""
    return f"{WEB_COOKIE}={token}; Path=/api; HttpOnly; SameSite=Strict{secure}{gone}"


# --- a restore list as one ZIP --------------------------------------------------------------------------


async def list_zip(request: Request) -> Response:
    """A form (``mount``, ``item`` repeated, ``csrf``): the items, from any folders of one mount, as
    one ZIP, each under its guest path. A form so that the browser downloads it itself."""
    fields = _form(await request.body())
    csrf = next((v for k, v in fields if k == "csrf"), None)
    session = require(request, Permission.RESTORE, csrf)
    mount = await _mount_of(request, session, next((v for k, v in fields if k == "mount"), ""))
    paths = [v for k, v in fields if k == "item"]
    if len(paths) > MAX_LIST_ITEMS:
        raise BadRequestError(f"A list download holds at most {MAX_LIST_ITEMS} items, not {len(paths)}.")
    service = service_of(request)
    wheres = [await browse.locate(service, mount, path.split("/")) for path in paths]
    return downloads.download_list(request, session, mount, wheres)


def _form(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_LIST_ITEMS + 8,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequestError(f"The form cannot be read: {exc}.") from None


async def _mount_of(request: Request, session: LogonSession, href: str) -> Mount:
    match = _MOUNT_PATH.match(href.strip())
    if match is None:
        raise BadRequestError(
            "mount must name a mount: /api/vmReplicaPoints/{point}/mounts/{mount} (its Href or path)."
        )
    family = _FAMILY[match.group(1).lower()]
    return await service_of(request).mount_of(session, bare_id(match.group(2)), match.group(3), family)


# --- where a restore would write ----------------------------------------------------------------------


async def restore_target(request: Request) -> Response:
    """``?mount=…&path=…``: the path and the restore target a restore to the original location of that
    item would write to, or why there is none."""
    session = require(request, Permission.RESTORE)
    query = Query(request)
    mount = await _mount_of(request, session, query.get("mount") or "")
    path = query.get("path") or ""
    service = service_of(request)
    where = await browse.locate(service, mount, path.split("/"))
    if where.root is None:
        raise BadRequestError(
            "Name a file or folder to restore (a drive or folder, not the top of the guest)."
        )
    shown_path = mount.view.path_of(where.root, where.parts)
    value: Value = {"Type": "RestoreTarget", "Path": shown_path, "Configured": True, "Reason": None}
    try:
        value["Target"] = service.restores.destination(mount, where)
    except NoTargetError as exc:
        value.update(Target=None, Configured=False, Reason=exc.message)
    return em_response(request, webtypes.RESTORE_TARGET, value)


# --- the audit log ----------------------------------------------------------------------------------------


async def audit_log(request: Request) -> Response:
    """Administrators: the audit log, newest first, filtered by ``user``, ``vm`` (part of the name),
    ``action``, ``result``, ``since`` and ``until`` (ISO 8601, UTC unless a zone is given); paged."""
    require(request, Permission.ADMINISTER)
    service = service_of(request)
    query = Query(request)
    where = AuditFilter(
        user=(query.get("user") or "").strip() or None,
        vm=(query.get("vm") or "").strip() or None,
        action=_choice(query, "action", ACTIONS),
        result=_choice(query, "result", RESULTS),
        since=_time(query, "since"),
        until=_time(query, "until"),
    )
    settings = service.settings.api
    paging = page_request(query, settings.default_page_size, settings.max_page_size)
    size, number = paging.size, paging.number

    def read() -> tuple[list[AuditRecord], int]:
        records = service.audit.query(where, limit=size, offset=(number - 1) * size)
        return records, service.audit.count(where)

    records, total = await anyio.to_thread.run_sync(read)
    pages = max(1, -(-total // size))
    kept = "".join(
        f"&{k}={v}" for k, v in request.query_params.items() if k.lower() not in ("page", "pagesize")
    )
    base = f"{api_base(request)}/openflr/audit?pageSize={size}{kept}"
    value: Value = {
        "Records": [_record_value(r) for r in records],
        "PagingInfo": paging_info(number, size, pages, lambda n: f"{base}&page={n}"),
    }
    return em_response(request, webtypes.AUDIT_RECORDS, value)


def _record_value(record: AuditRecord) -> Value:
    return {
        "Id": record.id,
        "StartedAtUTC": record.started_at,
        "EndedAtUTC": record.ended_at,
        "User": record.user,
        "Client": record.client,
        "Action": record.action,
        "Vm": record.vm,
        "PointId": record.point_id,
        "PointTimeUTC": record.point_time,
        "Path": record.path,
        "Target": record.target,
        "Bytes": record.bytes,
        "Items": record.items,
        "FailedItems": record.failed_items,
        "Result": record.result,
        "Message": record.message,
        "TaskId": record.task_id or None,
    }


def _choice(query: Query, name: str, allowed: tuple[str, ...]) -> str | None:
    value = (query.get(name) or "").strip().lower()
    if not value:
        return None
    if value not in allowed:
        raise BadRequestError(f"{name} must be one of {', '.join(allowed)}, not {value[:40]!r}.")
    return value


def _time(query: Query, name: str) -> datetime | None:
    text = (query.get(name) or "").strip()
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestError(
            f"{name} must be a time in ISO 8601 (2026-12-01T08:00:00Z), not {text[:40]!r}."
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


routes = [
    Route("/api/openflr/web/logon", web_logon, ["POST"]),
    Route("/api/openflr/web/logoff", web_logoff, ["POST"]),
    Route("/api/openflr/me", get_me, ["GET"]),
    Route("/api/openflr/zip", list_zip, ["POST"]),
    Route("/api/openflr/restoreTarget", restore_target, ["GET"]),
    Route("/api/openflr/audit", audit_log, ["GET"]),
]
