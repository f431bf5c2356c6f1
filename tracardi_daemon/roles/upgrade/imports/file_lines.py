"""The physical lines of an import file read in binary (each with its byte offset and line
number, pushed back when read ahead) and one CSV record assembled from them line by line."""

from __future__ import annotations

import csv
import os
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeGuard

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.roles.upgrade.imports.file_access import ANY_FILE, FileAccess
from tracardi_daemon.roles.upgrade.imports.rows import cut_raw

BLANK = frozenset({b"\n", b"\r\n", b"\r"})  # as count_nonblank() counts them
_BOM = b"\xef\xbb\xbf"
_CHUNK_BYTES = 1 << 20
_PENDING_TAKEN = 64
_OVERLONG_KEPT = 200  # bytes of an overlong line kept to show in its failed row
# a physical line: its bytes (with the line ending), its byte offset, its line number
Line = tuple[bytes, int, int]


class Overlong(bytes):
    """The start of a line longer than the bound; the rest is skipped, never held."""


class Lines:
    """The physical lines of a file opened in binary, each with its byte offset and line
    number (a UTF-8 BOM is skipped); lines read ahead are pushed back. A line longer than
    ``access.max_line_bytes`` comes as an ``Overlong`` with only its start kept."""

    def __init__(self, path: Path, access: FileAccess = ANY_FILE) -> None:
        self.path = path
        self.max_line_bytes = access.max_line_bytes
        self._file = access.open(path)
        try:
            self.start = len(_BOM) if self._file.read(len(_BOM)) == _BOM else 0
            self._file.seek(self.start)
        except OSError as exc:
            self._file.close()
            raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
        self._offset = self.start
        self._line = 1
        self._skipping = False  # the rest of an overlong line is still to be skipped
        self._pending: deque[Line] = deque()

    def next(self) -> Line | None:
        if self._pending:
            return self._pending.popleft()
        return self._read_line()

    def take(self, count: int) -> list[Line]:
        """Up to ``count`` next lines, ending before an overlong one (``next`` gives
        that): pushed back ones first (a few at a time, as they are pushed back at a
        bad record and the next may be close), else straight from the file."""
        taken: list[Line] = []
        if self._pending:
            count = min(count, len(self._pending), _PENDING_TAKEN)
            while len(taken) < count and not isinstance(self._pending[0][0], Overlong):
                taken.append(self._pending.popleft())
            return taken
        read_line = self._read_line
        for _ in range(count):
            line = read_line()
            if line is None:
                break
            if isinstance(line[0], Overlong):
                self._pending.append(line)
                break
            taken.append(line)
        return taken

    def _read_line(self) -> Line | None:
        """The next line from the file, at most ``max_line_bytes`` of it held."""
        if self._skipping:
            self._skip_rest()
        data = self._file.readline(self.max_line_bytes)
        if not data:
            return None
        line = (data, self._offset, self._line)
        self._offset += len(data)
        self._line += 1
        if len(data) == self.max_line_bytes and not data.endswith(b"\n") and \
                self._file.peek(1)[:1]:
            self._skipping = True
            return (Overlong(data[:_OVERLONG_KEPT]), line[1], line[2])
        return line

    def _skip_rest(self) -> None:
        """Reads past the rest of an overlong line in bounded chunks."""
        while self._skipping:
            chunk = self._file.readline(_CHUNK_BYTES)
            self._offset += len(chunk)
            self._skipping = bool(chunk) and not chunk.endswith(b"\n")

    def next_nonblank(self) -> Line | None:
        line = self.next()
        while line is not None and line[0] in BLANK:
            line = self.next()
        return line

    def push_back(self, lines: Sequence[Line]) -> None:
        self._pending.extendleft(reversed(lines))

    @property
    def position(self) -> dict[str, Any]:
        if not self._pending and self._skipping:
            self._skip_rest()
        _, offset, line = self._pending[0] if self._pending else (b"", self._offset, self._line)
        return {"offset": offset, "line": line}

    def seek(self, position: Mapping[str, Any]) -> None:
        """Goes on at ``position``, which must be at or after the current one: the start of
        a line or the end of the file (else the file has changed)."""
        offset, line = position.get("offset"), position.get("line")
        here = self.position
        if not _whole(offset) or not _whole(line) or line < here["line"]:
            raise InvalidInput(f"position must be {{'offset': <byte offset>, 'line': <line "
                               f"number from {here['line']}>}}, not {dict(position)!r}")
        size = os.fstat(self._file.fileno()).st_size
        if not here["offset"] <= offset <= size:
            raise InvalidInput(f"position.offset {offset} is not within the records of "
                               f"{self.path} (bytes {here['offset']} to {size}): did it change?")
        if here["offset"] < offset < size:
            self._file.seek(offset - 1)
            if self._file.read(1) != b"\n":
                raise InvalidInput(f"position.offset {offset} is not the start of a line of "
                                   f"{self.path}: did it change?")
        self._file.seek(offset)
        self._pending.clear()
        self._skipping = False
        self._offset, self._line = offset, line

    def count_nonblank(self) -> int:
        """Non-blank lines in all, read in 1 MiB chunks from the open file (positioned
        reads: the lines' own position is left alone)."""
        lines = blank = 0
        carry = b""
        fd, offset = self._file.fileno(), 0
        while chunk := os.pread(fd, _CHUNK_BYTES, offset):
            offset += len(chunk)
            pieces = (carry + chunk).split(b"\n")
            # of the unfinished line, two bytes tell whether it is blank (b"" or b"\r")
            carry = pieces.pop()[:2]
            lines += len(pieces)
            blank += pieces.count(b"") + pieces.count(b"\r")
        if carry and carry != b"\r":
            lines += 1
        return lines - blank

    def close(self) -> None:
        self._file.close()


def _whole(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass
class Record:
    """The physical lines of one CSV record, as they were read for the ``csv`` module."""

    lines: list[Line]
    texts: list[str] = field(default_factory=list)
    decode_error: str | None = None
    cut_short: str | None = None  # why no more lines were given while the reader wanted some

    @property
    def raw(self) -> str:
        return cut_raw("".join(self.texts).rstrip("\r\n"))


def decode_lines(lines: list[Line], encoding: str) -> list[str]:
    """The lines decoded without their \\n, up to the first that does not decode."""
    joined = b"".join(map(itemgetter(0), lines))
    try:
        texts = joined.decode(encoding).split("\n")
        if joined.endswith(b"\n"):
            texts.pop()
        return texts
    except UnicodeDecodeError:
        texts = []
        for data, _, _ in lines:
            try:
                texts.append(data.decode(encoding).removesuffix("\n"))
            except UnicodeDecodeError:
                break
        return texts


def decode_reason(encoding: str, data: bytes, error: UnicodeDecodeError, before: int) -> str:
    byte = data[error.start]
    return f"not valid {encoding}: byte 0x{byte:02x} at position {before + error.start}"


def read_record(lines: Lines, first: Line, dialect: Mapping[str, Any], encoding: str,
                max_record_lines: int) -> tuple[Record, list[str] | str]:
    """One CSV record starting at ``first``, read line by line as the csv module asks for
    them: its fields, or why it cannot be read."""
    record = Record([first])
    reader = csv.reader(_record_texts(record, lines, encoding, max_record_lines), **dialect)
    try:
        fields = next(reader)
    except csv.Error as exc:
        reason = record.decode_error or _csv_reason(exc)
        if record.cut_short is not None:
            reason = f"unclosed quote: the record is {record.cut_short}"
        elif len(record.lines) > 1:
            where = record.lines[-1][2]
            reason = f"{_csv_reason(exc)} (line {where}, in a quoted field opened here)"
        # a record of several lines that fails is its first line: reading goes on with
        # the second, or one stray quote swallows the rows after it
        lines.push_back(record.lines[1:])
        del record.lines[1:], record.texts[1:]
        return record, reason
    return record, record.decode_error or fields


def _record_texts(record: Record, lines: Lines, encoding: str,
                  max_record_lines: int) -> Iterator[str]:
    """The decoded lines of ``record``, reading the next only when the reader wants it
    (errors are noted in ``record``; an undecodable line is decoded with U+FFFD)."""
    size = 0
    while True:
        data = record.lines[-1][0]
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            text = data.decode(encoding, "replace")
            if record.decode_error is None:
                record.decode_error = decode_reason(encoding, data, exc, size)
        size += len(data)
        record.texts.append(text)
        yield text
        if len(record.lines) >= max_record_lines:
            record.cut_short = f"still open after {len(record.lines)} lines (max_record_lines)"
            return
        line = lines.next()
        if line is None:
            record.cut_short = "still open at the end of the file"
            return
        if isinstance(line[0], Overlong):
            lines.push_back([line])  # a failed row of its own
            record.cut_short = (f"still open before line {line[2]}, longer than "
                                f"{lines.max_line_bytes} bytes (upgrade.import_max_line_bytes)")
            return
        record.lines.append(line)


def _csv_reason(error: csv.Error) -> str:
    if "field limit" in str(error):
        return f"field too large: {error}"
    if "new-line character" in str(error):
        return "bad CSV: a line break (\\r) inside an unquoted field"
    return f"bad quoting: {error}"
