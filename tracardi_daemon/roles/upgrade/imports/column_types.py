"""Column types, one value at a time: a ``ColumnType`` converts a CSV field or a JSON value
(a ``ConversionError`` says why it cannot), and some convert many CSV fields at once in C."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from tracardi_daemon.roles.upgrade.imports.json_depth import TooDeep, bounded_loads

_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


class ConversionError(ValueError):
    """A value does not have its column's type; ``column`` is set by the row typer."""

    def __init__(self, reason: str, column: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.column = column


@dataclass(frozen=True)
class ColumnType:
    """A compiled column type: ``from_text`` converts a CSV field (never empty),
    ``from_json`` a JSON value (never None); ``from_column``, when there is one, converts
    many fields at once in C, or returns None when one of them needs ``from_text``."""

    name: str
    from_text: Callable[[str], Any]
    from_json: Callable[[Any], Any]
    from_column: Callable[[Sequence[str]], list[Any] | None] | None = None


def list_type(separator: str) -> ColumnType:
    """The type ``list:<separator>`` (the separator is not empty)."""
    return ColumnType(f"list:{separator}", _list_from_text(separator), _list_from_json(separator))


def formatted_type(kind: str, form: str) -> ColumnType:
    """The type ``date:<format>`` or ``datetime:<format>`` (its format checked before)."""
    with_format = _date_with_format if kind == "date" else _datetime_with_format
    from_text = with_format(form)
    return ColumnType(f"{kind}:{form}", from_text, _text_only(from_text, kind))


def joined_lines(values: Sequence[str]) -> str | None:
    """The values joined by line breaks, unless one holds a line break itself."""
    joined = "\n".join(values)
    return joined if joined.count("\n") == len(values) - 1 else None


def _column_matching(pattern: re.Pattern[str], convert: Callable[[Sequence[str]], list[Any]]
                     ) -> Callable[[Sequence[str]], list[Any] | None]:
    """A ``from_column`` converting the values when their joined text matches the pattern
    and ``convert`` raises no ValueError, else None."""
    def convert_column(values: Sequence[str]) -> list[Any] | None:
        joined = joined_lines(values)
        if joined is None or not pattern.fullmatch(joined):
            return None
        try:
            return convert(values)
        except ValueError:
            return None

    return convert_column


def _iso_dates(values: Sequence[str]) -> list[str]:
    all(map(date.fromisoformat, values))  # checks the days of the month; raises ValueError
    return list(values)


def _finite_floats(values: Sequence[str]) -> list[float]:
    floats = list(map(float, values))
    if any(map(math.isinf, floats)):
        raise ValueError("not finite")
    return floats


def show(value: Any) -> str:
    """A value as it appears in a reason: text quoted, JSON values as JSON, cut."""
    shown = repr(value) if isinstance(value, str) else json.dumps(value)
    return shown if len(shown) <= 60 else shown[:59] + "…"


def _string_from_json(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    raise ConversionError(f"{show(value)} is not a string")


def _int_from_text(text: str) -> int:
    stripped = text.strip()
    if not _INT.fullmatch(stripped):
        raise ConversionError(f"{show(text)} is not an int")
    return int(stripped)


def _int_from_json(value: Any) -> int:
    if isinstance(value, str):
        return _int_from_text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ConversionError(f"{show(value)} is not an int")


def _float_from_text(text: str) -> float:
    stripped = text.strip()
    if not _FLOAT.fullmatch(stripped) or math.isinf(number := float(stripped)):
        raise ConversionError(f"{show(text)} is not a float")
    return number


def _float_from_json(value: Any) -> float:
    if isinstance(value, str):
        return _float_from_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise ConversionError(f"{show(value)} is not a float")


def _bool_from_text(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConversionError(f"{show(text)} is not a bool (true/false, yes/no, 1/0)")


def _bool_from_json(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _bool_from_text(value)
    raise ConversionError(f"{show(value)} is not a bool")


def _date_from_text(text: str) -> str:
    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise ConversionError(f"{show(text)} is not a date (YYYY-MM-DD)") from None


def _datetime_from_text(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConversionError(f"{show(text)} is not a datetime (ISO 8601)") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _date_with_format(form: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        try:
            return datetime.strptime(text.strip(), form).date().isoformat()
        except ValueError:
            raise ConversionError(f"{show(text)} is not a date ({form})") from None

    return convert


def _datetime_with_format(form: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        try:
            moment = datetime.strptime(text.strip(), form)
        except ValueError:
            raise ConversionError(f"{show(text)} is not a datetime ({form})") from None
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()

    return convert


def _json_from_text(text: str) -> Any:
    try:
        return bounded_loads(text)
    except json.JSONDecodeError as exc:
        raise ConversionError(f"{show(text)} is not JSON: {exc.msg} at character "
                              f"{exc.pos + 1}") from None
    except TooDeep as exc:
        raise ConversionError(f"{show(text)} is not accepted: {exc}") from None


def _json_from_json(value: Any) -> Any:
    # a JSON string is parsed: the column holds JSON written as text
    return _json_from_text(value) if isinstance(value, str) else value


def _list_from_text(separator: str) -> Callable[[str], list[str]]:
    def convert(text: str) -> list[str]:
        return [item for item in (part.strip() for part in text.split(separator)) if item]

    return convert


def _list_from_json(separator: str) -> Callable[[Any], list[Any]]:
    split = _list_from_text(separator)

    def convert(value: Any) -> list[Any]:
        if isinstance(value, list):
            return value
        if isinstance(value, str):
            return split(value)
        raise ConversionError(f"{show(value)} is not a list")

    return convert


def _text_only(from_text: Callable[[str], Any], kind: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, str):
            return from_text(value)
        raise ConversionError(f"{show(value)} is not a {kind} (it must be text)")

    return convert


def _identity(text: str) -> str:
    return text


def _column_pattern(item: str) -> re.Pattern[str]:
    return re.compile(rf"(?:{item}\n)*{item}")


SIMPLE_TYPES = {column.name: column for column in (
    ColumnType("string", _identity, _string_from_json),
    ColumnType("int", _int_from_text, _int_from_json, _column_matching(
        _column_pattern(_INT.pattern), lambda values: list(map(int, values)))),
    ColumnType("float", _float_from_text, _float_from_json, _column_matching(
        _column_pattern(_FLOAT.pattern), _finite_floats)),
    ColumnType("bool", _bool_from_text, _bool_from_json),
    ColumnType("date", _date_from_text, _text_only(_date_from_text, "date"), _column_matching(
        _column_pattern("[0-9]{4}-[0-9]{2}-[0-9]{2}"), _iso_dates)),
    ColumnType("datetime", _datetime_from_text, _text_only(_datetime_from_text, "datetime")),
    ColumnType("json", _json_from_text, _json_from_json),
)}
