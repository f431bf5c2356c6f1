"""Document transforms: each op, their errors and parsing."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.roles.upgrade.migration.transforms import (
    Convert,
    Copy,
    Delete,
    Move,
    Set,
    Transform,
    TransformError,
    apply_all,
    parse_transforms,
)

EMAIL = Move("data.contact.email", "data.contact.email.main")


def run(doc: dict[str, Any], *transforms: Transform) -> dict[str, Any]:
    return apply_all(doc, transforms)


def test_move_turns_a_string_into_an_object_holding_it() -> None:
    doc = {"id": "p1", "data": {"contact": {"email": "a@b.c", "phone": "123"}}}
    assert run(doc, EMAIL) == {"id": "p1", "data": {"contact": {"email": {"main": "a@b.c"},
                                                                 "phone": "123"}}}
    assert doc["data"]["contact"]["email"] == "a@b.c"  # the input is left alone


def test_move_creates_objects_and_fills_null_parents() -> None:
    assert run({"a": 1}, Move("a", "x.y.z")) == {"x": {"y": {"z": 1}}}
    assert run({"a": 1, "x": None}, Move("a", "x.y")) == {"x": {"y": 1}}


def test_move_of_a_missing_value_is_a_no_op() -> None:
    doc = {"data": {"pii": {}}}
    assert run(doc, EMAIL, Move("data.pii.name", "data.pii.display_name")) == doc
    # a parent that is not an object holds no such value either
    assert run({"data": "text"}, EMAIL) == {"data": "text"}


def test_move_keeps_a_null_value() -> None:
    assert run({"a": None}, Move("a", "b")) == {"b": None}


def test_move_up_replaces_the_parent() -> None:
    assert run({"a": {"b": {"c": 1}}}, Move("a.b.c", "a.b")) == {"a": {"b": 1}}


def test_move_onto_itself_changes_nothing() -> None:
    assert run({"a": 1}, Move("a", "a")) == {"a": 1}


def test_move_under_a_scalar_is_an_error_naming_the_path() -> None:
    doc = {"a": 1, "x": "text"}
    with pytest.raises(TransformError) as caught:
        run(doc, Move("a", "x.y"))
    assert "x.y" in caught.value.reason and "'text'" in caught.value.reason
    assert doc == {"a": 1, "x": "text"}


def test_copy_keeps_the_source_and_copies_deeply() -> None:
    result = run({"a": {"b": [1]}}, Copy("a", "c"))
    assert result == {"a": {"b": [1]}, "c": {"b": [1]}}
    result["c"]["b"].append(2)
    assert result["a"]["b"] == [1]
    assert run({}, Copy("a", "c")) == {}


def test_copy_under_a_kept_string_is_an_error() -> None:
    # unlike move, copy keeps the string, which cannot hold a field
    with pytest.raises(TransformError, match=re.escape("a.main: cannot write under 'a'")):
        run({"a": "x"}, Copy("a", "a.main"))
    assert run({"a": {"b": 1}}, Copy("a", "a.c")) == {"a": {"b": 1, "c": {"b": 1}}}


def test_set_writes_and_default_writes_only_absent_or_null() -> None:
    assert run({}, Set("a.b", [1])) == {"a": {"b": [1]}}
    assert run({"a": 1}, Set("a", None)) == {"a": None}
    assert run({"a": 1}, Set("a", 2, default=True)) == {"a": 1}
    assert run({"a": None}, Set("a", 2, default=True)) == {"a": 2}
    assert run({}, Set("a", 2, default=True)) == {"a": 2}
    # 0 and "" are values, not absent
    assert run({"a": 0}, Set("a", 2, default=True)) == {"a": 0}


def test_set_does_not_share_its_value_between_documents() -> None:
    transform = Set("tags", [])
    first = run({}, transform)
    first["tags"].append("x")
    assert run({}, transform) == {"tags": []}


def test_delete() -> None:
    doc = {"data": {"ec": {"order": {"cost": {"tax": 1, "value": 2}}}}}
    assert run(doc, Delete("data.ec.order.cost.tax")) == {
        "data": {"ec": {"order": {"cost": {"value": 2}}}}}
    assert run({}, Delete("data.ec.order.cost.tax")) == {}
    assert run({"data": None}, Delete("data.x")) == {"data": None}


@pytest.mark.parametrize(("to", "value", "expected"), [
    ("string", 12, "12"), ("string", 1.5, "1.5"), ("string", True, "true"),
    ("string", "x", "x"),
    ("integer", "42", 42), ("integer", " -7 ", -7), ("integer", 3.0, 3), ("integer", 5, 5),
    ("integer", "3.0", 3),
    ("float", "1.25", 1.25), ("float", 2, 2.0),
    ("boolean", "yes", True), ("boolean", "FALSE", False), ("boolean", 1, True),
    ("boolean", "0", False), ("boolean", True, True),
    ("date", "2024-03-05T10:00:00+02:00", "2024-03-05T08:00:00+00:00"),
    ("date", "2024-03-05 10:00:00", "2024-03-05T10:00:00+00:00"),
    ("date", "2024-03-05T10:00:00Z", "2024-03-05T10:00:00+00:00"),
    ("date", 1709632800000, "2024-03-05T10:00:00+00:00"),
    ("date", "1709632800000", "2024-03-05T10:00:00+00:00"),
    ("date", 1709632800500.0, "2024-03-05T10:00:00.500000+00:00"),
])
def test_convert(to: str, value: object, expected: object) -> None:
    result = run({"a": {"b": value}}, Convert("a.b", to))
    assert result == {"a": {"b": expected}}
    assert type(result["a"]["b"]) is type(expected)


@pytest.mark.parametrize(("to", "value"), [
    ("integer", "abc"), ("integer", 1.5), ("integer", True), ("integer", [1]),
    ("float", "abc"), ("float", "nan"), ("float", {"x": 1}),
    ("boolean", "maybe"), ("boolean", 2),
    ("date", "yesterday"), ("date", True), ("date", 10**20),
    ("string", {"x": 1}),
])
def test_convert_errors_name_path_and_value(to: str, value: object) -> None:
    with pytest.raises(TransformError) as caught:
        run({"a": {"b": value}}, Convert("a.b", to))
    assert caught.value.reason.startswith("a.b: cannot convert ")
    assert repr(value) in caught.value.reason and to in caught.value.reason


def test_convert_leaves_missing_and_null_alone() -> None:
    assert run({}, Convert("a", "integer")) == {}
    assert run({"a": None}, Convert("a", "date")) == {"a": None}


def test_transforms_apply_in_order() -> None:
    doc = {"name": "Ann"}
    result = run(doc, Copy("name", "pii.name"), Move("pii.name", "pii.display_name"),
                 Delete("name"), Set("pii.name", "?", default=True))
    assert result == {"pii": {"display_name": "Ann", "name": "?"}}


def test_apply_all_leaves_the_input_alone_on_error() -> None:
    doc = {"a": "x", "b": "y"}
    before = copy.deepcopy(doc)
    with pytest.raises(TransformError):
        run(doc, Move("a", "c"), Convert("b", "integer"))
    assert doc == before


def test_transform_error_is_the_daemons_error() -> None:
    assert issubclass(TransformError, InvalidInput)


# parsing


def test_parse_every_op_and_round_trip() -> None:
    raw = [
        {"op": "move", "from": "data.contact.email", "to": "data.contact.email.main"},
        {"op": "copy", "from": "a", "to": "b"},
        {"op": "set", "path": "data.anonymous", "value": None},
        {"op": "set", "path": "tags", "value": ["x"], "default": True},
        {"op": "delete", "path": "mapping"},
        {"op": "convert", "path": "metadata.time.insert", "to": "date"},
    ]
    transforms = parse_transforms(raw, "step 'profile'")
    assert transforms == (EMAIL, Copy("a", "b"), Set("data.anonymous", None),
                          Set("tags", ["x"], True), Delete("mapping"),
                          Convert("metadata.time.insert", "date"))
    assert parse_transforms([t.to_dict() for t in transforms], "x") == transforms


def test_parse_nothing() -> None:
    assert parse_transforms(None, "step 'a'") == ()
    assert parse_transforms([], "step 'a'") == ()


@pytest.mark.parametrize(("raw", "message"), [
    ([{"op": "move", "from": "a", "to": "a b"}],
     "step 'profile': field 'transforms[0].to' must be a dotted path"),
    ([{"op": "delete", "path": "ok"}, {"op": "delete", "path": "a..b"}],
     "step 'profile': field 'transforms[1].path' must be a dotted path"),
    ([{"op": "delete", "path": "a"}, {"op": "delete", "path": "b"},
      {"op": "move", "from": "c", "to": 3}],
     "step 'profile': field 'transforms[2].to' must be a dotted path"),
    ([{"op": "rename", "path": "a"}],
     "step 'profile': field 'transforms[0].op' must be one of move, copy, set, delete, "
     "convert, got 'rename'"),
    ([{"move": {"from": "a", "to": "b"}}],
     "step 'profile': field 'transforms[0].op' must be one of"),
    ([{"op": "move", "from": "a", "to": "b", "path": "c"}],
     "step 'profile': field 'transforms[0].path' is not a field of move"),
    ([{"op": "convert", "path": "a", "to": "number"}],
     "step 'profile': field 'transforms[0].to' must be one of string, integer, float, "
     "boolean, date, got 'number'"),
    ([{"op": "set", "path": "a"}], "step 'profile': field 'transforms[0].value' is required"),
    ([{"op": "set", "path": "a", "value": 1, "default": "yes"}],
     "step 'profile': field 'transforms[0].default' must be true or false"),
    (["move a b"], "step 'profile': field 'transforms[0]' must be a table/object"),
    ({"op": "move"}, "step 'profile': field 'transforms' must be a list"),
])
def test_parse_errors_name_where_index_and_field(raw: object, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_transforms(raw, "step 'profile'")
    assert str(caught.value).startswith(message)


def test_set_refuses_values_json_cannot_hold() -> None:
    from datetime import date

    with pytest.raises(InvalidInput, match=r"transforms\[0\].value"):
        parse_transforms([{"op": "set", "path": "a", "value": date(2024, 1, 1)}], "step 'x'")
