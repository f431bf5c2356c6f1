"""Declarative document transforms a migration step applies to every copied document
(move, copy, set, delete, convert over dotted paths): the daemon's own plans' way of
changing documents (Tracardi's plans carry painless, which the interpreter runs).

A transform is written as one flat table with ``op``::

    {op = "move", from = "data.contact.email", to = "data.contact.email.main"}
    {op = "copy", from = "a", to = "b"}
    {op = "set", path = "data.anonymous", value = false, default = true}
    {op = "delete", path = "mapping"}
    {op = "convert", path = "metadata.time.insert", to = "date"}
"""

from __future__ import annotations

import copy as copying
import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.model.definition_reader import PATH

Document = dict[str, Any]
CONVERSIONS: tuple[str, ...] = ("string", "integer", "float", "boolean", "date")
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}
_MISSING = object()


class TransformError(InvalidInput):
    """A document the transform cannot apply to; ``reason`` says why, naming the path."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@functools.lru_cache(maxsize=1024)
def _parts(path: str) -> tuple[tuple[str, ...], str]:
    """``(parents, last)`` of a dotted path, split once per path (a migration applies
    the same few paths to millions of documents)."""
    *parents, last = path.split(".")
    return tuple(parents), last


def _get(doc: Document, path: str) -> Any:
    """The value at ``path``, or _MISSING (also when a parent is not an object)."""
    parents, last = _parts(path)
    node: Any = doc
    for key in parents:
        node = node.get(key, _MISSING) if type(node) is dict else _MISSING
    return node.get(last, _MISSING) if type(node) is dict else _MISSING


def _pop(doc: Document, path: str) -> Any:
    parents, last = _parts(path)
    node: Any = doc
    for key in parents:
        node = node.get(key) if type(node) is dict else None
    return node.pop(last, _MISSING) if type(node) is dict else _MISSING


def _put(doc: Document, path: str, value: Any) -> None:
    """Write ``value`` at ``path``, creating objects where a parent is absent or null."""
    parents, last = _parts(path)
    node = doc
    for depth, key in enumerate(parents):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        elif type(child) is not dict:
            where = ".".join(parents[: depth + 1])
            raise TransformError(f"{path}: cannot write under {where!r}, which holds "
                                 f"{type(child).__name__} {child!r}, not an object")
        node = child
    node[last] = value


@dataclass(frozen=True)
class Move:
    """Move the value at ``source`` to ``target``; ``target`` may lie under ``source``
    (a string becoming an object holding it)."""

    source: str
    target: str

    def apply(self, doc: Document) -> None:
        if self.source == self.target:
            return
        # taken out before writing: writing first would nest it under itself
        value = _pop(doc, self.source)
        if value is not _MISSING:
            _put(doc, self.target, value)

    def to_dict(self) -> dict[str, Any]:
        return {"op": "move", "from": self.source, "to": self.target}


@dataclass(frozen=True)
class Copy:
    """Copy the value at ``source`` to ``target``, keeping the source."""

    source: str
    target: str

    def apply(self, doc: Document) -> None:
        value = _get(doc, self.source)
        if value is not _MISSING:
            _put(doc, self.target, copying.deepcopy(value))

    def to_dict(self) -> dict[str, Any]:
        return {"op": "copy", "from": self.source, "to": self.target}


@dataclass(frozen=True)
class Set:
    """Write ``value`` at ``path``; with ``default`` only where it is absent or null."""

    path: str
    value: Any
    default: bool = False

    def apply(self, doc: Document) -> None:
        if self.default and _get(doc, self.path) not in (_MISSING, None):
            return
        _put(doc, self.path, copying.deepcopy(self.value))

    def to_dict(self) -> dict[str, Any]:
        return {"op": "set", "path": self.path, "value": self.value, "default": self.default}


@dataclass(frozen=True)
class Delete:
    """Remove ``path`` (and what it holds); absent is fine."""

    path: str

    def apply(self, doc: Document) -> None:
        _pop(doc, self.path)

    def to_dict(self) -> dict[str, Any]:
        return {"op": "delete", "path": self.path}


@dataclass(frozen=True)
class Convert:
    """Convert the value at ``path`` to ``to``; absent or null is left alone."""

    path: str
    to: str

    def apply(self, doc: Document) -> None:
        value = _get(doc, self.path)
        if value is _MISSING or value is None:
            return
        try:
            converted = _CONVERTERS[self.to](value)
        except (ValueError, TypeError, OverflowError, OSError) as exc:
            raise TransformError(f"{self.path}: cannot convert {value!r} to {self.to}: "
                                 f"{exc}") from exc
        _put(doc, self.path, converted)

    def to_dict(self) -> dict[str, Any]:
        return {"op": "convert", "path": self.path, "to": self.to}


Transform = Move | Copy | Set | Delete | Convert


def _refuse(value: object, what: str) -> NoReturn:
    raise ValueError(f"a {type(value).__name__} is not {what}")


def _to_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    _refuse(value, "a scalar")


def _to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        _refuse(value, "a number or a numeric string")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _to_integer(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    number = _to_float(value)
    if not number.is_integer():
        raise ValueError("has a fractional part")
    return int(number)


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected true/false, yes/no or 1/0")


def _to_date(value: Any) -> str:
    """ISO 8601 (naive = UTC) or epoch milliseconds, written as ISO 8601 in UTC."""
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(value / 1000, UTC)
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value.strip())
    else:
        _refuse(value, "an ISO 8601 string or epoch milliseconds")
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat()


_CONVERTERS = {"string": _to_string, "integer": _to_integer, "float": _to_float,
               "boolean": _to_boolean, "date": _to_date}


def apply_all(doc: Mapping[str, Any], transforms: tuple[Transform, ...]) -> Document:
    """``transforms`` applied in order to a deep copy of ``doc``; ``doc`` is untouched,
    also when one raises TransformError."""
    return apply_in_place(copying.deepcopy(dict(doc)), transforms)


def apply_in_place(doc: Document, transforms: tuple[Transform, ...]) -> Document:
    """``transforms`` applied in order to ``doc`` itself, for a caller that owns it (a
    scan's hit); after a TransformError it is half changed and must be dropped."""
    for transform in transforms:
        transform.apply(doc)
    return doc


def transform_batch(transforms: tuple[Transform, ...],
                    docs: list[Document]) -> list[Document | TransformError]:
    """Each of ``docs`` transformed in place, in order, or the TransformError that stopped
    it (a pool function: the error comes back to name its document)."""
    results: list[Document | TransformError] = []
    for doc in docs:
        try:
            results.append(apply_in_place(doc, transforms))
        except TransformError as exc:
            results.append(exc)
    return results


# the keys each op takes besides op
_KEYS: dict[str, tuple[str, ...]] = {
    "move": ("from", "to"), "copy": ("from", "to"), "set": ("path", "value", "default"),
    "delete": ("path",), "convert": ("path", "to"),
}


def _json_value(value: Any) -> bool:
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_json_value(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _json_value(item) for key, item in value.items())
    return False


def _parse_one(raw: object, fail: Callable[[str, str], NoReturn]) -> Transform:
    if not isinstance(raw, Mapping):
        fail("", f"must be a table/object such as {{op = \"move\", from = \"a\", to = \"b\"}}, "
                 f"got {type(raw).__name__}")
    op = raw.get("op")
    if op not in _KEYS:
        fail(".op", f"must be one of {', '.join(_KEYS)}, got {op!r}")
    for key in sorted(set(raw) - {"op", *_KEYS[op]}):
        fail(f".{key}", f"is not a field of {op} (it takes {', '.join(_KEYS[op])})")

    def path(key: str) -> str:
        value = raw.get(key)
        if not isinstance(value, str) or not PATH.match(value):
            fail(f".{key}", f"must be a dotted path such as 'data.contact.email', got {value!r}")
        return value

    if op in ("move", "copy"):
        return (Move if op == "move" else Copy)(path("from"), path("to"))
    if op == "delete":
        return Delete(path("path"))
    if op == "convert":
        if raw.get("to") not in CONVERSIONS:
            fail(".to", f"must be one of {', '.join(CONVERSIONS)}, got {raw.get('to')!r}")
        return Convert(path("path"), raw["to"])
    if "value" not in raw or not _json_value(raw["value"]):
        fail(".value", "is required and must be a JSON value (write a date as a string)")
    default = raw.get("default", False)
    if not isinstance(default, bool):
        fail(".default", "must be true or false")
    return Set(path("path"), raw["value"], default)


def parse_transforms(raw: object, where: str) -> tuple[Transform, ...]:
    """Transforms from a list of ``{op = ..., ...}`` tables; errors read
    ``<where>: field 'transforms[2].to' must be a dotted path ...``."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidInput(f"{where}: field 'transforms' must be a list of tables/objects")
    result: list[Transform] = []
    for number, item in enumerate(raw):

        def fail(field: str, problem: str, number: int = number) -> NoReturn:
            raise InvalidInput(f"{where}: field 'transforms[{number}]{field}' {problem}")

        result.append(_parse_one(item, fail))
    return tuple(result)
