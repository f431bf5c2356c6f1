"""Conversions to a comparison kind, mirroring Elasticsearch: stored values as the index
converts them when a document is written, literals as a query converts them."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from tracardi_daemon.tql import ast
from tracardi_daemon.tql.errors import TqlError
from tracardi_daemon.tql.functions import Resolved, seconds_of
from tracardi_daemon.tql.schema import FieldType, Kind
from tracardi_daemon.tql.values import format_millis, iso_millis, parse_iso, to_millis

# A stored value converted for comparison, or None when the index would not hold it
# (null, an object, or a value the field's type rejects: ignore_malformed).
StoredConverter = Callable[[Any], Any]

_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
# Elasticsearch reads "" as false in a boolean field
_BOOLEAN_TEXT = {"true": True, "false": False, "": False}
# Java's String.trim(), which Elasticsearch applies to numbers sent as strings
_JAVA_BLANKS = "".join(chr(code) for code in range(33))


def stored_keyword(value: Any) -> str | None:
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return repr(value)  # the JSON text of the number, which a keyword field keeps
    return None


def stored_number(value: Any) -> float | None:
    kind = type(value)
    if kind is float:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return float(value)
    if kind is str:
        text = value.strip(_JAVA_BLANKS)
        if _DECIMAL.fullmatch(text):
            number = float(text)
            return number if math.isfinite(number) else None
    return None


def stored_date(value: Any) -> int | None:
    kind = type(value)
    if kind is str:
        return iso_millis(value)
    if kind is int:
        return value  # type: ignore[no-any-return]  # epoch milliseconds
    if kind is float and math.isfinite(value):
        return math.floor(float(value))
    return None


def stored_boolean(value: Any) -> bool | None:
    kind = type(value)
    if kind is bool:
        return value  # type: ignore[no-any-return]
    if kind is str:
        return _BOOLEAN_TEXT.get(value)
    return None


def _stored_integer(bounds: tuple[int, int], via_double: bool) -> StoredConverter:
    """Elasticsearch reads text for a ``long`` as an exact decimal, untrimmed, and text for
    the smaller types as a trimmed double; either way the range is checked before the
    fraction is dropped."""
    low, high = bounds

    def convert(value: Any) -> int | None:
        kind = type(value)
        number: int | float | Decimal
        if kind is int or (kind is float and math.isfinite(value)):
            number = value
        elif kind is str and via_double:
            parsed = stored_number(value)
            if parsed is None:
                return None
            number = parsed
        elif kind is str and _DECIMAL.fullmatch(value):
            number = Decimal(value)
        else:
            return None
        return int(number) if low <= number <= high else None

    return convert


def _limited_keyword(ignore_above: int) -> StoredConverter:
    def convert(value: Any) -> str | None:
        text = stored_keyword(value)
        # ignore_above counts UTF-16 code units, as Java strings do
        if text is not None and len(text) > ignore_above and _utf16_length(text) > ignore_above:
            return None
        return text

    return convert


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


_LONG = (-(2**63), 2**63 - 1)


def stored_converter(kind: Kind, field_type: FieldType | None) -> StoredConverter:
    """How a value stored in a field of ``field_type`` compares as ``kind``."""
    if kind is Kind.KEYWORD:
        limit = field_type.ignore_above if field_type else None
        return _limited_keyword(limit) if limit is not None else stored_keyword
    if kind is Kind.INTEGER:
        bounds = field_type.bounds if field_type and field_type.bounds else _LONG
        return _stored_integer(bounds, field_type is not None and field_type.es_type != "long")
    converters: dict[Kind, StoredConverter] = {
        Kind.NUMBER: stored_number, Kind.DATE: stored_date, Kind.BOOLEAN: stored_boolean}
    return converters[kind]


def literal_for(kind: Kind, value: Resolved, field_type: FieldType | None,
                where: str, ordered: bool) -> Any:
    """A literal converted to ``kind`` as a query would convert it; TqlError if it cannot be.

    ``where`` names the comparison for the message; ``ordered`` is true for > >= < <= and
    BETWEEN.
    """
    if kind is Kind.KEYWORD:
        return _keyword_literal(value, where, ordered)
    if kind in (Kind.NUMBER, Kind.INTEGER):
        return _number_literal(kind, value, field_type, where)
    if kind is Kind.DATE:
        if isinstance(value, datetime):
            return to_millis(value)
        moment = parse_iso(value) if isinstance(value, str) else None
        if moment is None:
            raise TqlError(f"{where}: {_show(value)} is not a date; use an ISO 8601 string "
                           "or datetime(...)")
        return to_millis(moment)
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise TqlError(f"{where}: {_show(value)} is not a boolean; use TRUE or FALSE")


def _keyword_literal(value: Resolved, where: str, ordered: bool) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        raise TqlError(f"{where}: the field holds text, so a date would be compared as "
                       "text; quote an ISO string to compare text")
    if isinstance(value, bool | int | float) and not ordered:
        return stored_keyword(value) or ""
    raise TqlError(f"{where}: the field holds text, so {_show(value)} would be compared "
                   "as text, not as a number; quote the value to compare text")


def _number_literal(kind: Kind, value: Resolved, field_type: FieldType | None,
                    where: str) -> int | float:
    number: int | float | None = None
    if isinstance(value, ast.Duration):
        number = seconds_of(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DECIMAL.fullmatch(value.strip(_JAVA_BLANKS)):
        text = value.strip(_JAVA_BLANKS)
        number = int(text) if text.lstrip("+-").isdigit() else float(text)
    if number is None:
        raise TqlError(f"{where}: {_show(value)} is not a number")
    if kind is Kind.NUMBER:
        return float(number)
    low, high = field_type.bounds if field_type and field_type.bounds else _LONG
    if not low <= number <= high:
        raise TqlError(f"{where}: {_show(value)} is out of range for a "
                       f"{field_type.es_type if field_type else 'long'} field")
    return number


def elastic_value(kind: Kind, value: Any) -> Any:
    """A converted literal as a query states it."""
    return format_millis(value) if kind is Kind.DATE else value


def _show(value: Resolved) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, ast.Duration):
        return value.text
    return repr(value)
