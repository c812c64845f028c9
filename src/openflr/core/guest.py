"""The guest vocabulary front ends work with: what core's browse, download and restore calls take
and return. The types are the guest file-system layer's own (``guestfs/``); front ends import them
from here so that they depend on core alone (docs/ARCHITECTURE.md, "Import rules")."""

from __future__ import annotations

from openflr.guestfs.filesystems.base import Chunk, Entry
from openflr.guestfs.view import GuestPath, GuestView, Located, Root

__all__ = ["Chunk", "Entry", "GuestPath", "GuestView", "Located", "Root"]
