"""``GET /api/openflr/health``: liveness and readiness for load balancers and service managers.

No logon. ``?check=live`` answers 200 as long as the process serves requests. Without it (or with
``check=ready``) the node is ready when its database answers and every configured datastore can be
listed (``openflr.core.health``): 200, else 503, with each check's outcome by name. The answer names
datastores only by their configured names and says why a check failed in fixed words: no paths, no
addresses, no exception texts (the server log has those).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from openflr.api.routing import Route
from openflr.core.health import Check, Health
from openflr.errors import BadRequestError

CHECKS = ("live", "ready")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "fail"]},
        "checks": {
            "type": "object",
            "properties": {
                "database": {"$ref": "#/components/schemas/HealthCheck"},
                "datastores": {
                    "type": "object",
                    "additionalProperties": {"$ref": "#/components/schemas/HealthCheck"},
                },
            },
        },
    },
}
"""The answer's JSON schema (the OpenAPI document's ``Health``)."""
CHECK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "fail"]},
        "reason": {"type": "string"},
    },
}


def _check(check: Check) -> dict[str, str]:
    return {"status": "ok"} if check.ok else {"status": "fail", "reason": check.reason}


def _json(status: int, value: dict[str, Any]) -> Response:
    return Response(
        orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def get_health(request: Request) -> Response:
    wanted = request.query_params.get("check", "ready").strip().lower() or "ready"
    if wanted not in CHECKS:
        raise BadRequestError(f"check must be live or ready, not {wanted[:40]!r}.")
    if wanted == "live":
        return _json(200, {"status": "ok", "checks": {}})
    health: Health = request.app.state.health
    ready = await health.readiness()
    checks = {
        "database": _check(ready.database),
        "datastores": {name: _check(c) for name, c in ready.datastores.items()},
    }
    return _json(200 if ready.ok else 503, {"status": "ok" if ready.ok else "fail", "checks": checks})


routes = [Route("/api/openflr/health", get_health, ["GET"])]
