"""Whether a value fits a field of an index's current mapping, and how to say why not
("traits.name: the index ... maps it as an object, the value is a string"). Used on the
documents Elasticsearch refused for their mapping, to find the values that conflict."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from elasticsearch import Elasticsearch

from tracardi_daemon.infra.elastic import elastic_errors

__all__ = ["IndexMappings", "describe", "leaf_conflict", "overlaps", "preview",
           "shape_conflict"]

_OBJECT_TYPES = frozenset({"object", "nested"})
_NUMBER_TYPES = frozenset({"long", "integer", "short", "byte", "double", "float",
                           "half_float", "scaled_float", "unsigned_long"})
_PREVIEW_CHARS = 32
_MAX_DEPTH = 32  # levels of a value looked into


class IndexMappings:
    """The mappings of indices as they are now, each read once (make one per batch:
    dynamic mapping changes them as documents arrive)."""

    def __init__(self, elastic: Elasticsearch) -> None:
        self._elastic = elastic
        self._read: dict[str, Mapping[str, Any]] = {}

    def get(self, index: str) -> Mapping[str, Any]:
        """The ``mappings`` body of ``index`` (empty if there is no such index)."""
        known = self._read.get(index)
        if known is None:
            with elastic_errors(f"read the mapping of {index}"):
                body = self._elastic.options(ignore_status=404).indices.get_mapping(
                    index=index).body
            known = body.get(index, {}).get("mappings", {}) if isinstance(body, dict) else {}
            self._read[index] = known
        return known


def overlaps(path: str, field: str) -> bool:
    """Whether writing ``path`` writes ``field`` or something inside or around it."""
    return path == field or path.startswith(field + ".") or field.startswith(path + ".")


def preview(value: Any) -> str:
    """The value's kind and at most a short prefix of it: ``a string ("Ann")``."""
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    cut = text[:_PREVIEW_CHARS] + ("..." if len(text) > _PREVIEW_CHARS else "")
    kind = _kind(value)
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} ({cut})"


def describe(mapping: Mapping[str, Any], path: str) -> str:
    """What the mapping does with ``path``, as the end of a sentence about the index:
    ``maps it as date``, ``maps it as an object``, ``maps traits.name as keyword``,
    ``keeps it inside the flattened field traits``, ``does not map it yet``."""
    node: Mapping[str, Any] = mapping
    walked: list[str] = []
    for name in path.split("."):
        if node.get("type") == "flattened" or node.get("enabled") is False:
            kind = "flattened field" if node.get("type") == "flattened" else "disabled object"
            return f"keeps it inside the {kind} {'.'.join(walked)}"
        if not _is_object(node):
            return f"maps {'.'.join(walked)} as {node.get('type')}"
        child = node.get("properties", {}).get(name)
        if child is None:
            return "does not map it yet"
        node, walked = child, [*walked, name]
    return "maps it as an object" if _is_object(node) else f"maps it as {node.get('type')}"


def shape_conflict(mapping: Mapping[str, Any], index: str, path: str,
                   value: Any) -> str | None:
    """Why ``index`` refuses ``value`` at ``path`` by its shape alone: a concrete value
    where an object is mapped, an object where a concrete value is, a new field in a
    strict object. None when the shape fits (its type may still not: ``leaf_conflict``)."""
    node: Mapping[str, Any] = mapping
    dynamic = str(mapping.get("dynamic", "true")).lower()
    walked: list[str] = []
    for name in path.split("."):
        if node.get("type") == "flattened" or node.get("enabled") is False:
            return None  # nothing inside is mapped
        if not _is_object(node):
            return (f"{'.'.join(walked)}: the index {index} maps it as {node.get('type')}, "
                    f"and {path} would make it an object")
        dynamic = str(node.get("dynamic", dynamic)).lower()
        child = node.get("properties", {}).get(name)
        if child is None:
            return _new_field(index, ".".join(walked), name, dynamic)
        node, walked = child, [*walked, name]
    return _value_conflict(node, dynamic, index, path, value)


def leaf_conflict(mapping: Mapping[str, Any], index: str, path: str,
                  value: Any) -> str | None:
    """Why a number or boolean field of ``index`` refuses ``value`` at ``path``."""
    node: Mapping[str, Any] | None = mapping
    for name in path.split("."):
        node = node.get("properties", {}).get(name) if node is not None else None
    if node is None or node.get("ignore_malformed") is True:
        return None
    values = value if isinstance(value, list) else [value]
    for one in values:
        if one is None:
            continue
        if _refused_leaf(str(node.get("type")), one):
            return (f"{path}: the index {index} maps it as {node.get('type')}, "
                    f"the value is {preview(one)}")
    return None


def _value_conflict(node: Mapping[str, Any], dynamic: str, index: str, path: str,
                    value: Any, *, depth: int = 0) -> str | None:
    if depth > _MAX_DEPTH or value is None:
        return None
    if node.get("type") == "flattened" or node.get("enabled") is False:
        return None
    if isinstance(value, list):
        for element in value:
            found = _value_conflict(node, dynamic, index, path, element, depth=depth + 1)
            if found:
                return found
        return None
    if not _is_object(node):
        if isinstance(value, dict):
            return (f"{path}: the index {index} maps it as {node.get('type')}, "
                    f"the value is {preview(value)}")
        return None
    if not isinstance(value, dict):
        return f"{path}: the index {index} maps it as an object, the value is {preview(value)}"
    dynamic = str(node.get("dynamic", dynamic)).lower()
    for key, inner in value.items():
        child = node.get("properties", {}).get(key)
        found = (_new_field(index, path, key, dynamic) if child is None else
                 _value_conflict(child, dynamic, index, f"{path}.{key}", inner,
                                 depth=depth + 1))
        if found:
            return found
    return None


def _new_field(index: str, parent: str, name: str, dynamic: str) -> str | None:
    if dynamic != "strict":
        return None  # mapped from the value as it arrives
    where = parent or "the document's top level"
    return (f"{parent + '.' if parent else ''}{name}: the index {index} does not map it, "
            f"and {where} takes no new fields (dynamic: strict)")


def _refused_leaf(field_type: str, value: Any) -> bool:
    if field_type in _NUMBER_TYPES:
        if isinstance(value, bool):
            return True
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:
                return True
        return False
    if field_type == "boolean":
        return not isinstance(value, bool) and value not in ("true", "false", "")
    return False


def _is_object(node: Mapping[str, Any]) -> bool:
    return str(node.get("type", "object")) in _OBJECT_TYPES


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object" if isinstance(value, dict) else type(value).__name__
