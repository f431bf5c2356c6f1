"""The methods a script may call, by receiver kind, name and number of arguments: the
parts of painless's Map, List, String, number and exception API the plans need (and a
few neighbours). A name outside every table is refused when the script is compiled; a
known name on a receiver without it throws IllegalArgumentException, as painless does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracardi_daemon.painless.access import list_position
from tracardi_daemon.painless.errors import Thrown
from tracardi_daemon.painless.values import (
    PainlessArray,
    Pos,
    class_name,
    equals,
    java_str,
    throw,
)

Method = Callable[[Any, list[Any], Pos], Any]


def _object_equals(receiver: Any, other: Any) -> bool:
    """Object.equals: like ``==`` but an Integer never equals a Double."""
    if type(receiver) in (int, float) and type(other) in (int, float):
        return type(receiver) is type(other) and receiver == other
    return equals(receiver, other)


def as_string(value: Any, pos: Pos, method: str) -> str:
    if type(value) is str:
        return value
    if value is None:
        throw("NullPointerException", f"a null argument to [{method}]", pos)
    throw("ClassCastException", f"cannot cast [{class_name(value)}] to [java.lang.String] "
                                f"in [{method}]", pos)


def as_map(value: Any, pos: Pos, method: str) -> dict[Any, Any]:
    if type(value) is dict:
        return value
    if value is None:
        throw("NullPointerException", f"a null argument to [{method}]", pos)
    throw("ClassCastException", f"cannot cast [{class_name(value)}] to [java.util.Map] in "
                                f"[{method}]", pos)


def as_list(value: Any, pos: Pos, method: str) -> list[Any]:
    if isinstance(value, list) and not isinstance(value, PainlessArray):
        return value
    if value is None:
        throw("NullPointerException", f"a null argument to [{method}]", pos)
    throw("ClassCastException", f"cannot cast [{class_name(value)}] to "
                                f"[java.util.Collection] in [{method}]", pos)


def _put(m: dict[Any, Any], a: list[Any], p: Pos) -> Any:
    old = m.get(a[0])
    m[a[0]] = a[1]
    return old


def _put_if_absent(m: dict[Any, Any], a: list[Any], p: Pos) -> Any:
    old = m.get(a[0])
    if old is None:
        m[a[0]] = a[1]
    return old


def _list_insert(items: list[Any], a: list[Any], p: Pos) -> None:
    if a[0] != len(items):
        list_position(items, a[0], p)
    items.insert(a[0], a[1])


def _list_set(items: list[Any], a: list[Any], p: Pos) -> Any:
    position = list_position(items, a[0], p)
    old, items[position] = items[position], a[1]
    return old


def _list_remove(items: list[Any], a: list[Any], p: Pos) -> Any:
    return items.pop(list_position(items, a[0], p))


def _index_of(items: list[Any], a: list[Any], p: Pos) -> int:
    return next((n for n, item in enumerate(items) if equals(item, a[0])), -1)


def _substring(s: str, a: list[Any], p: Pos) -> str:
    end = len(s) if len(a) == 1 else a[1]
    for bound in (a[0], end):
        if type(bound) is not int:
            # a def argument is cast to int: null is a NullPointerException
            throw("NullPointerException" if bound is None else "ClassCastException",
                  f"cannot cast [{class_name(bound)}] to [int] in [substring]", p)
    if not (type(a[0]) is int and type(end) is int and 0 <= a[0] <= end <= len(s)):
        throw("StringIndexOutOfBoundsException",
              f"begin {a[0]}, end {end}, length {len(s)}", p)
    return s[a[0]:end]


_COMMON: dict[tuple[str, int], Method] = {
    ("equals", 1): lambda r, a, p: _object_equals(r, a[0]),
    ("toString", 0): lambda r, a, p: java_str(r),
}
_MAP: dict[tuple[str, int], Method] = {
    ("get", 1): lambda m, a, p: m.get(a[0]),
    ("getOrDefault", 2): lambda m, a, p: m.get(a[0], a[1]),
    ("put", 2): _put,
    ("putIfAbsent", 2): _put_if_absent,
    ("putAll", 1): lambda m, a, p: m.update(as_map(a[0], p, "putAll")),
    ("remove", 1): lambda m, a, p: m.pop(a[0], None),
    ("containsKey", 1): lambda m, a, p: a[0] in m,
    ("containsValue", 1): lambda m, a, p: any(equals(v, a[0]) for v in m.values()),
    ("size", 0): lambda m, a, p: len(m),
    ("isEmpty", 0): lambda m, a, p: not m,
    ("clear", 0): lambda m, a, p: m.clear(),
    ("keySet", 0): lambda m, a, p: list(m),
    ("values", 0): lambda m, a, p: list(m.values()),
}
_LIST: dict[tuple[str, int], Method] = {
    ("add", 1): lambda items, a, p: items.append(a[0]) or True,
    ("add", 2): _list_insert,
    ("addAll", 1): lambda items, a, p: items.extend(as_list(a[0], p, "addAll")) or True,
    ("get", 1): lambda items, a, p: items[list_position(items, a[0], p)],
    ("set", 2): _list_set,
    ("remove", 1): _list_remove,
    ("contains", 1): lambda items, a, p: _index_of(items, a, p) >= 0,
    ("indexOf", 1): _index_of,
    ("size", 0): lambda items, a, p: len(items),
    ("isEmpty", 0): lambda items, a, p: not items,
    ("clear", 0): lambda items, a, p: items.clear(),
}
_STRING: dict[tuple[str, int], Method] = {
    ("length", 0): lambda s, a, p: len(s),
    ("isEmpty", 0): lambda s, a, p: not s,
    ("equalsIgnoreCase", 1): lambda s, a, p: type(a[0]) is str and s.lower() == a[0].lower(),
    ("contains", 1): lambda s, a, p: as_string(a[0], p, "contains") in s,
    ("startsWith", 1): lambda s, a, p: s.startswith(as_string(a[0], p, "startsWith")),
    ("endsWith", 1): lambda s, a, p: s.endswith(as_string(a[0], p, "endsWith")),
    ("indexOf", 1): lambda s, a, p: s.find(as_string(a[0], p, "indexOf")),
    ("toLowerCase", 0): lambda s, a, p: s.lower(),
    ("toUpperCase", 0): lambda s, a, p: s.upper(),
    ("trim", 0): lambda s, a, p: s.strip("".join(map(chr, range(33)))),
    ("substring", 1): _substring,
    ("substring", 2): _substring,
    ("replace", 2): lambda s, a, p: s.replace(as_string(a[0], p, "replace"),
                                              as_string(a[1], p, "replace")),
    ("concat", 1): lambda s, a, p: s + as_string(a[0], p, "concat"),
}
_EXCEPTION: dict[tuple[str, int], Method] = {
    ("getMessage", 0): lambda e, a, p: e.detail,
}
TABLES: dict[str, dict[tuple[str, int], Method]] = {
    "map": {**_COMMON, **_MAP}, "list": {**_COMMON, **_LIST}, "string": {**_COMMON, **_STRING},
    "number": _COMMON, "boolean": _COMMON, "array": _COMMON, "object": _COMMON,
    "exception": {**_COMMON, **_EXCEPTION},
}
KNOWN_METHODS = frozenset(name for table in TABLES.values() for name, _ in table)


def resolve(name: str, arity: int) -> dict[type, Method]:
    """The implementation of ``name/arity`` per receiver type, looked up once per call
    site so that a call costs one dict lookup per document."""
    kinds = {dict: "map", list: "list", str: "string", bool: "boolean", int: "number",
             float: "number", PainlessArray: "array", Thrown: "exception"}
    found = {}
    for python_type, table_kind in kinds.items():
        method = TABLES[table_kind].get((name, arity))
        if method is not None:
            found[python_type] = method
    return found


def not_found(receiver: Any, name: str, arity: int, pos: Pos) -> Any:
    if receiver is None:
        throw("NullPointerException", f"cannot call [{name}] on null", pos)
    throw("IllegalArgumentException",
          f"dynamic method [{class_name(receiver)}, {name}/{arity}] not found", pos)
