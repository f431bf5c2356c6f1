"""Field types read from Elasticsearch mappings: what each field of a document holds, so
that both back ends convert stored values and literals the same way the index does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from tracardi_daemon.tql import ast


class Kind(Enum):
    """How a field compares. The first five are the comparison kinds."""

    KEYWORD = "keyword"      # exact text; order is code-point order
    NUMBER = "number"        # IEEE double
    INTEGER = "integer"      # whole numbers; fractions stored are truncated
    DATE = "date"            # instants with millisecond precision
    BOOLEAN = "boolean"
    FLATTENED = "flattened"  # every leaf below compares as keyword
    OBJECT = "object"        # has fields below; only EXISTS/EMPTY apply
    UNSEARCHABLE = "unsearchable"  # in _source only: Elasticsearch cannot search it
    UNSUPPORTED = "unsupported"    # searchable, but not exactly (text, float, ...)


COMPARABLE = (Kind.KEYWORD, Kind.NUMBER, Kind.INTEGER, Kind.DATE, Kind.BOOLEAN)

_INTEGER_BITS = {"byte": 8, "short": 16, "integer": 32, "long": 64}
_DEFAULT_DATE_FORMATS = ("strict_date_optional_time||epoch_millis",
                         "strict_date_optional_time")


@dataclass(frozen=True, slots=True)
class FieldType:
    kind: Kind
    es_type: str
    reason: str = ""                # why a field is unsearchable or unsupported
    ignore_above: int | None = None  # keyword: longer strings are not indexed
    bounds: tuple[int, int] | None = None  # integer: the range of the Elasticsearch type
    leaves: tuple[tuple[tuple[str, ...], FieldType], ...] = ()  # object: mapped leaves
    closed: bool = False            # object: no fields can be added dynamically below


# a nested object is a separate hidden document: only a nested query reaches it
_NESTED = FieldType(Kind.UNSEARCHABLE, "nested", "it is in a nested object, which needs "
                    "nested queries")


class Schema:
    """The mappings of the document kinds (``profile``, ``event``, ...) a condition reads.

    A field the schema does not know (a source without mapping, a key below a dynamic
    object) has no type: its comparisons take the type of the value compared with.
    """

    def __init__(self, mappings: Mapping[str, Mapping[str, Any]]) -> None:
        self._mappings = dict(mappings)

    @classmethod
    def from_mappings(cls, **mappings: Mapping[str, Any]) -> Schema:
        """``Schema.from_mappings(profile={"properties": {...}})``."""
        return cls(mappings)

    def lookup(self, field: ast.Field) -> FieldType | None:
        root = self._mappings.get(field.source)
        if root is None:
            return None
        return _lookup(root, field.path, _is_dynamic(root, True))


def _lookup(node: Mapping[str, Any], path: tuple[str, ...], dynamic: bool) -> FieldType | None:
    for index, key in enumerate(path):
        es_type = node.get("type", "object")
        if es_type == "flattened":
            return FieldType(Kind.KEYWORD, "flattened")
        if es_type == "nested":
            return _NESTED
        if es_type != "object":
            return FieldType(Kind.UNSEARCHABLE, es_type,
                             f"{'.'.join(path[:index])} is a {es_type} field, not an object")
        if node.get("enabled", True) is False:
            return FieldType(Kind.UNSEARCHABLE, "object", "the object is not indexed")
        child = node.get("properties", {}).get(key)
        if child is None:
            if dynamic:
                return None
            return FieldType(Kind.UNSEARCHABLE, "unmapped", "it is not in the mapping and "
                             "its object does not map new fields")
        dynamic = _is_dynamic(child, dynamic)
        node = child
    return _classify(node, dynamic)


def _is_dynamic(node: Mapping[str, Any], inherited: bool) -> bool:
    setting = node.get("dynamic")
    if setting is None:
        return inherited
    # "runtime" fields are searchable with types chosen per value, like dynamic ones
    return str(setting).lower() in ("true", "runtime")


def _classify(node: Mapping[str, Any], dynamic: bool) -> FieldType:
    es_type = str(node.get("type", "object"))
    if node.get("index", True) is False or node.get("enabled", True) is False:
        return FieldType(Kind.UNSEARCHABLE, es_type, "the mapping does not index it")
    if "null_value" in node or "copy_to" in node or "script" in node:
        return FieldType(Kind.UNSUPPORTED, es_type,
                         "its mapping changes values (null_value, copy_to or script)")
    # constant_keyword is not here: its value lives in the mapping, not in the documents
    if es_type == "keyword":
        if "normalizer" in node:
            return FieldType(Kind.UNSUPPORTED, es_type, "it has a normalizer")
        return FieldType(Kind.KEYWORD, es_type, ignore_above=node.get("ignore_above"))
    if es_type == "double":
        return FieldType(Kind.NUMBER, es_type)
    if es_type in _INTEGER_BITS:
        half = 2 ** (_INTEGER_BITS[es_type] - 1)
        return FieldType(Kind.INTEGER, es_type, bounds=(-half, half - 1))
    if es_type == "date":
        if node.get("format", _DEFAULT_DATE_FORMATS[0]) not in _DEFAULT_DATE_FORMATS:
            return FieldType(Kind.UNSUPPORTED, es_type, "it has a custom date format")
        return FieldType(Kind.DATE, es_type)
    if es_type == "boolean":
        return FieldType(Kind.BOOLEAN, es_type)
    if es_type == "flattened":
        return FieldType(Kind.FLATTENED, es_type)
    if es_type == "nested":
        return _NESTED
    if es_type == "object":
        leaves: list[tuple[tuple[str, ...], FieldType]] = []
        closed = _collect_leaves(node, (), dynamic, leaves)
        return FieldType(Kind.OBJECT, es_type, leaves=tuple(leaves), closed=closed)
    return FieldType(Kind.UNSUPPORTED, es_type, f"TQL does not compare {es_type} fields exactly")


def _collect_leaves(node: Mapping[str, Any], prefix: tuple[str, ...], dynamic: bool,
                    leaves: list[tuple[tuple[str, ...], FieldType]]) -> bool:
    """Append the mapped leaves below an object; True if no object below maps new fields."""
    closed = not dynamic
    for name, child in node.get("properties", {}).items():
        path = (*prefix, name)
        child_dynamic = _is_dynamic(child, dynamic)
        if child.get("type", "object") == "object" and child.get("enabled", True) is not False:
            closed = _collect_leaves(child, path, child_dynamic, leaves) and closed
        else:
            leaves.append((path, _classify(child, child_dynamic)))
    return closed
