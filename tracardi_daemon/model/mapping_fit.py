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
from typing import Any

from elasticsearch import Elasticsearch

from tracardi_daemon.infra.elastic import elastic_errors

__all__ = ["DAEMON_EXTRAS", "MappingFit", "refused_paths"]

DAEMON_EXTRAS: tuple[str, ...] = ("metadata.fields", "metadata.time.create")


def refused_paths(mapping: Mapping[str, Any], paths: tuple[str, ...]) -> frozenset[str]:
    """Those of ``paths`` a document may not carry under ``mapping`` (an index's
    ``mappings`` body): a name missing from an object whose dynamic setting, inherited
    from its parents, is ``strict``. Under a ``flattened`` field or a disabled object
    anything goes."""
    refused = set()
    for path in paths:
        node: Mapping[str, Any] = mapping
        dynamic = str(mapping.get("dynamic", "true")).lower()
        for name in path.split("."):
            if node.get("type") == "flattened" or node.get("enabled") is False:
                break
            dynamic = str(node.get("dynamic", dynamic)).lower()
            child = node.get("properties", {}).get(name)
            if child is None:
                if dynamic == "strict":
                    refused.add(path)
                break
            node = child
    return frozenset(refused)


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
