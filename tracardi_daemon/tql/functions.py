"""The functions a condition may call. Every function works on values only (never on a
field), so both back ends see its result as a constant resolved at compile time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import Enum

from tracardi_daemon.tql import ast
from tracardi_daemon.tql.errors import TqlError
from tracardi_daemon.tql.values import (
    Clock,
    apply_offset,
    duration_seconds,
    parse_iso,
    parse_offset,
    zone_named,
)

# A value after resolution; a duration stays a Duration so offsets can read its text.
Resolved = str | int | float | bool | None | datetime | ast.Duration | list["Resolved"]


class ValueType(Enum):
    """What a value is before it meets a field."""

    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    NULL = "null"
    ARRAY = "array"


@dataclass(frozen=True, slots=True)
class Function:
    signature: str
    min_args: int
    max_args: int
    result: ValueType
    uses_clock: bool
    call: Callable[[Sequence[Resolved], Clock], Resolved]


def _now(args: Sequence[Resolved], clock: Clock) -> datetime:
    zone = _zone_arg(args, 0)
    moment = clock()
    return moment.astimezone(zone) if moment.tzinfo else moment.replace(tzinfo=zone)


def _now_offset(args: Sequence[Resolved], clock: Clock) -> datetime:
    return apply_offset(_now(args[1:], clock), parse_offset(_duration_arg(args[0])))


def _datetime(args: Sequence[Resolved], clock: Clock) -> datetime:
    return _date_arg(args[0], _zone_arg(args, 1) if len(args) > 1 else None)


def _datetime_offset(args: Sequence[Resolved], clock: Clock) -> datetime:
    start = _date_arg(args[0], _zone_arg(args, 2) if len(args) > 2 else None)
    return apply_offset(start, parse_offset(_duration_arg(args[1])))


def _lowercase(args: Sequence[Resolved], clock: Clock) -> str:
    return _text_arg(args[0]).lower()


def _uppercase(args: Sequence[Resolved], clock: Clock) -> str:
    return _text_arg(args[0]).upper()


FUNCTIONS: dict[str, Function] = {
    "now": Function("now([zone])", 0, 1, ValueType.DATE, True, _now),
    "now.offset": Function("now.offset(offset[, zone])", 1, 2, ValueType.DATE, True,
                           _now_offset),
    "datetime": Function("datetime(text[, zone])", 1, 2, ValueType.DATE, False, _datetime),
    "datetime.offset": Function("datetime.offset(date, offset[, zone])", 2, 3,
                                ValueType.DATE, False, _datetime_offset),
    "lowercase": Function("lowercase(text)", 1, 1, ValueType.STRING, False, _lowercase),
    "uppercase": Function("uppercase(text)", 1, 1, ValueType.STRING, False, _uppercase),
}


def check_call(name: str, arg_count: int) -> Function:
    """The function called ``name``; TqlError if unknown or called with a wrong arity."""
    function = FUNCTIONS.get(name)
    if function is None:
        known = ", ".join(sorted(FUNCTIONS))
        raise TqlError(f"unknown function {name}(); known functions: {known}")
    if not function.min_args <= arg_count <= function.max_args:
        raise TqlError(f"{name}() takes {_arity(function)}, got {arg_count}: "
                       f"{function.signature}")
    return function


def value_type(value: ast.Value) -> ValueType:
    """The type of a value, known without resolving it."""
    if isinstance(value, ast.Call):
        return FUNCTIONS[value.name].result
    if isinstance(value, ast.Array):
        return ValueType.ARRAY
    if isinstance(value, ast.Duration):
        return ValueType.NUMBER
    if value.value is None:
        return ValueType.NULL
    if isinstance(value.value, bool):
        return ValueType.BOOLEAN
    if isinstance(value.value, str):
        return ValueType.STRING
    return ValueType.NUMBER


def uses_clock(value: ast.Value) -> bool:
    if isinstance(value, ast.Call):
        return FUNCTIONS[value.name].uses_clock or any(uses_clock(arg) for arg in value.args)
    if isinstance(value, ast.Array):
        return any(uses_clock(item) for item in value.items)
    return False


def resolve(value: ast.Value, clock: Clock) -> Resolved:
    """The value a literal, array or call stands for at the clock's time."""
    if isinstance(value, ast.Literal):
        return value.value
    if isinstance(value, ast.Duration):
        return value
    if isinstance(value, ast.Array):
        return [resolve(item, clock) for item in value.items]
    function = FUNCTIONS[value.name]
    args = [resolve(arg, clock) for arg in value.args]
    try:
        return function.call(args, clock)
    except (ValueError, OverflowError) as exc:
        raise TqlError(f"{value}: {exc}") from None


def seconds_of(duration: ast.Duration) -> float:
    return duration_seconds(duration.text)


def _arity(function: Function) -> str:
    if function.min_args == function.max_args:
        count = function.min_args
        return f"{count} argument{'s' if count != 1 else ''}"
    return f"{function.min_args} to {function.max_args} arguments"


def _zone_arg(args: Sequence[Resolved], index: int) -> tzinfo:
    if len(args) <= index:
        return UTC
    return zone_named(_text_arg(args[index], "a time zone name like \"Europe/Warsaw\""))


def _duration_arg(arg: Resolved) -> str:
    if isinstance(arg, ast.Duration):
        return arg.text
    return _text_arg(arg, "a duration like \"-30d\"")


def _date_arg(arg: Resolved, zone: tzinfo | None) -> datetime:
    if isinstance(arg, datetime):
        return arg.astimezone(zone) if zone is not None else arg
    text = _text_arg(arg, "an ISO 8601 date like \"2024-01-31T12:00:00\"")
    moment = parse_iso(text, zone)
    if moment is None:
        raise ValueError(f"{text!r} is not an ISO 8601 date like \"2024-01-31T12:00:00\"")
    return moment


def _text_arg(arg: Resolved, what: str = "a string") -> str:
    if not isinstance(arg, str):
        shown = arg if not isinstance(arg, datetime) else arg.isoformat()
        raise ValueError(f"expected {what}, got {shown!r}")
    return arg
