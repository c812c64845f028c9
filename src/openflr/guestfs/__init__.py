"""Guest file-system engine: block sources (image chains) -> volume systems -> file systems -> guest view.

Knows nothing of sessions or HTTP. Each layer's errors subclass the matching builtin (see errors.py).
"""
