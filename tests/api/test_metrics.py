"""``/metrics`` (docs/DEPLOYMENT.md, "Monitoring"): counters move with real requests, labels are route
templates, gauges show the service's state, and only allowed addresses or administrators may read it.

In-process against the fixture images (the client address is chosen), and over a real ``openflr
serve`` where the address is the real peer's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from openflr import __version__
from openflr.api.app import create_app
from tests.api.flr import TOKEN, headers, mount, point_href
from tests.imagebuilder import Fixtures
from tests.support import Api, add_users, datastore_config, make_service, plain_client, run_server

METRICS = "[metrics]\nenabled = true\n"
LOCAL = ("127.0.0.1", 40000)
BROWSE = "/api/vmReplicaPoints/{point_id}/mounts/{mount_id}/{filepath}"
REPORT = "Documents/report.txt"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape by (name, labels)."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def scrape(client: TestClient, **kw: object) -> Samples:
    r = client.get("/metrics", **kw)  # type: ignore[arg-type]
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    return samples(r.text)


@pytest.fixture(scope="module")
def app_data(tmp_path_factory: pytest.TempPathFactory, fixtures: Fixtures) -> Path:
    return tmp_path_factory.mktemp("metrics")


@pytest.fixture(scope="module")
def local(app_data: Path, fixtures: Fixtures) -> Iterator[TestClient]:
    """An app with metrics on, reached from 127.0.0.1 (in [metrics] allow by default)."""
    service = make_service(app_data, METRICS + datastore_config(fixtures, ("qcow2",)))
    with TestClient(create_app(service), base_url="https://testserver", client=LOCAL, cookies=None) as c:
        yield c


def test_requests_are_counted_by_route_template_and_status(local: TestClient) -> None:
    api = Api(local, "https://testserver", "inproc")
    before = scrape(local)
    op = api.logon("flrop")
    win = mount(api, op, point_href(api, op, "KVM", "Win File Server"))
    point_id, mount_id = win.split("/")[-3], win.split("/")[-1]
    assert api.get(f"{win}/C:/Documents?action=listAll", headers=headers(op)).status_code == 200
    assert api.get(f"{win}/C:/Documents/nothing-here?action=listAll", headers=headers(op)).status_code == 404
    assert api.get("/api/no/such/thing", headers=headers(op)).status_code == 404
    after = scrape(local)

    def moved(route: str, status: str, method: str = "GET") -> float:
        labels = {"method": method, "route": route, "status": status}
        return value(after, "openflr_http_requests_total", **labels) - value(
            before, "openflr_http_requests_total", **labels
        )

    assert moved(BROWSE, "200") >= 1
    assert moved(BROWSE, "404") == 1
    assert moved("unmatched", "404") == 1
    assert moved("/api/sessionMngr", "201", "POST") == 1
    assert moved("/api/vmReplicaPoints/{point_id}/mounts", "202", "POST") == 1
    routes = {dict(labels).get("route", "") for _, labels in after}
    assert not any(point_id in r or mount_id in r or "Documents" in r for r in routes), routes
    count = value(after, "openflr_http_request_duration_seconds_count", method="GET", route=BROWSE)
    assert count >= 2
    assert value(after, "openflr_http_request_duration_seconds_sum", method="GET", route=BROWSE) > 0
    # gauges read at scrape time
    assert value(after, "openflr_mounts") >= 1
    assert value(after, "openflr_points_opened") >= 1
    assert value(after, "openflr_sessions") >= 1
    assert value(after, "openflr_inventory_points") > 0
    assert value(after, "openflr_downloads_running") == 0
    api.delete(f"/api/logonSessions/{api.session_href(op).rsplit('/', 1)[1]}", headers=headers(op))
    assert value(scrape(local), "openflr_mounts") == value(after, "openflr_mounts") - 1


def test_download_bytes_are_counted(local: TestClient, fixtures: Fixtures) -> None:
    api = Api(local, "https://testserver", "inproc")
    op = api.logon("flrop")
    win = mount(api, op, point_href(api, op, "KVM", "Win File Server"))
    before = value(scrape(local), "openflr_download_bytes_total")
    got = api.get(f"{win}/C:/{quote(REPORT)}?action=download", headers={TOKEN: op})
    assert got.status_code == 200 and len(got.content) > 0
    after = value(scrape(local), "openflr_download_bytes_total")
    assert after - before == len(got.content)
    listing = api.get(f"{win}/C:/Documents?action=listAll", headers=headers(op))
    assert listing.status_code == 200
    assert value(scrape(local), "openflr_download_bytes_total") == after  # a listing is not a download


def test_failed_logons_are_counted(local: TestClient) -> None:
    before = scrape(local)
    r = local.post("/api/sessionMngr/?v=latest", auth=("flrop", "wrong password"))
    assert r.status_code == 401
    after = scrape(local)
    assert value(after, "openflr_logon_failures_total") - value(before, "openflr_logon_failures_total") == 1
    assert value(after, "openflr_logon_locks", kind="pair") == 0


def test_catalog_progress(local: TestClient) -> None:
    api = Api(local, "https://testserver", "inproc")
    found = scrape(local)
    for state in ("Queued", "Building", "Ready", "Failed"):
        assert ("openflr_catalog_points", frozenset({("state", state)})) in found
    admin = api.logon("admin")
    point = point_href(api, admin, "KVM", "lin-web01").rsplit("/", 1)[1]
    r = api.post(f"/api/openflr/catalog/points/{point}?action=build", headers=headers(admin))
    assert r.status_code in (200, 202), r.text
    deadline = time.monotonic() + 120
    while value(found, "openflr_catalog_points", state="Ready") < 1:
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
        found = scrape(local)
    assert value(found, "openflr_catalog_entries") > 10


def from_address(local: TestClient, address: str) -> TestClient:
    """Another client of the same (started) app, from ``address``: no lifespan of its own."""
    return TestClient(local.app, base_url="https://testserver", client=(address, 40000), cookies=None)


def test_other_addresses_need_an_administrator(local: TestClient) -> None:
    far = from_address(local, "192.0.2.10")
    r = far.get("/metrics", headers={"Accept": "application/json"})
    assert r.status_code == 403
    assert "[metrics] allow" in r.json()["Message"]
    api = Api(far, "https://testserver", "inproc")
    assert far.get("/metrics", headers={TOKEN: api.logon("flrop")}).status_code == 403
    assert value(scrape(far, headers={TOKEN: api.logon("admin")}), "openflr_sessions") >= 2


def test_ipv6_and_mapped_addresses(local: TestClient) -> None:
    for address, status in (("::1", 200), ("::ffff:127.0.0.1", 200), ("2001:db8::1", 403), ("x", 403)):
        assert from_address(local, address).get("/metrics").status_code == status, address


def test_off_by_default_and_apps_do_not_share_figures(tmp_path: Path) -> None:
    for name in ("off", "one", "two"):
        (tmp_path / name).mkdir()
    off = make_service(tmp_path / "off")
    with TestClient(create_app(off), base_url="https://testserver", client=LOCAL) as client:
        assert client.get("/metrics").status_code == 404
    one = make_service(tmp_path / "one", METRICS)
    two = make_service(tmp_path / "two", METRICS)
    with (
        TestClient(create_app(one), base_url="https://testserver", client=LOCAL) as first,
        TestClient(create_app(two), base_url="https://testserver", client=LOCAL) as second,
    ):
        for _ in range(3):
            assert first.get("/api/").status_code == 200
        labels = {"method": "GET", "route": "/api", "status": "200"}
        assert value(scrape(first), "openflr_http_requests_total", **labels) == 3
        assert value(scrape(second), "openflr_http_requests_total", **labels) == 0


def test_a_real_server_refuses_an_address_outside_allow(tmp_path: Path) -> None:
    add_users(tmp_path)
    config = '[metrics]\nenabled = true\nallow = "192.0.2.0/24, 2001:db8::/32"\n'
    with run_server(tmp_path, https=False, config=config) as server, plain_client() as http:
        api = Api(http, server.base, "http")
        refused = api.get("/metrics")
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/xml")
        admin = api.logon("admin")
        r = api.get("/metrics", headers={TOKEN: admin})
        assert r.status_code == 200, r.text
        found = samples(r.text)
        assert value(found, "openflr_http_requests_total", method="GET", route="/metrics", status="403") == 1
        assert value(found, "openflr_info", version=__version__) == 1
