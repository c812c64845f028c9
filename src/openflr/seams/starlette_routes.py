"""Starlette's ``Route.path_regex``: the compiled pattern ``Route.matches`` tests request paths with.

Starlette sets it in ``Route.__init__`` (from ``compile_path``) and documents neither the attribute nor
a way to match case-insensitively. EM clients send ``/api/LogonSessions`` as readily as the documented
``/api/logonSessions``, so ``match_any_case`` compiles the same pattern again with ``re.IGNORECASE``:
literal parts then match in any case, path parameters keep the case the client sent (their
convertors' patterns, ``[^/]+`` and the like, have no letters to fold).

What openflr needs from upstream: a documented case-insensitive option for routes (or a documented
``path_regex``).
"""

from __future__ import annotations

import re
from importlib.metadata import version

from starlette.routing import Route

__all__ = ["match_any_case"]


def match_any_case(route: Route) -> None:
    """Have ``route`` match request paths whatever the case of their literal parts."""
    regex = getattr(route, "path_regex", None)
    if not isinstance(regex, re.Pattern):  # fail at start-up, saying why, not with an AttributeError
        changed = f"starlette {version('starlette')} changed Route.path_regex ({regex!r})"
        raise RuntimeError(f"{changed}: see openflr.seams.starlette_routes")
    route.path_regex = re.compile(regex.pattern, regex.flags | re.IGNORECASE)
