"""Documents for the indices Tracardi's painless steps copy: a shape per index (the paths
its plans' scripts read or write, for the Hypothesis strategy of documents.py) and a
hand-written full document per index, from which every touched path is made missing,
null, empty and of the wrong kind in turn."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from tests.painless.documents import (
    ENTITY,
    EVENT,
    EVENT_RESHAPING,
    LEAF,
    PROFILE,
    SESSION,
    USER,
    Document,
    Shape,
)

SHAPES: dict[str, Shape] = {
    "validation-schema": {"id": LEAF, "tags": LEAF, "validation": LEAF, "enabled": LEAF},
    "user": {**USER, "expiration_timestamp": LEAF, "preference": LEAF},
    "source": {"id": LEAF, "type": LEAF, "locked": LEAF, "manual": LEAF, "tags": LEAF,
               "timestamp": LEAF, "requires_consent": LEAF, "update": LEAF,
               "bridge": {"id": LEAF, "name": LEAF}, "form": LEAF},
    "flow": {"id": LEAF, "name": LEAF, "enabled": LEAF, "type": LEAF},
    "event": {**EVENT, "traits": LEAF, "indexed": LEAF, "request": LEAF, "operation": LEAF,
              "metadata": {"warning": LEAF, "valid": LEAF, "error": LEAF}},
    "task": {"id": LEAF, "type": LEAF, "params": LEAF, "import_id": LEAF,
             "import_type": LEAF},
    "event-management": {"id": LEAF, "event_type": LEAF, "reshaping": LEAF, "enabled": LEAF,
                         "validation": LEAF, "index_enabled": LEAF},
    "log": {"message": LEAF, "exc_info": LEAF, "stack_info": LEAF},
    "profile": {**PROFILE, "flags": LEAF, "operation": LEAF,
                "metadata": {"time": {"insert": LEAF}, "merged_with": LEAF},
                "pii": {"name": LEAF, "surname": LEAF, "email": LEAF, "facebook": LEAF,
                        "twitter": LEAF, "whatsapp": LEAF}},
    "console-log": {"id": LEAF, "node_id": LEAF, "message": LEAF},
    "session": {**SESSION, "operation": LEAF, "device": LEAF, "os": LEAF, "app": LEAF,
                "utm": LEAF,
                "metadata": {"channel": LEAF, "timestamp": LEAF, "duration": LEAF,
                             "time": {"insert": LEAF, "timestamp": LEAF}},
                "context": {"browser": {"local": {"browser": {"name": LEAF},
                                                  "device": {"platform": LEAF}}}}},
    "destination": {"id": LEAF, "condition": LEAF, "name": LEAF},
    "bridge": {"id": LEAF, "type": LEAF, "name": LEAF},
    "rule": {"id": LEAF, "event": {"type": LEAF}, "event_type": LEAF},
    "event_to_profile": {"id": LEAF, "event_type": LEAF},
    "entity": ENTITY,
    "event-reshaping": EVENT_RESHAPING,
}

FULL: dict[str, Document] = {
    "validation-schema": {"id": "v1", "validation": "e30=", "enabled": True, "tags": ["a"]},
    "user": {"id": "u1", "email": "a@example.com", "password": "x", "token": "t",
             "roles": ["admin"], "disabled": False, "expiration_timestamp": 1700000000,
             "preference": {"lang": "en"}},
    "source": {"id": "s1", "type": "javascript", "locked": True, "manual": "m",
               "tags": ["web"], "timestamp": "2022-01-01T00:00:00", "form": {"a": 1},
               "requires_consent": True, "update": "old", "bridge": {"id": "b", "name": "n"}},
    "flow": {"id": "f1", "name": "Flow", "enabled": True, "type": "segmentation"},
    "event": {"id": "e1", "type": "purchase", "traits": {"a": 1}, "indexed": {"b": 2},
              "request": {"headers": {}}, "operation": {"new": True},
              "metadata": {"warning": True, "valid": False, "error": True, "time": {}},
              "data": {"contact": {"email": "a@example.com", "phone": "+1"},
                       "ec": {"order": {"cost": {"other": 1, "discount": 2.5, "tax": 3,
                                                 "shipping": 4, "total": 10.5},
                                        "income": {"revenue": 5, "value": 6}}}}},
    "task": {"id": "t1", "type": "import", "params": {"a": 1}, "import_id": "i",
             "import_type": "csv"},
    "event-management": {"id": "page-view", "event_type": "x", "reshaping": {"a": 1},
                         "enabled": True, "validation": {"b": 2}, "index_enabled": False},
    "log": {"message": "m", "exc_info": "e", "stack_info": "s"},
    "profile": {"id": "p1", "flags": {"a": 1}, "operation": {"new": False},
                "metadata.merged_with": "p0", "traits": {"orders": 3},
                "metadata": {"time": {"insert": "2023-01-01T00:00:00"}, "merged_with": "p0"},
                "pii": {"name": "Ann", "surname": "Lee", "email": "ann@example.com",
                        "facebook": "fb", "twitter": "@ann", "whatsapp": "+48"},
                "data": {"anonymous": True, "pii": {"name": "Ann", "surname": "Lee"},
                         "contact": {"email": "ann@example.com", "phone": "+48 1"},
                         "devices": {"names": ["phone", "laptop"], "other": ["x"]}}},
    "console-log": {"id": "c1", "node_id": "n1", "message": "m"},
    "session": {"id": "s1", "timestamp": "2023-01-01", "profile": {"id": "p1"},
                "operation": {"new": True}, "device": {"name": "d"}, "os": {"name": "o"},
                "app": {"name": "a"}, "utm": {"source": "u"},
                "metadata": {"channel": "web", "timestamp": "2023-01-01", "duration": 1.5,
                             "time": {"insert": "2023-01-01"}},
                "context": {"browser": {"local": {"browser": {"name": "Firefox"},
                                                  "device": {"platform": "Linux"}}}}},
    "destination": {"id": "d1", "condition": "x", "name": "Dest"},
    "bridge": {"id": "b1", "type": "kafka", "name": "Bridge"},
    "rule": {"id": "r1", "event": {"type": "page-view"}, "event_type": "old"},
    "event_to_profile": {"id": "m1", "event_type": "page-view"},
    "entity": {"id": "e1", "timestamp": "2023-01-01T00:00:00", "type": "car",
               "properties": {"a": 1}},
    "event-reshaping": {"id": "r1", "name": "n", "mapping": {"a": "b"},
                        "reshaping": {"x": 1}},
}

# what a touched path is set to in turn: null, empty values, and the wrong kind of value
REPLACEMENTS: dict[str, Any] = {"null": None, "empty-string": "", "empty-map": {},
                                "empty-list": [], "number": 7, "list": ["a", None]}


def _paths(shape: Shape, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, child in shape.items():
        yield (*prefix, key)
        if child is not None:
            yield from _paths(child, (*prefix, key))


def _without(document: Document, path: tuple[str, ...]) -> Document | None:
    """A copy of ``document`` without ``path``, or None when the path is not there."""
    changed = copy.deepcopy(document)
    parent: Any = changed
    for key in path[:-1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(parent, dict) or path[-1] not in parent:
        return None
    del parent[path[-1]]
    return changed


def _with(document: Document, path: tuple[str, ...], value: Any) -> Document | None:
    changed = copy.deepcopy(document)
    parent: Any = changed
    for key in path[:-1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(parent, dict):
        return None
    parent[path[-1]] = copy.deepcopy(value)
    return changed


def hand_written(index: str) -> list[tuple[str, Document]]:
    """(label, document) for an index: its full document, an empty one, and for every
    path of its shape that path missing or replaced by each REPLACEMENTS value."""
    full = FULL[index]
    found: list[tuple[str, Document]] = [("full", full), ("empty", {})]
    for path in _paths(SHAPES[index]):
        name = ".".join(path)
        missing = _without(full, path)
        if missing is not None:
            found.append((f"{name}-missing", missing))
        for label, value in REPLACEMENTS.items():
            replaced = _with(full, path, value)
            if replaced is not None:
                found.append((f"{name}-{label}", replaced))
    return found
