"""Where openflr relies on private (undocumented) parts of its dependencies: one module per seam.

Each module touches one dependency's internals and nothing else; the rest of openflr uses only the
small public names it offers. ``tests/seams/`` checks, module by module, exactly the upstream
behaviour each seam relies on and names the dependency and its installed version when it changed.
The pins in ``pyproject.toml`` for these dependencies are narrow for the same reason
(docs/DEPENDENCIES.md, "Pins").
"""
