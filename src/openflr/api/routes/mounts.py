"""Mounts, tasks and browsing (docs/COMPATIBILITY.md), for replica points (and, in the same shape,
restore points)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from openflr.api import downloads, emtypes
from openflr.api.auth import require, service_of
from openflr.api.bodies import parse_body
from openflr.api.mountvalues import FAMILIES, Listing, dir_links, mount_href, mount_value, task_value
from openflr.api.negotiation import Format
from openflr.api.paging import page_request, paging_info
from openflr.api.responses import camel_json, em_response, response_format
from openflr.api.routing import FamilyRoute, Route, family_of
from openflr.api.schema import Value
from openflr.api.urls import Query, api_base, guest_parts
from openflr.core import browse
from openflr.core.browse import Arrangement, ListingKind, SortKey
from openflr.core.families import PointFamily
from openflr.core.guest import Entry, Located
from openflr.core.mounts import Mount
from openflr.core.names import shown
from openflr.core.restores import Credentials, RestoreRequest
from openflr.core.roles import Permission
from openflr.core.service import bare_id
from openflr.core.sessions import LogonSession
from openflr.errors import BadRequestError

_MOUNT_LIST_TYPES = {
    PointFamily.REPLICA: emtypes.VM_REPLICA_POINT_MOUNTS,
    PointFamily.RESTORE: emtypes.VM_RESTORE_POINT_MOUNTS,
}
_MOUNT_TYPES = {
    PointFamily.REPLICA: emtypes.VM_REPLICA_POINT_MOUNT,
    PointFamily.RESTORE: emtypes.VM_RESTORE_POINT_MOUNT,
}


# --- tasks ---------------------------------------------------------------------------------------------


async def list_tasks(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    base = api_base(request)
    tasks = service_of(request).tasks.list(session)
    return em_response(request, emtypes.TASKS, {"Tasks": [task_value(base, t) for t in tasks]})


async def get_task(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    task = service_of(request).tasks.get(session, request.path_params["task_id"])
    return em_response(request, emtypes.TASK, task_value(api_base(request), task))


async def delete_task(request: Request) -> Response:
    session = require(request, Permission.BROWSE_INVENTORY)
    service_of(request).tasks.delete(session, request.path_params["task_id"])
    return Response(status_code=204)


# --- mounts --------------------------------------------------------------------------------------------


async def create_mount(request: Request) -> Response:
    session = require(request, Permission.MOUNT)
    body = await request.body()
    spec = parse_body(emtypes.START_MOUNT_SPEC, body, request.headers.get("content-type"))
    os_kind = spec.get("OsKind")
    if os_kind is not None and os_kind.strip().lower() not in ("windows", "linux"):
        raise BadRequestError(f"OsKind must be Windows or Linux, not {os_kind!r}.")
    task = service_of(request).start_mount(session, request.path_params["point_id"], family_of(request))
    return em_response(request, emtypes.TASK, task_value(api_base(request), task), status=202)


def _point_id(request: Request, session: LogonSession) -> str:
    _replica, point = service_of(request).point(session, request.path_params["point_id"])
    return point.id


async def list_mounts(request: Request) -> Response:
    session = require(request, Permission.MOUNT)
    family = family_of(request)
    mounts = await service_of(request).mounts_of_point(session, _point_id(request, session), family)
    base = api_base(request)
    key = FAMILIES[family][1]
    return em_response(
        request, _MOUNT_LIST_TYPES[family], {key + "s": [mount_value(base, m) for m in mounts]}
    )


async def _mount(request: Request, session: LogonSession) -> Mount:
    # By the id in the URL, not the inventory: a mount whose point vanished must say so clearly.
    point_id = bare_id(request.path_params["point_id"])
    return await service_of(request).mount_of(
        session, point_id, request.path_params["mount_id"], family_of(request)
    )


async def get_mount(request: Request) -> Response:
    session = require(request, Permission.MOUNT)
    mount = await _mount(request, session)
    return em_response(request, _MOUNT_TYPES[mount.family], mount_value(api_base(request), mount))


async def delete_mount(request: Request) -> Response:
    session = require(request, Permission.MOUNT)
    service = service_of(request)
    await anyio.to_thread.run_sync(
        service.mounts.unmount,
        session,
        bare_id(request.path_params["point_id"]),
        request.path_params["mount_id"],
        family_of(request),
    )
    return Response(status_code=204)


# --- browsing ------------------------------------------------------------------------------------------


async def browse_path(request: Request) -> Response:
    query = Query(request)
    action = (query.get("action") or "").strip()
    # Downloading is restoring: a role that may only browse is refused before anything is looked up.
    session = require(
        request, Permission.RESTORE if action.lower() == "download" else Permission.BROWSE_FILES
    )
    mount = await _mount(request, session)
    service = service_of(request)
    where = await browse.locate(service, mount, guest_parts(request))
    if not action:
        if where.entry is not None or (where.root is not None):
            return em_response(request, emtypes.FILE_SYSTEM_ENTRY, _item(request, mount, where))
        action = ListingKind.ALL  # the top of a Windows guest is not an item: list its drives
    if action.lower() == "download":
        return await downloads.download(request, session, mount, where)
    kind = ListingKind.of_action(action)
    if kind is None:
        if action.lower() == "restore":
            raise BadRequestError("action=restore needs a POST with a FileRestoreSpec.")
        raise BadRequestError(f"Unknown action {action!r}; use listAll, listDirs, listFiles or download.")
    return await _listing(request, session, mount, where, kind, query)


async def restore_path(request: Request) -> Response:
    """``POST …/{filepath}?action=restore`` with a ``FileRestoreSpec`` (also ``?action=download``)."""
    session = require(request, Permission.RESTORE)
    mount = await _mount(request, session)
    action = (Query(request).get("action") or "").strip().lower()
    if action not in ("restore", "download"):
        raise BadRequestError(
            "POST on an item needs ?action=restore (with a FileRestoreSpec) or ?action=download."
        )
    path = guest_parts(request)
    spec = None
    if action == "restore":
        body = await request.body()
        spec = restore_request(
            parse_body(emtypes.FILE_RESTORE_SPEC, body, request.headers.get("content-type"))
        )
    service = service_of(request)
    where = await browse.locate(service, mount, path)
    if spec is None:
        return await downloads.download(request, session, mount, where)
    if where.root is None:
        raise BadRequestError(
            "Name a file or folder to restore (a drive or folder, not the top of the guest)."
        )
    task = service.restores.start(session, mount, where, spec, downloads.client_of(request))
    return em_response(request, emtypes.TASK, task_value(api_base(request), task), status=202)


def restore_request(spec: dict[str, Any]) -> RestoreRequest:
    """A parsed ``FileRestoreSpec`` -> what to do; 400 with the reason when it is not exactly one thing."""
    original: dict[str, Any] | None = spec.get("ToOriginalLocation")
    download: dict[str, Any] | None = spec.get("ForDirectDownload")
    if original is None and download is None:
        raise BadRequestError(
            "The FileRestoreSpec must hold ToOriginalLocation or ForDirectDownload; it holds neither."
        )
    if original is not None and download is not None:
        raise BadRequestError(
            "The FileRestoreSpec must hold ToOriginalLocation or ForDirectDownload, not both."
        )
    if original is None:
        return RestoreRequest(direct_download=True)
    credentials = None
    given = original.get("GuestCredentials")
    if given is not None:
        name, password = given.get("UserName"), given.get("Password")
        if not name or not name.strip():
            raise BadRequestError("GuestCredentials needs a UserName (DOMAIN\\user).")
        if password is None:
            raise BadRequestError("GuestCredentials needs a Password.")
        credentials = Credentials(name.strip(), password)
    return RestoreRequest(
        direct_download=False,
        overwrite=bool(original.get("Overwrite", False)),
        permissions_only=bool(original.get("PermissionsOnly", False)),
        credentials=credentials,
    )


def _item(request: Request, mount: Mount, where: Located) -> Value:
    listing = Listing(api_base(request), mount, where)
    href = listing.dir_url
    up = listing.parent_link()
    if where.entry is not None and not where.entry.is_dir:
        parent = Located(where.root, where.parts[:-1])
        return {"FileEntry": Listing(api_base(request), mount, parent).file(where.entry)}
    name = shown(where.parts[-1]) if where.parts else listing.dir_path
    return {
        "DirectoryEntry": {
            "Type": "DirectoryEntry",
            "Href": href,
            "Links": dir_links(href, up),
            "Path": listing.dir_path,
            "Name": name,
        }
    }


async def _listing(
    request: Request, session: LogonSession, mount: Mount, where: Located, kind: ListingKind, query: Query
) -> Response:
    service = service_of(request)
    listing = Listing(api_base(request), mount, where)
    settings = service.settings.api
    paging = page_request(query, settings.max_page_size, settings.max_page_size)
    arrangement = _arrangement(query)
    url = f"{listing.dir_url}?action={kind.value}{_arrangement_query(arrangement)}"
    value: Value = {
        "Href": f"{url}&pageSize={paging.asked}&page={paging.number}" if paging.asked else url,
        "Links": [listing.parent_link()],
    }
    if paging.asked is not None:
        size, number = paging.size, paging.number
        page = await browse.page(service, mount, where, kind, size, number, arrangement)
        # PascalCase JSON (the common case) skips building each file's value first.
        fast = response_format(request) is Format.JSON and not camel_json(request)
        files, dirs = listing.split(page.entries, json=fast)
        pages = max(1, -(-page.total // size))
        value.update(
            Files=files or None,
            Directories=dirs or None,
            PagingInfo=paging_info(number, size, pages, lambda n: f"{url}&pageSize={size}&page={n}"),
        )
        return em_response(request, emtypes.FILE_SYSTEM_ENTRIES, value)
    if not arrangement.is_default:
        raise BadRequestError("orderBy and filter need pageSize: a sorted or filtered listing is paged.")
    # No pageSize: everything, streamed while it is read. Files go out as they come; folders are
    # held back (there are usually few) because the document lists them after the files.
    held: list[Entry] = []
    count = 0
    streamed = browse.entries(service, session, mount, where, kind)  # a file is refused here, at once

    def file_values() -> Iterator[Value]:
        nonlocal count
        for item in listing.stream_files(streamed, held):
            count += 1
            yield item

    def directories() -> list[Value] | None:
        nonlocal count
        count += len(held)
        return [listing.directory(e) for e in held] or None

    def paging_value() -> Value:
        return paging_info(1, count, 1, lambda n: url)

    value.update(
        Files=file_values() if kind is not ListingKind.DIRS else None,
        Directories=directories,
        PagingInfo=paging_value,
    )
    if kind is ListingKind.DIRS:  # nothing streams: collect the folders off the event loop first
        held.extend(await browse.folders(service, mount, where))
    return em_response(request, emtypes.FILE_SYSTEM_ENTRIES, value)


def _arrangement(query: Query) -> Arrangement:
    """``orderBy`` (name, size, modified, owner), ``order`` (asc, desc) and ``filter`` (text the name
    holds, case-insensitive): openflr's sorting and filtering of a paged listing."""
    order_by = (query.get("orderBy") or "").strip().lower()
    order = (query.get("order") or "asc").strip().lower()
    name_filter = query.get("filter") or ""
    if len(name_filter) > 255:
        raise BadRequestError("filter is longer than a file name can be (255 characters).")
    key = None
    if order_by:
        try:
            key = SortKey(order_by)
        except ValueError:
            raise BadRequestError(
                f"orderBy must be one of {', '.join(k.value for k in SortKey)}, not {order_by[:40]!r}."
            ) from None
    if order not in ("asc", "desc"):
        raise BadRequestError(f"order must be asc or desc, not {order[:40]!r}.")
    return Arrangement(key, order == "desc", name_filter)


def _arrangement_query(arrangement: Arrangement) -> str:
    """The query parameters that repeat ``arrangement`` in the listing's own links."""
    text = ""
    if arrangement.key is not None:
        text += f"&orderBy={arrangement.key.value}&order={'desc' if arrangement.descending else 'asc'}"
    if arrangement.name_contains:
        text += "&filter=" + quote(arrangement.name_contains, safe="")
    return text


def _family_routes(family: PointFamily) -> list[Route]:
    prefix = f"/api/{FAMILIES[family][0]}/{{point_id}}/mounts"
    return [
        FamilyRoute(prefix, create_mount, ["POST"], family),
        FamilyRoute(prefix, list_mounts, ["GET"], family),
        FamilyRoute(prefix + "/{mount_id}", get_mount, ["GET"], family),
        FamilyRoute(prefix + "/{mount_id}", delete_mount, ["DELETE"], family),
        FamilyRoute(prefix + "/{mount_id}/{filepath:path}", browse_path, ["GET"], family),
        FamilyRoute(prefix + "/{mount_id}/{filepath:path}", restore_path, ["POST"], family),
    ]


routes = [
    Route("/api/tasks", list_tasks, ["GET"]),
    Route("/api/tasks/{task_id}", get_task, ["GET"]),
    Route("/api/tasks/{task_id}", delete_task, ["DELETE"]),
    *_family_routes(PointFamily.REPLICA),
    *_family_routes(PointFamily.RESTORE),
]

__all__ = ["mount_href", "routes"]
