"""Helpers for file-level-restore wire tests: find points, mount, poll tasks, list folders."""

from __future__ import annotations

import time
from typing import Any

from tests.support import Api

TOKEN = "X-RestSvcSessionId"
JSON = {"Accept": "application/json"}


def headers(token: str, json: bool = True) -> dict[str, str]:
    return {TOKEN: token, **(JSON if json else {})}


def point_href(api: Api, token: str, platform: str, display: str, index: int = -1) -> str:
    """Href of a replica point of the VM ``display`` on the datastore of ``platform`` (oldest first)."""
    replicas = api.get("/api/replicas?format=Entity", headers=headers(token)).json()["Replicas"]
    replica = next(r for r in replicas if r["Platform"] == platform and r["Name"].startswith(display))
    down = next(lk["Href"] for lk in replica["Links"] if lk["Type"] == "VmReplicaPointReferenceList")
    refs = api.get(down + "?format=Entity", headers=headers(token)).json()["VmReplicaPoints"]
    refs.sort(key=lambda p: p["CreationTimeUTC"])
    return str(refs[index]["Href"]).split("?")[0]


def wait_task(api: Api, token: str, href: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task: dict[str, Any] = api.get(href, headers=headers(token)).json()
        if task["State"] == "Finished":
            return task
        assert time.monotonic() < deadline, task
        time.sleep(0.05)


def mount(api: Api, token: str, point: str, **kw: Any) -> str:
    """Mount ``point`` and return the mount's Href."""
    r = api.post(point + "/mounts", headers=headers(token), **kw)
    assert r.status_code == 202, r.text
    task = wait_task(api, token, r.json()["Href"])
    assert task["Result"]["Success"], task
    return str(next(lk["Href"] for lk in task["Links"] if lk["Rel"] == "Related"))


def list_all(api: Api, token: str, href: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(files, directories) of a folder, unpaged (JSON)."""
    body = api.get(href + "?action=listAll", headers=headers(token)).json()
    files = (body["Files"] or {}).get("FileEntries", [])
    dirs = (body["Directories"] or {}).get("DirectoryEntries", [])
    return files, dirs


def roots(api: Api, token: str, mount_href: str) -> dict[str, str]:
    body = api.get(mount_href, headers=headers(token)).json()
    return {r["Path"]: r["Href"] for r in body["FSRoots"]["DirectoryEntries"]}
