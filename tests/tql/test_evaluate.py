"""The Python evaluator's semantics, one row per rule (see tracardi_daemon/tql/README.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tracardi_daemon.tql import Condition, Schema, TqlError, compile_condition, evaluate

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)

PROFILE: dict[str, Any] = {
    "id": "p1",
    "segments": ["vip", "new"],
    "empty_list": [],
    "nulls": [None, None],
    "nothing": None,
    "blank": "",
    "metadata": {"time": {"insert": "2024-05-20T10:00:00Z", "visit": {"count": 2.7}}},
    "traits": {
        "age": 30, "score": "12", "padded": " 7 ", "word": "abc", "zip": "010",
        "ten": "10.0", "ratio": 0.5, "vip": True, "flag": "true", "off": "",
        "city": "Warsaw", "tags": ["a", "b", ""], "numbers": [1, 10],
        "orders": [{"sku": "x1", "qty": 2}, {"sku": "y2", "qty": [5, None]}, {"qty": 1}],
        "nested": [[1, 2], [3]], "empty_object": {}, "object": {"a": None, "b": {"c": 1}},
        "born": "1990-02-03", "seen": "2024-05-20T12:00:00.0009+02:00", "later": "n/a",
        "epoch": 1717243200000, "duration": 601, "a": 5, "b": [5, 6], "c": "5",
        "long": "x" * 10,
    },
}
EVENT: dict[str, Any] = {"type": "purchase", "properties": {"value": 99.5}}
DOCUMENTS = {"profile": PROFILE, "event": EVENT, "payload": {"ok": True}}

ROWS: list[tuple[str, bool]] = [
    # a missing or null field: every comparison is false, != included
    ("profile@traits.missing == 1", False),
    ("profile@traits.missing != 1", False),
    ("profile@traits.missing > 1", False),
    ("profile@traits.missing BETWEEN 1 AND 2", False),
    ('profile@traits.missing CONTAINS ""', False),
    ("NOT profile@traits.missing == 1", True),
    ("profile@traits.missing NOT EXISTS", True),
    ("profile@traits.missing IS NULL", True),
    ("profile@traits.missing == NULL", True),
    ("profile@traits.missing EMPTY", True),
    ("profile@nothing EXISTS", False),
    ("profile@nothing IS NULL", True),
    ("profile@nulls EXISTS", False),
    ("profile@empty_list EXISTS", False),
    ("profile@empty_list EMPTY", True),
    ("profile@traits.empty_object EXISTS", False),
    ("profile@traits.object EXISTS", True),
    ("profile@traits.object.a EXISTS", False),
    ("profile@traits.object != NULL", True),
    ("profile@x.y.z EXISTS", False),
    ("profile@traits.age.deeper EXISTS", False),
    # empty
    ("profile@blank EMPTY", True),
    ("profile@blank EXISTS", True),
    ("profile@traits.word EMPTY", False),
    ("profile@traits.tags EMPTY", True),  # one of its values is ""
    ("profile@traits.tags NOT EMPTY", False),
    # arrays: == is membership, != means present and not a member, order holds for one
    ('profile@segments == "vip"', True),
    ('profile@segments == "old"', False),
    ('profile@segments != "vip"', False),
    ('profile@segments != "old"', True),
    ('profile@segments == ["old", "new"]', True),
    ('profile@segments != ["old", "gone"]', True),
    ('profile@segments != ["old", "vip"]', False),
    ("profile@segments == []", False),
    ("profile@segments != []", True),
    ("profile@traits.numbers > 5", True),
    ("profile@traits.numbers BETWEEN 4 AND 6", False),  # one value must lie in the range
    ("profile@traits.numbers BETWEEN 10 AND 1", False),
    ("profile@traits.nested == 3", True),  # nested lists flatten
    ('profile@traits.orders.sku == "y2"', True),  # lists of objects flatten per key
    ("profile@traits.orders.qty == 5", True),
    ("profile@traits.orders.qty > 4", True),
    ("profile@traits.orders.qty > 5", False),
    ("profile@traits.orders.sku EXISTS", True),
    # numbers, and numbers written as strings
    ("profile@traits.age == 30", True),
    ("profile@traits.age == 30.0", True),
    ('profile@traits.age == "30"', True),  # untyped: text, and 30 reads as "30"
    ('profile@traits.ratio == "0.50"', False),  # ... and 0.5 as "0.5"
    ("profile@traits.age > 18", True),
    ("profile@traits.age >= 30", True),
    ("profile@traits.age => 30", True),
    ("profile@traits.age < 30", False),
    ("profile@traits.age =< 30", True),
    ("profile@traits.age BETWEEN 30 AND 30", True),
    ("profile@traits.score > 10", True),  # "12" is a decimal string
    ("profile@traits.padded == 7", True),
    ("profile@traits.ten == 10", True),
    ("profile@traits.word > 0", False),  # not a number: no value to compare
    ("profile@traits.word < 0", False),
    ("profile@traits.vip == 1", False),  # booleans are not numbers
    ("profile@traits.ratio == .5", True),
    ("profile@traits.duration > 10m", True),  # a duration is its length in seconds
    ("profile@traits.duration < 0.2h", True),
    # text: exact, case-sensitive, code-point order
    ('profile@traits.city == "Warsaw"', True),
    ('profile@traits.city == "warsaw"', False),
    ('profile@traits.city == lowercase("WARSAW")', False),
    ('profile@traits.city == uppercase("w") ', False),
    ('profile@traits.word == lowercase("ABC")', True),
    ('profile@traits.city > "V"', True),
    ('profile@traits.city > "a"', False),  # "W" < "a"
    ('profile@traits.zip < "1"', True),
    ('profile@traits.city CONTAINS "rsa"', True),
    ('profile@traits.city CONTAINS "RSA"', False),
    ('profile@traits.city STARTS WITH "War"', True),
    ('profile@traits.city ENDS WITH "saw"', True),
    ('profile@traits.city ENDS WITH "War"', False),
    ('profile@traits.tags CONTAINS "b"', True),
    ('profile@traits.city CONTAINS ""', True),
    ('profile@traits.age CONTAINS "3"', True),  # untyped: the number's text
    # booleans
    ("profile@traits.vip == TRUE", True),
    ("profile@traits.vip != FALSE", True),
    ("profile@traits.flag == TRUE", True),  # "true" reads as true
    ("profile@traits.off == FALSE", True),  # "" reads as false, as Elasticsearch does
    ("profile@traits.word == TRUE", False),
    # dates: instants with millisecond precision; no offset means UTC
    ('profile@metadata.time.insert > now.offset("-30d")', True),
    ("profile@metadata.time.insert > now.offset(-1w)", False),
    ('profile@metadata.time.insert == datetime("2024-05-20T12:00:00+02:00")', True),
    ('profile@metadata.time.insert == datetime("2024-05-20T10:00:00")', True),
    ('profile@metadata.time.insert == datetime("2024-05-20T12:00:00", "Europe/Warsaw")', True),
    ('profile@traits.seen == datetime("2024-05-20T10:00:00Z")', True),  # .0009 s truncated
    ('profile@traits.born < datetime("1990-02-03T00:00:00.001Z")', True),
    ('profile@traits.born == datetime("1990-02-03")', True),
    ("profile@traits.later < now()", False),  # "n/a" is no date
    ("profile@traits.epoch == now()", True),  # a number in a date comparison: epoch ms
    ('profile@traits.epoch == now("Europe/Warsaw")', True),  # same instant in any zone
    ('profile@traits.epoch BETWEEN now.offset("-1s") AND now()', True),
    ('profile@traits.epoch > datetime.offset(now(), "-1d")', True),
    # field against field (Python only)
    ("profile@traits.a == profile@traits.b", True),
    ("profile@traits.a != profile@traits.b", False),
    ("profile@traits.a < profile@traits.b", True),
    ("profile@traits.a == profile@traits.c", False),  # 5 and "5": number and text
    ("profile@traits.a == profile@traits.missing", False),
    ("profile@traits.a != profile@traits.missing", False),
    ("event@properties.value > profile@traits.age", True),
    # other documents
    ('event@type == "purchase"', True),
    ("session@id EXISTS", False),
    ("payload@ok == TRUE", True),
    # structure
    ('profile@traits.age > 18 AND profile@traits.city == "Warsaw"', True),
    ("profile@traits.age > 99 OR profile@traits.age < 50 AND profile@traits.vip == FALSE", False),
    ("(profile@traits.age > 99 OR profile@traits.age < 50) AND profile@traits.vip == TRUE", True),
    ("NOT profile@traits.age > 99 AND profile@traits.vip == TRUE", True),
    ("NOT (profile@traits.age > 18 AND profile@traits.vip == TRUE)", False),
    ("not not profile@traits.vip == true", True),
]


@pytest.mark.parametrize(("text", "expected"), ROWS)
def test_semantics(text: str, expected: bool, clock: Callable[[], datetime]) -> None:
    assert evaluate(text, DOCUMENTS, clock=clock) is expected


def test_warsaw_days_are_calendar_days_across_dst(clock: Callable[[], datetime]) -> None:
    # 2024-03-31 is 23 hours long in Warsaw: +1d keeps the wall clock, +24h does not
    documents = {"profile": {"at": "2024-03-31T10:00:00Z"}}
    by_day = 'profile@at == datetime.offset("2024-03-30T12:00:00", "+1d", "Europe/Warsaw")'
    by_hours = 'profile@at == datetime.offset("2024-03-30T12:00:00", "+24h", "Europe/Warsaw")'
    assert evaluate(by_day, documents, clock=clock)
    assert not evaluate(by_hours, documents, clock=clock)


def test_now_reads_the_clock_when_a_predicate_is_built() -> None:
    condition = Condition('profile@t > now.offset("-1h")')
    documents = {"profile": {"t": "2024-06-01T11:30:00Z"}}
    assert condition.evaluate(documents, lambda: NOW)
    assert not condition.evaluate(documents, lambda: datetime(2024, 6, 2, tzinfo=UTC))
    assert condition.uses_clock


def test_a_condition_without_now_builds_its_predicate_once() -> None:
    condition = compile_condition("profile@a == 1")
    assert not condition.uses_clock
    assert condition.predicate() is condition.predicate()
    assert compile_condition("profile@a == 1") is condition  # text is cached


# typed by a schema: values convert as the mapping's types convert them

SCHEMA = Schema.from_mappings(profile={
    "dynamic": False,
    "properties": {
        "code": {"type": "keyword", "ignore_above": 4},
        "count": {"type": "integer"},
        "age": {"type": "double"},
        "born": {"type": "date"},
        "vip": {"type": "boolean"},
        "aux": {"type": "flattened"},
        "misc": {"type": "object", "enabled": False},
        "traits": {"dynamic": True, "properties": {"city": {"type": "keyword"}}},
        "pii": {"properties": {"name": {"type": "keyword"}, "n": {"type": "double"}}},
        "notes": {"type": "text"},
        "items": {"type": "nested", "properties": {"sku": {"type": "keyword"}}},
        "fixed": {"type": "constant_keyword", "value": "x"},
    },
})

TYPED_ROWS: list[tuple[dict[str, Any], str, bool]] = [
    ({"code": "10"}, "profile@code == 10", True),  # the number's text
    ({"code": "10.0"}, "profile@code == 10", False),
    ({"code": "abcde"}, 'profile@code == "abcde"', False),  # longer than ignore_above
    ({"code": "abcde"}, "profile@code EXISTS", False),
    ({"code": ["abcde", "ab"]}, "profile@code EXISTS", True),
    ({"count": 2.7}, "profile@count == 2", True),  # integer fields truncate
    ({"count": "2.7"}, "profile@count == 2", True),
    ({"count": 2}, "profile@count == 2.5", False),
    ({"count": 2}, "profile@count < 2.5", True),
    ({"count": "abc"}, "profile@count EXISTS", False),
    ({"age": "30"}, 'profile@age == "30"', True),  # a numeric field reads the literal too
    ({"age": ""}, "profile@age EXISTS", False),  # "" is null in a numeric field
    ({"born": "2024-01-01"}, 'profile@born == "2024-01-01T00:00:00Z"', True),
    ({"born": "2024-01-01"}, 'profile@born > "2023-12-31T23:59:59.999Z"', True),
    ({"vip": "true"}, 'profile@vip == "true"', True),
    ({"aux": {"a": {"b": "x"}}}, 'profile@aux == "x"', True),  # every leaf of flattened
    ({"aux": {"a": {"b": "x"}}}, 'profile@aux.a == "x"', False),  # a key holds its leaf
    ({"aux": {"a": {"b": 1}}}, 'profile@aux.a.b == "1"', True),
    ({"aux": {"a": {"b": "x"}}}, "profile@aux.a EXISTS", False),
    ({"traits": {"x": "12"}}, "profile@traits.x > 10", True),  # dynamic: value decides
    ({"pii": {"n": "abc"}}, "profile@pii EXISTS", False),  # closed object: typed leaves
    ({"pii": {"name": "a"}}, "profile@pii EXISTS", True),
    ({"notes": "hello"}, "profile@notes EXISTS", True),
]


@pytest.mark.parametrize(("profile", "text", "expected"), TYPED_ROWS)
def test_typed_semantics(profile: dict[str, Any], text: str, expected: bool) -> None:
    assert Condition(text, SCHEMA).evaluate({"profile": profile}) is expected


ERRORS = [
    # (condition, schema or None, part of the message)
    ("profile@a > NULL", None, "NULL can only be compared with == or !="),
    ("profile@a > [1]", None, "a list can only be compared with == or !="),
    ("profile@a == [[1]]", None, "lists inside lists"),
    ('profile@a BETWEEN 1 AND "z"', None, "both ends must be of one type"),
    ("profile@a CONTAINS 5", None, "CONTAINS needs a string"),
    ("profile@a > TRUE", None, "boolean values have no order"),
    ('profile@a > datetime("garbage")', None, "'garbage' is not an ISO 8601 date"),
    ('profile@a > now("Mars/Base")', None, "unknown time zone 'Mars/Base'"),
    ('profile@a > now.offset("soon")', None, "'soon' is not a duration"),
    ("profile@a > now.offset(5)", None, "expected a duration"),
    ('profile@a == lowercase(5)', None, "expected a string"),
    ("profile@code > 5", SCHEMA, "quote the value to compare text"),
    ("profile@code == now()", SCHEMA, "a date would be compared as text"),
    ("profile@count == 1e12", SCHEMA, "out of range for a integer field"),
    ('profile@count == "many"', SCHEMA, "'many' is not a number"),
    ("profile@born > 5", SCHEMA, "5 is not a date"),
    ('profile@born > "yesterday"', SCHEMA, "'yesterday' is not a date"),
    ('profile@vip == "yes"', SCHEMA, "'yes' is not a boolean"),
    ("profile@vip > TRUE", SCHEMA, "no order"),
    ("profile@misc.x == 1", SCHEMA, "cannot be searched: the object is not indexed"),
    ("profile@misc EXISTS", SCHEMA, "cannot be searched"),
    ("profile@other == 1", SCHEMA, "cannot be searched: it is not in the mapping"),
    ("profile@code.sub == 1", SCHEMA, "code is a keyword field, not an object"),
    ("profile@pii == 1", SCHEMA, "is an object; compare one of its fields"),
    ('profile@notes == "x"', SCHEMA, "does not compare text fields exactly"),
    ('profile@aux.a CONTAINS "x"', SCHEMA, "no wildcard search on a key of a flattened"),
    ('profile@aux.a > "x"', SCHEMA, "use BETWEEN"),
    ('profile@age CONTAINS "1"', SCHEMA, "holds number values"),
    ("profile@code == profile@count", SCHEMA, "different types"),
    ('profile@items.sku == "a"', SCHEMA, "nested object, which needs nested queries"),
    ("profile@items EXISTS", SCHEMA, "nested queries"),
    ('profile@fixed == "x"', SCHEMA, "does not compare constant_keyword fields"),
]


@pytest.mark.parametrize(("text", "schema", "message"), ERRORS)
def test_type_errors_name_the_problem(text: str, schema: Schema | None, message: str) -> None:
    with pytest.raises(TqlError) as caught:
        Condition(text, schema)
    assert message in str(caught.value)
