"""Content negotiation: XML unless the client's ``Accept`` prefers JSON."""

from __future__ import annotations

import enum


class Format(enum.Enum):
    XML = "application/xml"
    JSON = "application/json"


def negotiate(accept: str | None) -> Format:
    """JSON when a JSON media type is acceptable and no XML type is preferred over it.

    Missing or ``*/*`` Accept gives XML; any case, lists and parameters are understood
    (``Accept: text/html, Application/JSON;q=0.9`` gives JSON).
    """
    if not accept:
        return Format.XML
    best_json = best_xml = -1.0
    for item in accept.split(","):
        media, _, params = item.strip().partition(";")
        media = media.strip().lower()
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        if "json" in media:
            best_json = max(best_json, q)
        elif "xml" in media:
            best_xml = max(best_xml, q)
    return Format.JSON if best_json >= 0 and best_json >= best_xml else Format.XML
