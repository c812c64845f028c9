"""Property tests of the query filter grammar (docs/COMPATIBILITY.md): any text parses or is a clean 400,
and every filter the grammar can express survives a print-and-parse round trip."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from openflr.core.query import (
    INT,
    MAX_NESTING,
    OPS,
    STR,
    TIME,
    UID,
    BoolOp,
    Comparison,
    Node,
    QueryType,
    enum,
    parse_filter,
    run_query,
)
from openflr.errors import BadRequestError

T = QueryType(
    "Thing",
    {"UID": UID, "Name": STR, "CreationTime": TIME, "Size": INT, "Algorithm": enum("Full", "Incremental")},
    default_sort="Name",
)
ROWS = [
    {
        "UID": f"urn:veeam:Thing:{i:08d}-0000-0000-0000-000000000000",
        "Name": f"n{i}",
        "CreationTime": datetime(2026, 11, i + 1, tzinfo=UTC),
        "Size": i * 10,
        "Algorithm": "Full" if i % 2 else "Incremental",
    }
    for i in range(5)
]
PROPS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROUND_TRIPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that looks like filters: mostly the grammar's own characters and words.
_TOKENS = st.sampled_from(
    [
        *OPS,
        *(
            "(",
            ")",
            ";",
            ",",
            '"',
            '""',
            " ",
            "\t",
            "=",
            "!",
            "<<",
            "\\",
            "-",
            "\x00",
            "\u00e9",
            "\U0001f600",
        ),
        *("Name", "Size", "UID", "CreationTime", "Algorithm", "Full", "x", "1", "2026-11-03T21:00:00Z"),
    ]
)
FILTERISH = st.lists(_TOKENS, max_size=40).map("".join)


@PROPS
@given(st.one_of(st.text(max_size=300), FILTERISH))
@example('Name=="' + '""' * 2000)
@example("Name==" + "x" * 5000)
@example(",;" * 100)
def test_any_text_parses_or_is_a_clean_400(text: str) -> None:
    try:
        node = parse_filter(text)
    except BadRequestError as exc:
        error: BadRequestError | None = exc
    else:
        error = None
        assert isinstance(node, Comparison | BoolOp)
    assert error is None or (error.status == 400 and error.message)


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 400, 2000])
def test_deeply_nested_filters_are_a_clean_400(depth: int) -> None:
    text = "(" * depth + "Name==x" + ")" * depth
    with pytest.raises(BadRequestError) as raised:
        parse_filter(text)
    assert raised.value.status == 400
    # refused at the first parenthesis too many, before the parser recurses any deeper
    assert raised.value.message.endswith(
        f"parentheses nested deeper than {MAX_NESTING} levels at position {MAX_NESTING + 1}."
    ), raised.value.message


def test_nesting_up_to_the_limit_parses() -> None:
    node = parse_filter("(" * MAX_NESTING + "Name==x" + ")" * MAX_NESTING)
    assert node == parse_filter("Name==x")


@PROPS
@given(st.one_of(st.text(max_size=200), FILTERISH), st.sampled_from([None, "Name", "Size", "CreationTime"]))
def test_any_filter_runs_or_is_a_clean_400(text: str, sort: str | None) -> None:
    try:
        page = run_query(T, ROWS, text, (sort, True) if sort else None, 2, 1)
    except BadRequestError:
        return
    assert page.total <= len(ROWS) and len(page.records) <= 2


# --- round trip ----------------------------------------------------------------------------------------

FIELDS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,15}", fullmatch=True)
QUOTED = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
BARE = st.text(
    # No white space of any kind (the parser trims a bare value as str.strip does) and no delimiter.
    st.characters(exclude_categories=["Cs", "Zs", "Zl", "Zp", "Cc"], exclude_characters=';,()"'),
    min_size=1,
    max_size=20,
).filter(
    # whatever str.strip takes, on any Python and Unicode version; and no leading '=' (after '<' or '>'
    # it would read as part of the operator: "A<" then "=x" is "A<=" then "x", so such a value is quoted)
    lambda v: v == v.strip() and not v.startswith("=")
)


@st.composite
def comparisons(draw: st.DrawFn) -> tuple[Node, str]:
    field, op = draw(FIELDS), draw(st.sampled_from(OPS))
    if draw(st.booleans()):
        value = draw(QUOTED)
        shown = '"' + value.replace('"', '""') + '"'
    else:
        value = draw(BARE)
        shown = value
    space = draw(st.sampled_from(["", " "]))
    return Comparison(field, op, value), f"{field}{space}{op}{space}{shown}"


def _combine(children: st.SearchStrategy[tuple[Node, str]]) -> st.SearchStrategy[tuple[Node, str]]:
    @st.composite
    def combined(draw: st.DrawFn) -> tuple[Node, str]:
        op = draw(st.sampled_from(["and", "or"]))
        parts = draw(st.lists(children, min_size=2, max_size=4))
        sep = ";" if op == "and" else ","
        # A nested operation always goes in parentheses: the parser keeps its grouping then.
        text = sep.join(f"({t})" if isinstance(n, BoolOp) else t for n, t in parts)
        return BoolOp(op, tuple(n for n, _ in parts)), text

    return combined()


FILTERS = st.recursive(comparisons(), _combine, max_leaves=12)


@ROUND_TRIPS
@given(FILTERS)
def test_printed_filters_parse_back_to_the_same_tree(generated: tuple[Node, str]) -> None:
    node, text = generated
    assert parse_filter(text) == node


@ROUND_TRIPS
@given(FILTERS)
def test_a_parenthesised_filter_means_the_same(generated: tuple[Node, str]) -> None:
    node, text = generated
    assert parse_filter(f"( {text} )") == node
