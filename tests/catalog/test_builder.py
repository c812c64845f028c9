"""The background builder over the chain: every point built by worker processes, a build killed
mid-way redone by sync(), a dropped point built again on request."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from openflr.catalog import queries
from openflr.catalog.builder import CatalogBuilder
from openflr.catalog.store import CatalogFile, PointState
from openflr.errors import ConflictError
from tests.catalog.chain import POINTS
from tests.catalog.conftest import Built
from tests.catalog.truth import catalog_row, expected_row


def rows(catalog: CatalogFile, point_id: str) -> dict[str, tuple[str, int, int | None, str | None]]:
    return {h.path: catalog_row(h.latest) for h in queries.search(catalog, [point_id], queries.Criteria())}


def test_every_point_is_built_by_the_workers(built: Built) -> None:
    status = built.files.status(built.inventory, built.replica.vm_name)
    assert [s.point.id for s in status] == built.ordered
    for s, point in zip(status, POINTS, strict=True):
        assert (s.point.state, s.point.entries, s.point.message) == (
            "Ready",
            len(built.chain.truth(point)),
            "",
        )
        assert s.vm_name == built.replica.vm_name
    assert built.files.ready_points(built.replica) == built.ordered
    assert built.files.builder.builds_done >= len(POINTS)


def test_a_worker_killed_mid_build_is_built_again_by_sync(own: Built) -> None:
    catalog = own.catalog
    p3 = own.ids["p3"]
    want = rows(catalog, p3)
    assert {p: expected_row(i) for p, i in own.chain.truth("p3").items()} == want
    catalog.requeue(p3)
    (point,) = [p for p in own.replica.points if p.id == p3]
    job = json.dumps({"disks": [[str(f) for f in d.files] for d in point.disks], "os": own.replica.os_kind})
    worker = subprocess.Popen(
        [sys.executable, "-m", "openflr.catalog.build", str(catalog.path), p3, job],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    state = PointState.QUEUED
    while time.monotonic() < deadline and worker.poll() is None:
        record = catalog.point(p3)
        state = record.state if record else state
        if state == PointState.BUILDING:
            os.kill(worker.pid, signal.SIGKILL)  # as a crash or a restart would
            break
        time.sleep(0.001)
    worker.wait(timeout=60)
    record = catalog.point(p3)
    assert record is not None
    if record.state != PointState.BUILDING:  # the worker won the race: leave what a kill leaves
        assert record.state == PointState.READY
        with catalog.cursor() as cur:
            cur.execute("UPDATE points SET state = ?, members = NULL WHERE id = ?", (PointState.BUILDING, p3))
            cur.connection.commit()
    assert catalog.point(p3).state == PointState.BUILDING  # type: ignore[union-attr]
    assert rows(CatalogFile(catalog.path), p3) == {}

    builder = CatalogBuilder(own.settings.catalog_dir, workers=1)
    try:
        builder.sync(own.inventory, build=True)  # a new server: finds the point cut short
        assert builder.file(own.replica.id).point(p3).state == PointState.QUEUED  # type: ignore[union-attr]
        builder.start()
        assert builder.wait_idle(timeout=120)
        again = builder.file(own.replica.id)
        assert again.point(p3).state == PointState.READY  # type: ignore[union-attr]
        assert rows(again, p3) == want
        for other in POINTS:
            assert again.point(own.ids[other]).state == PointState.READY  # type: ignore[union-attr]
    finally:
        builder.stop()


def test_a_dropped_point_is_not_searched_until_built_again(own: Built) -> None:
    files, p2 = own.files, own.ids["p2"]
    want = rows(own.catalog, p2)
    files.start(own.inventory)
    assert files.builder.wait_idle(timeout=60)
    assert files.drop(own.inventory, point=p2) == 1
    (status,) = [s for s in files.status(own.inventory) if s.point.id == p2]
    assert status.point.state == "Dropped"
    assert p2 not in files.ready_points(own.replica)
    with pytest.raises(ConflictError):
        files.search(own.inventory, queries.Criteria(name="txt"), point=p2)
    hits = files.search(own.inventory, queries.Criteria(name="renamed.txt"), vm=own.replica.vm_name)
    (hit,) = hits
    assert [pid for pid, _v in hit.hit.points] == [own.ids[p] for p in POINTS[2:]]  # p2 left out

    assert files.build(own.inventory, point=p2) == [p2]
    assert files.builder.wait_idle(timeout=120)
    assert files.ready_points(own.replica) == own.ordered
    assert rows(own.catalog, p2) == want
