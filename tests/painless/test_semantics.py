"""Painless's semantics where Python's differ: nulls, Java numerics, equality, string
conversion, casts; a runtime exception names its Java class, line and column."""

from __future__ import annotations

import pytest

from tests.painless.helpers import failure, source_after, value_of
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.painless import ScriptFailed


def test_reading_a_field_of_a_null_map_is_a_null_pointer_exception() -> None:
    failed = failure("def x = 1;\nctx._source.v = ctx._source.data.pii.name;", {"data": None})
    assert (failed.exception, failed.line, failed.column) == ("NullPointerException", 2, 34)
    assert isinstance(failed, InvalidInput)
    assert "line 2, column 34" in str(failed) and "NullPointerException" in str(failed)


def test_a_missing_map_is_null_too() -> None:
    assert failure("ctx._source.v = ctx._source.data.pii;", {}).exception == (
        "NullPointerException")


def test_writing_a_field_of_null_and_calling_a_method_on_null_throw() -> None:
    assert failure("ctx._source.data.x = 1;").exception == "NullPointerException"
    failed = failure("ctx._source.data.remove('x');")
    assert failed.exception == "NullPointerException" and "remove" in failed.detail


def test_get_of_a_missing_key_is_null() -> None:
    assert value_of("ctx._source.get('absent')") is None
    assert value_of("ctx._source.absent") is None


def test_string_equality_compares_values() -> None:
    after = source_after("ctx._source.v = ctx._source.a == 'x' + 'y';", {"a": "xy"})
    assert after["v"] is True


def test_integer_and_double_arithmetic_as_java() -> None:
    assert value_of("[7 / 2, -7 / 2, 7 % -2, -7 % 2, 7 / 2.0, 1 + 2.5, 2 * 3]") == [
        3, -3, 1, -1, 3.5, 3.5, 6]
    assert value_of("2147483647 + 1") == -2147483648  # int overflow wraps
    # a number is an int when it fits 32 bits (as Elasticsearch reads a document), else a
    # long, whose arithmetic wraps at 64 bits
    after = source_after("ctx._source.v = ctx._source.big + 1;", {"big": 2**31})
    assert after["v"] == 2**31 + 1
    assert value_of("9223372036854775807L + 1") == -(2**63)
    assert value_of("1.0 / 0") == float("inf")
    assert failure("ctx._source.v = 1 / 0;").exception == "ArithmeticException"


def test_concatenation_with_null_and_other_values() -> None:
    assert value_of("'a' + null") == "anull"
    assert value_of("null + 'a'") == "nulla"
    assert value_of("'n=' + 1 + 2") == "n=12"
    assert value_of("1 + 2 + '=n'") == "3=n"
    assert value_of("'' + true + 1.0 + 1e7 + [1, 2] + ['k': 'v']") == (
        "true1.01.0E7[1, 2]{k=v}")


def test_arithmetic_on_null_and_on_strings_throws() -> None:
    assert failure("ctx._source.v = ctx._source.n + 1;").exception == "NullPointerException"
    assert failure("ctx._source.v = 'a' - 1;").exception == "ClassCastException"
    assert failure("ctx._source.v = 'a' < 'b';").exception == "ClassCastException"


def test_a_typed_variable_refuses_a_value_of_another_type() -> None:
    failed = failure("String x = null;\nx = ctx._source.email;", {"email": {"main": "a@b"}})
    assert (failed.exception, failed.line) == ("ClassCastException", 2)
    assert failure("Map m = 'text';").exception == "ClassCastException"
    assert failure("int i = ctx._source.none;").exception == "NullPointerException"
    assert failure("int i = 1.5;").exception == "ClassCastException"


def test_conditions_must_be_boolean() -> None:
    assert failure("if (ctx._source.none) {}").exception == "NullPointerException"
    assert failure("if (1) {}").exception == "ClassCastException"
    assert failure("ctx._source.v = !'x';").exception == "ClassCastException"


def test_equality_across_types() -> None:
    # (two null constants are not compared: painless refuses that, see test_refusals)
    assert value_of("[1 == 1L, 1 == 1.0, true == 1, ctx._source.none == null, null != 'a', "
                    "1.equals(1.0), [1] == [1], ['a': 1] == ['a': 1]]") == [
        True, True, False, True, True, False, True, True]


def test_unknown_methods_of_a_value_throw_illegal_argument() -> None:
    failed = failure("ctx._source.v = 'x'.size();")
    assert failed.exception == "IllegalArgumentException" and "size/0" in failed.detail
    assert failure("ctx._source.v = 'x'.field;").exception == "IllegalArgumentException"


def test_index_out_of_bounds_and_list_remove_by_index() -> None:
    assert failure("ctx._source.v = [1][3];").exception == "IndexOutOfBoundsException"
    assert failure("def a = new String[] {}; ctx._source.v = a[0];").exception == (
        "ArrayIndexOutOfBoundsException")
    assert failure("ctx._source.l.remove('a');", {"l": ["a"]}).exception == (
        "ClassCastException")


def test_putall_shares_the_nested_maps_as_java_does() -> None:
    # row.putAll copies one level: a change under row.data is seen in ctx._source.data
    after = source_after("Map row = new HashMap(); row.putAll(ctx._source); "
                         "row.data.x = 1; ctx._source.seen = ctx._source.data.x;", {"data": {}})
    assert after == {"data": {"x": 1}, "seen": 1}


def test_an_uncaught_failure_leaves_the_error_to_the_caller() -> None:
    with pytest.raises(ScriptFailed, match=r"line 1, column 31: NullPointerException"):
        source_after("ctx._source.a = ctx._source.b.c;")


def test_the_least_int_and_long_are_literals_under_a_minus() -> None:
    # painless folds the minus into the constant: -2147483648 is an int, not a refusal
    assert value_of("[-2147483648, -2147483648 - 1, -(2147483648), -9223372036854775808L]") == [
        -(2**31), 2**31 - 1, -(2**31), -(2**63)]


def test_substring_of_a_non_number_or_null_throws_as_painless() -> None:
    assert failure("ctx._source.v = ctx._source.s.substring(ctx._source.s);",
                   {"s": "x"}).exception == "ClassCastException"
    assert failure("ctx._source.v = ctx._source.s.substring(ctx._source.z, 1);",
                   {"s": "x"}).exception == "NullPointerException"
