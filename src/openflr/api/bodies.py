"""Parse request bodies (XML or JSON) into plain dicts shaped by an ``EmType``.

Tolerant in what it accepts, as real clients need: element and key names match case-insensitively
(``UserName`` or ``Username``, PascalCase or camelCase), order does not matter, unknown members are
ignored, a scalar may come as an XML attribute or a child element, and a body without a
``Content-Type`` is judged by its first character. Strict about safety: no DTDs, no entities, no
network, bounded depth, a wrong JSON type is a 400 that names the member, a member given twice (in
two cases, or as an attribute and an element) is a 400 rather than a guess, and a body sent as a
form or as plain text (what a cross-origin page may send without asking) is a 415.
"""

from __future__ import annotations

import json
import re
from typing import Any, cast

import orjson
from lxml import etree

from openflr.api.schema import EmType, Field, Kind
from openflr.errors import BadRequestError, UnsupportedMediaTypeError

MAX_DEPTH = 32
MAX_ELEMENTS = 1_000
_INTEGER = re.compile(r"[-+]?[0-9]{1,19}")
"""An integer in a string: ASCII digits only (``int()`` would also take ``1_000`` and other scripts'
digits, and raise on ``²``), few enough for a 64-bit value."""


def is_json(content_type: str | None, body: bytes) -> bool:
    if content_type and "json" in content_type.lower():
        return True
    if content_type and "xml" in content_type.lower():
        return False
    return body.lstrip()[:1] in (b"{", b"[")


_BODY_MEDIA_TYPES = frozenset({"application/json", "application/xml", "text/xml"})


def check_content_type(content_type: str | None) -> None:
    """415 unless the body is declared as JSON or XML (or not declared at all)."""
    if not content_type:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media in _BODY_MEDIA_TYPES or media.endswith(("+json", "+xml")):
        return
    raise UnsupportedMediaTypeError(
        f"Request bodies are JSON (application/json) or XML (application/xml), not {media[:60]!r}."
    )


def parse_body(type_: EmType, body: bytes, content_type: str | None) -> dict[str, Any]:
    """Parse ``body`` as ``type_``; an empty body gives an empty dict."""
    check_content_type(content_type)
    if not body.strip():
        return {}
    if is_json(content_type, body):
        return parse_json(type_, body)
    return parse_xml(type_, body)


# --- JSON --------------------------------------------------------------------------------------------


def parse_json(type_: EmType, body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequestError(f"the request body must be a JSON object ({type_.name})")
    _check_depth(doc, 0)
    # orjson validated the text strictly; the standard parser shows what orjson would merge.
    json.loads(body, object_pairs_hook=_no_duplicate_members)
    return _from_json(type_, doc, type_.name)


def _no_duplicate_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, str] = {}
    for key, _value in pairs:
        folded = key.lower()
        if folded in seen:
            raise BadRequestError(
                f"the request body gives the member {seen[folded]!r} twice ({key!r}): which one is meant?"
            )
        seen[folded] = key
    return dict(pairs)


def _check_depth(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise BadRequestError(f"the request body is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for v in value.values():
            _check_depth(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_depth(v, depth + 1)


def _from_json(type_: EmType, doc: dict[str, Any], where: str) -> dict[str, Any]:
    by_key = {k.lower(): v for k, v in doc.items() if isinstance(k, str)}
    out: dict[str, Any] = {}
    for f in type_.fields:
        if f.name.lower() not in by_key:
            continue
        value = by_key[f.name.lower()]
        if value is None:
            continue
        path = f"{where}.{f.name}"
        if f.kind in (Kind.ATTR, Kind.TEXT):
            out[f.name] = _scalar(f, value, path)
        elif f.kind is Kind.OBJ:
            assert f.type is not None
            if not isinstance(value, dict):
                raise BadRequestError(f"{path} must be a JSON object")
            out[f.name] = _from_json(f.type, value, path)
    return out


def _scalar(f: Field, value: Any, path: str) -> Any:
    if f.scalar is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            return value.strip().lower() in ("true", "1")
        raise BadRequestError(f"{path} must be true or false, not {_show(value)}")
    if f.scalar is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            return int(value.strip())
        raise BadRequestError(f"{path} must be an integer, not {_show(value)}")
    if not isinstance(value, str):
        raise BadRequestError(f"{path} must be a string, not {_show(value)}")
    return value


def _show(value: Any) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, bytes) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- XML ---------------------------------------------------------------------------------------------

DTD_REFUSED = "DTDs are not accepted: the XML document has a DOCTYPE (and so may declare entities)."


class _Node:
    """An element as the parser saw it: no lxml tree is ever built for a request body."""

    __slots__ = ("attrib", "children", "tag", "text")

    def __init__(self, tag: str, attrib: dict[str, str]) -> None:
        self.tag = tag
        self.attrib = attrib
        self.children: list[_Node] = []
        self.text: list[str] = []


class _Builder:
    """lxml parser target: refuses a DOCTYPE as soon as the parser meets it (before any declaration
    in it is read, so entity bombs never expand) and stops at ``MAX_DEPTH`` / ``MAX_ELEMENTS``."""

    def __init__(self) -> None:
        self.stack: list[_Node] = []
        self.root: _Node | None = None
        self.count = 0

    def doctype(self, *_args: object) -> None:
        raise BadRequestError(DTD_REFUSED)

    def start(self, tag: str, attrib: Any) -> None:
        self.count += 1
        if len(self.stack) >= MAX_DEPTH:
            raise BadRequestError(f"the request body is nested deeper than {MAX_DEPTH} levels")
        if self.count > MAX_ELEMENTS:
            raise BadRequestError(f"the request body has more than {MAX_ELEMENTS} elements")
        node = _Node(tag, dict(attrib))
        if self.stack:
            self.stack[-1].children.append(node)
        elif self.root is None:
            self.root = node
        self.stack.append(node)

    def end(self, _tag: str) -> None:
        if self.stack:
            self.stack.pop()

    def data(self, text: str) -> None:
        if self.stack:
            node = self.stack[-1]
            if not node.children:  # like lxml's .text: what comes before the first child
                node.text.append(text)

    def close(self) -> _Node | None:
        return self.root


def _parser(target: _Builder) -> etree.XMLParser:
    return etree.XMLParser(
        target=cast(Any, target),  # lxml calls only the callbacks a target has (no comment())
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def parse_xml(type_: EmType, body: bytes) -> dict[str, Any]:
    target = _Builder()
    try:
        root = etree.fromstring(body, _parser(target))
    except etree.LxmlError as exc:
        raise BadRequestError(f"the request body is not well-formed XML: {exc}") from None
    if not isinstance(root, _Node):
        raise BadRequestError("the request body is not an XML document")
    return _from_xml(type_, root, type_.name, 0)


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _from_xml(type_: EmType, elem: _Node, where: str, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise BadRequestError(f"the request body is nested deeper than {MAX_DEPTH} levels")
    attrs: dict[str, str] = {}
    for k, v in elem.attrib.items():
        name = _local(k).lower()
        if name in attrs:
            raise BadRequestError(f"{where}: the attribute {_local(k)!r} is given twice")
        attrs[name] = v
    children: dict[str, _Node] = {}
    for child in elem.children:
        name = _local(child.tag).lower()
        if not name:
            continue
        if name in children or name in attrs:
            raise BadRequestError(f"{where}: {_local(child.tag)!r} is given twice: which one is meant?")
        children[name] = child
    out: dict[str, Any] = {}
    for f in type_.fields:
        key = f.name.lower()
        path = f"{where}/{f.name}"
        if f.kind in (Kind.ATTR, Kind.TEXT):
            if key in attrs:
                out[f.name] = _scalar(f, attrs[key], path)
            elif key in children:
                raw = "".join(children[key].text)
                out[f.name] = _scalar(f, raw if f.scalar is str else raw.strip(), path)
        elif f.kind is Kind.OBJ and key in children:
            assert f.type is not None
            out[f.name] = _from_xml(f.type, children[key], path, depth + 1)
    return out
