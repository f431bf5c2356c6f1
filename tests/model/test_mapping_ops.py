"""The mapping ops: tables of every op against every kind of prior value, and a property
test against a reference model written separately from the spec."""

from __future__ import annotations

import copy
import math
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.model.mapping_reference import OBJECT, PATHS, flatten, model_apply, model_read
from tracardi_daemon.model.mapping_ops import (
    MISSING,
    OPERATIONS,
    MappingConflict,
    apply_op,
    is_copyable,
    read_path,
)

CONFLICT = "conflict"  # expected outcome: MappingConflict, document unchanged

PRIORS: dict[str, Any] = {
    "absent": MISSING,
    "null": None,
    "blank": "  ",
    "empty_list": [],
    "empty_object": {},
    "string": "text",
    "zero": 0,
    "false": False,
    "number": 7,
    "list": ["a", 1],
    "object": {"k": "v"},
}
NEW_LIST = ["x", "x", None, "a"]  # duplicates and a null


def run(prior: Any, op: str, value: Any = MISSING) -> tuple[Any, bool]:
    """Apply ``op`` at traits.x over ``prior``; the value left there and the changed flag."""
    document: dict[str, Any] = {"id": "p1", "traits": {}}
    if prior is not MISSING:
        document["traits"]["x"] = copy.deepcopy(prior)
    changed = apply_op(document, op, "traits.x", value)
    assert document["id"] == "p1"
    return read_path(document, "traits.x"), changed


def check(prior: str, op: str, value: Any, expected: Any, changed: bool | None = None) -> None:
    if expected == CONFLICT:
        document: dict[str, Any] = {"traits": {}}
        if PRIORS[prior] is not MISSING:
            document["traits"]["x"] = copy.deepcopy(PRIORS[prior])
        before = copy.deepcopy(document)
        with pytest.raises(MappingConflict):
            apply_op(document, op, "traits.x", value)
        assert document == before
        return
    result, was_changed = run(PRIORS[prior], op, value)
    assert strict(result) == strict(expected)
    assert was_changed is changed


def strict(value: Any) -> Any:
    """A form where True, 1 and 1.0 all differ, for asserting exact documents."""
    if isinstance(value, dict):
        return ("object", sorted((key, strict(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("list", [strict(item) for item in value])
    return (type(value).__name__, value)


# ---------------------------------------------------------------- equals


@pytest.mark.parametrize("prior", PRIORS)
def test_equals_writes_a_string_over_anything(prior: str) -> None:
    check(prior, "equals", "new", "new", changed=True)


@pytest.mark.parametrize(
    ("prior", "value", "expected", "changed"),
    [
        ("absent", 0, 0, True),
        ("null", 0, 0, True),
        ("zero", 0, 0, False),
        ("false", 0, 0, True),  # a bool is not the number 0
        ("number", 0, 0, True),
        ("absent", False, False, True),
        ("zero", False, False, True),
        ("false", False, False, False),
        ("string", "text", "text", False),
        ("blank", NEW_LIST, NEW_LIST, True),  # equals stores the list as given
        ("list", ["a", 1], ["a", 1], False),
        ("list", ["a", True], ["a", True], True),
        ("object", {"k": "w"}, {"k": "w"}, True),
        ("object", {"k": "v"}, {"k": "v"}, False),
        ("empty_object", {"k": "w"}, {"k": "w"}, True),
        ("number", 7.0, 7, False),  # numbers compare by value: 7 stays
    ],
)
def test_equals(prior: str, value: Any, expected: Any, changed: bool) -> None:
    check(prior, "equals", value, expected, changed)


def test_equals_true_over_one_is_a_change() -> None:
    document: dict[str, Any] = {"a": 1}
    assert apply_op(document, "equals", "a", True)
    assert document["a"] is True


def test_equals_stores_a_copy() -> None:
    value: dict[str, Any] = {"tags": ["a"]}
    document: dict[str, Any] = {}
    apply_op(document, "equals", "traits.x", value)
    value["tags"].append("b")
    assert document == {"traits": {"x": {"tags": ["a"]}}}


# ---------------------------------------------------------------- equals_if_not_exists

EMPTY_PRIORS = ["absent", "null", "blank", "empty_list", "empty_object"]
FILLED_PRIORS = ["string", "zero", "false", "number", "list", "object"]


@pytest.mark.parametrize("prior", EMPTY_PRIORS)
@pytest.mark.parametrize("value", ["new", 0, False, NEW_LIST, {"k": "w"}])
def test_equals_if_not_exists_fills_an_empty_field(prior: str, value: Any) -> None:
    check(prior, "equals_if_not_exists", value, value, changed=True)


@pytest.mark.parametrize("prior", FILLED_PRIORS)
@pytest.mark.parametrize("value", ["new", 0, False, NEW_LIST, {"k": "w"}])
def test_equals_if_not_exists_keeps_an_existing_value(prior: str, value: Any) -> None:
    check(prior, "equals_if_not_exists", value, PRIORS[prior], changed=False)


# ---------------------------------------------------------------- append


@pytest.mark.parametrize(
    ("prior", "expected"),
    [
        ("absent", ["new"]),
        ("null", ["new"]),  # Tracardi gives [None, "new"]
        ("blank", ["  ", "new"]),  # a blank string is a string
        ("empty_list", ["new"]),
        ("empty_object", CONFLICT),
        ("string", ["text", "new"]),
        ("zero", [0, "new"]),
        ("false", [False, "new"]),
        ("number", [7, "new"]),
        ("list", ["a", 1, "new"]),
        ("object", CONFLICT),
    ],
)
def test_append_a_string(prior: str, expected: Any) -> None:
    check(prior, "append", "new", expected, changed=True)


@pytest.mark.parametrize(
    ("prior", "value", "expected", "changed"),
    [
        ("absent", NEW_LIST, ["x", "a"], True),
        ("null", NEW_LIST, ["x", "a"], True),
        ("list", NEW_LIST, ["a", 1, "x"], True),
        ("string", NEW_LIST, ["text", "x", "a"], True),
        ("empty_object", NEW_LIST, CONFLICT, None),
        ("list", "a", ["a", 1], False),
        ("list", 1, ["a", 1], False),
        ("list", True, ["a", 1, True], True),  # True is not 1
        ("list", 1.0, ["a", 1], False),
        ("zero", 0, [0], True),  # nothing added, but the scalar became a list
        ("zero", False, [0, False], True),
        ("false", 0, [False, 0], True),
        ("false", False, [False], True),
        ("absent", 0, [0], True),
        ("absent", False, [False], True),
        ("absent", {"k": "w"}, [{"k": "w"}], True),
        ("absent", [{"k": "w"}, {"k": "w"}], [{"k": "w"}], True),
        ("absent", [["n"], ["n"]], [["n"]], True),
        ("object", {"k": "w"}, CONFLICT, None),
        ("absent", [None], MISSING, False),  # nothing to add: no empty list appears
        ("null", [None], None, False),
        ("empty_list", [None], [], False),
        ("list", [None, "a"], ["a", 1], False),
    ],
)
def test_append(prior: str, value: Any, expected: Any, changed: bool | None) -> None:
    check(prior, "append", value, expected, changed)


def test_append_to_a_list_of_objects_compares_by_value() -> None:
    document: dict[str, Any] = {"t": [{"k": "v", "n": 1}]}
    assert not apply_op(document, "append", "t", {"n": 1, "k": "v"})
    assert apply_op(document, "append", "t", {"n": True, "k": "v"})
    assert document == {"t": [{"k": "v", "n": 1}, {"k": "v", "n": True}]}


def test_append_keeps_what_was_already_in_the_list() -> None:
    document: dict[str, Any] = {"t": ["a", "a", None]}
    assert apply_op(document, "append", "t", ["a", "b"])
    assert document == {"t": ["a", "a", None, "b"]}


def test_append_to_an_object_names_the_path() -> None:
    with pytest.raises(MappingConflict) as caught:
        apply_op({"traits": {"x": {}}}, "append", "traits.x", "a")
    assert caught.value.reason == "cannot append to an object at 'traits.x'"


# ---------------------------------------------------------------- increment / decrement

NON_NUMBERS = ["blank", "empty_list", "empty_object", "string", "false", "list", "object"]


@pytest.mark.parametrize(
    ("prior", "expected"),
    [("absent", 1), ("null", 1), ("zero", 1), ("number", 8)]
    + [(prior, CONFLICT) for prior in NON_NUMBERS],
)
def test_increment_without_value_adds_one(prior: str, expected: Any) -> None:
    check(prior, "increment", MISSING, expected, changed=True)


@pytest.mark.parametrize(
    ("prior", "expected"),
    [("absent", -1), ("null", -1), ("zero", -1), ("number", 6)]
    + [(prior, CONFLICT) for prior in NON_NUMBERS],
)
def test_decrement_without_value_subtracts_one(prior: str, expected: Any) -> None:
    check(prior, "decrement", MISSING, expected, changed=True)


@pytest.mark.parametrize(
    ("op", "prior", "value", "expected", "changed"),
    [
        ("increment", "number", 2, 9, True),
        ("increment", "number", 2.5, 9.5, True),
        ("increment", "number", 1.0, 8.0, True),  # a float step gives a float
        ("increment", "number", -7, 0, True),
        ("decrement", "number", 2, 5, True),
        ("decrement", "absent", 0.5, -0.5, True),
        ("increment", "number", 0, 7, False),
        ("decrement", "number", 0.0, 7, False),
        ("increment", "absent", 0, MISSING, False),  # no 0 appears for a step of 0
        ("increment", "null", 0, None, False),
        ("increment", "number", "1", CONFLICT, None),
        ("increment", "number", True, CONFLICT, None),
        ("increment", "number", None, CONFLICT, None),
        ("increment", "number", [1], CONFLICT, None),
        ("decrement", "string", 0, CONFLICT, None),  # a step of 0 does not hide a conflict
    ],
)
def test_increment_and_decrement(
    op: str, prior: str, value: Any, expected: Any, changed: bool | None
) -> None:
    check(prior, op, value, expected, changed)


def test_increment_messages_name_op_path_and_type() -> None:
    with pytest.raises(MappingConflict) as caught:
        apply_op({"stats": {"visits": 1}}, "increment", "stats.visits", "2")
    assert caught.value.reason == "increment of 'stats.visits' needs a number, got string"
    with pytest.raises(MappingConflict) as caught:
        apply_op({"stats": {"visits": "many"}}, "decrement", "stats.visits")
    assert caught.value.reason == "cannot decrement 'stats.visits': it holds a string, not a number"


@pytest.mark.parametrize(
    ("prior", "step"), [(1e308, 1e308), (math.inf, 1), (math.nan, 1), (10**400, 1.5)]
)
def test_increment_to_a_non_finite_number_is_a_conflict(prior: float, step: float) -> None:
    document: dict[str, Any] = {"n": prior}
    with pytest.raises(MappingConflict):
        apply_op(document, "increment", "n", step)
    assert document["n"] is prior


# ---------------------------------------------------------------- delete


@pytest.mark.parametrize("prior", PRIORS)
def test_delete_removes_the_field(prior: str) -> None:
    check(prior, "delete", "ignored", MISSING, changed=prior != "absent")


@pytest.mark.parametrize("holder", [None, "text", 3, False, ["a"]])
def test_delete_through_a_non_object_changes_nothing(holder: Any) -> None:
    document: dict[str, Any] = {"a": holder}
    assert not apply_op(document, "delete", "a.b.c")
    assert document == {"a": holder}


# ---------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("holder", "kind"),
    [
        ("text", "a string"),
        (3, "a number"),
        (2.5, "a number"),
        (False, "a boolean"),
        (["a"], "a list"),
    ],
)
@pytest.mark.parametrize(
    ("op", "value"),
    [
        ("equals", "v"),
        ("equals_if_not_exists", "v"),
        ("append", "v"),
        ("increment", 1),
        ("decrement", MISSING),
    ],
)
def test_path_conflict_leaves_the_document_unchanged(
    holder: Any, kind: str, op: str, value: Any
) -> None:
    document: dict[str, Any] = {"data": {"contact": holder, "other": 1}}
    before = copy.deepcopy(document)
    with pytest.raises(MappingConflict) as caught:
        apply_op(document, op, "data.contact.email.main", value)
    assert caught.value.reason == f"path conflict: 'data.contact' holds {kind}, not an object"
    assert document == before


def test_writing_creates_missing_objects_and_replaces_a_null_one() -> None:
    document: dict[str, Any] = {"data": None}
    assert apply_op(document, "equals", "data.contact.email.main", "a@b.c")
    assert apply_op(document, "increment", "stats.visits")
    assert document == {"data": {"contact": {"email": {"main": "a@b.c"}}}, "stats": {"visits": 1}}


def test_read_path() -> None:
    document: dict[str, Any] = {"a": {"b": {"c": 0}, "n": None, "s": "x", "l": [{"c": 1}]}}
    assert read_path(document, "a.b.c") == 0
    assert read_path(document, "a.n") is None
    assert read_path(document, "a.b") is document["a"]["b"]
    assert read_path(document, "a.missing") is MISSING
    assert read_path(document, "a.n.c") is MISSING
    assert read_path(document, "a.s.c") is MISSING
    assert read_path(document, "a.l.0.c") is MISSING  # lists are not indexed


@pytest.mark.parametrize(
    ("value", "copyable"),
    [
        (MISSING, False),
        (None, False),
        ("", False),
        (" \t\n", False),
        ([], False),
        ({}, False),
        (0, True),
        (0.0, True),
        (False, True),
        ("a", True),
        ([None], True),
        ({"k": None}, True),
    ],
)
def test_is_copyable(value: Any, copyable: bool) -> None:
    assert is_copyable(value) is copyable


@pytest.mark.parametrize("op", ["equals", "equals_if_not_exists", "append"])
@pytest.mark.parametrize("value", [MISSING, None, "  ", [], {}])
def test_copying_ops_refuse_values_the_caller_skips(op: str, value: Any) -> None:
    with pytest.raises(ValueError, match="skips"):
        apply_op({}, op, "a", value)


@pytest.mark.parametrize(("op", "path"), [("replace", "a"), ("equals", "a..b"), ("equals", "")])
def test_unknown_op_or_malformed_path_is_a_programming_error(op: str, path: str) -> None:
    with pytest.raises(ValueError):
        apply_op({}, op, path, "v")


def test_missing_is_one_readable_object() -> None:
    assert repr(MISSING) == "MISSING"
    assert copy.deepcopy(MISSING) is MISSING
    assert pickle.loads(pickle.dumps(MISSING)) is MISSING
    assert set(OPERATIONS) == {
        "equals",
        "equals_if_not_exists",
        "append",
        "increment",
        "decrement",
        "delete",
    }



# few distinct values, so that equal ones, and True beside 1, meet often
numbers = st.one_of(
    st.integers(-1, 2),
    st.sampled_from([0.0, 1.0, -2.5, 1e308, -1e308, math.inf]),
    st.floats(allow_nan=False),
)
texts = st.sampled_from(["a", "b", " a", "ab"])
scalars = st.one_of(
    st.none(), st.sampled_from(["", " ", " \t", "\n"]), numbers, st.booleans(), texts
)
member_keys = st.sampled_from(["b", "x", "k"])
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(member_keys, scalars, max_size=3),
)


def optional_fields(names: str, field: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Objects where each of ``names`` may be present: the op's path is often there."""
    return st.fixed_dictionaries({}, optional=dict.fromkeys(names, field))


# numbers again so that increment and decrement often meet one
documents = optional_fields(
    "atz", st.one_of(numbers, values, optional_fields("bxk", st.one_of(numbers, values)))
)
# values the copying ops take, built directly: filtering `values` would discard too many
filled_values = st.one_of(
    numbers,
    st.booleans(),
    texts,
    st.lists(scalars, min_size=1, max_size=4),
    st.dictionaries(member_keys, scalars, min_size=1, max_size=3),
)
FITTING = {
    "increment": numbers,
    "decrement": numbers,
    "append": st.one_of(st.lists(scalars, min_size=1, max_size=4), filled_values),
}


@st.composite
def cases(draw: st.DrawFn, op: str) -> tuple[dict[str, Any], str, Any]:
    """A document, a path and a value for ``op``. The path often exists and the value is
    often one already in the document (the one at the path, or an element of a list), so
    that "no change" and "already in the list" come up; mostly the value is one the op
    takes (the caller's contract), now and then one it refuses."""
    document = draw(documents)
    flat = flatten(document)
    existing = [path for path in PATHS if model_read(flat, path)[1] is not MISSING]
    prefer_existing = bool(existing) and draw(st.booleans())
    path = draw(st.sampled_from(existing if prefer_existing else PATHS))
    here = model_read(flat, path)[1]
    present = [value for value in flat.values() if value is not OBJECT] + [here]
    present += [item for value in present if type(value) is list for item in value]
    fitting = FITTING.get(op, filled_values)
    choices = [fitting, st.just(here), st.sampled_from(present), values, st.just(MISSING)]
    return document, path, draw(st.one_of(choices))


# about 300 examples in all, spread evenly over the ops
EACH_OP = settings(max_examples=50, derandomize=True, deadline=None)


@pytest.mark.parametrize("op", OPERATIONS)
@EACH_OP
@given(data=st.data())
def test_apply_op_agrees_with_the_reference_model(op: str, data: st.DataObject) -> None:
    document, path, value = data.draw(cases(op))
    expected = model_apply(copy.deepcopy(document), op, path, value)
    actual = copy.deepcopy(document)
    if isinstance(expected, type):
        with pytest.raises(expected):
            apply_op(actual, op, path, value)
        assert strict(actual) == strict(document)
        return
    expected_document, expected_changed = expected
    changed = apply_op(actual, op, path, value)
    assert (strict(actual), changed) == (strict(expected_document), expected_changed)


@pytest.mark.parametrize("op", ["equals", "append"])
@settings(max_examples=150, derandomize=True, deadline=None)
@given(data=st.data())
def test_equals_and_append_twice_equal_once(op: str, data: st.DataObject) -> None:
    document, path, value = data.draw(cases(op))
    if not is_copyable(value):
        return
    try:
        apply_op(document, op, path, value)
    except MappingConflict:
        return
    once = copy.deepcopy(document)
    assert not apply_op(document, op, path, value)
    assert strict(document) == strict(once)
