"""``pageSize``/``page`` parameters and ``PagingInfo`` values with First/Previous/Next/Last links."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from openflr.api.schema import Link, Value
from openflr.api.urls import Query
from openflr.errors import BadRequestError

_DIGITS = re.compile(r"\s*[0-9]{1,12}\s*\Z")
MAX_NUMBER = 2**31 - 1
"""Largest ``page``/``pageSize`` accepted (pageSize is then clamped to ``api.max_page_size``)."""


def positive_int(query: Query, name: str) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        if not _DIGITS.match(raw):  # int() would also take "５", "1_000", "+5"
            raise ValueError(raw)
        value = int(raw)
    except ValueError:
        raise BadRequestError(f"{name} must be a positive whole number, not {raw[:40]!r}.") from None
    if not 1 <= value <= MAX_NUMBER:
        raise BadRequestError(f"{name} must be a positive whole number up to {MAX_NUMBER}, not {raw[:40]!r}.")
    return value


@dataclass(frozen=True)
class PageRequest:
    """A request's ``pageSize`` and ``page``, parsed once."""

    asked: int | None
    """``pageSize`` as the client gave it, None when it gave none."""
    size: int
    """The page size to use: ``asked`` or the default, clamped to the maximum."""
    number: int
    """``page``, from 1."""


def page_request(query: Query, default_size: int, max_size: int) -> PageRequest:
    """The paging a request asks for; 400 for a ``pageSize`` or ``page`` that is not a positive number."""
    asked = positive_int(query, "pageSize")
    number = positive_int(query, "page") or 1
    return PageRequest(asked, min(asked or default_size, max_size), number)


def paging_info(page: int, size: int, pages: int, href_for: Callable[[int], str]) -> Value:
    links = [Link("First", href_for(1))]
    if page > 1:
        links.append(Link("Previous", href_for(min(page - 1, pages))))
    if page < pages:
        links.append(Link("Next", href_for(page + 1)))
    links.append(Link("Last", href_for(pages)))
    return {"PageNum": page, "PageSize": size, "PagesCount": pages, "Links": links}
