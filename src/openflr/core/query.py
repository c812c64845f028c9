"""The EM query service's filter grammar, sorting and paging (docs/COMPATIBILITY.md), over plain records.

    filter := or ;  or := and ("," and)* ;  and := term (";" term)* ;  term := "(" or ")" | field op value
    op := "==" | "!=" | "<" | ">" | "<=" | ">="
    value := '"' text with "" for a quote '"' | bare text up to ; , ( )

``;`` (AND) binds tighter than ``,`` (OR). Field names match case-insensitively. Strings compare
case-insensitively, times as instants (no zone means UTC), enums by their declared order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from openflr.errors import BadRequestError

Record = dict[str, Any]


@dataclass(frozen=True)
class FieldType:
    kind: str
    """``str``, ``datetime``, ``int``, ``uid`` or ``enum``."""
    members: tuple[str, ...] = ()


STR = FieldType("str")
TIME = FieldType("datetime")
INT = FieldType("int")
UID = FieldType("uid")


def enum(*members: str) -> FieldType:
    return FieldType("enum", members)


@dataclass(frozen=True)
class QueryType:
    name: str
    fields: dict[str, FieldType]
    default_sort: str
    open: bool = False
    """Any field name is accepted (as text): types openflr has no records of, whose EM fields it
    does not list, still answer filtered queries (with nothing)."""

    def field(self, name: str) -> str:
        for f in self.fields:
            if f.lower() == name.lower():
                return f
        if self.open and _FIELD_RE.fullmatch(name):
            return name
        known = ", ".join(self.fields)
        raise BadRequestError(f"{self.name} has no field {name!r}; fields: {known}")


# --- parsing -------------------------------------------------------------------------------------------

OPS = ("==", "!=", "<=", ">=", "<", ">")
MAX_NESTING = 32
"""Deepest parenthesis nesting a filter may have (the parser recurses once per level)."""


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str
    value: str


@dataclass(frozen=True)
class BoolOp:
    op: str
    """``and`` or ``or``."""
    parts: tuple[Node, ...]


Node = Comparison | BoolOp
_FIELD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def fail(self, what: str) -> BadRequestError:
        shown = self.text if len(self.text) <= 120 else self.text[:117] + "..."
        return BadRequestError(f"Malformed filter {shown!r}: {what} at position {self.pos + 1}.")

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def parse(self) -> Node:
        if not self.text.strip():
            raise self.fail("the filter is empty")
        node = self.parse_or()
        if self.peek():
            raise self.fail(f"unexpected {self.peek()!r}")
        return node

    def parse_or(self) -> Node:
        parts = [self.parse_and()]
        while self.peek() == ",":
            self.pos += 1
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))

    def parse_and(self) -> Node:
        parts = [self.parse_term()]
        while self.peek() == ";":
            self.pos += 1
            parts.append(self.parse_term())
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def parse_term(self) -> Node:
        if self.peek() == "(":
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise self.fail(f"parentheses nested deeper than {MAX_NESTING} levels")
            self.pos += 1
            node = self.parse_or()
            if self.peek() != ")":
                raise self.fail("a ')' is missing")
            self.pos += 1
            self.depth -= 1
            return node
        self.skip()
        m = _FIELD_RE.match(self.text, self.pos)
        if not m:
            raise self.fail("expected a field name")
        self.pos = m.end()
        self.skip()
        op = next((o for o in OPS if self.text.startswith(o, self.pos)), None)
        if op is None:
            raise self.fail(f"expected an operator (==, !=, <, >, <=, >=) after {m.group(0)!r}")
        self.pos += len(op)
        return Comparison(m.group(0), op, self.parse_value())

    def parse_value(self) -> str:
        self.skip()
        if self.peek() == '"':
            self.pos += 1
            out = []
            while True:
                end = self.text.find('"', self.pos)
                if end < 0:
                    raise self.fail("a closing quote is missing")
                out.append(self.text[self.pos : end])
                self.pos = end + 1
                if self.text.startswith('"', self.pos):  # "" is a literal quote
                    out.append('"')
                    self.pos += 1
                    continue
                return "".join(out)
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ";,()":
            if self.text[self.pos] == '"':
                raise self.fail("a quote inside an unquoted value")
            self.pos += 1
        value = self.text[start : self.pos].strip()
        if not value:
            raise self.fail("expected a value")
        return value


def parse_filter(text: str) -> Node:
    if len(text) > 4096:
        raise BadRequestError("The filter is longer than 4096 characters.")
    return _Parser(text).parse()


# --- evaluation ----------------------------------------------------------------------------------------


def parse_time(text: str) -> datetime:
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadRequestError(
            f"{text!r} is not a date-time (use ISO 8601, e.g. 2026-11-03T21:00:00Z)."
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _uid_key(value: str) -> str:
    return value.strip().rsplit(":", 1)[-1].lower()


Predicate = Callable[[Record], bool]
_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def _converter(qtype: QueryType, name: str) -> Callable[[Any], Any]:
    ftype = qtype.fields.get(name, STR)
    if ftype.kind == "str":
        return lambda v: "" if v is None else str(v).casefold()
    if ftype.kind == "uid":
        return lambda v: "" if v is None else _uid_key(str(v))
    if ftype.kind == "datetime":
        return lambda v: v if isinstance(v, datetime) else parse_time(str(v))
    if ftype.kind == "int":

        def to_int(v: Any) -> int:
            try:
                return int(v)
            except (TypeError, ValueError):
                raise BadRequestError(f"{name}: {v!r} is not a whole number.") from None

        return to_int
    members = [m.lower() for m in ftype.members]

    def to_rank(v: Any) -> int:
        try:
            return members.index(str(v).lower())
        except ValueError:
            raise BadRequestError(f"{name}: {v!r} is not one of {', '.join(ftype.members)}.") from None

    return to_rank


def compile_filter(qtype: QueryType, node: Node) -> Predicate:
    """Turn a parsed filter into a predicate; unknown fields and bad values are 400 now, not later."""
    if isinstance(node, BoolOp):
        parts = [compile_filter(qtype, p) for p in node.parts]
        if node.op == "and":
            return lambda r: all(p(r) for p in parts)
        return lambda r: any(p(r) for p in parts)
    name = qtype.field(node.field)
    convert = _converter(qtype, name)
    wanted = convert(node.value)
    cmp = _CMP[node.op]

    def predicate(record: Record) -> bool:
        value = record.get(name)
        if value is None:
            return node.op == "!="
        return cmp(convert(value), wanted)

    return predicate


@dataclass(frozen=True)
class Page:
    records: list[Record]
    page: int
    page_size: int
    pages: int
    total: int


def run_query(
    qtype: QueryType,
    records: Sequence[Record],
    filter_text: str | None,
    sort: tuple[str, bool] | None,
    page_size: int,
    page: int,
) -> Page:
    """Filter, sort (field, descending) and page ``records``."""
    rows = list(records)
    if filter_text:
        predicate = compile_filter(qtype, parse_filter(filter_text))
        rows = [r for r in rows if predicate(r)]
    field_name, descending = sort if sort else (qtype.default_sort, False)
    key_name = qtype.field(field_name)
    convert = _converter(qtype, key_name)
    present = [r for r in rows if r.get(key_name) is not None]
    missing = [r for r in rows if r.get(key_name) is None]
    present.sort(key=lambda r: convert(r[key_name]), reverse=descending)
    rows = present + missing
    pages = max(1, math.ceil(len(rows) / page_size))
    start = (page - 1) * page_size
    return Page(rows[start : start + page_size], page, page_size, pages, len(rows))
