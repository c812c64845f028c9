"""Guest-OS plug-ins: each names a point's roots as its guest OS does (see ``guests/base.py``).

To add a guest OS: write ``guests/<name>.py`` with a ``roots`` function (a ``Guest``) and list it in
``GUESTS`` before the Linux fallback.
"""

from __future__ import annotations

from openflr.guestfs.guests import linux, windows
from openflr.guestfs.guests.base import Guest, Opened, Root

GUESTS: tuple[Guest, ...] = (windows.roots, linux.roots)
"""Tried in order; the first that recognises the guest names the roots. Linux takes any guest."""


def guest_roots(opened: Opened, os_hint: str, notes: list[str]) -> tuple[list[Root], bool]:
    """The roots of a point's opened volumes and whether they form one Linux-style tree."""
    for guest in GUESTS:
        found = guest(opened, os_hint, notes)
        if found is not None:
            return found
    raise LookupError("no guest plug-in named the roots")  # pragma: no cover - Linux takes any guest
