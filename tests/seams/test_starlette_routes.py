"""``openflr.seams.starlette_routes``: Starlette's ``Route.path_regex`` is a compiled pattern that
``Route.matches`` tests the request path with, and may be replaced by one that ignores case."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from openflr.seams.starlette_routes import match_any_case
from tests.seams import changed


async def _endpoint(request: Request) -> Response:
    return Response()


def _scope(path: str) -> dict[str, object]:
    return {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": []}


def test_path_regex_is_the_compiled_pattern_of_the_path() -> None:
    route = Route("/api/logonSessions/{id}", _endpoint, methods=["GET"])
    regex = getattr(route, "path_regex", None)
    assert isinstance(regex, re.Pattern), changed(
        "starlette", f"Route.path_regex: {regex!r}, not a re.Pattern"
    )
    assert regex.flags & re.IGNORECASE == 0, changed("starlette", "Route.path_regex: it ignores case already")
    found = regex.match("/api/logonSessions/Ab-1")
    assert found is not None and found.groupdict() == {"id": "Ab-1"}, changed(
        "starlette", f"Route.path_regex: {regex.pattern!r} does not match a plain path"
    )


def test_matches_uses_the_replaced_pattern_and_parameters_keep_their_case() -> None:
    route = Route("/api/logonSessions/{id}", _endpoint, methods=["GET"])
    match_any_case(route)
    match, child = route.matches(_scope("/API/LOGONSESSIONS/Ab-1"))
    assert match is Match.FULL, changed(
        "starlette", "Route.matches: it no longer matches with Route.path_regex"
    )
    assert child["path_params"] == {"id": "Ab-1"}, changed(
        "starlette", f"Route.matches: path parameters {child.get('path_params')!r}"
    )
    assert route.matches(_scope("/api/other/Ab-1"))[0] is Match.NONE, changed(
        "starlette", "Route.matches: a path of another route matches"
    )
