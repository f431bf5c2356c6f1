"""The oracle itself: what the painless node gives back for a result, a runtime failure
and a refused script, so the differential tests can trust what they compare with."""

from __future__ import annotations

from tests.painless.oracle import Failure, PainlessNode, line_column


def test_line_column_counts_from_one() -> None:
    assert line_column("ab\ncd", 0) == (1, 1)
    assert line_column("ab\ncd", 4) == (2, 2)


def test_a_script_result_is_the_document_it_leaves(painless_node: PainlessNode) -> None:
    result = painless_node.apply("ctx._source.b = params.x; ctx._source.remove('a')",
                                 {"a": 1, "c": [1, None, "x"], "d": {"e": None}}, {"x": 1.5})
    assert result == {"c": [1, None, "x"], "d": {"e": None}, "b": 1.5}


def test_reading_a_field_of_null_is_a_failure_at_its_place(painless_node: PainlessNode) -> None:
    result = painless_node.apply("def a = 1;\nif (ctx._source.data.pii.name != null) { a = 2; }",
                                 {"data": {"pii": None}})
    assert isinstance(result, Failure)
    assert (result.kind, result.exception) == ("runtime error", "null_pointer_exception")
    assert (result.line, result.column) == (2, 25)  # the ".name" read of a null pii


def test_a_script_painless_refuses_is_a_compile_failure(painless_node: PainlessNode) -> None:
    result = painless_node.apply("ctx._source.a = ;", {})
    assert isinstance(result, Failure)
    assert result.kind == "compile error"
    assert result.line == 1
