"""The batch typing of CSV records: a batch turned into columns, each column converted at
once (in C where its type allows), and the rows rebuilt, giving exactly what typing record by
record gives."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

from tracardi_daemon.roles.upgrade.imports.column_types import ConversionError

_ABSENT: Any = object()  # an empty field in a column of a batch
# a column's converters: of one field (None keeps the text) and of many fields at once
Converters = tuple[Callable[[str], Any] | None, Callable[[Sequence[str]], list[Any] | None] | None]
# the data of each record (None where it fails) and the failures by index
TypedRecords = tuple[list[dict[str, Any] | None], dict[int, ConversionError]]


class BatchTyper:
    """Types a batch of CSV records a column at a time with each column's converters."""

    def __init__(self, names: tuple[str, ...], converters: Sequence[Converters]) -> None:
        self._names = names
        self._converters = tuple(converters)

    def type_records(self, records: Sequence[Sequence[str]]) -> TypedRecords:
        """The data of each record (None where it fails) and its failure by index: columns
        of ints, floats, bools or text convert in C."""
        width = len(self._names)
        if set(map(len, records)) <= {width}:
            return self._type_columns(records)
        where = [index for index, fields in enumerate(records) if len(fields) == width]
        typed, failed = self._type_columns([records[index] for index in where])
        datas: list[dict[str, Any] | None] = [None] * len(records)
        for index, data in zip(where, typed, strict=True):
            datas[index] = data
        failures = {where[index]: error for index, error in failed.items()}
        for index, fields in enumerate(records):
            if len(fields) != width:
                failures[index] = width_error(fields, width)
        return datas, failures

    def _type_columns(self, records: Sequence[Sequence[str]]) -> TypedRecords:
        if not records:
            return [], {}
        failures: dict[int, ConversionError] = {}
        columns: list[Sequence[Any]] = []
        gaps = False
        for name, convert, values in zip(self._names, self._converters,
                                         zip(*records, strict=True), strict=True):
            column, gapped = _type_column(name, convert, values, failures)
            columns.append(column)
            gaps = gaps or gapped
        names = self._names
        datas: list[dict[str, Any] | None] = (
            [{name: value for name, value in zip(names, row, strict=True) if value is not _ABSENT}
             for row in zip(*columns, strict=True)] if gaps
            else list(map(dict, map(zip, repeat(names), zip(*columns, strict=True))))
        )
        for index in failures:
            datas[index] = None
        return datas, failures


def width_error(fields: Sequence[str], width: int) -> ConversionError:
    """The failure of a record of another width than the header's (with no column)."""
    plural = "" if len(fields) == 1 else "s"
    return ConversionError(f"{len(fields)} field{plural}, the header has {width}")


def _type_column(name: str, convert: Converters, values: Sequence[str],
                 failures: dict[int, ConversionError]) -> tuple[Sequence[Any], bool]:
    """One column of a batch typed, empty fields as ``_ABSENT``; a field that fails sets
    its record's failure unless a column before did; also whether there are gaps."""
    if "" not in values:
        if convert[0] is None:
            return values, False
        return _convert_all(name, convert, values, failures), False
    if convert[0] is None:
        return [text if text else _ABSENT for text in values], True
    where = [index for index, text in enumerate(values) if text]
    converted = _convert_all(name, convert, [values[index] for index in where], failures, where)
    column: list[Any] = [_ABSENT] * len(values)
    for index, value in zip(where, converted, strict=True):
        column[index] = value
    return column, True


def _convert_all(name: str, convert: Converters, values: Sequence[str],
                 failures: dict[int, ConversionError], where: list[int] | None = None) -> list[Any]:
    convert_text, convert_column = convert
    assert convert_text is not None
    if convert_column is not None and (converted := convert_column(values)) is not None:
        return converted
    try:
        return list(map(convert_text, values))
    except ConversionError:
        pass
    converted = []
    for index, text in enumerate(values):
        try:
            converted.append(convert_text(text))
        except ConversionError as exc:
            exc.column = name
            failures.setdefault(index if where is None else where[index], exc)
            converted.append(_ABSENT)
    return converted
