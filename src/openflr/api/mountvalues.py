"""Mounts, tasks and file-system entries -> EM values (docs/COMPATIBILITY.md), with their Hrefs and links."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import orjson

from openflr.api.render import JsonItems, json_text
from openflr.api.schema import Link, Value
from openflr.core.families import PointFamily
from openflr.core.guest import Entry, GuestView, Located, Root
from openflr.core.mounts import Mount
from openflr.core.names import shown
from openflr.core.tasks import FINISHED, Task

FAMILIES = {
    PointFamily.REPLICA: ("vmReplicaPoints", "VmReplicaPointMount"),
    PointFamily.RESTORE: ("vmRestorePoints", "VmRestorePointMount"),
}
"""A family's URL collection and mount type."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SAFE = "/:$@!'()*,;=+~"
_SEGMENT_SAFE = _SAFE.replace("/", "")
_UNPAIRED = "surrogatepass"
"""Names with unpaired surrogates (damaged NTFS names) are still given a URL, one of their own."""
_PLAIN = re.compile(r"^[A-Za-z0-9_.\-~]*$")


def quote_name(name: str) -> str:
    """One path segment, percent-encoded (names that need no encoding skip the slow quoter)."""
    return name if _PLAIN.match(name) else quote(name, safe=_SEGMENT_SAFE, errors=_UNPAIRED)


def url_part(path: str) -> str:
    """A guest path as it appears after ``…/mounts/{id}/``: percent-encoded, no leading slash."""
    return quote(path.lstrip("/"), safe=_SAFE, errors=_UNPAIRED)


def mount_href(base: str, family: PointFamily, point_id: str, mount_id: int) -> str:
    return f"{base}/{FAMILIES[family][0]}/{point_id}/mounts/{mount_id}"


def time_of(ns: int | None) -> datetime | None:
    if ns is None:
        return None
    try:
        return _EPOCH + timedelta(microseconds=ns // 1000)
    except OverflowError:
        return None


_DAYS: dict[int, str] = {}
_CLOCK = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
"""``HH:MM:`` by minute of the day."""
_SECONDS = [f"{s:02d}" for s in range(60)]
_FRACTIONS = [""] + [f".{ms:03d}".rstrip("0") for ms in range(1, 1000)]
"""The milliseconds as ``ModifiedDateUTC`` writes them: none when whole, no trailing zeros."""


def time_text(ns: int | None) -> str | None:
    """``ModifiedDateUTC`` text straight from nanoseconds: the listing hot path, so the date part is
    cached per day and the time of day built from tables (same text as ``render.format_time``)."""
    if ns is None:
        return None
    seconds, rest = divmod(ns, 1_000_000_000)
    day, sod = divmod(seconds, 86400)
    date = _DAYS.get(day)
    if date is None:
        try:
            t = time.gmtime(day * 86400)
        except (OverflowError, OSError, ValueError):
            return None
        date = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        if len(_DAYS) < 100_000:
            _DAYS[day] = date
    minute, second = divmod(sod, 60)
    return date + _CLOCK[minute] + _SECONDS[second] + _FRACTIONS[rest // 1_000_000] + "Z"


def task_value(base: str, task: Task) -> Value:
    href = f"{base}/tasks/{task.id}"
    links = [Link("Delete", href, "Task")]
    for item in task.related:
        if item["kind"] == "mount":
            family = PointFamily(item.get("family", PointFamily.REPLICA))
            links.append(
                Link(
                    "Related",
                    mount_href(base, family, item["point"], item["mount"]),
                    FAMILIES[family][1],
                    f"{item['point']}@{item['mount']}",
                )
            )
        elif item["kind"] == "download":
            family = PointFamily(item.get("family", PointFamily.REPLICA))
            target = mount_href(base, family, item["point"], item["mount"])
            links.append(Link("Download", f"{target}/{url_part(shown(item['path']))}?action=download"))
    value: Value = {
        "Href": href,
        "Type": "Task",
        "TaskId": task.id,
        "State": task.state,
        "Operation": task.operation,
        "Links": links,
    }
    if task.state == FINISHED:
        value["Result"] = {"Success": bool(task.success), "Message": task.message or ""}
    return value


def root_entry(href: str, view: GuestView, root: Root) -> Value:
    path = shown(view.path_of(root, []))
    return {"Type": "DirectoryEntry", "Href": f"{href}/{url_part(path)}", "Path": path, "Name": path}


def mount_value(base: str, mount: Mount) -> Value:
    href = mount_href(base, mount.family, mount.point_id, mount.mount_id)
    roots = [root_entry(href, mount.view, r) for r in mount.view.roots]
    return {
        "Type": FAMILIES[mount.family][1],
        "Href": href,
        "Links": [Link("Delete", href, FAMILIES[mount.family][1])],
        "FSRoots": roots or None,
    }


class Listing:
    """Builds the values of one directory's entries, sharing the parts common to all of them."""

    def __init__(self, base: str, mount: Mount, where: Located) -> None:
        self.mount_href = mount_href(base, mount.family, mount.point_id, mount.mount_id)
        self.mount_type = FAMILIES[mount.family][1]
        self.view = mount.view
        self.where = where
        self.dir_path = shown(self.view.path_of(where.root, where.parts))
        self.dir_url = f"{self.mount_href}/{url_part(self.dir_path)}"
        self.child_base = self.dir_url if self.dir_url.endswith("/") else self.dir_url + "/"
        self.up = Link("Up", f"{self.dir_url}?action=listAll&pageSize=100&page=1")
        if where.root is None:
            self.child_prefix: str | None = None
        else:
            self.child_prefix = self.dir_path if self.dir_path.endswith("/") else self.dir_path + "/"
        # Text shared by every file's JSON (see file_json), escaped once.
        up_json = {"Rel": "Up", "Href": self.up.href, "Name": None, "Type": None}
        self._up_text = json_text(up_json)
        self._base_text = json_text(self.child_base)[1:-1]
        self._prefix_text = "" if self.child_prefix is None else json_text(self.child_prefix)[1:-1]
        self._owner_text: dict[str | None, str] = {None: "null"}

    def child_path(self, name: str) -> str:
        return name if self.child_prefix is None else self.child_prefix + name

    def parent_link(self) -> Link:
        """``Up`` of the listing itself: the parent folder's listing, or the mount at the top."""
        where = self.where
        if where.root is None or (not where.parts and (where.root.mount is None or where.root.mount == ())):
            return Link("Up", self.mount_href, self.mount_type)
        if not where.parts and where.root.mount:
            parent = "/" + "/".join(where.root.mount[:-1])
        else:
            parent = shown(self.view.path_of(where.root, where.parts[:-1]))
        return Link("Up", f"{self.mount_href}/{url_part(parent)}?action=listAll&pageSize=100&page=1")

    def file(self, e: Entry) -> Value:
        name = e.name if _PLAIN.match(e.name) else shown(e.name)
        href = self.child_base + (name if _PLAIN.match(name) else quote_name(name))
        return {
            "Type": "FileEntry",
            "Href": href,
            "Links": [self.up, Link("Restore", href + "?action=restore")],
            "Path": self.child_prefix + name if self.child_prefix is not None else name,
            "Name": name,
            "Size": e.size,
            "Owner": e.owner,
            "ModifiedDateUTC": time_text(e.mtime_ns),
        }

    def file_json(self, e: Entry) -> orjson.Fragment:
        """``file(e)`` as the JSON renderer would write it (PascalCase keys), made as text in one
        step: the listing hot path (tests/api/test_mountvalues.py holds the two to the same bytes)."""
        name = e.name
        if _PLAIN.match(name):  # nothing to escape, in JSON or in the URL
            href = name_text = name
        else:
            name = shown(name)
            href = quote_name(name)  # ASCII, none of it escaped in JSON
            name_text = json_text(name)[1:-1]
        href = self._base_text + href
        owner = self._owner_text.get(e.owner)
        if owner is None:
            owner = self._owner_text[e.owner] = json_text(e.owner)
        when = time_text(e.mtime_ns)
        when = "null" if when is None else '"' + when + '"'
        return orjson.Fragment(
            f'{{"Path":"{self._prefix_text}{name_text}","Name":"{name_text}","Size":{int(e.size)},'
            f'"Owner":{owner},"ModifiedDateUTC":{when},'
            f'"Links":[{self._up_text},{{"Rel":"Restore","Href":"{href}?action=restore","Name":null,'
            f'"Type":null}}],"Href":"{href}","Type":"FileEntry"}}'
        )

    def directory(self, e: Entry) -> Value:
        name = shown(e.name)
        href = self.child_base + quote_name(name)
        return {
            "Type": "DirectoryEntry",
            "Href": href,
            "Links": dir_links(href, self.up),
            "Path": self.child_path(name),
            "Name": name,
        }

    def split(self, entries: Iterable[Entry], json: bool = False) -> tuple[list[Any], list[Value]]:
        """(files, folders) as values; with ``json`` the files come as JSON text already
        (``JsonItems``: for PascalCase JSON only, never for XML)."""
        file: Callable[[Entry], Any] = self.file_json if json else self.file
        files: list[Any] = JsonItems() if json else []
        dirs: list[Value] = []
        for e in entries:
            if e.is_dir:
                dirs.append(self.directory(e))
            else:
                files.append(file(e))
        return files, dirs

    def stream_files(self, entries: Iterator[Entry], dirs_out: list[Entry]) -> Iterator[Value]:
        """File values as they come; directory entries are set aside for after the files."""
        for e in entries:
            if e.is_dir:
                dirs_out.append(e)
            else:
                yield self.file(e)


def dir_links(href: str, up: Link | None) -> list[Link]:
    links = [up] if up is not None else []
    links += [
        Link("Down", f"{href}?action=listAll&pageSize=100&page=1"),
        Link("Down", f"{href}?action=listDirs&pageSize=10&page=1"),
        Link("Down", f"{href}?action=listFiles&pageSize=10&page=1"),
        Link("Restore", f"{href}?action=restore"),
    ]
    return links
