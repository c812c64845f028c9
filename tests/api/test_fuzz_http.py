"""Fuzz the whole HTTP surface: schemathesis generates requests from the OpenAPI description openflr
publishes (``/api/openapi.json``) and sends them to a real ``openflr serve`` process.

Every operation gets valid-looking requests (positive mode) and requests that break the description
(negative mode), authenticated with a real logon token. Path parameters are often swapped for real
ids (points, mounts, tasks, guest paths) so the fuzzing reaches mounted file systems, not only 404s.
Checks: no 5xx, only documented status codes and content types, and JSON bodies that match the
schemas. Bounded: a few thousand requests, about a minute on 2 cores.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err, Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.flr import TOKEN, headers, mount, point_href
from tests.imagebuilder import Fixtures
from tests.support import Api, RunningServer, add_users, datastore_config, plain_client, run_server

STATUSES: Counter[tuple[str, int]] = Counter()
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SCALE = float(os.environ.get("OPENFLR_FUZZ_SCALE", "1"))
"""More requests for a long local hunt (``OPENFLR_FUZZ_SCALE=20``); CI runs the default."""
EXAMPLES = {GenerationMode.POSITIVE: round(12 * SCALE), GenerationMode.NEGATIVE: round(6 * SCALE)}
"""Requests per operation and mode; the ones below get more (or fewer)."""
NOT_FUZZED = {("POST", "/api/openflr/web/logoff")}
"""It ends the logon session every other request here uses, whatever it is sent (it takes no input);
tests/api/test_web.py covers it."""
WEIGHTS = {
    ("GET", "/api/vmReplicaPoints/{point_id}/mounts/{mount_id}/{filepath}"): 6,
    ("POST", "/api/vmReplicaPoints/{point_id}/mounts/{mount_id}/{filepath}"): 4,
    ("GET", "/api/vmRestorePoints/{point_id}/mounts/{mount_id}/{filepath}"): 3,
    ("POST", "/api/vmRestorePoints/{point_id}/mounts/{mount_id}/{filepath}"): 2,
    ("GET", "/api/query"): 4,
    ("POST", "/api/sessionMngr"): 0.4,  # failed logons are throttled on purpose: a few suffice
    ("POST", "/api/openflr/web/logon"): 0.4,
}
REAL_PATHS = {
    "win": [
        "C:",
        "C:/Documents",
        "C:/Documents/report.txt",
        "c:\\documents\\Mixed Case",
        "S:",
        "C:/Empty Folder",
    ],
    "lin": ["etc", "etc/hostname", "srv/www", "/etc/passwd", "home"],
}


@dataclass
class Target:
    server: RunningServer
    token: str
    points: list[str]
    """Ids of the mounted points (Windows, Linux)."""
    mounts: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    """family -> (point id, mount id, guest kind)."""
    tasks: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, fixtures: Fixtures) -> Iterator[Target]:
    data: Path = tmp_path_factory.mktemp("fuzz-server")
    add_users(data)
    config = "[sessions]\nmax_per_user = 100000\n" + datastore_config(fixtures, ("qcow2",))
    with run_server(data, https=False, config=config) as server, plain_client() as http:
        api = Api(http, server.base, "http")
        token = api.logon("flrop")
        found = Target(server, token, [])
        for kind, vm in (("win", "Win File Server"), ("lin", "lin-web01")):
            point = point_href(api, token, "KVM", vm)
            found.points.append(point.rsplit("/", 1)[1])
            for family, collection in (("replica", "vmReplicaPoints"), ("restore", "vmRestorePoints")):
                href = mount(api, token, point.replace("/vmReplicaPoints/", f"/{collection}/"))
                point_id, mount_id = href.split("/")[-3], href.split("/")[-1]
                found.mounts.setdefault(family, []).append((point_id, mount_id, kind))
        tasks = api.get("/api/tasks", headers=headers(token)).json()["Tasks"]
        found.tasks = [t["Href"].rsplit("/", 1)[1] for t in tasks]
        yield found
        log = server.log()
    assert "Traceback" not in log, log[-5000:]


def _real_ids(target: Target, path: str, generated: dict[str, Any], pick: int) -> dict[str, Any]:
    """Swap generated path parameters for real ones (some of them, some of the time)."""
    params = dict(generated)
    family = "restore" if path.startswith("/api/vmRestorePoints") else "replica"
    if "mount_id" in params:
        point_id, mount_id, kind = target.mounts[family][pick % 2]
        params.update(point_id=point_id, mount_id=mount_id)
        if "filepath" in params and pick % 3:
            choices = REAL_PATHS[kind]
            real = choices[pick % len(choices)]
            params["filepath"] = real if pick % 3 == 1 else f"{real}/{params['filepath']}"
    elif "point_id" in params or ("id" in params and "Points" in path):
        params["point_id" if "point_id" in params else "id"] = target.points[pick % 2]
    elif "task_id" in params and target.tasks:
        params["task_id"] = target.tasks[pick % len(target.tasks)]
    return params


def _fuzz(
    target: Target, operation: Any, mode: GenerationMode, examples: int, session: requests.Session
) -> int:
    """Run ``examples`` generated requests against one operation; returns how many were sent."""
    sent = 0
    real_safe = operation.method.upper() != "DELETE"  # never unmount the mounts under test

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), pick=st.integers(0, 5))
    def run(case: Any, pick: int) -> None:
        nonlocal sent
        if real_safe and pick and case.path_parameters:
            case.path_parameters = _real_ids(target, operation.path, case.path_parameters, pick)
        sent += 1
        response = case.call(
            session=session,
            timeout=60,
            headers={TOKEN: target.token, "Accept": "application/json"},
            cookies={TOKEN: target.token},
        )
        STATUSES[(operation.method.upper() + " " + operation.path, response.status_code)] += 1
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # nothing in the operation can be made invalid
    return sent


def test_fuzz_the_http_surface(target: Target) -> None:
    schema = schemathesis.openapi.from_url(target.server.base + "/api/openapi.json")
    session = requests.Session()
    started = time.monotonic()
    sent = 0
    failures: list[str] = []
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), [r for r in results if isinstance(r, Err)]
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) >= 40
    for operation in operations:
        if (operation.method.upper(), operation.path) in NOT_FUZZED:
            continue
        for mode, examples in EXAMPLES.items():
            try:
                weight = WEIGHTS.get((operation.method.upper(), operation.path), 1)
                sent += _fuzz(target, operation, mode, max(2, round(examples * weight)), session)
            except Exception as exc:  # collect every operation's failure, then fail once
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}"[:3000])
    elapsed = time.monotonic() - started
    print(f"fuzzed {len(operations)} operations with {sent} requests in {elapsed:.0f} s")  # noqa: T201
    for key, n in sorted(STATUSES.items()):
        print(key, n)  # noqa: T201
    assert not failures, "\n\n".join(failures)
    assert sent >= 500 * min(SCALE, 1)
    # The server is still there and the mounts still answer.
    point_id, mount_id, _ = target.mounts["replica"][0]
    r = session.get(
        f"{target.server.base}/api/vmReplicaPoints/{point_id}/mounts/{mount_id}/C:/Documents?action=listAll",
        headers={TOKEN: target.token, "Accept": "application/json"},
        timeout=30,
    )
    assert r.status_code == 200
