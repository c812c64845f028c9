"""Listing values: the fast ``ModifiedDateUTC`` text is the same as the general time formatter's."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from openflr.api.flrviews import time_of, time_text
from openflr.api.render import format_time

# 1601 (the NTFS epoch) to 9999, in nanoseconds from 1970.
_NS = st.integers(min_value=-11_644_473_600 * 10**9, max_value=253_402_300_799 * 10**9)


@given(_NS)
def test_time_text_matches_format_time(ns: int) -> None:
    when = time_of(ns)
    assert when is not None
    assert time_text(ns) == format_time(when)


def test_time_text_edges() -> None:
    assert time_text(None) is None
    assert time_text(0) == "1970-01-01T00:00:00Z"
    assert time_text(1_500_000_000) == "1970-01-01T00:00:01.5Z"
    assert time_text(86_399_999_999_999) == "1970-01-01T23:59:59.999Z"
    assert time_text(-1) == "1969-12-31T23:59:59.999Z"
