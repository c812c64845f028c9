"""Case-insensitive routes: EM clients send ``/api/LogonSessions`` and ``/api/Tasks`` as readily as
the documented spelling; path parameters keep the case the client sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette import routing
from starlette.requests import Request
from starlette.responses import Response

from openflr.core.families import PointFamily
from openflr.seams.starlette_routes import match_any_case

Endpoint = Callable[[Request], Awaitable[Response]]


class Route(routing.Route):
    def __init__(self, path: str, endpoint: Endpoint, methods: Sequence[str]) -> None:
        super().__init__(path, endpoint, methods=list(methods))
        match_any_case(self)


class FamilyRoute(Route):
    """A route of one family of points: ``replica`` (``/vmReplicaPoints``) or ``restore``
    (``/vmRestorePoints``); handlers read ``request.scope["route"].family``."""

    def __init__(self, path: str, endpoint: Endpoint, methods: Sequence[str], family: PointFamily) -> None:
        super().__init__(path, endpoint, methods)
        self.family = family


def family_of(request: Request) -> PointFamily:
    family: PointFamily = getattr(request.scope.get("route"), "family", PointFamily.REPLICA)
    return family


def route(path: str, methods: Sequence[str]) -> Callable[[Endpoint], Route]:
    def decorate(endpoint: Endpoint) -> Route:
        return Route(path, endpoint, methods)

    return decorate
