"""File sources of an import: CSV and JSON lines, read in binary line by line with constant
memory, resumable from a byte offset, with one failed row for every record that is bad."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from functools import reduce
from itertools import repeat
from operator import itemgetter, or_
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.roles.upgrade.imports.columns import (
    ConversionError,
    CsvTyper,
    JsonTyper,
    compile_columns,
)
from tracardi_daemon.roles.upgrade.imports.file_access import ANY_FILE, FileAccess
from tracardi_daemon.roles.upgrade.imports.file_config import (
    checked_encoding,
    checked_file_config,
    checked_max_record_lines,
    checked_quote,
)
from tracardi_daemon.roles.upgrade.imports.file_lines import (
    BLANK,
    Line,
    Lines,
    Overlong,
    Record,
    decode_lines,
    decode_reason,
    read_record,
)
from tracardi_daemon.roles.upgrade.imports.json_depth import TooDeep, bounded_loads
from tracardi_daemon.roles.upgrade.imports.rows import RAW_LIMIT, Row, RowFailure, Source, cut_raw


class _FileSource:
    """What both file sources share: the lines of the file, the position, the total, the
    conversion of read errors, closing."""

    _header_lines = 0

    def __init__(self, path: Path, encoding: str, position: Mapping[str, Any] | None,
                 access: FileAccess) -> None:
        self._encoding = checked_encoding(encoding, "encoding")
        self._lines = Lines(path, access)
        self._total: int | None = None
        try:
            self._start()
            if position is not None:
                self._lines.seek(position)
        except BaseException:
            self._lines.close()
            raise

    @property
    def position(self) -> dict[str, Any]:
        return self._lines.position

    def total(self) -> int:
        """Non-blank lines after the header, counted once in 1 MiB chunks: an estimate
        (too high) when quoted CSV fields hold line breaks or JSON lines only spaces."""
        if self._total is None:
            self._total = max(0, self._lines.count_nonblank() - self._header_lines)
        return self._total

    def read(self, limit: int) -> list[Row]:
        try:
            return self._read(limit)
        except OSError as exc:
            raise InvalidInput(f"cannot read {self._lines.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        self._lines.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def _start(self) -> None:
        """Reads what comes before the rows."""

    def _read(self, limit: int) -> list[Row]:
        raise NotImplementedError


class CsvSource(_FileSource):
    """Rows of a CSV file whose first line is the header (a UTF-8 BOM is skipped; header
    names are stripped of spaces). A row's number and key are the line its record starts
    on; blank lines are skipped but counted. A quoted field may hold line breaks: a record
    still open after ``max_record_lines`` lines or at the end of the file, or one of several
    lines that does not parse, is one failed row, and reading goes on with the line after
    its first."""

    def __init__(
        self,
        path: Path,
        *,
        delimiter: str = ",",
        quote: str = '"',
        encoding: str = "utf-8",
        columns: Mapping[str, str] | None = None,
        infer: bool = True,
        max_record_lines: int = 100,
        position: Mapping[str, Any] | None = None,
        access: FileAccess = ANY_FILE,
    ) -> None:
        self._quote = checked_quote(quote, delimiter, checked_encoding(encoding, "encoding"),
                                    "quote", "delimiter")
        self._dialect: dict[str, Any] = {"delimiter": delimiter, "quotechar": quote,
                                         "doublequote": True, "strict": True}
        self._max_record_lines = checked_max_record_lines(max_record_lines, "max_record_lines")
        self._columns = compile_columns(columns, "columns")
        self._infer = infer
        self._slow_next = False  # the next record goes the slow way
        super().__init__(path, encoding, position, access)

    @property
    def header(self) -> list[str]:
        return list(self._header)

    def _start(self) -> None:
        self._header, self._header_lines = self._read_header()
        self._typer = CsvTyper(self._header, self._columns, self._infer, "columns")

    def _read(self, limit: int) -> list[Row]:
        rows: list[Row] = []
        while len(rows) < limit:
            if not self._slow_next:
                lines = self._simple_lines(limit - len(rows))
                if lines:
                    self._slow_next = self._parse_simple(lines, rows)
                    continue
            self._slow_next = False
            row = self._slow_row()
            if row is None:
                break
            rows.append(row)
        return rows

    def _read_header(self) -> tuple[tuple[str, ...], int]:
        first = self._lines.next()
        where = f"{self._lines.path}: the header (line 1)"
        if first is None:
            raise InvalidInput(f"{self._lines.path} is empty: its first line must be the header")
        if isinstance(first[0], Overlong):
            raise InvalidInput(f"{where} is longer than {self._lines.max_line_bytes} bytes "
                               "(upgrade.import_max_line_bytes): is it a CSV file?")
        record, fields = self._parse_record(first)
        if isinstance(fields, str):
            raise InvalidInput(f"{where} cannot be read: {fields}")
        names = tuple(name.strip() for name in fields)
        if not names:
            raise InvalidInput(f"{where} is empty")
        for number, name in enumerate(names, 1):
            if not name:
                raise InvalidInput(f"{where} has an empty column name (column {number})")
            if names.index(name) != number - 1:
                raise InvalidInput(f"{where} names column {name!r} twice (columns "
                                   f"{names.index(name) + 1} and {number})")
        return names, len(record.lines)

    def _simple_lines(self, count: int) -> list[Line]:
        """Up to ``count`` next lines, blank ones left out, before the first line with an
        odd number of quotes (a record that may span lines)."""
        lines = self._lines.take(count)
        data = list(map(itemgetter(0), lines))
        quotes = list(map(bytes.count, data, repeat(self._quote)))
        if reduce(or_, quotes, 0) & 1:  # some count is odd
            index = next(index for index, count in enumerate(quotes) if count & 1)
            self._lines.push_back(lines[index:])
            del lines[index:], data[index:]
        if not BLANK.isdisjoint(data):
            lines = [line for line in lines if line[0] not in BLANK]
        return lines

    def _parse_simple(self, lines: list[Line], rows: list[Row]) -> bool:
        """Rows of lines that are likely whole records, parsed with one reader and typed a
        column at a time; at the first line that fails to decode or to parse, or is not a
        whole record, pushes the lines from there back and returns True: that record goes
        the slow way."""
        texts = decode_lines(lines, self._encoding)
        records = self._whole_records(texts)
        datas, failures = self._typer.type_records(records)
        count = len(records)
        numbers = list(map(itemgetter(2), lines[:count]))
        raws = list(map(str.rstrip, texts[:count], repeat("\r\n")))
        if max(map(len, raws), default=0) > RAW_LIMIT:
            raws = list(map(cut_raw, raws))
        reasons: list[RowFailure | None] = [None] * count
        for index, error in failures.items():
            reasons[index] = RowFailure(error.reason, error.column)
        rows.extend(map(Row, numbers, map(str, numbers), datas, raws, reasons))
        if count == len(lines):
            return False
        self._lines.push_back(lines[count:])
        return True

    def _whole_records(self, texts: list[str]) -> list[list[str]]:
        """The records of ``texts`` up to the first that fails or is not one whole line."""
        reader = csv.reader(texts, **self._dialect)
        try:
            records = list(reader)
            if reader.line_num == len(records):  # every record is one line
                return records
        except csv.Error:
            pass
        reader = csv.reader(texts, **self._dialect)
        records = []
        try:
            for fields in reader:
                if reader.line_num != len(records) + 1:
                    break
                records.append(fields)
        except csv.Error:
            pass
        return records

    def _slow_row(self) -> Row | None:
        first = self._lines.next_nonblank()
        if first is None:
            return None
        if isinstance(first[0], Overlong):
            return _overlong(first, self._lines.max_line_bytes)
        record, fields = self._parse_record(first)
        if isinstance(fields, str):
            return _failed(first[2], record.raw, fields)
        return self._row(fields, record.raw, first[2])

    def _parse_record(self, first: Line) -> tuple[Record, list[str] | str]:
        return read_record(self._lines, first, self._dialect, self._encoding,
                           self._max_record_lines)

    def _row(self, fields: list[str], raw: str, number: int) -> Row:
        try:
            return Row(number, str(number), self._typer(fields), raw)
        except ConversionError as exc:
            return _failed(number, raw, exc.reason, exc.column)


class JsonLinesSource(_FileSource):
    """Rows of a file with one JSON object a line; a row's number and key are its line.
    Blank lines (also of spaces only) are skipped but counted. The spec converts the
    top-level keys it names, when present; null values are left out."""

    def __init__(
        self,
        path: Path,
        *,
        encoding: str = "utf-8",
        columns: Mapping[str, str] | None = None,
        position: Mapping[str, Any] | None = None,
        access: FileAccess = ANY_FILE,
    ) -> None:
        self._typer = JsonTyper(compile_columns(columns, "columns"))
        super().__init__(path, encoding, position, access)

    def _read(self, limit: int) -> list[Row]:
        rows: list[Row] = []
        while len(rows) < limit:
            line = self._lines.next()
            if line is None:
                break
            if isinstance(line[0], Overlong):
                rows.append(_overlong(line, self._lines.max_line_bytes))
            elif line[0].strip():
                rows.append(self._row(line[0], line[2]))
        return rows

    def _row(self, data: bytes, number: int) -> Row:
        try:
            text = data.decode(self._encoding)
        except UnicodeDecodeError as exc:
            raw = cut_raw(data.decode(self._encoding, "replace").rstrip("\r\n"))
            return _failed(number, raw, decode_reason(self._encoding, data, exc, 0))
        raw = cut_raw(text.rstrip("\r\n"))
        try:
            document = bounded_loads(text)
        except json.JSONDecodeError as exc:
            return _failed(number, raw, f"invalid JSON: {exc.msg}: line {exc.lineno} "
                                        f"column {exc.colno}")
        except TooDeep as exc:
            return _failed(number, raw, str(exc))
        if not isinstance(document, dict):
            return _failed(number, raw, f"not a JSON object: {_json_kind(document)}")
        try:
            return Row(number, str(number), self._typer(document), raw)
        except ConversionError as exc:
            return _failed(number, raw, exc.reason, exc.column)


def open_file_source(kind: str, config: Mapping[str, Any],
                     position: Mapping[str, Any] | None,
                     access: FileAccess = ANY_FILE) -> Source:
    """The source of a ``csv`` or ``jsonl`` import from its config table; an invalid value
    is an ``InvalidInput`` naming its key. Keys of other parts of the import are left.
    ``access`` says which files may be read (the job's: ``upgrade.import_dirs``)."""
    checked = checked_file_config(kind, config)
    if checked.kind == "jsonl":
        return JsonLinesSource(checked.path, encoding=checked.encoding, columns=checked.columns,
                               position=position, access=access)
    return CsvSource(checked.path, delimiter=checked.delimiter, quote=checked.quote,
                     encoding=checked.encoding, columns=checked.columns, infer=checked.infer,
                     max_record_lines=checked.max_record_lines, position=position,
                     access=access)


def _json_kind(value: Any) -> str:
    names = {list: "list", str: "string", int: "int", float: "float", bool: "bool"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _overlong(line: Line, max_line_bytes: int) -> Row:
    raw = cut_raw(line[0].decode("utf-8", "replace")) + "…"
    return _failed(line[2], raw, f"line longer than {max_line_bytes} bytes "
                                 "(upgrade.import_max_line_bytes): not read")


def _failed(number: int, raw: str, reason: str, column: str | None = None) -> Row:
    return Row(number, str(number), None, raw, RowFailure(reason, column))
