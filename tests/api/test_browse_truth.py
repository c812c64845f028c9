"""Through the API, each point of each fixture VM lists exactly its ground-truth files: names, sizes,
times and owners, and its own version of the files that changed between points."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api.flr import list_all, mount, point_href
from tests.guestfs.truth import EXPECTED_EXTRA_DIRS, OWNERS
from tests.imagebuilder import Fixtures
from tests.support import Api


def walk(api: Api, token: str, href: str, prefix: str) -> tuple[dict[str, dict[str, Any]], set[str]]:
    files: dict[str, dict[str, Any]] = {}
    dirs: set[str] = set()
    stack = [(href, prefix)]
    while stack:
        url, rel = stack.pop()
        got_files, got_dirs = list_all(api, token, url)
        for f in got_files:
            files[f"{rel}{f['Name']}"] = f
        for d in got_dirs:
            if d["Name"] in EXPECTED_EXTRA_DIRS:
                continue
            dirs.add(f"{rel}{d['Name']}")
            stack.append((d["Href"], f"{rel}{d['Name']}/"))
    return files, dirs


@pytest.mark.parametrize("vm", ["Win File Server", "lin-web01"])
def test_every_point_lists_its_own_files(api: Api, fixtures: Fixtures, vm: str) -> None:
    token = api.logon("flrop")
    for index in range(3):
        mnt = mount(api, token, point_href(api, token, "KVM", vm, index))
        truth = fixtures.manifest["vms"][vm][f"p{index + 1}"]
        for volume in truth["volumes"].values():
            root = volume["guest_root"]
            href = f"{mnt}/{root.lstrip('/')}"
            files, dirs = walk(api, token, href, "")
            grafts = {v["guest_root"].strip("/") for v in truth["volumes"].values() if v["guest_root"] != "/"}
            if root == "/":
                dirs -= grafts
                files = {k: v for k, v in files.items() if k.split("/")[0] not in grafts}
                dirs = {d for d in dirs if d.split("/")[0] not in grafts}
            want = dict(volume["files"])
            want.update(
                {
                    p: {"size": len(lk["target"].encode()), "mtime": lk["mtime"]}
                    for p, lk in volume["links"].items()
                }
            )
            assert set(files) == set(want), (root, sorted(set(files) ^ set(want))[:5])
            assert dirs == set(volume["dirs"]), (root, sorted(dirs ^ set(volume["dirs"]))[:5])
            for rel, spec in want.items():
                got = files[rel]
                assert got["Size"] == spec["size"], (rel, got["Size"], spec["size"])
                when = datetime.fromisoformat(got["ModifiedDateUTC"].replace("Z", "+00:00"))
                assert int(when.timestamp()) == spec["mtime"], (rel, got["ModifiedDateUTC"])
                assert when.tzinfo == UTC
                if volume["fs"] == "ntfs":
                    assert got["Owner"] == "BUILTIN\\Administrators"
                elif volume["fs"] in ("ext4", "xfs") and "uid" in spec:
                    assert got["Owner"] == OWNERS[spec["uid"]]
                else:
                    assert volume["fs"] in ("fat", "ext4") and got["Owner"] in (None, "root")
