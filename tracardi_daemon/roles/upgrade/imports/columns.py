"""Column types of an import: a spec (column name -> type text) compiled once into one
converter per column, the cheap inference of untyped CSV fields, and the typers of CSV
records and JSON documents."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.roles.upgrade.imports.column_batch import BatchTyper, TypedRecords, width_error
from tracardi_daemon.roles.upgrade.imports.column_types import (
    SIMPLE_TYPES,
    ColumnType,
    ConversionError,
    formatted_type,
    joined_lines,
    list_type,
    show,
)

__all__ = [
    "TYPE_NAMES",
    "ColumnType",
    "ConversionError",
    "CsvTyper",
    "JsonTyper",
    "column_type",
    "compile_columns",
    "infer_value",
    "show",
]

TYPE_NAMES = (
    "string, int, float, bool, date, datetime, date:<format>, datetime:<format>, json, "
    "list, list:<separator>"
)
_ALIASES = {"str": "string", "integer": "int", "number": "float", "boolean": "bool"}
# inference: a float written like 1.5, -0.25, .5 or 1e3 (no sign +, no inf or nan)
_INFERRED_FLOAT = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_NUMBER_START = frozenset("-.0123456789")
_BOOL_START = frozenset("tTfF")
_TYPED_START = _NUMBER_START | _BOOL_START
# whole columns joined by \n, matched at once; each item is exactly what infer_value types
_INT_ITEM = r"-?(?:0|[1-9][0-9]{0,17})"
_INT_COLUMN = re.compile(rf"(?:{_INT_ITEM}\n)*{_INT_ITEM}")
_FLOAT_ITEM = r"-?(?:(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)"
_FLOAT_COLUMN = re.compile(rf"(?:{_FLOAT_ITEM}\n)*{_FLOAT_ITEM}")
_BOOL_COLUMN = re.compile(r"(?:(?:true|false)\n)*(?:true|false)")
# longer ints stay text: ids and phone numbers, not quantities
_MAX_INFERRED_DIGITS = 18


def compile_columns(spec: Mapping[str, str] | None,
                    where: str = "columns") -> dict[str, ColumnType]:
    """The spec's column types; an unknown type or a bad format is an ``InvalidInput``
    naming ``where``, the column and the type."""
    compiled: dict[str, ColumnType] = {}
    for column, type_text in (spec or {}).items():
        if not isinstance(column, str) or not column:
            raise InvalidInput(f"{where}: a column name must be a non-empty string, not {column!r}")
        if not isinstance(type_text, str):
            raise InvalidInput(f"{where}: the type of column {column!r} must be text, "
                               f"not {type_text!r}")
        try:
            compiled[column] = column_type(type_text)
        except ValueError as exc:
            raise InvalidInput(f"{where}: column {column!r} has {exc}") from None
    return compiled


def column_type(type_text: str) -> ColumnType:
    """The converter of one type text; a ValueError says what is wrong with it."""
    kind, colon, argument = type_text.strip().partition(":")
    kind = _ALIASES.get(kind.strip().lower(), kind.strip().lower())
    if kind == "list":
        separator = argument if colon else "|"
        if not separator:
            raise ValueError(f"type {type_text!r} with an empty list separator")
        return list_type(separator)
    if kind in ("date", "datetime") and colon:
        _check_format(type_text, argument)
        return formatted_type(kind, argument)
    if kind not in SIMPLE_TYPES or colon:
        raise ValueError(f"unknown type {type_text!r}; expected one of {TYPE_NAMES}")
    return SIMPLE_TYPES[kind]


def infer_value(text: str) -> Any:
    """An int, a float, a bool or the text itself. Ints with a leading zero or more than 18
    digits stay text (phone numbers, ids); ``text`` is never empty."""
    first = text[0]
    if first in _NUMBER_START:
        digits = text[1:] if first == "-" else text
        if digits.isdigit() and digits.isascii():
            if (digits[0] == "0" and len(digits) > 1) or len(digits) > _MAX_INFERRED_DIGITS:
                return text
            return int(text)
        if _INFERRED_FLOAT.fullmatch(text):
            number = float(text)
            return text if math.isinf(number) else number
        return text
    if first in _BOOL_START:
        lowered = text.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
    return text


class CsvTyper:
    """Types the fields of a CSV record: the spec's converter, else inference (or the text
    as it is); an empty field is absent from the data. A record of another width than the
    header fails (with no column)."""

    def __init__(self, header: Sequence[str], columns: Mapping[str, ColumnType],
                 infer: bool, where: str = "columns") -> None:
        for name in columns:
            if name not in header:
                raise InvalidInput(f"{where}: there is no column {name!r} in the header "
                                   f"({', '.join(header)})")
        fallback = infer_value if infer else None
        self._names = tuple(header)
        self._converters: tuple[Callable[[str], Any] | None, ...] = tuple(
            _text_converter(columns[name]) if name in columns else fallback for name in header
        )
        column_converters = (
            columns[name].from_column if name in columns else _infer_column if infer else None
            for name in header
        )
        self._batch = BatchTyper(self._names,
                                 list(zip(self._converters, column_converters, strict=True)))

    def __call__(self, fields: Sequence[str]) -> dict[str, Any]:
        if len(fields) != len(self._names):
            raise width_error(fields, len(self._names))
        data: dict[str, Any] = {}
        name = ""
        try:
            for name, convert, text in zip(self._names, self._converters, fields, strict=True):
                if text:
                    data[name] = text if convert is None else convert(text)
        except ConversionError as exc:
            exc.column = name
            raise
        return data

    def type_records(self, records: Sequence[Sequence[str]]) -> TypedRecords:
        """What ``__call__`` returns for each record (None where it raises) and what it
        raises by index, typed a column at a time: columns of ints, floats, bools or text
        convert in C."""
        return self._batch.type_records(records)


def _infer_column(values: Sequence[str]) -> list[Any]:
    """``infer_value`` of each value, with one regular expression over the joined column
    when it holds only text, only ints, only floats or only bools."""
    joined = joined_lines(values)
    if joined is None:
        return list(map(infer_value, values))
    if _TYPED_START.isdisjoint(map(itemgetter(0), values)):
        return list(values)
    if _INT_COLUMN.fullmatch(joined):
        return list(map(int, values))
    if _FLOAT_COLUMN.fullmatch(joined):
        floats = list(map(float, values))
        if not any(map(math.isinf, floats)):
            return floats
    lowered = joined.lower()
    if _BOOL_COLUMN.fullmatch(lowered):
        return [text == "true" for text in lowered.split("\n")]
    return list(map(infer_value, values))


class JsonTyper:
    """Drops null values and converts the spec's columns that are present; JSON values of
    other keys keep their types."""

    def __init__(self, columns: Mapping[str, ColumnType]) -> None:
        self._converters = {name: kind.from_json for name, kind in columns.items()}

    def __call__(self, document: Mapping[str, Any]) -> dict[str, Any]:
        data = {key: value for key, value in document.items() if value is not None}
        for name, convert in self._converters.items():
            if name in data:
                try:
                    data[name] = convert(data[name])
                except ConversionError as exc:
                    exc.column = name
                    raise
        return data


def _text_converter(kind: ColumnType) -> Callable[[str], Any] | None:
    # None keeps the text as it is, without a call per field
    return None if kind.name == "string" else kind.from_text


def _check_format(type_text: str, form: str) -> None:
    """Refuses a format strptime cannot use: round-trips a sample moment through it."""
    if "%" not in form:
        raise ValueError(f"type {type_text!r} whose format has no %-directive "
                         "(write it like %d.%m.%Y)")
    sample = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
    try:
        datetime.strptime(sample.strftime(form), form)
    except ValueError as exc:
        if "directive" in str(exc) or "stray %" in str(exc):
            raise ValueError(f"type {type_text!r} with a bad format: {exc}") from None
