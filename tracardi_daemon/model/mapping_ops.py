"""How one event-to-profile mapping op changes a profile document: the reference for what
each op does, and the only code that does it. Pure Python, no backend.

Paths
    A path is dotted: ``data.contact.email.main`` names ``email.main`` inside ``contact``
    inside ``data``. Lists are never indexed: ``data.devices.0`` does not reach into a list.
    Reading a path through something that is not an object finds nothing (``MISSING``).
    Writing creates the missing objects on the way; an object on the way that is null is
    treated as absent and replaced by an object. Any other value on the way (a string, a
    number, a boolean, a list) is a path conflict: the op fails and the document is left
    exactly as it was.

Which event values are copied
    ``equals``, ``equals_if_not_exists`` and ``append`` copy a value from the event. A value
    is copied only when it carries something: not missing, not null, not a string of only
    whitespace, not an empty list or object. ``0``, ``0.0`` and ``false`` are values and
    are copied. Skipping is the caller's job (``is_copyable``); these ops refuse the rest.

Equality
    Whether an op changed anything is decided by value, but a boolean is never equal to a
    number (in Python ``True == 1``): writing ``true`` over ``1`` is a change. Integers and
    fractions compare by value, so ``1.0`` over ``1`` is no change and ``1`` stays.

The ops
    ``equals``
        Store a copy of the value. Changed when the value differs from what was there.
    ``equals_if_not_exists``
        Store the value only when nothing is there yet: absent, null, a blank string, an
        empty list or an empty object. ``0`` and ``false`` count as existing.
    ``append``
        The result is always a list. What was there becomes its start: nothing or null
        gives an empty list, a list is kept as it is, a string, number or boolean becomes a
        one-element list; an object cannot be appended to (a conflict). A list value adds
        each element in order, any other value adds itself. Null elements are skipped and an
        element equal to one already in the list is not added again. Changed when something
        was added or a single value was turned into a list.
    ``increment`` / ``decrement``
        Add or subtract a step: the value, or 1 without one. The step and what is there
        must be numbers (not booleans); nothing or null counts as 0. Integers stay
        integers; with a fraction on either side the result is a fraction. A result that is
        not a finite number is a conflict. A step of 0 changes nothing.
    ``delete``
        Remove the field. Deleting a field that is not there, or whose path runs through a
        non-object, changes nothing and is not an error.

Deliberate differences from Tracardi: ``append`` to a null starts a new list instead of
keeping the null as its first element, ``append`` never adds a value twice, and no op
reports a change that did not happen.
"""

from __future__ import annotations

import copy
import enum
import math
from collections.abc import Callable, Mapping
from typing import Any, Final


class _Missing(enum.Enum):
    """The type of ``MISSING``; an enum member stays one object through copy and pickle."""

    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing.MISSING
"""No value at this path, or the mapping item has no event path."""

OPERATIONS: tuple[str, ...] = (
    "equals",
    "equals_if_not_exists",
    "append",
    "increment",
    "decrement",
    "delete",
)


class MappingConflict(Exception):
    """The op cannot be applied to this document (type error, path conflict); .reason is the
    text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_path(document: Mapping[str, Any], path: str) -> Any:
    """The value stored at ``path`` (the object itself, not a copy), or MISSING."""
    node: Any = document
    for segment in _segments(path):
        if not isinstance(node, Mapping):
            return MISSING
        node = node.get(segment, MISSING)
    return node


def is_copyable(value: Any) -> bool:
    """Whether an event value carries something worth writing into a profile."""
    if value is MISSING or value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | dict):
        return bool(value)
    return True


def apply_op(document: dict[str, Any], op: str, path: str, value: Any = MISSING) -> bool:
    """Apply ``op`` at ``path`` in place; True when the document changed.

    Raises MappingConflict when the document does not allow the op (it is then unchanged),
    and ValueError for an unknown op, a malformed path or, for the copying ops, a value
    that ``is_copyable`` rejects: those are the caller's mistakes, not the data's.
    """
    if op not in OPERATIONS:
        raise ValueError(f"unknown mapping op {op!r}; known: {', '.join(OPERATIONS)}")
    segments = _segments(path)
    if op == "delete":
        return _delete(document, segments)
    if op in _COPYING_OPS and not is_copyable(value):
        raise ValueError(f"{op} of {path!r} called with {value!r}; the caller skips such values")
    current = _current(document, segments)
    new = _RULES[op](op, path, current, value)
    if new is MISSING:
        return False
    _write(document, segments, new)
    return True


def _segments(path: str) -> list[str]:
    segments = path.split(".")
    if not all(segments):
        raise ValueError(f"invalid path {path!r}: empty segment")
    return segments


def _current(document: dict[str, Any], segments: list[str]) -> Any:
    """The value at the path, MISSING when it or an object on the way is absent or null.

    Checks the whole way before anything is written, so a conflict leaves no half-made
    objects behind.
    """
    node = document
    for depth, segment in enumerate(segments[:-1]):
        child = node.get(segment)
        if child is None:
            return MISSING
        if not isinstance(child, dict):
            prefix = ".".join(segments[: depth + 1])
            raise MappingConflict(
                f"path conflict: {prefix!r} holds {_with_article(_kind(child))}, not an object"
            )
        node = child
    return node.get(segments[-1], MISSING)


def _write(document: dict[str, Any], segments: list[str], value: Any) -> None:
    node = document
    for segment in segments[:-1]:
        child = node.get(segment)
        if not isinstance(child, dict):  # absent or null: _current rejected anything else
            child = node[segment] = {}
        node = child
    node[segments[-1]] = value


def _delete(document: dict[str, Any], segments: list[str]) -> bool:
    node: Any = document
    for segment in segments[:-1]:
        node = node.get(segment)
        if not isinstance(node, dict):
            return False
    if segments[-1] not in node:
        return False
    del node[segments[-1]]
    return True


# A rule gets (op, path, current value or MISSING, op value) and returns the value to store,
# or MISSING to leave the document as it is.
_Rule = Callable[[str, str, Any, Any], Any]


def _equals(op: str, path: str, current: Any, value: Any) -> Any:
    return MISSING if _same(current, value) else copy.deepcopy(value)


def _equals_if_not_exists(op: str, path: str, current: Any, value: Any) -> Any:
    return MISSING if is_copyable(current) else copy.deepcopy(value)


def _append(op: str, path: str, current: Any, value: Any) -> Any:
    if current is MISSING or current is None:
        result: list[Any] = []
    elif isinstance(current, list):
        result = list(current)
    elif isinstance(current, dict):
        raise MappingConflict(f"cannot append to an object at {path!r}")
    else:
        result = [current]
    for item in value if isinstance(value, list) else [value]:
        if item is not None and not any(_same(item, kept) for kept in result):
            result.append(copy.deepcopy(item))
    # an empty result means nothing was there and nothing was added: no empty list appears
    if not result or _same(result, current):
        return MISSING
    return result


def _shift(op: str, path: str, current: Any, value: Any) -> Any:
    step = 1 if value is MISSING else value
    if not _is_number(step):
        raise MappingConflict(f"{op} of {path!r} needs a number, got {_kind(step)}")
    base = 0 if current is MISSING or current is None else current
    if not _is_number(base):
        raise MappingConflict(
            f"cannot {op} {path!r}: it holds {_with_article(_kind(base))}, not a number"
        )
    if step == 0:
        return MISSING
    try:
        result = base + step if op == "increment" else base - step
    except OverflowError:  # an int too large for a float met a float
        result = math.inf
    if isinstance(result, float) and not math.isfinite(result):
        raise MappingConflict(f"{op} of {path!r} by {step!r} does not give a finite number")
    return result


_RULES: Final[dict[str, _Rule]] = {
    "equals": _equals,
    "equals_if_not_exists": _equals_if_not_exists,
    "append": _append,
    "increment": _shift,
    "decrement": _shift,
}
_COPYING_OPS: Final = frozenset({"equals", "equals_if_not_exists", "append"})


def _same(left: Any, right: Any) -> bool:
    """Equality by value, except that a boolean never equals a number (True == 1 in Python);
    the same inside lists and objects."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_same, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same(left[key], right[key]) for key in left)
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)  # NaN != NaN would make append add it on every call
    return bool(left == right)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    """The JSON name of the value's type, for messages."""
    if value is None:
        return "null"
    for types, name in _KINDS:
        if isinstance(value, types):
            return name
    return type(value).__name__


_KINDS: Final[tuple[tuple[type | tuple[type, ...], str], ...]] = (
    (bool, "boolean"),  # before number: a bool is an int
    ((int, float), "number"),
    (str, "string"),
    (list, "list"),
    (dict, "object"),
)


def _with_article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
