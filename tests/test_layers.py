"""The import rules of docs/ARCHITECTURE.md, read from the source: each layer imports only the layers
below it, and the HTTP front end only core (with its model types) and its own modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "openflr"

ALLOWED: dict[str, tuple[str, ...]] = {
    "api": ("api", "core", "errors", "config", "logs", "seams", "inventory.model"),
    "catalog": ("catalog", "guestfs", "inventory.model", "errors"),
    "core": (
        "core",
        "catalog",
        "guestfs",
        "inventory",
        "restore",
        "store",
        "errors",
        "config",
        "logs",
        "malloc",
    ),
    "guestfs": ("guestfs", "errors"),
    "inventory": ("inventory", "guestfs", "errors", "config"),
    "restore": ("restore", "guestfs", "errors", "seams"),
    "store": ("store", "errors"),
    "seams": ("seams",),
    "web": (),
}
"""Per package under ``openflr``: what its modules may import from ``openflr`` (a package, or one
module of it). Every package may read the version (``openflr.__version__``)."""


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, ``openflr.x.y`` without the ``openflr.``) of every import of openflr in a module,
    function-level imports included; ``from openflr import name`` counts as importing ``name``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "openflr":
                found += [(node.lineno, f"openflr.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
    return [(line, name.removeprefix("openflr.")) for line, name in found if name.startswith("openflr.")]


def refused(package: str, imported: str) -> bool:
    allowed = (*ALLOWED[package], "__version__")
    return not any(imported == a or imported.startswith(a + ".") for a in allowed)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_layer_imports_only_what_it_may(package: str) -> None:
    wrong = [
        f"{path.relative_to(SRC.parent)}:{line} imports openflr.{name}"
        for path in sorted((SRC / package).rglob("*.py"))
        for line, name in imports_of(path)
        if refused(package, name)
    ]
    assert not wrong, f"{package}/ may import only {ALLOWED[package]}:\n" + "\n".join(wrong)


def test_the_rule_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from openflr.core import browse\n"
        "from openflr import restore\n"
        "def f() -> None:\n    from openflr.guestfs.view import Located\n"
    )
    names = sorted(name for _line, name in imports_of(module))
    assert names == ["core", "guestfs.view", "restore"]
    assert [n for n in names if refused("api", n)] == ["guestfs.view", "restore"]
    assert not refused("api", "inventory.model") and refused("api", "inventory.scanner")


def test_every_package_has_a_rule() -> None:
    packages = {p.name for p in SRC.iterdir() if p.is_dir()} - {"__pycache__", "demo"}
    assert packages <= set(ALLOWED), f"packages without an import rule: {sorted(packages - set(ALLOWED))}"
