"""Closures for method calls: the call on a map of the methods plan scripts use
(``putAll``, ``remove``, ``get``, ``containsKey``, ``put``) goes straight to the dict with
its argument inlined when it is a literal; every other receiver, and every other method,
to the per-type table of methods.py, resolved once per call site."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracardi_daemon.painless.chains import Expr, Frame, Make
from tracardi_daemon.painless.methods import Method, not_found
from tracardi_daemon.painless.values import Pos

# the value (receiver) already read, the frame for the arguments: the rest of a call
Finish = Callable[[Any, Frame], Any]
_LITERAL_ARGUMENT = ("get", "remove", "containsKey")


def compile_call(name: str, receiver: Expr, args: tuple[Expr, ...],
                 makes: tuple[Make | None, ...], *, methods: dict[type, Method], pos: Pos,
                 null_safe: bool) -> Expr:
    finish = _finish(name, args, methods, pos, null_safe)
    map_method = methods.get(dict)
    if map_method is not None and len(args) == 1 and name in (*_LITERAL_ARGUMENT, "putAll"):
        return _map_call_one(name, receiver, args[0], makes[0],
                             slow=(map_method, finish), pos=pos)
    if map_method is not None and len(args) == 2 and name == "put":
        return _map_put(receiver, args, finish)

    def call(frame: Frame) -> Any:
        return finish(receiver(frame), frame)

    return call


def _finish(name: str, args: tuple[Expr, ...], methods: dict[type, Method], pos: Pos,
            null_safe: bool) -> Finish:
    arity = len(args)

    def finish(value: Any, frame: Frame) -> Any:
        # the receiver is checked before the arguments are evaluated, as painless does
        method = methods.get(type(value))
        if method is None:
            if null_safe and value is None:
                return None
            return not_found(value, name, arity, pos)
        return method(value, [arg(frame) for arg in args], pos)

    return finish


def _map_call_one(name: str, receiver: Expr, first: Expr, make: Make | None, *,
                  slow: tuple[Method, Finish], pos: Pos) -> Expr:
    map_method, finish = slow
    if name == "putAll":
        def put_all(frame: Frame) -> Any:
            value = receiver(frame)
            if type(value) is not dict:
                return finish(value, frame)
            other = first(frame)
            if type(other) is dict:
                value.update(other)
                return None
            return map_method(value, [other], pos)  # throws, as the table words it

        return put_all
    literal = make() if make is not None and make not in (dict, list) else None
    if name == "remove":
        return _map_remove(receiver, first, literal, finish)
    # the unbound dict methods: a C call each, no Python frame
    operation: Callable[[dict[Any, Any], Any], Any] = (
        dict.get if name == "get" else dict.__contains__)
    if literal is not None:
        def call_literal(frame: Frame) -> Any:
            value = receiver(frame)
            if type(value) is dict:
                return operation(value, literal)
            return finish(value, frame)

        return call_literal

    def call_one(frame: Frame) -> Any:
        value = receiver(frame)
        if type(value) is dict:
            return operation(value, first(frame))
        return finish(value, frame)

    return call_one


def _map_remove(receiver: Expr, first: Expr, literal: Any, finish: Finish) -> Expr:
    if literal is not None:
        def remove_literal(frame: Frame) -> Any:
            value = receiver(frame)
            if type(value) is dict:
                return value.pop(literal, None)
            return finish(value, frame)

        return remove_literal

    def remove(frame: Frame) -> Any:
        value = receiver(frame)
        if type(value) is dict:
            return value.pop(first(frame), None)
        return finish(value, frame)

    return remove


def _map_put(receiver: Expr, args: tuple[Expr, ...], finish: Finish) -> Expr:
    key_of, value_of = args

    def put(frame: Frame) -> Any:
        mapping = receiver(frame)
        if type(mapping) is not dict:
            return finish(mapping, frame)
        key, value = key_of(frame), value_of(frame)
        old = mapping.get(key)
        mapping[key] = value
        return old

    return put
