"""``pageSize``/``page`` parameters and ``PagingInfo`` values with First/Previous/Next/Last links."""

from __future__ import annotations

from collections.abc import Callable

from openflr.api.schema import Link, Value
from openflr.api.urls import Query
from openflr.errors import BadRequestError


def positive_int(query: Query, name: str) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequestError(f"{name} must be a positive whole number, not {raw[:40]!r}.") from None
    if value < 1:
        raise BadRequestError(f"{name} must be a positive whole number, not {value}.")
    return value


def page_params(query: Query, default_size: int, max_size: int) -> tuple[int, int]:
    """(pageSize, page); pageSize is clamped to ``max_size``."""
    size = positive_int(query, "pageSize") or default_size
    page = positive_int(query, "page") or 1
    return min(size, max_size), page


def paging_info(page: int, size: int, pages: int, href_for: Callable[[int], str]) -> Value:
    links = [Link("First", href_for(1))]
    if page > 1:
        links.append(Link("Previous", href_for(min(page - 1, pages))))
    if page < pages:
        links.append(Link("Next", href_for(page + 1)))
    links.append(Link("Last", href_for(pages)))
    return {"PageNum": page, "PageSize": size, "PagesCount": pages, "Links": links}
