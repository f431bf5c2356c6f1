"""Column types: the spec compiled once, conversions and their reasons, inference, and the
batch typing of CSV records that must give exactly what typing record by record gives."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.roles.upgrade.imports.columns import (
    ConversionError,
    CsvTyper,
    JsonTyper,
    column_type,
    compile_columns,
    infer_value,
)


def text_of(type_text: str, text: str) -> Any:
    return column_type(type_text).from_text(text)


def failure_of(type_text: str, text: str) -> str:
    with pytest.raises(ConversionError) as caught:
        column_type(type_text).from_text(text)
    return caught.value.reason


@pytest.mark.parametrize(("type_text", "name"), [
    ("string", "string"), ("str", "string"), ("int", "int"), ("integer", "int"),
    ("float", "float"), ("number", "float"), ("bool", "bool"), ("boolean", "bool"),
    ("date", "date"), ("datetime", "datetime"), ("json", "json"), ("list", "list:|"),
    ("list:;", "list:;"), (" INT ", "int"), ("Date:%d.%m.%Y", "date:%d.%m.%Y"),
    ("datetime:%Y%m%d %H%M", "datetime:%Y%m%d %H%M"), ("list::", "list::"),
])
def test_type_names_and_aliases(type_text: str, name: str) -> None:
    assert column_type(type_text).name == name


@pytest.mark.parametrize(("spec", "message"), [
    ({"age": "integr"}, "columns: column 'age' has unknown type 'integr'; expected one of "
                        "string, int, float, bool, date, datetime, date:<format>, "
                        "datetime:<format>, json, list, list:<separator>"),
    ({"age": "int:5"}, "columns: column 'age' has unknown type 'int:5'"),
    ({"tags": "list:"}, "columns: column 'tags' has type 'list:' with an empty list separator"),
    ({"born": "date:dd.mm.yyyy"}, "columns: column 'born' has type 'date:dd.mm.yyyy' whose "
                                  "format has no %-directive (write it like %d.%m.%Y)"),
    ({"born": "date:%d.%Q"}, "columns: column 'born' has type 'date:%d.%Q' with a bad format: "
                             "'Q' is a bad directive in format '%d.%Q'"),
    ({"age": 5}, "columns: the type of column 'age' must be text, not 5"),
    ({"": "int"}, "columns: a column name must be a non-empty string, not ''"),
])
def test_a_bad_spec_is_refused_when_compiled_naming_column_and_type(
        spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        compile_columns(spec)
    assert str(caught.value).startswith(message)


def test_the_key_of_a_bad_spec_is_named_as_given() -> None:
    with pytest.raises(InvalidInput, match=r"^config\.columns: column 'x' has unknown type"):
        compile_columns({"x": "text"}, "config.columns")


@pytest.mark.parametrize(("type_text", "text", "value"), [
    ("string", " keep  as is ", " keep  as is "),
    ("int", "42", 42), ("int", "-7", -7), ("int", " +3 ", 3), ("int", "0123", 123),
    ("float", "1.5", 1.5), ("float", "-2", -2.0), ("float", "1e3", 1000.0), ("float", ".5", 0.5),
    ("bool", "TRUE", True), ("bool", "no", False), ("bool", "1", True), ("bool", " false ", False),
    ("date", "2024-02-29", "2024-02-29"),
    ("datetime", "2024-02-29T10:11:12", "2024-02-29T10:11:12+00:00"),
    ("datetime", "2024-02-29T10:11:12Z", "2024-02-29T10:11:12+00:00"),
    ("datetime", "2024-02-29 10:11:12.5+02:00", "2024-02-29T10:11:12.500000+02:00"),
    ("date:%d.%m.%Y", "29.02.2024", "2024-02-29"),
    ("datetime:%d/%m/%Y %H:%M", "29/02/2024 10:11", "2024-02-29T10:11:00+00:00"),
    ("datetime:%d/%m/%Y %H:%M %z", "29/02/2024 10:11 +0100", "2024-02-29T10:11:00+01:00"),
    ("json", '{"a": [1, null]}', {"a": [1, None]}), ("json", "3", 3),
    ("list", " a | b ||c| ", ["a", "b", "c"]), ("list:;", "x; y;", ["x", "y"]),
    ("list", "|", []),
])
def test_conversions(type_text: str, text: str, value: Any) -> None:
    assert text_of(type_text, text) == value
    assert type(text_of(type_text, text)) is type(value)


@pytest.mark.parametrize(("type_text", "text", "reason"), [
    ("int", "abc", "'abc' is not an int"),
    ("int", "1.5", "'1.5' is not an int"),
    ("int", "1_000", "'1_000' is not an int"),
    ("float", "nan", "'nan' is not a float"),
    ("float", "1e999", "'1e999' is not a float"),
    ("float", "1,5", "'1,5' is not a float"),
    ("bool", "maybe", "'maybe' is not a bool (true/false, yes/no, 1/0)"),
    ("date", "2024-13-45", "'2024-13-45' is not a date (YYYY-MM-DD)"),
    ("date", "29.02.2024", "'29.02.2024' is not a date (YYYY-MM-DD)"),
    ("datetime", "yesterday", "'yesterday' is not a datetime (ISO 8601)"),
    ("date:%d.%m.%Y", "2024-02-29", "'2024-02-29' is not a date (%d.%m.%Y)"),
    ("datetime:%H:%M", "25:00", "'25:00' is not a datetime (%H:%M)"),
    ("json", "{x}", "'{x}' is not JSON: Expecting property name enclosed in double quotes "
                    "at character 2"),
    ("int", "x" * 100, "'" + "x" * 58 + "… is not an int"),
])
def test_conversion_failures_say_what_the_value_is_not(
        type_text: str, text: str, reason: str) -> None:
    assert failure_of(type_text, text) == reason


@pytest.mark.parametrize(("text", "value"), [
    ("42", 42), ("-7", -7), ("0", 0), ("-0", 0), ("123456789012345678", 123456789012345678),
    ("1234567890123456789", "1234567890123456789"),  # 19 digits: an id, not a quantity
    ("0123", "0123"), ("-0123", "-0123"), ("00", "00"), ("+5", "+5"),
    ("1.5", 1.5), ("-0.25", -0.25), ("1e3", 1000.0), (".5", 0.5), ("1.", 1.0),
    ("0.5", 0.5), ("1E-2", 0.01), ("1e400", "1e400"), ("1.2.3", "1.2.3"), ("-", "-"),
    ("nan", "nan"), ("inf", "inf"), ("-inf", "-inf"), (" 1", " 1"),
    ("\u0661\u0662", "\u0661\u0662"),  # Arabic-Indic digits stay text
    ("true", True), ("FALSE", False), ("True", True), ("truex", "truex"), ("t", "t"),
    ("abc", "abc"), ("2024-01-02", "2024-01-02"), ("12abc", "12abc"),
])
def test_inference(text: str, value: Any) -> None:
    assert infer_value(text) == value
    assert type(infer_value(text)) is type(value)


def test_csv_typer_leaves_empty_fields_out_and_infers_the_rest() -> None:
    typer = CsvTyper(["id", "name", "born", "score"], compile_columns({"born": "date"}),
                     infer=True)
    assert typer(["7", "", "2024-01-02", ""]) == {"id": 7, "born": "2024-01-02"}
    assert typer(["", "", "", ""]) == {}
    plain = CsvTyper(["id", "name"], {}, infer=False)
    assert plain(["7", "true"]) == {"id": "7", "name": "true"}


def test_csv_typer_names_the_column_that_fails_and_checks_the_width() -> None:
    typer = CsvTyper(["id", "born", "age"], compile_columns({"born": "date", "age": "int"}),
                     infer=True)
    with pytest.raises(ConversionError) as caught:
        typer(["1", "2024-13-45", "x"])
    assert (caught.value.column, caught.value.reason) == (
        "born", "'2024-13-45' is not a date (YYYY-MM-DD)")
    with pytest.raises(ConversionError) as caught:
        typer(["1", "2"])
    assert (caught.value.column, caught.value.reason) == (None, "2 fields, the header has 3")
    with pytest.raises(ConversionError, match=r"^1 field, the header has 3$"):
        typer(["1"])


def test_a_spec_column_missing_from_the_header_is_invalid() -> None:
    with pytest.raises(InvalidInput) as caught:
        CsvTyper(["id", "age"], compile_columns({"agee": "int"}), infer=True)
    assert str(caught.value) == "columns: there is no column 'agee' in the header (id, age)"


def random_field(rng: random.Random) -> str:
    return rng.choice([
        "", "", "0", "7", "-12", "0123", "1234567890123456789", "1.5", "-0.25", "1e3", ".5",
        "1e400", "true", "FALSE", "tru", "abc", "x y", "2024-01-02", "2024-13-45", "-", "+5",
        "\u0661", "\u017f", "fal\u017fe", "nan", "12abc", str(rng.randint(-10**6, 10**6)),
        f"{rng.random():.3f}", rng.choice(["true", "false"]),
    ])


@pytest.mark.parametrize("seed", range(20))
def test_batch_typing_gives_what_record_by_record_typing_gives(seed: int) -> None:
    rng = random.Random(seed)
    header = ["a", "b", "c", "d", "e"]
    spec = compile_columns({"d": "date", "e": "int"} if seed % 2 else {})
    typer = CsvTyper(header, spec, infer=seed % 3 != 0)
    # columns of one kind each (the C paths) and of mixed kinds (the fallbacks)
    kinds = [["1", "22", "-3"], ["1.5", "2.", ".5"], ["true", "False"],
             ["2024-01-02", "1999-12-31"] + (["2023-02-29"] if seed % 8 == 1 else []),
             ["7", "-0", "0123", "+5"], ["abc", "xyz"]]
    records: list[list[str]] = []
    for _ in range(rng.randint(0, 60)):
        width = 5 if rng.random() > 0.1 else rng.choice([4, 6])
        if seed % 4 == 1:
            gaps = [""] if seed % 8 == 5 else []
            records.append([rng.choice(kinds[column] + gaps) for column in range(width)])
        else:
            records.append([random_field(rng) for _ in range(width)])
    datas, failures = typer.type_records(records)
    for index, fields in enumerate(records):
        try:
            expected: dict[str, Any] | None = typer(fields)
        except ConversionError as error:
            expected = None
            assert (failures[index].column, failures[index].reason) == (
                error.column, error.reason)
        else:
            assert index not in failures
        assert datas[index] == expected
        if expected is not None:
            assert [type(value) for value in datas[index].values()] == [  # type: ignore[union-attr]
                type(value) for value in expected.values()]


def test_json_typer_drops_nulls_and_converts_only_present_spec_keys() -> None:
    typer = JsonTyper(compile_columns({
        "age": "int", "price": "float", "ok": "bool", "code": "string", "born": "date",
        "extra": "json", "tags": "list", "missing": "int",
    }))
    document = {"age": "41", "price": 3, "ok": "yes", "code": 12, "born": "2024-02-29",
                "extra": '{"a": 1}', "tags": "a|b", "gone": None, "nested": {"x": None}}
    assert typer(document) == {
        "age": 41, "price": 3.0, "ok": True, "code": "12", "born": "2024-02-29",
        "extra": {"a": 1}, "tags": ["a", "b"], "nested": {"x": None}}
    assert typer({"age": 5.0, "tags": ["x", 1], "extra": [1]}) == {
        "age": 5, "tags": ["x", 1], "extra": [1]}


@pytest.mark.parametrize(("spec", "document", "column", "reason"), [
    ({"age": "int"}, {"age": True}, "age", "true is not an int"),
    ({"age": "int"}, {"age": 1.5}, "age", "1.5 is not an int"),
    ({"age": "int"}, {"age": ""}, "age", "'' is not an int"),
    ({"price": "float"}, {"price": "x"}, "price", "'x' is not a float"),
    ({"ok": "bool"}, {"ok": 1}, "ok", "1 is not a bool"),
    ({"code": "string"}, {"code": [1, 2]}, "code", "[1, 2] is not a string"),
    ({"born": "date"}, {"born": 20240229}, "born", "20240229 is not a date (it must be text)"),
    ({"born": "date"}, {"born": "2024-13-45"}, "born", "'2024-13-45' is not a date (YYYY-MM-DD)"),
    ({"tags": "list"}, {"tags": {"a": 1}}, "tags", '{"a": 1} is not a list'),
])
def test_json_typer_failures_name_the_key(spec: dict[str, str], document: dict[str, Any],
                                          column: str, reason: str) -> None:
    with pytest.raises(ConversionError) as caught:
        JsonTyper(compile_columns(spec))(document)
    assert (caught.value.column, caught.value.reason) == (column, reason)
