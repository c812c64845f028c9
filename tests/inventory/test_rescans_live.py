"""A running server picks up new and removed snapshots without a restart (timer, SIGHUP, API)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx

from tests.imagebuilder import Fixtures
from tests.inventory.test_scanner import _clone
from tests.support import add_users, plain_client, run_server

TOKEN = "X-RestSvcSessionId"
FOURTH = (
    'snapshot3.uid = "4"\nsnapshot3.displayName = "Restore point 4"\nsnapshot3.createTimeHigh = "417657"\n'
    'snapshot3.createTimeLow = "0"\nsnapshot3.numDisks = "1"\n'
    'snapshot3.disk0.fileName = "Win File Server_replica-000003.vmdk"\nsnapshot3.disk0.node = "scsi0:0"\n'
)


def point_count(c: httpx.Client, base: str, token: str) -> int:
    r = c.get(
        base + "/api/query?type=VmReplicaPoint&pageSize=1",
        headers={TOKEN: token, "Accept": "application/json"},
    )
    assert r.status_code == 200
    return int(r.json()["PagingInfo"]["PagesCount"])


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_periodic_sighup_and_api_rescans(fixtures: Fixtures, tmp_path: Path) -> None:
    ds = _clone(fixtures.datastore("vmware"), tmp_path / "ds")
    vmsd = ds / "Win File Server_replica" / "Win File Server_replica.vmsd"
    original = vmsd.read_text()
    data = tmp_path / "data"
    add_users(data)
    config = f'[inventory]\nrescan_interval = 1\n[[datastores]]\nname = "v"\npath = "{ds}"\n'
    with run_server(data, https=False, config=config) as server, plain_client() as c:
        token = c.post(server.base + "/api/sessionMngr/", auth=("admin", "Adm1n!pass")).headers[TOKEN]
        assert point_count(c, server.base, token) == 6
        # periodic: a new snapshot appears without a restart
        vmsd.write_text(original.replace('numSnapshots = "3"', 'numSnapshots = "4"') + FOURTH)
        assert wait_for(lambda: point_count(c, server.base, token) == 7)
        # ... and a removed one disappears
        vmsd.write_text(original.replace('snapshot0.uid = "1"', 'snapshotX.uid = "1"'))
        assert wait_for(lambda: point_count(c, server.base, token) == 5)
    # SIGHUP and the admin API rescan on demand (periodic rescans off)
    config = f'[inventory]\nrescan_interval = 0\n[[datastores]]\nname = "v"\npath = "{ds}"\n'
    vmsd.write_text(original)
    with run_server(data, https=False, config=config) as server, plain_client() as c:
        token = c.post(server.base + "/api/sessionMngr/", auth=("admin", "Adm1n!pass")).headers[TOKEN]
        assert point_count(c, server.base, token) == 6
        vmsd.write_text(original.replace('numSnapshots = "3"', 'numSnapshots = "4"') + FOURTH)
        time.sleep(1.5)
        assert point_count(c, server.base, token) == 6  # nothing rescans on its own
        server.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: point_count(c, server.base, token) == 7)
        vmsd.write_text(original)
        r = c.post(server.base + "/api/openflr/rescan", headers={TOKEN: token, "Accept": "application/json"})
        assert r.status_code == 200 and r.json()["Points"] == 6
        assert point_count(c, server.base, token) == 6
