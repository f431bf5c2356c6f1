"""Painless's runtime semantics over JSON-shaped Python values: Java's string forms,
numeric promotion and overflow, equality, casts, and field and index access on maps,
lists and arrays, each failure thrown as painless's exception."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NoReturn

from tracardi_daemon.painless.errors import Thrown

Pos = tuple[int, int]
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
PRIMITIVE_DEFAULTS: dict[str, Any] = {
    "int": 0, "long": 0, "short": 0, "byte": 0, "char": 0, "double": 0.0, "float": 0.0,
    "boolean": False,
}


class PainlessArray(list[Any]):
    """A Java array (``new String[] {...}``): it has a length and indices but no List
    methods, and is written to the document as a JSON list."""

    def __init__(self, element: str, items: list[Any]) -> None:
        super().__init__(items)
        self.element = element

    def __reduce__(self) -> tuple[Any, ...]:
        return (PainlessArray, (self.element, list(self)))


def throw(exception: str, detail: str, pos: Pos) -> NoReturn:
    raise Thrown(exception, detail, pos[0], pos[1])


def class_name(value: Any) -> str:
    """The Java class painless would see for a value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, PainlessArray):
        return f"{value.element}[]"
    if isinstance(value, bool):
        return "java.lang.Boolean"
    if isinstance(value, int):
        return "java.lang.Integer" if INT_MIN <= value <= INT_MAX else "java.lang.Long"
    names = {dict: "java.util.HashMap", list: "java.util.ArrayList", str: "java.lang.String",
             float: "java.lang.Double", Thrown: "java.lang.Exception"}
    return names.get(type(value), type(value).__name__)


def java_double(number: float) -> str:
    """Java's Double.toString: 1.0, 0.001, 1.0E7, 1.0E-4, NaN, Infinity."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "-0.0" if math.copysign(1.0, number) < 0 else "0.0"
    if 1e-3 <= abs(number) < 1e7:
        text = repr(number)
        return text if "." in text else text + ".0"
    # the shortest digits that round-trip (repr's), in Java's d.dddE<n> form
    sign, digits, exponent = Decimal(repr(number)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    power = len(digits) + int(exponent) - 1
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{power}"


def java_str(value: Any) -> str:
    """String.valueOf as painless's string concatenation applies it."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, PainlessArray):
        return f"[L{value.element};@0"
    if isinstance(value, list):
        return "[" + ", ".join(java_str(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{java_str(k)}={java_str(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Thrown):
        return f"java.lang.{value.exception}: {value.detail}"
    return str(value)


def is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _wrap(result: int, a: int, b: int) -> int:
    """Java's overflow: int arithmetic when both operands fit an int, else long."""
    if INT_MIN <= a <= INT_MAX and INT_MIN <= b <= INT_MAX:
        return (result - INT_MIN) % 2**32 + INT_MIN
    return (result - LONG_MIN) % 2**64 + LONG_MIN


def _numbers(a: Any, b: Any, operator: str, pos: Pos) -> None:
    if not (is_number(a) and is_number(b)):
        if a is None or b is None:
            throw("NullPointerException", f"cannot apply [{operator}] to null", pos)
        throw("ClassCastException", f"cannot apply [{operator}] to [{class_name(a)}] and "
                                    f"[{class_name(b)}]", pos)


def add(a: Any, b: Any, pos: Pos) -> Any:
    if type(a) is str or type(b) is str:
        return java_str(a) + java_str(b)
    _numbers(a, b, "+", pos)
    if type(a) is int and type(b) is int:
        return _wrap(a + b, a, b)
    return float(a) + float(b)


def subtract(a: Any, b: Any, pos: Pos) -> Any:
    _numbers(a, b, "-", pos)
    if type(a) is int and type(b) is int:
        return _wrap(a - b, a, b)
    return float(a) - float(b)


def multiply(a: Any, b: Any, pos: Pos) -> Any:
    _numbers(a, b, "*", pos)
    if type(a) is int and type(b) is int:
        return _wrap(a * b, a, b)
    return float(a) * float(b)


def divide(a: Any, b: Any, pos: Pos) -> Any:
    _numbers(a, b, "/", pos)
    if type(a) is int and type(b) is int:
        if b == 0:
            throw("ArithmeticException", "/ by zero", pos)
        quotient = abs(a) // abs(b)  # Java truncates toward zero
        return _wrap(quotient if (a < 0) == (b < 0) else -quotient, a, b)
    x, y = float(a), float(b)
    if y == 0:
        if x == 0 or math.isnan(x):
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1.0, y)
    return x / y


def remainder(a: Any, b: Any, pos: Pos) -> Any:
    _numbers(a, b, "%", pos)
    if type(a) is int and type(b) is int:
        if b == 0:
            throw("ArithmeticException", "/ by zero", pos)
        quotient = abs(a) // abs(b)
        return _wrap(a - b * (quotient if (a < 0) == (b < 0) else -quotient), a, b)
    if float(b) == 0:
        return math.nan
    return math.fmod(float(a), float(b))


def negate(a: Any, pos: Pos) -> Any:
    _numbers(a, 0, "-", pos)
    return _wrap(-a, a, 0) if type(a) is int else -a


def equals(a: Any, b: Any) -> bool:
    """``==``: value equality (Object.equals) with numeric promotion; a boolean never
    equals a number."""
    if a is None or b is None:
        return a is b
    if (type(a) is bool) != (type(b) is bool):
        return False
    if isinstance(a, PainlessArray) or isinstance(b, PainlessArray):
        return a is b  # arrays have identity equality in Java
    return bool(a == b)


def compare(operator: str) -> Callable[[Any, Any, Pos], bool]:
    test: Callable[[Any, Any], bool] = {
        "<": lambda x, y: x < y, "<=": lambda x, y: x <= y,
        ">": lambda x, y: x > y, ">=": lambda x, y: x >= y}[operator]

    def apply(a: Any, b: Any, pos: Pos) -> bool:
        _numbers(a, b, operator, pos)
        return test(a, b)

    return apply


def as_boolean(value: Any, pos: Pos) -> bool:
    if type(value) is bool:
        return value
    if value is None:
        throw("NullPointerException", "a null is used as a boolean", pos)
    throw("ClassCastException", f"cannot cast [{class_name(value)}] to [boolean]", pos)
