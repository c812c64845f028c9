"""docs/COMPATIBILITY.md lists exactly the routes the app serves."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.routing import Route

from openflr.api.app import create_app
from openflr.config import load_settings
from openflr.core.service import Service

DOC = Path(__file__).resolve().parents[1] / "docs" / "COMPATIBILITY.md"
STATUSES = "implemented|partly|empty|not supported|not implemented"
ROW = re.compile(rf"^\| (GET|POST|PUT|DELETE|PATCH) \| `([^`]+)` \| ({STATUSES}) \|")


def _shape(path: str) -> str:
    """``/api/x/{point_id}/{filepath:path}`` and ``/api/x/{id}/{filepath}`` both become ``/api/x/{}/{}``."""
    return re.sub(r"\{[^}]*\}", "{}", path).rstrip("/").lower() or "/"


def documented() -> dict[tuple[str, str], str]:
    rows = [ROW.match(line) for line in DOC.read_text().splitlines()]
    table = {(m[1], _shape(m[2])): m[3] for m in rows if m}
    assert len(table) == sum(1 for m in rows if m), "a route is listed twice"
    return table


def served(tmp_path: Path) -> set[tuple[str, str]]:
    app = create_app(Service(load_settings(env={"OPENFLR_DATA_DIR": str(tmp_path)})), manage_service=False)
    return {
        (method, _shape(route.path))
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }


def test_every_served_route_is_documented(tmp_path: Path) -> None:
    table = documented()
    missing = sorted(r for r in served(tmp_path) if table.get(r) in (None, "not implemented"))
    assert not missing, f"routes served but not documented as served: {missing}"


def test_every_documented_route_is_served(tmp_path: Path) -> None:
    routes = served(tmp_path)
    claimed = sorted(
        r for r, status in documented().items() if status != "not implemented" and r not in routes
    )
    assert not claimed, f"documented as implemented but not served: {claimed}"
    absent = [r for r, status in documented().items() if status == "not implemented"]
    assert absent and not set(absent) & routes


def test_the_table_covers_spec_resources() -> None:
    table = documented()
    for method, path in [
        ("POST", "/api/sessionMngr/"),
        ("GET", "/api/query"),
        ("GET", "/api/tasks/{id}"),
        ("POST", "/api/vmReplicaPoints/{id}/mounts"),
        ("GET", "/api/vmRestorePoints/{id}/mounts/{m}/{p}"),
        ("POST", "/api/vmRestorePoints/{id}/mounts/{m}/{p}"),
    ]:
        assert (method, _shape(path)) in table
