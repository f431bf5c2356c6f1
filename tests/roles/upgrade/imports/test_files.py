"""CSV and JSON-lines sources: every bad record is one failed row with a precise reason,
line numbers count every physical line, and reading resumed from any position gives what
one uninterrupted read gives."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.roles.upgrade.imports.files import CsvSource, JsonLinesSource, open_file_source
from tracardi_daemon.roles.upgrade.imports.rows import RAW_LIMIT, Row, RowFailure, Source

# every rule at once: BOM, CRLF, blank lines, a record over three lines, broken quoting, a
# latin-1 byte, short and long rows, a bad date, a literal quote in an unquoted field, an
# even-quoted line that opens a quoted field, and an unclosed quote near the end
TRICKY = (
    b"\xef\xbb\xbfid,name,born,score\r\n"                 # 1
    b"1,Ann,2024-01-02,1.5\r\n"                           # 2
    b"\r\n"                                               # 3 blank
    b'2,"Bob\r\n'                                         # 4 a record over lines 4-6
    b"the second\r\n"                                     # 5
    b'line",2024-02-03,7\r\n'                             # 6
    b'3,"ab"c,2024-03-04,1\r\n'                           # 7 bad quoting
    b"4,caf\xe9,2024-04-05,2\r\n"                         # 8 not utf-8
    b"5,short\r\n"                                        # 9
    b"6,long,2024-05-06,3,extra\r\n"                      # 10
    b"7,Eve,2024-13-45,4\r\n"                             # 11 bad date
    b'8,5" pipe,2024-06-07,0123\r\n'                      # 12 odd quote, but one record
    b'9,a"b,2024-07-08,"x\r\n'                           # 13 even, opens a field: 13-14
    b'y"\r\n'                                             # 14
    b"\n"                                                 # 15 blank
    b'10,"never closed,2024-09-10,5\r\n'                  # 16 unclosed to the end
    b"11,Zed,2024-10-11,true\r\n"                         # 17
    b"12,,,"                                              # 18 no line ending
)


def expected_tricky() -> list[tuple[int, Any, str | None, str | None]]:
    """(number, data, failure reason, failure column) of every row of TRICKY."""
    return [
        (2, {"id": 1, "name": "Ann", "born": "2024-01-02", "score": 1.5}, None, None),
        (4, {"id": 2, "name": "Bob\r\nthe second\r\nline", "born": "2024-02-03", "score": 7},
         None, None),
        (7, None, "bad quoting: ',' expected after '\"'", None),
        (8, None, "not valid utf-8: byte 0xe9 at position 5", None),
        (9, None, "2 fields, the header has 4", None),
        (10, None, "5 fields, the header has 4", None),
        (11, None, "'2024-13-45' is not a date (YYYY-MM-DD)", "born"),
        (12, {"id": 8, "name": '5" pipe', "born": "2024-06-07", "score": "0123"}, None, None),
        (13, {"id": 9, "name": 'a"b', "born": "2024-07-08", "score": "x\r\ny"}, None, None),
        (16, None, "unclosed quote: the record is still open at the end of the file", None),
        (17, {"id": 11, "name": "Zed", "born": "2024-10-11", "score": True}, None, None),
        (18, {"id": 12}, None, None),
    ]


def write(tmp_path: Path, content: bytes | str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def read_all(source: Source, batch: int = 1000) -> list[Row]:
    rows: list[Row] = []
    while chunk := source.read(batch):
        assert len(chunk) <= batch
        rows.extend(chunk)
    return rows


def summary(rows: list[Row]) -> list[tuple[int, Any, str | None, str | None]]:
    for row in rows:
        assert row.key == str(row.number)
        assert (row.data is None) == (row.failure is not None)
    return [(row.number, row.data, row.failure and row.failure.reason,
             row.failure and row.failure.column) for row in rows]


def csv_rows(tmp_path: Path, content: bytes | str, **options: Any) -> list[Row]:
    with CsvSource(write(tmp_path, content), **options) as source:
        return read_all(source)


@pytest.mark.parametrize("batch", [1, 2, 3, 5, 1000])
def test_every_rule_in_one_file(tmp_path: Path, batch: int) -> None:
    with CsvSource(write(tmp_path, TRICKY), columns={"born": "date"}) as source:
        assert source.header == ["id", "name", "born", "score"]
        rows = read_all(source, batch)
        assert source.position == {"offset": len(TRICKY), "line": 19}
        assert source.read(10) == []
    assert summary(rows) == expected_tricky()
    raws = {row.number: row.raw for row in rows}
    assert raws[4] == '2,"Bob\r\nthe second\r\nline",2024-02-03,7'
    assert raws[8] == "4,caf\ufffd,2024-04-05,2"
    assert raws[16] == '10,"never closed,2024-09-10,5'
    assert raws[18] == "12,,,"


def test_resuming_from_every_position_gives_the_uninterrupted_read(tmp_path: Path) -> None:
    path = write(tmp_path, TRICKY)
    with CsvSource(path, columns={"born": "date"}) as source:
        whole = read_all(source)
    for batch in (1, 2, 3):
        with CsvSource(path, columns={"born": "date"}) as source:
            positions = [source.position]
            while source.read(batch):
                positions.append(source.position)
        for index, position in enumerate(positions):
            with CsvSource(path, columns={"born": "date"}, position=position) as resumed:
                assert read_all(resumed, 2) == whole[index * batch:], (batch, position)


def test_resuming_a_large_file_in_uneven_batches(tmp_path: Path) -> None:
    lines = [f'{n},"name {n}",{n * 0.5}' + (',"x\ny"' if n % 97 == 0 else ",z")
             for n in range(3000)]
    lines[1500] = '1500,"ab"c,1,z'
    path = write(tmp_path, "id,name,score,note\n" + "\n".join(lines) + "\n")
    with CsvSource(path) as source:
        whole = read_all(source)
        assert source.total() == 3000 + 3000 // 97 + 1  # an estimate: 31 records span 2 lines
    assert len(whole) == 3000 and [row.number for row in whole if row.failure] == [
        1502 + 1500 // 97 + 1]
    done: list[Row] = []
    position = None
    for batch in (1, 700, 3, 999, 64, 5000):
        with CsvSource(path, position=position) as source:
            done.extend(source.read(batch))
            position = source.position
    assert done == whole


def test_inference_bom_crlf_and_empty_fields(tmp_path: Path) -> None:
    rows = csv_rows(tmp_path, b"\xef\xbb\xbfa,b,c,d,e\r\n1,-2.5,TRUE,0123,text\r\n,,false,,\r\n")
    assert summary(rows) == [
        (2, {"a": 1, "b": -2.5, "c": True, "d": "0123", "e": "text"}, None, None),
        (3, {"c": False}, None, None),
    ]
    assert rows[0].raw == "1,-2.5,TRUE,0123,text"


def test_no_inference_keeps_text(tmp_path: Path) -> None:
    rows = csv_rows(tmp_path, "a,b\n1,true\n", infer=False, columns={"b": "bool"})
    assert rows[0].data == {"a": "1", "b": True}


def test_a_multi_line_field_keeps_line_numbers_of_later_rows(tmp_path: Path) -> None:
    rows = csv_rows(tmp_path, 'id,note\n1,"a\n\nb"\n2,x\n\n3,"c\nd"\n4,y\n')
    assert summary(rows) == [
        (2, {"id": 1, "note": "a\n\nb"}, None, None), (5, {"id": 2, "note": "x"}, None, None),
        (7, {"id": 3, "note": "c\nd"}, None, None), (9, {"id": 4, "note": "y"}, None, None),
    ]


def test_an_unclosed_quote_is_one_row_and_reading_goes_on_after_its_first_line(
        tmp_path: Path) -> None:
    content = 'id,note\n1,"open\n2,b\n3,c\n4,d\n5,e\n'
    rows = csv_rows(tmp_path, content, max_record_lines=3)
    assert summary(rows) == [
        (2, None, "unclosed quote: the record is still open after 3 lines (max_record_lines)",
         None),
        (3, {"id": 2, "note": "b"}, None, None), (4, {"id": 3, "note": "c"}, None, None),
        (5, {"id": 4, "note": "d"}, None, None), (6, {"id": 5, "note": "e"}, None, None),
    ]
    assert rows[0].raw == '1,"open'
    # without the limit the record stays open to the end: still one row, the rest are read
    rows = csv_rows(tmp_path, content)
    assert [row.number for row in rows] == [2, 3, 4, 5, 6]
    assert rows[0].failure == RowFailure(
        "unclosed quote: the record is still open at the end of the file")
    # a record of exactly max_record_lines lines is whole
    rows = csv_rows(tmp_path, 'id,note\n1,"a\nb\nc"\n2,d\n', max_record_lines=3)
    assert summary(rows) == [(2, {"id": 1, "note": "a\nb\nc"}, None, None),
                             (5, {"id": 2, "note": "d"}, None, None)]


def test_a_stray_quote_does_not_swallow_the_rows_up_to_the_next_quote(tmp_path: Path) -> None:
    rows = csv_rows(tmp_path, 'id,note\n1,"open\n2,b\n3,"c"x\n4,d\n')
    assert summary(rows) == [
        (2, None, "bad quoting: ',' expected after '\"' (line 4, in a quoted field opened "
                  "here)", None),
        (3, {"id": 2, "note": "b"}, None, None),
        (4, None, "bad quoting: ',' expected after '\"'", None),
        (5, {"id": 4, "note": "d"}, None, None),
    ]


@pytest.mark.parametrize(("line", "reason"), [
    ('1,"ab"c,3', "bad quoting: ',' expected after '\"'"),
    ("1,2", "2 fields, the header has 3"),
    ("1", "1 field, the header has 3"),
    ("1,2,3,4,5", "5 fields, the header has 3"),
    ("1,a\rb,3", "bad CSV: a line break (\\r) inside an unquoted field"),
    ("1,2,2024-13-45", "'2024-13-45' is not a date (YYYY-MM-DD)"),
])
def test_bad_rows_between_good_ones(tmp_path: Path, line: str, reason: str) -> None:
    rows = csv_rows(tmp_path, f"a,b,c\n1,2,2024-01-01\n{line}\n3,4,2024-01-02\n",
                    columns={"c": "date"})
    assert [row.number for row in rows] == [2, 3, 4]
    assert rows[1].failure is not None and rows[1].failure.reason == reason
    assert rows[1].raw == line
    assert rows[2].data == {"a": 3, "b": 4, "c": "2024-01-02"}


def test_an_undecodable_record_names_the_encoding_and_the_byte(tmp_path: Path) -> None:
    rows = csv_rows(tmp_path, b'a,b\n1,ok\n2,"multi\nline caf\xe9"\n3,ok\n')
    assert summary(rows) == [
        (2, {"a": 1, "b": "ok"}, None, None),
        (3, None, "not valid utf-8: byte 0xe9 at position 17", None),
        (5, {"a": 3, "b": "ok"}, None, None),
    ]
    assert rows[1].raw == '2,"multi\nline caf\ufffd"'
    # the encoding is named before the quoting it may have caused
    rows = csv_rows(tmp_path, b'a,b\n1,"caf\xe9"x\n')
    assert rows[0].failure == RowFailure("not valid utf-8: byte 0xe9 at position 6")


def test_other_encodings_delimiters_and_quotes(tmp_path: Path) -> None:
    content = "name;note\n'café';'a;b'\n'x''y';plain\n".encode("latin-1")
    rows = csv_rows(tmp_path, content, delimiter=";", quote="'", encoding="latin-1")
    assert [row.data for row in rows] == [{"name": "café", "note": "a;b"},
                                          {"name": "x'y", "note": "plain"}]


def test_raw_is_cut(tmp_path: Path) -> None:
    rows = csv_rows(tmp_path, "a\n" + "x" * 3000 + "\n" + "y" * 3000 + ",2\n")
    assert [len(row.raw) for row in rows] == [RAW_LIMIT + 1, RAW_LIMIT + 1]
    assert rows[0].raw.endswith("…") and rows[0].data == {"a": "x" * 3000}


@pytest.mark.parametrize(("content", "message"), [
    (b"", " is empty: its first line must be the header"),
    (b"\nx\n", ": the header (line 1) is empty"),
    (b"a,,b\n", ": the header (line 1) has an empty column name (column 2)"),
    (b"a, b ,a\n", ": the header (line 1) names column 'a' twice (columns 1 and 3)"),
    (b'a,"b\n', ": the header (line 1) cannot be read: unclosed quote: the record is still "
                "open at the end of the file"),
    (b"a,b\xff\n", ": the header (line 1) cannot be read: not valid utf-8: byte 0xff at "
                   "position 3"),
])
def test_a_bad_header_is_invalid(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        CsvSource(write(tmp_path, content))
    assert str(caught.value) == f"{tmp_path / 'data.csv'}{message}"


def test_header_names_are_stripped(tmp_path: Path) -> None:
    with CsvSource(write(tmp_path, ' id ,"name "\n1,x\n')) as source:
        assert source.header == ["id", "name"]


def test_a_missing_or_unreadable_path_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"^cannot read .*nope.csv: No such file or directory$"):
        CsvSource(tmp_path / "nope.csv")
    with pytest.raises(InvalidInput, match=f"^config.path: {re.escape(str(tmp_path))} is not "
                                           "a regular file"):
        JsonLinesSource(tmp_path)


def test_total_counts_non_blank_lines_after_the_header(tmp_path: Path) -> None:
    for content, total in [
        (b"a\n", 0), (b"a", 0), (b"a\n1\n2", 2), (b"a\r\n1\r\n\r\n2\r\n\r\n", 2),
        (b"a\n\n\n1\n\n", 1), (b'a\n"x\ny"\n', 2),  # an estimate when a field holds a break
    ]:
        with CsvSource(write(tmp_path, content)) as source:
            assert source.total() == total, content
    big = "a\n" + "\n".join(str(n) for n in range(400_000)) + "\n\n"  # > 1 MiB: chunks
    with CsvSource(write(tmp_path, big)) as source:
        assert source.total() == 400_000
        write(tmp_path, "a\n")  # counted once
        assert source.total() == 400_000


@pytest.mark.parametrize(("position", "message"), [
    ({"offset": 3}, "position must be {'offset': <byte offset>, 'line': <line number from 2>}"),
    ({"offset": 0, "line": 1}, "position must be"),
    ({"offset": 1, "line": 2}, "position.offset 1 is not within the records of"),
    ({"offset": 999, "line": 2}, "position.offset 999 is not within the records of"),
    ({"offset": 4, "line": 2}, "position.offset 4 is not the start of a line of"),
])
def test_a_bad_position_is_invalid(tmp_path: Path, position: dict[str, Any],
                                   message: str) -> None:
    path = write(tmp_path, "id\n12\n34\n")
    with pytest.raises(InvalidInput, match=r"^" + re.escape(message)):
        CsvSource(path, position=position)
    with CsvSource(path, position={"offset": 6, "line": 3}) as source:
        assert [row.data for row in read_all(source)] == [{"id": 34}]


def test_jsonl_rows_and_failures(tmp_path: Path) -> None:
    content = (
        b'\xef\xbb\xbf{"id": 1, "when": "2024-01-02", "gone": null, "n": "7"}\r\n'  # 1
        b"\n"                                                                    # 2
        b"   \r\n"                                                               # 3
        b'{"id":2 "x": 1}\n'                                                     # 4
        b"[1, 2]\n"                                                              # 5
        b'"text"\n'                                                              # 6
        b'{"id": 3, "name": "caf\xe9"}\n'                                        # 7
        b'{"id": 4, "when": "someday"}\n'                                        # 8
        b'{"id": 5, "n": 1.5, "tags": ["a"]}'                                    # 9
    )
    path = write(tmp_path, content, "data.jsonl")
    with JsonLinesSource(path, columns={"when": "date", "n": "float"}) as source:
        rows = read_all(source, 2)
        assert source.total() == 8  # the line of spaces counts: an estimate
        assert source.position == {"offset": len(content), "line": 10}
    assert summary(rows) == [
        (1, {"id": 1, "when": "2024-01-02", "n": 7.0}, None, None),
        (4, None, "invalid JSON: Expecting ',' delimiter: line 1 column 9", None),
        (5, None, "not a JSON object: list", None),
        (6, None, "not a JSON object: string", None),
        (7, None, "not valid utf-8: byte 0xe9 at position 22", None),
        (8, None, "'someday' is not a date (YYYY-MM-DD)", "when"),
        (9, {"id": 5, "n": 1.5, "tags": ["a"]}, None, None),
    ]
    assert rows[0].raw == '{"id": 1, "when": "2024-01-02", "gone": null, "n": "7"}'
    assert rows[4].raw == '{"id": 3, "name": "caf\ufffd"}'
    for index in range(len(rows)):
        with JsonLinesSource(path, columns={"when": "date", "n": "float"}) as source:
            source.read(index)
            position = source.position
        with JsonLinesSource(path, columns={"when": "date", "n": "float"},
                             position=position) as resumed:
            assert read_all(resumed) == rows[index:]


def test_open_file_source_reads_the_config(tmp_path: Path) -> None:
    path = write(tmp_path, "a;b\n1;'x;y'\n")
    config = {"path": str(path), "delimiter": ";", "quote": "'", "encoding": "utf-8",
              "columns": {"a": "string"}, "infer": True, "max_record_lines": 5,
              "target": "events", "event_type": "for the target, not the source"}
    source = open_file_source("csv", config, None)
    assert isinstance(source, CsvSource)
    assert [row.data for row in source.read(10)] == [{"a": "1", "b": "x;y"}]
    position = source.position
    source.close()
    resumed = open_file_source("csv", config, position)
    assert resumed.read(10) == []
    resumed.close()
    jsonl = write(tmp_path, '{"a": "2"}\n', "data.jsonl")
    source = open_file_source("jsonl", {"path": str(jsonl), "columns": {"a": "int"}}, None)
    assert isinstance(source, JsonLinesSource)
    assert [row.data for row in source.read(10)] == [{"a": 2}]
    source.close()


@pytest.mark.parametrize(("kind", "config", "message"), [
    ("xml", {}, "unknown file kind 'xml'; expected csv or jsonl"),
    ("csv", {"path": None}, "config.path is required: the file to import"),
    ("csv", {"path": 5}, "config.path must be the path of a file, not 5"),
    ("csv", {"path": ""}, "config.path must be the path of a file, not ''"),
    ("csv", {"delimiter": ";;"}, "config.delimiter must be one character, not ';;'"),
    ("csv", {"delimiter": ""}, "config.delimiter must be one character, not ''"),
    ("csv", {"delimiter": "\n"}, "config.delimiter cannot be a line break"),
    ("csv", {"quote": 1}, "config.quote must be one character, not 1"),
    ("csv", {"quote": ","}, "config.quote and config.delimiter must differ, both are ','"),
    ("csv", {"quote": "€", "encoding": "latin-1"}, "config.quote '€' is not one byte in latin-1"),
    ("csv", {"encoding": "utf9"}, "config.encoding: unknown encoding 'utf9'"),
    ("csv", {"encoding": "rot13"}, "config.encoding: unknown encoding 'rot13'"),
    ("csv", {"encoding": 8}, "config.encoding must be the name of an encoding, not 8"),
    ("csv", {"encoding": "utf-16"}, "config.encoding: encoding 'utf-16' is not supported (it "
                                    "does not write ASCII as single bytes); convert the file "
                                    "to utf-8"),
    ("csv", {"columns": ["a"]}, "config.columns must be a table of column name -> type, not "
                                "['a']"),
    ("csv", {"columns": {"a": "integr"}}, "config.columns: column 'a' has unknown type "
                                          "'integr'; expected one of string, int"),
    ("csv", {"columns": {"zz": "int"}}, "columns: there is no column 'zz' in the header (a)"),
    ("csv", {"infer": "yes"}, "config.infer must be true or false, not 'yes'"),
    ("csv", {"max_record_lines": 0}, "config.max_record_lines must be a whole number of at "
                                     "least 1, not 0"),
    ("csv", {"max_record_lines": True}, "config.max_record_lines must be a whole number of "
                                        "at least 1, not True"),
    ("jsonl", {"delimiter": ","}, "config.delimiter applies to csv files, not jsonl"),
    ("jsonl", {"infer": False}, "config.infer applies to csv files, not jsonl"),
    ("jsonl", {"columns": {"a": "date:x"}}, "config.columns: column 'a' has type 'date:x' "
                                            "whose format has no %-directive"),
])
def test_config_errors_name_the_key(tmp_path: Path, kind: str, config: dict[str, Any],
                                    message: str) -> None:
    path = write(tmp_path, "a\n1\n")
    with pytest.raises(InvalidInput) as caught:
        open_file_source(kind, {"path": str(path)} | config, None)
    assert str(caught.value).startswith(message)


def test_constructors_check_their_arguments(tmp_path: Path) -> None:
    path = write(tmp_path, "a\n1\n")
    with pytest.raises(InvalidInput, match=r"^delimiter must be one character, not ';;'$"):
        CsvSource(path, delimiter=";;")
    with pytest.raises(InvalidInput, match=r"^max_record_lines must be a whole number"):
        CsvSource(path, max_record_lines=0)
    with pytest.raises(InvalidInput, match=r"^encoding: unknown encoding 'nope'$"):
        JsonLinesSource(path, encoding="nope")
