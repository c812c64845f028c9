"""``GET /metrics``: the node's figures in the Prometheus text format (``[metrics] enabled``).

Requests are counted as they are answered (``ApiMiddleware`` calls ``RequestMetrics.observe``),
labelled by the matched route's path template (``/api/vmReplicaPoints/{point_id}/mounts``), never
by the raw path, so the number of series stays bounded whatever clients send. Everything that is a
state (sessions, mounts, opened points, downloads and restores running, logon locks, the inventory,
the file catalog's progress) is read from the service when Prometheus scrapes (``ServiceCollector``).

Each app has a registry of its own, not prometheus-client's global one: several apps in one process
(the tests) do not see each other's figures. Who may read it: addresses in ``[metrics] allow``
without a logon, administrators with a session from anywhere (docs/SECURITY.md, "Monitoring").
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections import Counter as Tally
from collections.abc import Iterable, Iterator

import anyio.to_thread
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from openflr import __version__
from openflr.api.auth import current_session
from openflr.api.routing import Route
from openflr.config import MetricsSettings
from openflr.core.roles import Permission, allows
from openflr.core.service import Service
from openflr.core.tasks import FILE_RESTORE, RUNNING
from openflr.errors import ForbiddenError, UnauthorizedError

log = logging.getLogger(__name__)

UNMATCHED = "unmatched"
"""The route label of a request no route took (404, or refused before routing)."""
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
_LOGON_ROUTES = frozenset({"/api/sessionMngr", "/api/openflr/web/logon"})
_CONVERTOR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):[a-z]+\}")
CATALOG_STATES = ("Queued", "Building", "Ready", "Failed")
"""A point's catalog states (docs/CATALOG.md); each is reported, at 0 when no point is in it."""
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Seconds: listings take milliseconds, a large download minutes."""


def route_template(route: object) -> str:
    """The path template of the route that took a request (convertors dropped), or ``unmatched``."""
    path = getattr(route, "path", None)
    if not isinstance(path, str) or not path:
        return UNMATCHED
    return _CONVERTOR.sub(r"{\1}", path)


class RequestMetrics:
    """The counters the middleware moves, in a registry of this app's own."""

    def __init__(self, service: Service) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "openflr_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "openflr_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response (a download's whole body).",
            ("method", "route"),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.download_bytes = Counter(
            "openflr_download_bytes",
            "Bytes of downloads sent: files, folder ZIPs and the file catalog's ZIPs.",
            registry=self.registry,
        )
        self.logon_failures = Counter(
            "openflr_logon_failures",
            "Logons answered 401: an unknown name, a wrong password or no credentials.",
            registry=self.registry,
        )
        self.logon_refusals = Counter(
            "openflr_logon_refusals",
            "Logons answered 429: a locked account or address, or too many sessions of the user.",
            registry=self.registry,
        )
        self.registry.register(ServiceCollector(service))

    def observe(self, method: str, route: str, status: int, seconds: float, download_bytes: int) -> None:
        shown = method if method in _METHODS else "other"
        self.requests.labels(shown, route, str(status or 0)).inc()
        self.latency.labels(shown, route).observe(seconds)
        if download_bytes:
            self.download_bytes.inc(download_bytes)
        if route in _LOGON_ROUTES and method == "POST":
            if status == 401:
                self.logon_failures.inc()
            elif status == 429:
                self.logon_refusals.inc()


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class ServiceCollector(Collector):
    """The service's state, read when Prometheus scrapes (runs in a worker thread: it queries the
    database and the catalog files)."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def describe(self) -> Iterable[Metric]:
        return []  # figures are only known at scrape time

    def collect(self) -> Iterator[Metric]:
        service = self.service
        info = GaugeMetricFamily("openflr_info", "The openflr version this node runs.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        sessions = service.sessions.all()
        yield _gauge("openflr_sessions", "Logon sessions open on this node.", len(sessions))
        yield _gauge("openflr_mounts", "Mounts open on this node (all sessions).", len(service.mounts.all()))
        yield _gauge(
            "openflr_points_opened",
            "Points whose disks are open: in use by mounts or kept ready after their last unmount.",
            service.mounts.opened_points(),
        )
        yield _gauge("openflr_mounts_opening", "Mounts being opened now.", service.mount_budget.in_use)
        yield _gauge("openflr_downloads_running", "Downloads streaming now.", service.download_budget.in_use)
        restores = sum(
            1 for task in service.tasks.local() if task.operation == FILE_RESTORE and task.state == RUNNING
        )
        yield _gauge("openflr_restores_running", "Restores to original locations running now.", restores)
        locks = GaugeMetricFamily(
            "openflr_logon_locks",
            "Logon locks in force: pair (an account from an address) or address (every account).",
            labels=["kind"],
        )
        kinds = Tally(lock.kind for lock in service.throttle.locks())
        for kind in ("pair", "address"):
            locks.add_metric([kind], kinds.get(kind, 0))
        yield locks
        inventory = service.catalog.current
        yield _gauge("openflr_inventory_vms", "Replicas (VMs) in the inventory.", len(inventory.replicas))
        yield _gauge("openflr_inventory_points", "Points in the inventory.", len(inventory.points))
        yield from self._catalog()

    def _catalog(self) -> Iterator[Metric]:
        service = self.service
        try:
            status = service.files.status(service.catalog.current)
        except Exception:  # the catalog is an index: a fault in it never fails a scrape
            log.exception("reading the file catalog's status for /metrics failed")
            return
        points = GaugeMetricFamily(
            "openflr_catalog_points", "Points of the file catalog, by state.", labels=["state"]
        )
        states = Tally(s.point.state for s in status)
        for state in (*CATALOG_STATES, *sorted(set(states) - set(CATALOG_STATES))):
            points.add_metric([state], states.get(state, 0))
        yield points
        yield _gauge(
            "openflr_catalog_entries",
            "Entries catalogued, summed over the points (a point being built counts what it has so far).",
            sum(s.point.entries or 0 for s in status),
        )


def allowed(address: str, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Whether the client ``address`` lies in one of ``networks`` (an IPv4-mapped IPv6 address counts
    as its IPv4 address; a client without an IP address never does)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def networks(settings: MetricsSettings) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(p.strip(), strict=False) for p in settings.allow.split(",") if p.strip()]


def _check_access(request: Request) -> None:
    client = request.client.host if request.client else ""
    if allowed(client, request.app.state.metrics_networks):
        return
    refused = "/metrics is served to the addresses in [metrics] allow and to administrators."
    try:
        session = current_session(request)
    except UnauthorizedError:
        raise ForbiddenError(refused) from None
    if not allows(session.user.role, Permission.ADMINISTER):
        raise ForbiddenError(refused)


async def get_metrics(request: Request) -> Response:
    _check_access(request)
    metrics: RequestMetrics = request.app.state.metrics
    body = await anyio.to_thread.run_sync(generate_latest, metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", get_metrics, ["GET"])]
