"""The Python back end: a typed plan compiled once into nested closures, so evaluating a
condition over many documents does no tree walking and no type dispatch."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from tracardi_daemon.tql import ast, plan
from tracardi_daemon.tql.coerce import StoredConverter, stored_converter, stored_keyword
from tracardi_daemon.tql.schema import Kind
from tracardi_daemon.tql.values import Clock

Documents = Mapping[str, Any]
Predicate = Callable[[Documents], bool]
Getter = Callable[[Documents], "tuple[Any, ...] | list[Any]"]

_NOTHING: tuple[Any, ...] = ()
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, ">": operator.gt, ">=": operator.ge,
    "<": operator.lt, "<=": operator.le,
}
_TEXT_TESTS: dict[str, Callable[[str, str], bool]] = {
    "CONTAINS": lambda value, part: part in value,
    "STARTS WITH": str.startswith,
    "ENDS WITH": str.endswith,
}


def build(node: plan.Plan, clock: Clock) -> Predicate:
    """A predicate over ``{"profile": {...}, "event": {...}}``; clock-dependent values are
    resolved now, once."""
    if isinstance(node, plan.AllOf):
        return _all([build(operand, clock) for operand in node.operands])
    if isinstance(node, plan.AnyOf):
        return _any([build(operand, clock) for operand in node.operands])
    if isinstance(node, plan.Not):
        inner = build(node.operand, clock)
        return lambda documents: not inner(documents)
    if isinstance(node, plan.Constant):
        constant = node.value
        return lambda documents: constant
    if isinstance(node, plan.HasValue):
        return _has_value(node)
    if isinstance(node, plan.Compare):
        return _compare(node, clock)
    if isinstance(node, plan.InRange):
        return _in_range(node, clock)
    if isinstance(node, plan.Text):
        return _text(node, clock)
    return _fields_compare(node)


def _all(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 2:
        first, second = predicates
        return lambda documents: first(documents) and second(documents)
    return lambda documents: all(predicate(documents) for predicate in predicates)


def _any(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 2:
        first, second = predicates
        return lambda documents: first(documents) or second(documents)
    return lambda documents: any(predicate(documents) for predicate in predicates)


def _has_value(node: plan.HasValue) -> Predicate:
    values = target_values(node.target)
    if node.kind is None:
        return lambda documents: any(_has_leaf(value) for value in values(documents))
    convert = stored_converter(node.kind, node.target.field_type)
    return lambda documents: any(convert(value) is not None for value in values(documents))


def _compare(node: plan.Compare, clock: Clock) -> Predicate:
    values = target_values(node.target)
    convert = _with_fast_path(node.kind, stored_converter(node.kind, node.target.field_type))
    expected = node.operand.resolve(clock)
    test = _OPERATORS[node.op]

    def compare(documents: Documents) -> bool:
        for value in values(documents):
            converted = convert(value)
            if converted is not None and test(converted, expected):
                return True
        return False

    return compare


def _with_fast_path(kind: Kind, convert: StoredConverter) -> StoredConverter:
    """The converter, skipping the Python-level call for values already of the kind's
    type: this is most of the time spent per document."""
    if convert is stored_keyword:
        return lambda value: value if type(value) is str else convert(value)
    if kind is Kind.NUMBER:
        return lambda value: (value if type(value) is float
                              else float(value) if type(value) is int else convert(value))
    return convert


def _in_range(node: plan.InRange, clock: Clock) -> Predicate:
    values = target_values(node.target)
    convert = _with_fast_path(node.kind, stored_converter(node.kind, node.target.field_type))
    low, high = node.low.resolve(clock), node.high.resolve(clock)

    def in_range(documents: Documents) -> bool:
        for value in values(documents):
            converted = convert(value)
            if converted is not None and low <= converted <= high:
                return True
        return False

    return in_range


def _text(node: plan.Text, clock: Clock) -> Predicate:
    values = target_values(node.target)
    convert = stored_converter(Kind.KEYWORD, node.target.field_type)
    part = node.operand.resolve(clock)
    test = _TEXT_TESTS[node.op]

    def text(documents: Documents) -> bool:
        for value in values(documents):
            converted = convert(value)
            if converted is not None and test(converted, part):
                return True
        return False

    return text


def _fields_compare(node: plan.FieldsCompare) -> Predicate:
    left_values, right_values = target_values(node.left), target_values(node.right)
    test = _OPERATORS[node.op]
    convert_left: StoredConverter
    convert_right: StoredConverter
    if node.kind is None:
        convert_left = convert_right = _natural
    else:
        convert_left = stored_converter(node.kind, node.left.field_type)
        convert_right = stored_converter(node.kind, node.right.field_type)

    def fields_compare(documents: Documents) -> bool:
        rights = [convert_right(value) for value in right_values(documents)]
        for value in left_values(documents):
            left = convert_left(value)
            if left is None:
                continue
            for right in rights:
                if right is not None and _same_family(left, right) and test(left, right):
                    return True
        return False

    return fields_compare


def _natural(value: Any) -> Any:
    """Untyped fields compare as stored: numbers with numbers, text with text."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return float(value)
    return None


def _same_family(left: Any, right: Any) -> bool:
    return type(left) is type(right)


def _has_leaf(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_has_leaf(child) for child in _leaves_of(value.values()))
    return value is not None


def _leaves_of(values: Any) -> list[Any]:
    flat: list[Any] = []
    for value in values:
        if isinstance(value, list):
            flat.extend(_leaves_of(value))
        elif value is not None:
            flat.append(value)
    return flat


def target_values(target: plan.Target) -> Getter:
    """The values a comparison reads: a flattened field's are all the leaves below it."""
    values = getter(target.field)
    if target.field_type is None or target.field_type.kind is not Kind.FLATTENED:
        return values
    return lambda documents: _deep_leaves(values(documents))


def _deep_leaves(values: Any) -> list[Any]:
    found: list[Any] = []
    for value in values:
        if isinstance(value, Mapping):
            found.extend(_deep_leaves(_leaves_of(value.values())))
        else:
            found.append(value)
    return found


def getter(field: ast.Field) -> Getter:
    """The values at a field's path, flattened through lists as Elasticsearch indexes
    them; nulls dropped, objects kept for EXISTS."""
    source, path = field.source, field.path

    def get(documents: Documents) -> tuple[Any, ...] | list[Any]:
        node = documents.get(source)
        for key in path:
            if type(node) is dict:
                node = node.get(key)
            elif node is None:
                return _NOTHING
            else:
                return _walk(documents.get(source), path)
        if node is None:
            return _NOTHING
        if type(node) is list:
            return _leaves_of(node)
        return (node,)

    return get


def _walk(node: Any, path: tuple[str, ...]) -> tuple[Any, ...] | list[Any]:
    """getter() for a path that meets a list or a non-dict mapping on its way."""
    for index, key in enumerate(path):
        if isinstance(node, list):
            return _collect(node, path[index:])
        if not isinstance(node, Mapping):
            return _NOTHING
        node = node.get(key)
    if node is None:
        return _NOTHING
    if isinstance(node, list):
        return _leaves_of(node)
    return (node,)


def _collect(items: list[Any], path: tuple[str, ...]) -> list[Any]:
    """The values at ``path`` below every object of a list (at any depth of nesting)."""
    found: list[Any] = []
    for item in items:
        if isinstance(item, list):
            found.extend(_collect(item, path))
            continue
        node = item
        for index, key in enumerate(path):
            if isinstance(node, list):
                found.extend(_collect(node, path[index:]))
                node = None
                break
            node = node.get(key) if isinstance(node, Mapping) else None
        if isinstance(node, list):
            found.extend(_leaves_of(node))
        elif node is not None:
            found.append(node)
    return found
