"""Walk a guest view and compare it with the builder's ground truth."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from openflr.guestfs.view import GuestView, Located, Root

EXPECTED_EXTRA_DIRS = {"lost+found"}
"""Directories mkfs creates that the builder's trees do not list."""

OWNERS = {0: "root", 33: "www-data", 1000: "alice", 1001: "bob"}


def walk(view: GuestView, root: Root) -> Iterator[tuple[list[str], Any]]:
    """(parts, entry) of everything below ``root`` (depth first; mount points are not followed)."""
    stack: list[list[str]] = [[]]
    while stack:
        parts = stack.pop()
        where = (
            view.locate(view.path_of(root, parts))
            if parts
            else Located(root, [], root.fs.root() if root.fs else None)
        )
        for entry in view.scandir(where):
            child = [*parts, entry.name]
            if root.mount is not None and any(
                r.mount is not None and r is not root and r.mount == (*root.mount, *child) for r in view.roots
            ):
                continue  # a graft: another root's top
            yield child, entry
            if entry.is_dir:
                stack.append(child)


def check_volume(
    view: GuestView,
    root: Root,
    expected: dict[str, Any],
    *,
    hash_limit: int = 400,
    owners: dict[int, str] | None = None,
) -> None:
    """Every file of ``expected`` is listed with the right size, time, owner (and content, for up to
    ``hash_limit`` files), every expected directory exists, and nothing else is listed."""
    files: dict[str, Any] = {}
    dirs: set[str] = set()
    for parts, entry in walk(view, root):
        rel = "/".join(parts)
        if entry.is_dir:
            dirs.add(rel)
        else:
            files[rel] = entry
    want_files = dict(expected["files"])
    want_files.update(
        {
            p: {"size": len(lk["target"].encode()), "mtime": lk["mtime"], "link": True}
            for p, lk in expected.get("links", {}).items()
        }
    )
    extra_dirs = {
        d
        for d in dirs - set(expected["dirs"])
        if d.split("/")[-1] not in EXPECTED_EXTRA_DIRS
        and not any(d.startswith(x + "/") for x in EXPECTED_EXTRA_DIRS)
    }
    assert extra_dirs == set(), f"{root.name}: unexpected folders {sorted(extra_dirs)[:5]}"
    assert set(expected["dirs"]) - dirs == set(), (
        f"{root.name}: missing folders {sorted(set(expected['dirs']) - dirs)[:5]}"
    )
    missing, extra = sorted(set(want_files) - set(files))[:5], sorted(set(files) - set(want_files))[:5]
    assert set(files) == set(want_files), f"{root.name}: missing {missing}, extra {extra}"
    hashed = 0
    for rel, want in sorted(
        want_files.items(), key=lambda kv: ("/Many/" in kv[0] or "/many/" in kv[0], kv[0])
    ):
        got = files[rel]
        assert got.size == want["size"], f"{root.name}/{rel}: size {got.size} != {want['size']}"
        assert got.mtime_ns is not None and got.mtime_ns // 1_000_000_000 == want["mtime"], (
            f"{root.name}/{rel}: mtime {got.mtime_ns} != {want['mtime']}"
        )
        if expected["fs"] == "ntfs":
            assert got.owner == "BUILTIN\\Administrators", f"{rel}: owner {got.owner}"
        elif expected["fs"] in ("ext4", "xfs") and not want.get("link"):
            names = OWNERS if owners is None else owners
            assert got.owner == names.get(want["uid"], str(want["uid"])), f"{rel}: owner {got.owner}"
        if "sha256" in want and hashed < hash_limit:
            where = view.locate(view.path_of(root, rel.split("/")))
            assert root.fs is not None, root.name
            reader = root.fs.open(where.node)
            assert hashlib.sha256(reader.pread(reader.size, 0)).hexdigest() == want["sha256"], (
                f"{root.name}/{rel}"
            )
            hashed += 1


def root_for(view: GuestView, volume: dict[str, Any]) -> Root:
    name = volume["guest_root"]
    for root in view.roots:
        if root.name == name:
            return root
    raise AssertionError(f"no root {name!r} in {[r.name for r in view.roots]}")
