"""The typed form of a condition that both back ends compile: every comparison knows its
kind, every value how to resolve and convert itself, and sugar is gone (``!=``, arrays,
EMPTY and NULL are rewritten into these few nodes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tracardi_daemon.tql import ast
from tracardi_daemon.tql.schema import FieldType, Kind
from tracardi_daemon.tql.values import Clock


@dataclass(frozen=True, slots=True)
class Operand:
    """A value ready for one comparison: ``resolve(clock)`` gives it converted."""

    text: str
    resolve: Callable[[Clock], Any]
    uses_clock: bool


@dataclass(frozen=True, slots=True)
class Target:
    """A field as one comparison reads it."""

    field: ast.Field
    field_type: FieldType | None


@dataclass(frozen=True, slots=True)
class HasValue:
    """The field holds a value of ``kind`` (any non-null leaf when ``kind`` is None)."""

    target: Target
    kind: Kind | None


@dataclass(frozen=True, slots=True)
class Compare:
    """Some value of the field satisfies ``op`` (==, >, >=, <, <=) against the operand."""

    target: Target
    op: str
    kind: Kind
    operand: Operand


@dataclass(frozen=True, slots=True)
class InRange:
    """Some single value of the field lies in [low, high]."""

    target: Target
    kind: Kind
    low: Operand
    high: Operand


@dataclass(frozen=True, slots=True)
class Text:
    """Some value of the field contains, starts or ends with the operand."""

    target: Target
    op: str
    operand: Operand


@dataclass(frozen=True, slots=True)
class FieldsCompare:
    """Some value of ``left`` and some value of ``right`` satisfy ``op``; Python only."""

    left: Target
    right: Target
    op: str
    kind: Kind | None


@dataclass(frozen=True, slots=True)
class Not:
    operand: Plan


@dataclass(frozen=True, slots=True)
class AllOf:
    operands: tuple[Plan, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    operands: tuple[Plan, ...]


@dataclass(frozen=True, slots=True)
class Constant:
    value: bool


Plan = HasValue | Compare | InRange | Text | FieldsCompare | Not | AllOf | AnyOf | Constant


def uses_clock(plan: Plan) -> bool:
    if isinstance(plan, AllOf | AnyOf):
        return any(uses_clock(operand) for operand in plan.operands)
    if isinstance(plan, Not):
        return uses_clock(plan.operand)
    if isinstance(plan, Compare | Text):
        return plan.operand.uses_clock
    if isinstance(plan, InRange):
        return plan.low.uses_clock or plan.high.uses_clock
    return False
