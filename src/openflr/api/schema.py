"""The shape language for Enterprise Manager types.

Each EM type is described once, as an ordered tuple of fields; the XML and JSON renderers and the
request-body parser all work from these descriptions, never from per-endpoint templates, so XML and
JSON cannot drift apart (docs/EM-API.md, "Types and wire shape"). Field order is the JSON order,
which follows the vendor schema's declaration order; in XML the inherited ``Links`` element comes
first for resource types.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

NAMESPACE = "http://www.veeam.com/ent/v1.0"


class Kind(enum.Enum):
    ATTR = "attribute"
    """Scalar: an XML attribute, a JSON property."""
    TEXT = "text"
    """Scalar: an XML child element with text content, a JSON property."""
    OBJ = "object"
    """One nested value of another type: an XML child element, a JSON object."""
    LINKS = "links"
    """``<Links><Link .../></Links>`` in XML, a plain array of link objects in JSON."""
    LIST = "list"
    """A wrapper element of repeated items: XML ``<Files><FileEntry/>...</Files>``,
    JSON ``"Files": {"FileEntries": [...]}``."""
    ITEMS = "items"
    """Repeated items directly under the parent (list roots such as ``LogonSessions``):
    XML ``<LogonSessions><LogonSession/>...</LogonSessions>``, JSON ``{"LogonSessions": [...]}``."""


Scalar = type[str] | type[int] | type[bool] | type[datetime]


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    scalar: Scalar = str
    type: EmType | None = None
    item: str = ""
    """Element name of each item of a LIST or ITEMS field."""
    json_key: str = ""
    """JSON key of the array of a LIST or ITEMS field (the plural of ``item``)."""
    json_name: str = ""
    json_name_camel: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "json_name", self.json_name or self.name)
        object.__setattr__(self, "json_name_camel", camel(self.json_name))


@dataclass(frozen=True)
class EmType:
    name: str
    """Root element name when the type is rendered at the top of a document."""
    fields: tuple[Field, ...]
    links_first: bool = True
    """XML puts the ``Links`` element before the type's own elements (types derived from
    the schema's ResourceType do)."""
    xml_attrs: tuple[Field, ...] = field(init=False)
    xml_elems: tuple[Field, ...] = field(init=False)

    def __post_init__(self) -> None:
        attrs = tuple(f for f in self.fields if f.kind is Kind.ATTR)
        elems = [f for f in self.fields if f.kind is not Kind.ATTR]
        if self.links_first:
            elems.sort(key=lambda f: f.kind is not Kind.LINKS)
        object.__setattr__(self, "xml_attrs", attrs)
        object.__setattr__(self, "xml_elems", tuple(elems))

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name}")


class Link(NamedTuple):
    rel: str
    href: str
    type: str | None = None
    name: str | None = None


def attr(name: str, scalar: Scalar = str) -> Field:
    return Field(name, Kind.ATTR, scalar)


def text(name: str, scalar: Scalar = str) -> Field:
    return Field(name, Kind.TEXT, scalar)


def obj(name: str, type_: EmType) -> Field:
    return Field(name, Kind.OBJ, type=type_)


def links() -> Field:
    return Field("Links", Kind.LINKS)


def list_of(name: str, item: str, type_: EmType, json_key: str | None = None) -> Field:
    return Field(name, Kind.LIST, type=type_, item=item, json_key=json_key or plural(item))


def items(item: str, type_: EmType, json_key: str | None = None) -> Field:
    key = json_key or plural(item)
    return Field(key, Kind.ITEMS, type=type_, item=item, json_key=key)


def plural(word: str) -> str:
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("s", "x")):
        return word + "es"
    return word + "s"


_CAMEL_RE = re.compile(r"^([A-Z]+)(?=[A-Z][a-z]|$)|^([A-Z])")


def camel(name: str) -> str:
    """EM 13 JSON casing: ``SessionId`` -> ``sessionId``, ``UID`` -> ``uid``, ``NASJobs`` -> ``nasJobs``."""
    return _CAMEL_RE.sub(lambda m: m.group(0).lower(), name, count=1)


Value = dict[str, Any]
"""A rendered resource: field name -> value (str, int, bool, datetime, None, Link list, nested Value,
list or iterator of Values, or a zero-argument callable producing one of those at render time)."""
