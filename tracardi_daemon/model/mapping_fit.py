"""Fields the daemon adds of its own accord, left out where the index would refuse them.

The daemon records a few things Tracardi's newer mappings have a place for: which event
set a profile field (``metadata.fields``) and when a profile was created
(``metadata.time.create``). Tracardi 0.8.1's profile mapping is ``dynamic: strict`` and
has neither, so a write carrying them would be refused whole. ``MappingFit`` reads each
index's mapping once and drops those fields from documents bound for an index that
would refuse them; every other field is written as it is (a field of the user's data
that the mapping refuses fails that document, with Elasticsearch's reason).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch

from tracardi_daemon.infra.elastic import elastic_errors

__all__ = ["DAEMON_EXTRAS", "MappingFit", "Reach", "reach", "refused_paths"]

DAEMON_EXTRAS: tuple[str, ...] = ("metadata.fields", "metadata.time.create")


@dataclass(frozen=True)
class Reach:
    """How far a dotted path goes into an index's mapping."""

    node: Mapping[str, Any] | None  # the path's own mapping; None where it stops short
    within: str | None  # "flattened" or "disabled": it lies inside such a field
    dynamic: str  # the dynamic setting (inherited from the parents) where it stopped


def reach(mapping: Mapping[str, Any], path: str) -> Reach:
    """Follow ``path`` through ``properties`` from ``mapping`` (an index's ``mappings``
    body) until it ends, leaves the mapped names, or enters a ``flattened`` field or a
    disabled object (whose insides are not mapped)."""
    node: Mapping[str, Any] = mapping
    dynamic = str(mapping.get("dynamic", "true")).lower()
    for name in path.split("."):
        if node.get("type") == "flattened":
            return Reach(None, "flattened", dynamic)
        if node.get("enabled") is False:
            return Reach(None, "disabled", dynamic)
        dynamic = str(node.get("dynamic", dynamic)).lower()
        child = node.get("properties", {}).get(name)
        if child is None:
            return Reach(None, None, dynamic)
        node = child
    return Reach(node, None, dynamic)


def refused_paths(mapping: Mapping[str, Any], paths: tuple[str, ...]) -> frozenset[str]:
    """Those of ``paths`` a document may not carry under ``mapping``: a name missing from
    an object whose dynamic setting, inherited from its parents, is ``strict``. Under a
    ``flattened`` field or a disabled object anything goes."""
    found = {path: reach(mapping, path) for path in paths}
    return frozenset(path for path, where in found.items()
                     if where.node is None and where.within is None
                     and where.dynamic == "strict")


class MappingFit:
    """The daemon's extras, dropped from documents for indices that refuse them; each
    index's mapping is read once. Thread-safe."""

    def __init__(self, elastic: Elasticsearch, extras: tuple[str, ...] = DAEMON_EXTRAS) -> None:
        self._elastic = elastic
        self._extras = extras
        self._refused: dict[str, frozenset[str]] = {}
        self._lock = threading.Lock()

    def refused(self, index: str) -> frozenset[str]:
        with self._lock:
            known = self._refused.get(index)
        if known is not None:
            return known
        with elastic_errors(f"read the mapping of {index}"):
            body = self._elastic.options(ignore_status=404).indices.get_mapping(index=index)
        if "error" in body or index not in body.body:
            # not there yet: it will be made from a template; look again next time
            return frozenset()
        refused = refused_paths(body.body[index].get("mappings", {}), self._extras)
        with self._lock:
            self._refused[index] = refused
        return refused

    def fit(self, index: str, document: Mapping[str, Any]) -> Mapping[str, Any]:
        """``document`` without the extras ``index`` refuses (a changed copy; the
        original is left alone)."""
        refused = self.refused(index)
        if not refused:
            return document
        fitted = dict(document)
        for path in refused:
            _drop(fitted, path.split("."))
        return fitted


def _drop(document: dict[str, Any], names: list[str]) -> None:
    """Remove the path, copying each object on the way so the caller's stays whole."""
    head, rest = names[0], names[1:]
    if head not in document:
        return
    if not rest:
        del document[head]
        return
    child = document[head]
    if isinstance(child, dict):
        document[head] = dict(child)
        _drop(document[head], rest)
