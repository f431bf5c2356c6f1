"""Whether a pass's compiled query means, on the profile index as it is mapped, what the
condition means in Python.

The compiler assumes the daemon's own mapping (strings as keywords, numbers as numbers).
Tracardi's profile mapping differs: ``stats``, ``interests``, ``consents``, ``aux`` are
``flattened`` (every leaf a keyword: a range compares text, and needs both bounds) and
``traits`` maps new strings as analysed ``text``. A query that reads such a field the way
its type cannot answer is left to Python, which reads ``_source``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from elasticsearch import Elasticsearch

from tracardi_daemon.infra.elastic import elastic_errors
from tracardi_daemon.model.mapping_fit import reach

__all__ = ["FieldTypes", "answers", "field_types"]

_KEYWORDS = frozenset({"keyword", "constant_keyword", "wildcard"})
_NUMBERS = frozenset({"long", "integer", "short", "byte", "double", "float", "half_float",
                      "scaled_float", "unsigned_long"})
_DATES = frozenset({"date", "date_nanos"})
_COMPOUND = ("filter", "must", "should", "must_not")


class FieldTypes:
    """The type of each field in every index behind an alias (``flattened`` for a path
    inside a flattened field); a field an index does not map is left out for it."""

    def __init__(self, mappings: Iterable[Mapping[str, Any]]) -> None:
        self._mappings = list(mappings)

    def of(self, path: str) -> frozenset[str]:
        found = (_type_at(mapping, path) for mapping in self._mappings)
        return frozenset(kind for kind in found if kind is not None)


def field_types(elastic: Elasticsearch, alias: str) -> FieldTypes:
    with elastic_errors(f"read the mappings of {alias}"):
        body = elastic.options(ignore_status=404).indices.get_mapping(index=alias).body
    if "error" in body:
        return FieldTypes([])
    return FieldTypes(index.get("mappings", {}) for index in body.values())


def _type_at(mapping: Mapping[str, Any], path: str) -> str | None:
    where = reach(mapping, path)
    if where.within == "flattened":
        return "flattened"
    return None if where.node is None else str(where.node.get("type", "object"))


def answers(query: Mapping[str, Any], types: FieldTypes) -> bool:
    """True if every clause of ``query`` (as the tql compiler writes them) reads fields
    whose mapped types answer it as Python would; a field no index maps matches nothing
    in either."""
    if len(query) != 1:
        return False
    [(kind, body)] = query.items()
    if kind in ("match_all", "match_none"):
        return True
    if kind == "bool":
        return all(answers(clause, types) for key in _COMPOUND for clause in body.get(key, []))
    if kind == "exists":
        return True
    if kind not in ("term", "range", "prefix", "wildcard") or len(body) != 1:
        return False
    [(field, condition)] = body.items()
    mapped = types.of(field)
    if not mapped:
        return True
    values = [condition[key] for key in ("value", "gt", "gte", "lt", "lte") if key in condition]
    if kind in ("prefix", "wildcard"):
        return mapped <= _KEYWORDS
    if all(isinstance(value, bool) for value in values):
        return kind == "term" and mapped <= {"boolean"}
    if all(isinstance(value, int | float) for value in values):
        return mapped <= _NUMBERS
    if all(isinstance(value, str) for value in values):
        return mapped <= _KEYWORDS | _DATES
    return False
