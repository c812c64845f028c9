"""The file catalog: what every replica point holds, read once from its disks and kept.

A replica point never changes once made, so its file list is read once (``build.py``, in a worker
process) and kept for as long as the point exists. Each VM's catalog is one SQLite file
(``store.py``): every distinct version of an item is one row, and a point is a compressed bitmap of
the versions it holds, so a point costs what changed since the points before it. Search, versions of
a path and the difference between two points (``queries.py``) are set operations on those bitmaps.
``builder.py`` keeps the catalogs in step with the inventory in the background. docs/CATALOG.md
tells the whole design.
"""
