"""Dotted chains (``ctx._source.a.b``), the shape plan scripts are made of: a read walks
its keys in one closure with the map case inlined, a store inlines its container's map
case; the full rules of access.py run only when a link is no map."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracardi_daemon.painless.access import get_field, set_field
from tracardi_daemon.painless.values import Pos

Frame = list[Any]
Expr = Callable[[Frame], Any]
# a right-hand side that needs no frame: a constant (itertools.repeat's __next__) or a
# new empty map or list (dict, list), called without a Python frame of its own
Make = Callable[[], Any]
Steps = tuple[tuple[str, Pos], ...]


def variable_chain(slot: int, steps: Steps) -> Expr:
    """A chain from a variable: dict.get chained in one expression, and the full rules
    (null, arrays, other values) only when a link is no map: no non-map value has a
    ``get`` attribute, and reading a variable has no side effect to repeat."""
    full = chain(lambda frame: frame[slot], steps)
    keys = tuple(key for key, _ in steps)
    if len(keys) == 1:
        (k1,) = keys

        def read_1(frame: Frame) -> Any:
            try:
                return frame[slot].get(k1)
            except AttributeError:
                return full(frame)

        return read_1
    if len(keys) == 2:
        k1, k2 = keys

        def read_2(frame: Frame) -> Any:
            try:
                return frame[slot].get(k1).get(k2)
            except AttributeError:
                return full(frame)

        return read_2
    return _variable_chain_long(slot, keys, full)


def _variable_chain_long(slot: int, keys: tuple[str, ...], full: Expr) -> Expr:
    if len(keys) == 3:
        k1, k2, k3 = keys

        def read_3(frame: Frame) -> Any:
            try:
                return frame[slot].get(k1).get(k2).get(k3)
            except AttributeError:
                return full(frame)

        return read_3
    if len(keys) == 4:
        k1, k2, k3, k4 = keys

        def read_4(frame: Frame) -> Any:
            try:
                return frame[slot].get(k1).get(k2).get(k3).get(k4)
            except AttributeError:
                return full(frame)

        return read_4
    return full


def chain(base: Expr, steps: Steps) -> Expr:
    if len(steps) == 1:
        (key, pos), = steps

        def read_one(frame: Frame) -> Any:
            value = base(frame)
            if type(value) is dict:
                return value.get(key)
            return get_field(value, key, pos)

        return read_one

    def read(frame: Frame) -> Any:
        value = base(frame)
        for key, pos in steps:
            value = value.get(key) if type(value) is dict else get_field(value, key, pos)
        return value

    return read


def variable_field_store(slot: int, keys: tuple[str, ...], owner: Expr, *, key: str,
                         pos: Pos, value: Expr, make: Make | None) -> Expr:
    """``var.k1.k2.key = value`` with the owner's chain (at most two keys) read inline;
    ``owner`` (the full rules) only when a link is no map."""
    if len(keys) == 2:
        k1, k2 = keys

        def assign_2(frame: Frame) -> Any:
            try:
                container = frame[slot].get(k1).get(k2)
            except AttributeError:
                container = owner(frame)
            result = make() if make is not None else value(frame)
            if type(container) is dict:
                container[key] = result
            else:
                set_field(container, key, result, pos)
            return result

        return assign_2
    if len(keys) == 1:
        (k1,) = keys

        def assign_1(frame: Frame) -> Any:
            try:
                container = frame[slot].get(k1)
            except AttributeError:
                container = owner(frame)
            result = make() if make is not None else value(frame)
            if type(container) is dict:
                container[key] = result
            else:
                set_field(container, key, result, pos)
            return result

        return assign_1
    return _variable_store(slot, key, pos, value, make) if not keys else field_store(
        owner, key, pos, value, make)


def _variable_store(slot: int, key: str, pos: Pos, value: Expr, make: Make | None) -> Expr:
    def assign_0(frame: Frame) -> Any:
        container = frame[slot]
        result = make() if make is not None else value(frame)
        if type(container) is dict:
            container[key] = result
        else:
            set_field(container, key, result, pos)
        return result

    return assign_0


def field_store(owner: Expr, key: str, pos: Pos, value: Expr, make: Make | None) -> Expr:
    """``owner.key = value``: the owner first, then the value, as painless evaluates."""
    if make is not None:
        def assign_made(frame: Frame) -> Any:
            container, result = owner(frame), make()
            if type(container) is dict:
                container[key] = result
            else:
                set_field(container, key, result, pos)
            return result

        return assign_made

    def assign_field(frame: Frame) -> Any:
        container, result = owner(frame), value(frame)
        if type(container) is dict:
            container[key] = result
        else:
            set_field(container, key, result, pos)
        return result

    return assign_field
