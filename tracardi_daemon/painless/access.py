"""Field and index access on painless values (the map shortcut ``m.key``, ``list[i]``,
``array.length``) and the casts of typed variables, each failure thrown as painless's
exception. The common case (a field of a map) is inlined by the compiler; these are the
full rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracardi_daemon.painless.values import (
    PRIMITIVE_DEFAULTS,
    PainlessArray,
    Pos,
    class_name,
    is_number,
    throw,
)

Cast = Callable[[Any, Pos], Any]
_MAPS = ("Map", "HashMap")
_LISTS = ("List", "ArrayList", "Collection")
_INTEGERS = ("int", "long", "short", "byte", "Integer", "Long", "Short", "Byte")
_DOUBLES = ("double", "float", "Double", "Float")
SUPPORTED_TYPES = frozenset(("def", "Object", "String", "boolean", "Boolean", "Number",
                             *_MAPS, *_LISTS, *_INTEGERS, *_DOUBLES))


def get_field(target: Any, key: str, pos: Pos) -> Any:
    if type(target) is dict:
        return target.get(key)
    if target is None:
        throw("NullPointerException", f"cannot read field [{key}] of null", pos)
    if isinstance(target, PainlessArray) and key == "length":
        return len(target)
    throw("IllegalArgumentException",
          f"dynamic getter [{class_name(target)}, {key}] not found", pos)


def set_field(target: Any, key: str, value: Any, pos: Pos) -> None:
    if type(target) is dict:
        target[key] = value
    elif target is None:
        throw("NullPointerException", f"cannot write field [{key}] of null", pos)
    else:
        throw("IllegalArgumentException",
              f"dynamic setter [{class_name(target)}, {key}] not found", pos)


def list_position(target: list[Any], index: Any, pos: Pos) -> int:
    """``index`` checked against ``target`` (negative counts from the end, as painless's
    brace access does)."""
    if type(index) is not int:
        if index is None:
            throw("NullPointerException", "a null index", pos)
        throw("ClassCastException", f"cannot cast [{class_name(index)}] to [int]", pos)
    position = index + len(target) if index < 0 else index
    if not 0 <= position < len(target):
        exception = ("ArrayIndexOutOfBoundsException" if isinstance(target, PainlessArray)
                     else "IndexOutOfBoundsException")
        throw(exception, f"index {index} out of bounds for length {len(target)}", pos)
    return position


def get_index(target: Any, index: Any, pos: Pos) -> Any:
    if type(target) is dict:
        return target.get(index)
    if isinstance(target, list):
        return target[list_position(target, index, pos)]
    if target is None:
        throw("NullPointerException", "cannot index null", pos)
    throw("IllegalArgumentException", f"[{class_name(target)}] cannot be indexed", pos)


def set_index(target: Any, index: Any, value: Any, pos: Pos) -> None:
    if type(target) is dict:
        target[index] = value
    elif isinstance(target, list):
        target[list_position(target, index, pos)] = value
    elif target is None:
        throw("NullPointerException", "cannot index null", pos)
    else:
        throw("IllegalArgumentException", f"[{class_name(target)}] cannot be indexed", pos)


def default_of(type_name: str, dims: int) -> Any:
    """A declared variable's value before it is assigned."""
    return PRIMITIVE_DEFAULTS.get(type_name) if dims == 0 else None


def cast_to(type_name: str, dims: int, explicit: bool = False) -> Cast | None:
    """The cast of a value assigned to a variable of this type (None: any value fits).
    ``explicit`` is a ``(type)`` cast, which may also narrow a double to an integer."""
    if dims:
        return _checked(lambda v: isinstance(v, PainlessArray), f"{type_name}[]")
    if type_name in ("def", "Object"):
        return None
    if type_name == "String":
        return _checked(lambda v: type(v) is str, "java.lang.String")
    if type_name in _MAPS:
        return _checked(lambda v: type(v) is dict, "java.util.Map")
    if type_name in _LISTS:
        return _checked(lambda v: type(v) is list, "java.util.List")
    if type_name == "Number":
        return _checked(is_number, "java.lang.Number")
    primitive = type_name in PRIMITIVE_DEFAULTS
    if type_name in ("boolean", "Boolean"):
        return _checked(lambda v: type(v) is bool, type_name, primitive)
    if type_name in _DOUBLES:
        return _converted(lambda v: float(v) if is_number(v) else None, type_name, primitive)
    if explicit:
        return _converted(lambda v: int(v) if is_number(v) else None, type_name, primitive)
    return _converted(lambda v: v if type(v) is int else None, type_name, primitive)


def accepted_type(type_name: str, dims: int) -> type | None:
    """The Python type whose values the cast of ``type_name`` passes unchanged, for a
    store to check inline before calling the cast (None: test nothing, call the cast)."""
    if dims:
        return None
    if type_name == "String":
        return str
    if type_name in _MAPS:
        return dict
    if type_name in _LISTS:
        return list
    if type_name in ("boolean", "Boolean"):
        return bool
    return int if type_name in _INTEGERS else float if type_name in _DOUBLES else None


def _checked(test: Callable[[Any], bool], name: str, primitive: bool = False) -> Cast:
    def cast(value: Any, pos: Pos) -> Any:
        if value is None:
            if primitive:
                throw("NullPointerException", f"cannot cast null to [{name}]", pos)
            return None
        if not test(value):
            throw("ClassCastException", f"cannot cast [{class_name(value)}] to [{name}]", pos)
        return value

    return cast


def _converted(convert: Callable[[Any], Any], name: str, primitive: bool) -> Cast:
    def cast(value: Any, pos: Pos) -> Any:
        if value is None:
            if primitive:
                throw("NullPointerException", f"cannot cast null to [{name}]", pos)
            return None
        result = convert(value)
        if result is None:
            throw("ClassCastException", f"cannot cast [{class_name(value)}] to [{name}]", pos)
        return result

    return cast
