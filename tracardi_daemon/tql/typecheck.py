"""Syntax tree to typed plan: picks each comparison's kind from the schema (or from the
value when the schema does not know the field), converts literals, rewrites sugar, and
rejects what the two back ends could not agree on."""

from __future__ import annotations

from typing import Any

from tracardi_daemon.tql import ast, plan
from tracardi_daemon.tql.coerce import literal_for
from tracardi_daemon.tql.errors import TqlError
from tracardi_daemon.tql.functions import ValueType, resolve, uses_clock, value_type
from tracardi_daemon.tql.schema import COMPARABLE, Kind, Schema
from tracardi_daemon.tql.values import Clock, system_clock

_KIND_OF_VALUE = {ValueType.STRING: Kind.KEYWORD, ValueType.NUMBER: Kind.NUMBER,
                  ValueType.BOOLEAN: Kind.BOOLEAN, ValueType.DATE: Kind.DATE}
_ORDERED_KINDS = (Kind.KEYWORD, Kind.NUMBER, Kind.INTEGER, Kind.DATE)


def typecheck(node: ast.Node, schema: Schema | None) -> plan.Plan:
    return _Checker(schema).check(node)


class _Checker:
    def __init__(self, schema: Schema | None) -> None:
        self._schema = schema

    def check(self, node: ast.Node) -> plan.Plan:
        if isinstance(node, ast.And):
            return plan.AllOf(tuple(self.check(operand) for operand in node.operands))
        if isinstance(node, ast.Or):
            return plan.AnyOf(tuple(self.check(operand) for operand in node.operands))
        if isinstance(node, ast.Not):
            return plan.Not(self.check(node.operand))
        if isinstance(node, ast.Exists):
            return self._exists(node.field)
        if isinstance(node, ast.Empty):
            return self._empty(node)
        if isinstance(node, ast.Between):
            return self._between(node)
        if isinstance(node, ast.TextMatch):
            return self._text(node)
        if isinstance(node.value, ast.Field):
            return self._fields(node, node.value)
        return self._compare(node, node.field, node.op, node.value)

    # presence

    def _target(self, field: ast.Field) -> plan.Target:
        field_type = self._schema.lookup(field) if self._schema else None
        if field_type is not None and field_type.kind is Kind.UNSEARCHABLE:
            raise TqlError(f"{field} cannot be searched: {field_type.reason}")
        return plan.Target(field, field_type)

    def _exists(self, field: ast.Field) -> plan.Plan:
        target = self._target(field)
        field_type = target.field_type
        if field_type is None or field_type.kind in (Kind.UNSUPPORTED, Kind.FLATTENED):
            return plan.HasValue(target, None)
        if field_type.kind is not Kind.OBJECT:
            return plan.HasValue(target, _comparison_kind(target, None))
        if not field_type.closed:
            return plan.HasValue(target, None)
        # a closed object has a value when one of its mapped leaves has one, judged by the
        # leaf's own type, as Elasticsearch's exists query on an object does
        leaves = [self._exists(ast.Field(field.source, field.path + path))
                  for path, leaf in field_type.leaves if leaf.kind is not Kind.UNSEARCHABLE]
        return plan.AnyOf(tuple(leaves)) if leaves else plan.Constant(False)

    def _empty(self, node: ast.Empty) -> plan.Plan:
        missing = plan.Not(self._exists(node.field))
        target = self._target(node.field)
        kind = target.field_type.kind if target.field_type else Kind.KEYWORD
        if kind not in (Kind.KEYWORD, Kind.FLATTENED):
            return missing  # only text has an empty value besides no value
        empty_text = plan.Compare(target, "==", Kind.KEYWORD, _constant('""', ""))
        return plan.AnyOf((missing, empty_text))

    # comparisons with values

    def _compare(self, node: ast.Node, field: ast.Field, op: str,
                 value: ast.Value) -> plan.Plan:
        kind_of_value = value_type(value)
        if kind_of_value is ValueType.NULL:
            if op not in ("==", "!="):
                raise TqlError(f"{node}: NULL can only be compared with == or !=")
            exists = self._exists(field)
            return exists if op == "!=" else plan.Not(exists)
        if kind_of_value is ValueType.ARRAY:
            return self._compare_array(node, field, op, value)
        target = self._target(field)
        kind = _comparison_kind(target, kind_of_value)
        ordered = op not in ("==", "!=")
        if ordered and kind not in _ORDERED_KINDS:
            raise TqlError(f"{node}: {kind.value} values have no order; use == or !=")
        if ordered and _keyed_flattened(target):
            raise TqlError(f"{node}: a key of a flattened field can only be ordered with "
                           "both bounds (Elasticsearch refuses one); use BETWEEN")
        operand = _operand(value, kind, target, str(node), ordered)
        equal = plan.Compare(target, "==" if op == "!=" else op, kind, operand)
        if op != "!=":
            return equal
        return plan.AllOf((self._exists(field), plan.Not(equal)))

    def _compare_array(self, node: ast.Node, field: ast.Field, op: str,
                       value: ast.Value) -> plan.Plan:
        assert isinstance(value, ast.Array)
        if op not in ("==", "!="):
            raise TqlError(f"{node}: a list can only be compared with == or !=")
        if any(isinstance(item, ast.Array) for item in value.items):
            raise TqlError(f"{node}: lists inside lists are not supported")
        members = tuple(self._compare(node, field, "==", item) for item in value.items)
        any_member = plan.AnyOf(members) if members else plan.Constant(False)
        if op == "==":
            return any_member
        return plan.AllOf((self._exists(field), plan.Not(any_member)))

    def _between(self, node: ast.Between) -> plan.Plan:
        low_type, high_type = value_type(node.low), value_type(node.high)
        target = self._target(node.field)
        if target.field_type is None and low_type is not high_type:
            raise TqlError(f"{node}: both ends must be of one type")
        kind = _comparison_kind(target, low_type)
        if kind not in _ORDERED_KINDS:
            raise TqlError(f"{node}: {kind.value} values have no order")
        low = _operand(node.low, kind, target, str(node), True)
        high = _operand(node.high, kind, target, str(node), True)
        return plan.InRange(target, kind, low, high)

    def _text(self, node: ast.TextMatch) -> plan.Plan:
        if value_type(node.value) is not ValueType.STRING:
            raise TqlError(f"{node}: {node.op} needs a string")
        target = self._target(node.field)
        kind = _comparison_kind(target, ValueType.STRING)
        if kind is not Kind.KEYWORD:
            raise TqlError(f"{node}: {node.op} applies to text fields, "
                           f"{node.field} holds {kind.value} values")
        if node.op != "STARTS WITH" and _keyed_flattened(target):
            raise TqlError(f"{node}: Elasticsearch has no wildcard search on a key of a "
                           "flattened field; STARTS WITH is the text match it supports")
        operand = _operand(node.value, kind, target, str(node), False)
        return plan.Text(target, node.op, operand)

    # field against field

    def _fields(self, node: ast.Compare, right: ast.Field) -> plan.Plan:
        left_target, right_target = self._target(node.field), self._target(right)
        kinds = {_comparison_kind(t, None) for t in (left_target, right_target)
                 if t.field_type is not None}
        if len(kinds) > 1:
            raise TqlError(f"{node}: the fields hold different types "
                           f"({' and '.join(sorted(k.value for k in kinds))})")
        kind = kinds.pop() if kinds else None
        ordered = node.op not in ("==", "!=")
        if ordered and kind is not None and kind not in _ORDERED_KINDS:
            raise TqlError(f"{node}: {kind.value} values have no order")
        equal = plan.FieldsCompare(left_target, right_target,
                                   "==" if node.op == "!=" else node.op, kind)
        if node.op != "!=":
            return equal
        both = (self._exists(node.field), self._exists(right))
        return plan.AllOf((*both, plan.Not(equal)))


def _comparison_kind(target: plan.Target, kind_of_value: ValueType | None) -> Kind:
    """The field's kind from the schema; for a field the schema does not know, the value's."""
    field_type, field = target.field_type, target.field
    if field_type is None:
        if kind_of_value is None or kind_of_value not in _KIND_OF_VALUE:
            raise TqlError(f"{field}: cannot tell what type of value to compare")
        return _KIND_OF_VALUE[kind_of_value]
    if field_type.kind in COMPARABLE:
        return field_type.kind
    if field_type.kind is Kind.FLATTENED:
        return Kind.KEYWORD  # a flattened field indexes every leaf as a keyword
    if field_type.kind is Kind.OBJECT:
        raise TqlError(f"{field} is an object; compare one of its fields")
    raise TqlError(f"{field} cannot be compared exactly: {field_type.reason}; only EXISTS, "
                   "NOT EXISTS, IS NULL and EMPTY apply")


def _keyed_flattened(target: plan.Target) -> bool:
    field_type = target.field_type
    return field_type is not None and field_type.kind is Kind.KEYWORD and (
        field_type.es_type == "flattened")


def _operand(value: ast.Value, kind: Kind, target: plan.Target, where: str,
             ordered: bool) -> plan.Operand:
    def resolve_converted(clock: Clock) -> Any:
        return literal_for(kind, resolve(value, clock), target.field_type, where, ordered)

    current = resolve_converted(system_clock)  # fails now, not when a back end uses it
    if not uses_clock(value):
        return _constant(str(value), current)
    return plan.Operand(str(value), resolve_converted, True)


def _constant(text: str, value: Any) -> plan.Operand:
    return plan.Operand(text, lambda clock: value, False)
