"""A script outside the subset is refused when it is compiled, naming where, the line,
the column and the construct."""

from __future__ import annotations

import pytest

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.painless import ScriptRefused, compile_script

CASES = [
    # (source, line, column, words of the construct)
    ("ctx._source.a = 1;\nwhile (true) {}", 2, 1, "while loop"),
    ("def i = 0;\ni++;", 2, 2, "'++'"),
    ("def i = 0; i += 1;", 1, 14, "compound assignment '+='"),
    ("ctx._source.x = ctx._source.y.stream();", 1, 31, "method 'stream'"),
    ("Set s = null;", 1, 1, "type 'Set'"),
    ("ctx._source.a = missing;", 1, 17, "variable 'missing'"),
    ("def a = 1;\n  def a = 2;", 2, 7, "variable 'a'"),
    ("ctx = [:];", 1, 1, "assignment to 'ctx'"),
    ("ctx._source.a == 1;", 1, 1, "an expression statement"),
    ("try {} catch (IOException e) {}", 1, 15, "catch (IOException"),
    ("ctx._source.a = 'bad \\n escape';", 1, 17, "escape"),
    ("ctx._source.a = 1", 1, 18, "the end of the script"),
    ("ctx._source.a = = 1;", 1, 17, "'='"),
    ("def f = x -> x;", 1, 11, "lambda"),
    ("return ctx;", 1, 1, "return"),
    ("ctx._source.a = new TreeMap();", 1, 17, "new TreeMap()"),
    ("ctx._source.a = ctx._source.put('a');", 1, 29, "method 'put' with 1 arguments"),
    ("ctx._source.a = 99999999999;", 1, 17, "the number 99999999999"),
    ("ctx._source.a = -2147483649;", 1, 18, "the number 2147483649"),
    # painless refuses a comparison of two null constants ("extraneous comparison")
    ("ctx._source.a = null == null;", 1, 17, "a comparison of two nulls"),
    ("ctx._source.a = (null) != null;", 1, 17, "a comparison of two nulls"),
    # painless's === compares Java references ('x' from a document is not the constant
    # 'x'; 1000 is not 1000), which the interpreter cannot reproduce
    ("ctx._source.a = ctx._source.s === 'x';", 1, 31, "'==='"),
    ("ctx._source.a = [:] !== [:];", 1, 21, "'!=='"),
]


@pytest.mark.parametrize(("source", "line", "column", "construct"), CASES)
def test_a_construct_outside_the_subset_is_refused_at_its_place(
        source: str, line: int, column: int, construct: str) -> None:
    with pytest.raises(ScriptRefused) as caught:
        compile_script(source, "plan 072_to_073 step 6")
    refused = caught.value
    assert isinstance(refused, InvalidInput)
    assert (refused.line, refused.column) == (line, column), str(refused)
    assert construct in refused.construct
    assert str(refused).startswith(f"plan 072_to_073 step 6: line {line}, column {column}: ")
