"""A reference model of the mapping ops, written from the spec and not from
``model/mapping_ops.py``, for the property test to compare against."""

from __future__ import annotations

import copy
import math
from typing import Any

from tracardi_daemon.model.mapping_ops import MISSING, MappingConflict

# ---------------------------------------------------------------- the reference model
#
# The model keeps a document as a flat dict: "a" -> value for top-level fields and
# "a.b" -> value for fields one level down, with OBJECT standing for "a is an object whose
# fields are the 'a.*' entries". Its rules are written from the spec, not from the module.

OBJECT = object()
PATHS = ["a", "a.b", "t", "t.x"]


def canon(value: Any) -> Any:
    """Comparable form: bools are tagged apart from numbers, numbers compare by value."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("num", value)
    if isinstance(value, list):
        return ("list", tuple(canon(item) for item in value))
    if isinstance(value, dict):
        return ("obj", tuple(sorted((key, canon(item)) for key, item in value.items())))
    return (type(value).__name__, value)


def flatten(document: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in document.items():
        put(flat, key, value)
    return flat


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for path, value in flat.items():
        if "." not in path:
            document[path] = {} if value is OBJECT else value
    for path, value in flat.items():
        if "." in path:
            head, tail = path.split(".")
            document[head][tail] = value
    return document


def members(flat: dict[str, Any], head: str) -> list[str]:
    return [path for path in flat if path.startswith(head + ".")]


def put(flat: dict[str, Any], path: str, value: Any) -> None:
    if "." in path:
        head = path.partition(".")[0]
        if flat.get(head) is not OBJECT:
            flat[head] = OBJECT
        flat[path] = copy.deepcopy(value)
        return
    for member in members(flat, path):
        del flat[member]
    if isinstance(value, dict):
        flat[path] = OBJECT
        for key, item in value.items():
            flat[f"{path}.{key}"] = copy.deepcopy(item)
    else:
        flat[path] = copy.deepcopy(value)


def model_read(flat: dict[str, Any], path: str) -> tuple[bool, Any]:
    """(conflict on the way, current value or MISSING)."""
    if "." in path:
        holder = flat.get(path.partition(".")[0], MISSING)
        if holder is OBJECT:
            return False, flat.get(path, MISSING)
        return not nothing(holder), MISSING
    value = flat.get(path, MISSING)
    if value is OBJECT:
        return False, {m.split(".")[1]: flat[m] for m in members(flat, path)}
    return False, value


def blank(value: Any) -> bool:
    return (
        nothing(value)
        or (type(value) is str and value.strip() == "")
        or (type(value) in (list, dict) and len(value) == 0)
    )


def number(value: Any) -> bool:
    return type(value) in (int, float)


def nothing(value: Any) -> bool:
    return value is MISSING or value is None


def model_rule(op: str, current: Any, value: Any) -> tuple[str, Any]:
    """("write", new) | ("keep", None) | ("conflict", None)."""
    if op == "equals":
        return ("keep", None) if canon(current) == canon(value) else ("write", value)
    if op == "equals_if_not_exists":
        return ("write", value) if blank(current) else ("keep", None)
    if op == "append":
        if type(current) is dict:
            return ("conflict", None)
        start = [] if nothing(current) else current if type(current) is list else [current]
        seen = {canon(item) for item in start}
        added = []
        for item in value if type(value) is list else [value]:
            if item is not None and canon(item) not in seen:
                seen.add(canon(item))
                added.append(item)
        converted = type(current) is not list and not nothing(current)
        return ("write", start + added) if added or converted else ("keep", None)
    step = 1 if value is MISSING else value
    base = 0 if nothing(current) else current
    if not number(step) or not number(base):
        return ("conflict", None)
    if step == 0:
        return ("keep", None)
    result = base + step if op == "increment" else base - step
    return ("write", result) if math.isfinite(result) else ("conflict", None)


def model_apply(document: dict[str, Any], op: str, path: str, value: Any) -> Any:
    """The resulting (document, changed), or the exception type the op must raise."""
    flat = flatten(document)
    if op == "delete":
        if path not in flat:
            return document, False
        for key in [path, *members(flat, path)]:
            del flat[key]
        return unflatten(flat), True
    if op in ("equals", "equals_if_not_exists", "append") and blank(value):
        return ValueError
    conflict, current = model_read(flat, path)
    if conflict:
        return MappingConflict
    outcome, new = model_rule(op, current, value)
    if outcome == "conflict":
        return MappingConflict
    if outcome == "keep":
        return document, False
    put(flat, path, new)
    return unflatten(flat), True
