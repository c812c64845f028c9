"""Property tests of the request-body parser: whatever the bytes, JSON or XML, the result is a parsed
body or a clean 400 (``BadRequestError``), never another exception; what a client can express in
either format parses to the same value."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import etree

from openflr.api import emtypes
from openflr.api.bodies import parse_body, parse_json, parse_xml
from openflr.api.schema import EmType, Kind, attr, obj, text
from openflr.errors import BadRequestError, UnsupportedMediaTypeError

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPECS = st.sampled_from([emtypes.FILE_RESTORE_SPEC, emtypes.START_MOUNT_SPEC, emtypes.ERROR])
CONTENT_TYPES = st.sampled_from(
    [None, "application/json", "application/xml", "text/xml; charset=utf-8", "application/octet-stream", ""]
)
# A type with every scalar kind, as attribute and as element, nested.
ALL_KINDS = EmType(
    "AllKinds",
    (
        attr("Flag", bool),
        text("Count", int),
        text("Name"),
        obj(
            "Inner", EmType("Inner", (attr("Number", int), text("Word"), text("On", bool)), links_first=False)
        ),
    ),
    links_first=False,
)


def _parses_or_400(type_: EmType, body: bytes, content_type: str | None) -> dict[str, Any] | None:
    try:
        value = parse_body(type_, body, content_type)
    except (BadRequestError, UnsupportedMediaTypeError) as exc:
        error = exc
    else:
        assert content_type != "application/octet-stream"
        assert isinstance(value, dict)
        return value
    assert error.status == (415 if content_type == "application/octet-stream" else 400) and error.message
    return None


@PROPS
@given(SPECS, st.binary(max_size=2000), CONTENT_TYPES)
@example(emtypes.FILE_RESTORE_SPEC, b"<?xml version='1.0' encoding='utf-32'?><a/>", None)
@example(emtypes.FILE_RESTORE_SPEC, b"\x00\x00\xfe\xff", "application/xml")
@example(emtypes.FILE_RESTORE_SPEC, b"\xef\xbb\xbf{}", "application/json")
def test_any_bytes(type_: EmType, body: bytes, content_type: str | None) -> None:
    _parses_or_400(type_, body, content_type)


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["true", "FALSE", " 1 ", "0", "-0", "\u00b2", "1_0", "+5", "9" * 30, "", "Windows"]),
)
NAMES = st.one_of(
    st.sampled_from(
        [
            *("ToOriginalLocation", "toOriginalLocation", "ForDirectDownload", "FileName", "Overwrite"),
            *("OsKind", "PermissionsOnly", "GuestCredentials", "UserName", "username", "Password"),
            *("Flag", "count", "Inner", "Number", "Word", "On", "NAME"),
        ]
    ),
    st.text(max_size=10),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(NAMES, children, max_size=5)),
    max_leaves=25,
)


@PROPS
@given(st.sampled_from([emtypes.FILE_RESTORE_SPEC, emtypes.START_MOUNT_SPEC, ALL_KINDS]), JSON_VALUES)
def test_any_json_document(type_: EmType, doc: Any) -> None:
    body = orjson.dumps(doc)
    for content_type in ("application/json", None):
        _parses_or_400(type_, body, content_type)


XML_NAMES = st.one_of(
    NAMES.filter(lambda n: n.isascii() and n.isidentifier()),
    st.from_regex(r"[A-Za-z_\u00c0-\u00d6][A-Za-z0-9_.\-\u00b7\u4e00-\u4e10]{0,8}", fullmatch=True),
)


@st.composite
def xml_trees(draw: st.DrawFn, depth: int = 0) -> etree._Element:
    tag = draw(XML_NAMES)
    elem = etree.Element(tag)
    for name in draw(st.lists(XML_NAMES, max_size=3, unique=True)):
        elem.set(
            name,
            draw(st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Cn"]), max_size=20)),
        )
    if depth < 4:
        for _ in range(draw(st.integers(0, 3))):
            elem.append(draw(xml_trees(depth + 1)))
    elem.text = draw(st.none() | st.text(st.characters(exclude_categories=["Cs", "Cc", "Cn"]), max_size=20))
    return elem


@settings(PROPS, max_examples=150)
@given(
    st.sampled_from([emtypes.FILE_RESTORE_SPEC, emtypes.START_MOUNT_SPEC, ALL_KINDS]),
    xml_trees(),
    st.sampled_from(["utf-8", "utf-16", "iso-8859-1"]),
    st.binary(max_size=3),
)
def test_any_xml_document(type_: EmType, tree: etree._Element, encoding: str, junk: bytes) -> None:
    try:
        body = etree.tostring(tree, encoding=encoding, xml_declaration=True)
    except (UnicodeEncodeError, ValueError):
        return
    assert isinstance(body, bytes)  # an encoding other than "unicode" gives bytes
    for content_type in ("application/xml", None):
        _parses_or_400(type_, body, content_type)
        _parses_or_400(type_, body + junk, content_type)
        _parses_or_400(type_, body[: len(body) // 2], content_type)


# --- the same value in either format ---------------------------------------------------------------------


@st.composite
def values(draw: st.DrawFn, type_: EmType) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in type_.fields:
        if not draw(st.booleans()):
            continue
        if f.kind is Kind.OBJ:
            assert f.type is not None
            out[f.name] = draw(values(f.type))
        elif f.kind in (Kind.ATTR, Kind.TEXT):
            if f.scalar is bool:
                out[f.name] = draw(st.booleans())
            elif f.scalar is int:
                out[f.name] = draw(st.integers(-(2**62), 2**62))
            else:
                out[f.name] = draw(
                    st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Cn"]))
                )
    return out


def _xml(type_: EmType, value: dict[str, Any], tag: str | None = None) -> etree._Element:
    # lxml takes None as the default namespace's prefix; lxml-stubs' nsmap type has no room for it
    elem = etree.Element(tag or type_.name, nsmap={None: "http://www.veeam.com/ent/v1.0"})  # type: ignore[dict-item]
    for f in type_.fields:
        if f.name not in value:
            continue
        v = value[f.name]
        if f.kind is Kind.OBJ:
            assert f.type is not None
            elem.append(_xml(f.type, v, f.name))
            continue
        shown = ("true" if v else "false") if isinstance(v, bool) else str(v)
        if f.kind is Kind.ATTR:
            elem.set(f.name, shown)
        else:
            etree.SubElement(elem, f.name).text = shown
    return elem


TYPES = st.sampled_from([emtypes.FILE_RESTORE_SPEC, emtypes.START_MOUNT_SPEC, ALL_KINDS])


@PROPS
@given(TYPES.flatmap(lambda t: st.tuples(st.just(t), values(t))))
def test_json_and_xml_forms_parse_to_the_same_value(case: tuple[EmType, dict[str, Any]]) -> None:
    type_, value = case
    assert parse_json(type_, orjson.dumps(value)) == value
    assert parse_xml(type_, etree.tostring(_xml(type_, value))) == value
