"""One test module per seam in ``openflr.seams``: exactly the upstream behaviour each relies on."""

from __future__ import annotations

import platform
from importlib.metadata import version


def changed(distribution: str, what: str) -> str:
    """The failure message when ``distribution`` (its installed version named) no longer behaves as a
    seam needs: "uvicorn 0.55.0 changed HttpToolsProtocol: ..."."""
    if distribution == "python":
        return f"Python {platform.python_version()} changed {what}"
    return f"{distribution} {version(distribution)} changed {what}"
