"""The live inventory: the latest scan, swapped whole on each rescan, with change listeners."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from openflr.config import Settings
from openflr.inventory.model import Inventory
from openflr.inventory.scanner import backup_server, scan

log = logging.getLogger(__name__)

ChangeListener = Callable[[Inventory, Inventory], None]


class Catalog:
    """Readers take ``current`` (an immutable snapshot); ``rescan`` builds a new one and swaps it in."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._current = Inventory(server=backup_server(settings))
        self._scan_lock = threading.Lock()
        self._listeners: list[ChangeListener] = []

    @property
    def current(self) -> Inventory:
        return self._current

    def add_listener(self, listener: ChangeListener) -> None:
        """``listener(old, new)`` runs after each rescan (e.g. to fail mounts of vanished points)."""
        self._listeners.append(listener)

    def rescan(self) -> Inventory:
        """Scan all datastores now (blocking; call it off the event loop)."""
        with self._scan_lock:
            new = scan(self._settings)
            old, self._current = self._current, new
        added = new.points.keys() - old.points.keys()
        removed = old.points.keys() - new.points.keys()
        log.info(
            "inventory: %d replicas, %d points (%d new, %d gone), %d problems",
            len(new.replicas),
            len(new.points),
            len(added),
            len(removed),
            len(new.problems),
        )
        for listener in self._listeners:
            try:
                listener(old, new)
            except Exception:
                log.exception("inventory change listener failed")
        return new
