"""The listing cache over a real guest file system: background reads hold their mount, stop once it
is removed, and never call back into the cache while holding its lock."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from openflr.core.browse import ALL, ListingCache
from openflr.errors import NotFoundError
from openflr.guestfs.view import GuestView, open_view
from tests.guestfs.test_view import _vm
from tests.imagebuilder import Fixtures
from tests.imagebuilder.trees import MANY_COUNT


@pytest.fixture
def linux_view(fixtures: Fixtures) -> Iterator[GuestView]:
    _folder, vm = _vm(fixtures, "vmware", 1)
    point = vm["points"][0]  # type: ignore[index]
    view = open_view([[fixtures.datastore("vmware") / f for f in disk] for disk in point["disks"]])
    yield view
    view.close()


class Holds:
    """A stand-in for MountManager.hold that counts and can run something on release."""

    def __init__(self) -> None:
        self.inside = 0
        self.entered = 0
        self.on_release: Any = None

    @contextlib.contextmanager
    def __call__(self, mount: Any) -> Iterator[None]:
        if mount.released:
            raise NotFoundError("removed")
        self.inside += 1
        self.entered += 1
        try:
            yield
        finally:
            self.inside -= 1
            if self.on_release is not None:
                self.on_release()


def _mount(view: GuestView) -> Any:
    return SimpleNamespace(view=view, released=False, gone=False, mount_id=1)


def test_reads_hold_the_mount_and_release_it(linux_view: GuestView) -> None:
    holds = Holds()
    cache = ListingCache(hold=holds)
    mount = _mount(linux_view)
    where = linux_view.locate("/var/many")
    scan = cache.scan(mount, where)
    scan.wait(ALL, MANY_COUNT, 60)
    assert scan.done and scan.size() == MANY_COUNT
    assert holds.entered == 2 and holds.inside == 0  # the counts, then the background read


def test_releasing_a_hold_that_closes_the_view_does_not_deadlock(linux_view: GuestView) -> None:
    holds = Holds()
    cache = ListingCache(hold=holds)
    holds.on_release = lambda: cache.forget_view(linux_view.serial)  # what closing a view does
    mount = _mount(linux_view)
    where = linux_view.locate("/var/many")
    scans: list[Any] = []
    done = threading.Event()
    threading.Thread(target=lambda: (scans.append(cache.scan(mount, where)), done.set()), daemon=True).start()
    assert done.wait(30), "scan() deadlocked on its own lock"
    scans[0].wait(ALL, MANY_COUNT, 60)  # let the background read end before the view closes
    assert scans[0].error is None


def test_a_read_stops_once_its_mount_is_removed(linux_view: GuestView) -> None:
    holds = Holds()
    cache = ListingCache(hold=holds)
    mount = _mount(linux_view)
    where = linux_view.locate("/var/many")
    scan = cache.scan(mount, where)
    mount.released = True  # unmounted while the folder is being read
    with pytest.raises(NotFoundError):
        scan.wait(ALL, MANY_COUNT, 60)
    assert not scan.done and scan.size() == 0
    assert holds.inside == 0
    again = cache.scan(_mount(linux_view), where)  # a failed read is not served from the cache
    assert again is not scan
    again.wait(ALL, MANY_COUNT, 60)
    assert again.done and again.size() == MANY_COUNT
