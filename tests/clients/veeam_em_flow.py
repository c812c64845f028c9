"""Drive openflr with the real ``veeam-em`` client (run by its own virtualenv's Python).

Usage: ``python veeam_em_flow.py BASE USER PASSWORD POINT_ID json|xml``. Prints one JSON object with
what the client saw; the pytest side asserts on it. Only ``veeam_em`` and the standard library are
used here, and every call goes through the client's own ``get_token``/``request``/helpers.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import xml.etree.ElementTree as ET
from typing import Any

from veeam_em.manager import VeeamEm

NS = "{http://www.veeam.com/ent/v1.0}"
XML = "application/xml"


def wait_json(em: VeeamEm, href: str) -> dict[str, Any]:
    for _ in range(600):
        task: dict[str, Any] = em.request(href)
        if task["State"] == "Finished":
            return task
        time.sleep(0.05)
    raise SystemExit(f"task {href} did not finish")


def wait_xml(em: VeeamEm, href: str) -> ET.Element:
    for _ in range(600):
        task = ET.fromstring(em.request(href)["data"])
        if task.findtext(f"{NS}State") == "Finished":
            return task
        time.sleep(0.05)
    raise SystemExit(f"task {href} did not finish")


def page_query(em: VeeamEm) -> tuple[int, list[str]]:
    """Page through a query one point per page, following ``Next`` links as veeam-em itself does."""
    rv = em.request(
        "/query", params={"type": "VmReplicaPoint", "format": "Entities", "pageSize": 1, "page": 1}
    )
    pages = rv["PagingInfo"]["PagesCount"]
    seen: list[str] = []
    while True:
        seen += [p["UID"] for p in rv["Entities"]["VmReplicaPoints"]["VmReplicaPoints"]]
        nxt = [lk for lk in rv["PagingInfo"]["Links"] if lk["Rel"] == "Next"]
        if not nxt:
            return pages, seen
        rv = em.request(nxt[0]["Href"])


def list_all_json(em: VeeamEm, href: str, size: int) -> tuple[int, list[str]]:
    """``listAll`` a folder ``size`` entries per page; returns (pages, names)."""
    rv = em.request(href, params={"action": "listAll", "pageSize": size, "page": 1})
    pages = rv["PagingInfo"]["PagesCount"]
    names: list[str] = []
    while True:
        for group, key in (("Directories", "DirectoryEntries"), ("Files", "FileEntries")):
            names += [e["Name"] for e in (rv.get(group) or {}).get(key, [])]
        nxt = [lk for lk in rv["PagingInfo"]["Links"] if lk["Rel"] == "Next"]
        if not nxt:
            return pages, names
        rv = em.request(nxt[0]["Href"])


def list_all_xml(em: VeeamEm, href: str, size: int) -> tuple[int, list[str]]:
    doc = ET.fromstring(em.request(href, params={"action": "listAll", "pageSize": size, "page": 1})["data"])
    pages = int(doc.find(f"{NS}PagingInfo").get("PagesCount"))  # type: ignore[union-attr,arg-type]
    names: list[str] = []
    while True:
        names += [e.findtext(f"{NS}Name") or "" for e in doc.iter(f"{NS}DirectoryEntry")]
        names += [e.findtext(f"{NS}Name") or "" for e in doc.iter(f"{NS}FileEntry")]
        nxt = doc.find(f"{NS}PagingInfo/{NS}Links/{NS}Link[@Rel='Next']")
        if nxt is None:
            return pages, names
        doc = ET.fromstring(em.request(nxt.get("Href"))["data"])


def flow_json(em: VeeamEm, point: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    refs = em.request("/vmRestorePoints")["Refs"]
    out["restore_point_listed"] = any(r["UID"].split(":")[3] == point for r in refs)
    task = em.request(f"/vmRestorePoints/{point}/mounts", method=em.POST, payload={})
    task = wait_json(em, task["Href"])
    out["mount_task"] = [task["Operation"], task["Result"]["Success"]]
    mount = next(lk["Href"] for lk in task["Links"] if lk["Rel"] == "Related")
    mounts = em.request(f"/vmRestorePoints/{point}/mounts")["VmRestorePointMounts"]
    out["mount_listed"] = mount in [m["Href"] for m in mounts]
    body = em.request(mount)
    out["roots"] = [r["Path"] for r in body["FSRoots"]["DirectoryEntries"]]
    out["pages"], out["names"] = list_all_json(em, f"{mount}/C:/Documents", 3)
    task = em.request(
        f"{mount}/C:/Documents/report.txt",
        params={"action": "restore"},
        method=em.POST,
        payload={"ForDirectDownload": {}},
    )
    task = wait_json(em, task["Href"])
    out["restore_task"] = [task["Operation"], task["Result"]["Success"]]
    download = next(lk["Href"] for lk in task["Links"] if lk["Rel"] == "Download")
    response = em.request(download)  # veeam-em hands back the response object for attachments
    out["sha256"] = hashlib.sha256(response.content).hexdigest()
    out["unmount"] = em.request(mount, method=em.DELETE)["status"]
    return out


def task_outcome(task: ET.Element) -> list[Any]:
    result = task.find(f"{NS}Result")
    return [task.findtext(f"{NS}Operation"), result is not None and result.get("Success") == "true"]


def flow_xml(em: VeeamEm, point: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    doc = ET.fromstring(em.request("/vmRestorePoints")["data"])
    out["restore_point_listed"] = any(
        (r.get("UID") or "").split(":")[3] == point for r in doc.iter(f"{NS}Ref")
    )
    task = ET.fromstring(em.request(f"/vmRestorePoints/{point}/mounts", method=em.POST)["data"])
    task = wait_xml(em, task.get("Href") or "")
    out["mount_task"] = task_outcome(task)
    mount = task.find(f"{NS}Links/{NS}Link[@Rel='Related']").get("Href")  # type: ignore[union-attr]
    assert mount is not None
    mounts = ET.fromstring(em.request(f"/vmRestorePoints/{point}/mounts")["data"])
    out["mount_listed"] = mount in [m.get("Href") for m in mounts.iter(f"{NS}VmRestorePointMount")]
    body = ET.fromstring(em.request(mount)["data"])
    out["roots"] = [e.findtext(f"{NS}Path") for e in body.iter(f"{NS}DirectoryEntry")]
    out["pages"], out["names"] = list_all_xml(em, f"{mount}/C:/Documents", 3)
    spec = f'<FileRestoreSpec xmlns="{NS[1:-1]}"><ForDirectDownload/></FileRestoreSpec>'
    task = ET.fromstring(
        em.request(
            f"{mount}/C:/Documents/report.txt", params={"action": "restore"}, method=em.POST, data=spec
        )["data"]
    )
    task = wait_xml(em, task.get("Href") or "")
    out["restore_task"] = task_outcome(task)
    download = task.find(f"{NS}Links/{NS}Link[@Rel='Download']").get("Href")  # type: ignore[union-attr]
    response = em.request(download or "")
    out["sha256"] = hashlib.sha256(response.content).hexdigest()
    out["unmount"] = em.request(mount, method=em.DELETE)["status"]
    return out


def main() -> None:
    base, user, password, point, mode = sys.argv[1:6]
    em = VeeamEm(api_endpoint=base, ssl_verify=False, timeout=60)
    token = em.get_token(user, password)  # veeam-em logs on in JSON only (it reads the body's Links)
    out: dict[str, Any] = {"token": bool(token)}
    sessions = em.get_logon_sessions()
    out["logon_sessions"] = [s["UserName"] for s in sessions]
    out["whoami"] = (em.whoami() or {}).get("SessionId") == em.session_data["SessionId"]
    out["query_pages"], out["query_uids"] = page_query(em)
    out["all_points"] = len(em.request("/vmReplicaPoints")["Refs"])
    if mode == XML.split("/")[1]:
        em.content_type = XML
        em._default_content_type = XML  # the client resets to its default after each call
        out.update(flow_xml(em, point))
    else:
        out.update(flow_json(em, point))
    out["logout"] = em.request(f"/logonSessions/{em.session_data['SessionId']}", method=em.DELETE)["status"]
    gone = em.session.get(f"{em.api_endpoint}/logonSessions", verify=False, timeout=60)
    out["after_logout"] = gone.status_code
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
