"""Every painless script of Tracardi's ten upgrade plans, run by the interpreter and by a
real painless node on the same documents: hand-written ones for the index each step
copies (every touched path present, missing, null, empty, of the wrong kind) and
generated ones; they must leave the same document, or both fail with the same exception.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.painless.differential import check_agrees
from tests.painless.documents import documents
from tests.painless.oracle import PainlessNode
from tests.painless.plan_documents import SHAPES, hand_written
from tests.painless.plans import PLANS_DIR, PlanScript, plan_scripts

# each example is a batch of documents sent to the node in one round trip
EXAMPLES_PER_SCRIPT, DOCUMENTS_PER_EXAMPLE = 4, 15


def _unique_scripts() -> list[PlanScript]:
    """The plans' scripts, each (source, index) once: several steps repeat a script."""
    if not PLANS_DIR.is_dir():
        return []
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in plan_scripts():
        if (script.source, script.index) not in seen:
            seen.add((script.source, script.index))
            unique.append(script)
    return unique


SCRIPTS = _unique_scripts()
SCRIPT_IDS = [f"{script.plan}-{script.step}-{script.index}" for script in SCRIPTS]


def _shape_of(script: PlanScript) -> str:
    return script.index.removeprefix("tracardi-")


def test_every_plan_script_is_compared() -> None:
    every = plan_scripts()
    assert len(every) == 42, f"Tracardi's plans hold {len(every)} painless steps, not 42"
    assert {(each.source, each.index) for each in every} == {
        (each.source, each.index) for each in SCRIPTS}
    assert {_shape_of(each) for each in SCRIPTS} <= set(SHAPES)


@pytest.mark.parametrize("script", SCRIPTS, ids=SCRIPT_IDS)
def test_hand_written_documents(painless_node: PainlessNode, script: PlanScript) -> None:
    labelled = hand_written(_shape_of(script))
    check_agrees(painless_node, script.source, [document for _, document in labelled],
                 labels=[label for label, _ in labelled])


@pytest.mark.parametrize("script", SCRIPTS, ids=SCRIPT_IDS)
# no shrinking: every example is a round trip to the node, and the hand-written
# documents are the small ones
@settings(max_examples=EXAMPLES_PER_SCRIPT, derandomize=True, deadline=None,
          phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_generated_documents(painless_node: PainlessNode, script: PlanScript,
                             data: st.DataObject) -> None:
    batch: list[dict[str, Any]] = data.draw(st.lists(
        documents(SHAPES[_shape_of(script)]), min_size=DOCUMENTS_PER_EXAMPLE,
        max_size=DOCUMENTS_PER_EXAMPLE), label="documents")
    check_agrees(painless_node, script.source, batch)


# a document with a value of every kind, and a mostly empty one, for the constructs
CONSTRUCT_DOCUMENTS: list[dict[str, Any]] = [
    {"s": "x", "n": 5, "d": 2.5, "m": {"k": "v"}, "l": [1, "a", None], "z": None,
     "big": 2**31 + 5, "b": True, "e": "", "five": 5.0, "neg": -7, "max": 2**31 - 1},
    {"n": 0, "e": "", "m": {}, "l": []},
]
# name -> a small script: each construct of the interpreter's subset, and its edges
CONSTRUCTS: dict[str, str] = {
    "typed declarations": (
        'Map m = new HashMap(); String s = "a"; def d = 1; int i = 2; long l = 3L; '
        'double x = 1.5; boolean b = true; List items = [1, 2]; '
        'ctx._source.v = [m, s, d, i, l, x, b, items];'),
    "declarations without a value": "Map e; String n; int i; double x; boolean b; "
                                    "ctx._source.v = [e, n, i, x, b];",
    "several declarators": "def a = 1, b = a + 1; ctx._source.v = b;",
    "arrays": "String[] a = new String[] {'rest', 'api'}; int[] c = new int[2]; "
              "ctx._source.v = [new String[] {}, a, c, a.length, a[1]];",
    "map and list literals": "ctx._source.v = [[:], ['a': 1, \"b\": [2, 3]], [], "
                             "[1, 'x', null]];",
    "dotted assignment and ctx._source": (
        "Map row = new HashMap(); row.putAll(ctx._source); row.m.k2 = 2; row.c = [:]; "
        "row.c.d = 'x'; ctx._source = [:]; ctx._source.putAll(row);"),
    "assignment to a field of null": "ctx._source.z.x = 1;",
    "assignment to a field of a string": "ctx._source.s.x = 1;",
    "index access": "ctx._source.m['k'] = ctx._source.l[0]; ctx._source.l[1] = 9;",
    "negative list index": "ctx._source.v = ctx._source.l[-1];",
    "list index out of bounds": "ctx._source.v = ctx._source.l[5];",
    "array index out of bounds": "String[] a = new String[] {}; ctx._source.v = a[0];",
    "map methods": (
        'Map m = ["a": 1]; def old = m.put("b", 2); m.putAll(["c": 3]); '
        'ctx._source.v = [old, m.get("a"), m.get("zz"), m.remove("a"), m.remove("zz"), '
        'm.containsKey("b"), m.containsKey("a"), m.size(), m.isEmpty(), '
        'new HashMap().isEmpty(), m.equals(["b": 2, "c": 3]), m.getOrDefault("q", 7), '
        'm.containsValue(3)];'),
    "map methods on the document": (
        "ctx._source.v = [ctx._source.containsKey('s'), ctx._source.m.get('k'), "
        "ctx._source.get('absent'), ctx._source.absent, ctx._source.m.size()]; "
        "ctx._source.remove('l');"),
    "list methods": (
        'List l = new ArrayList(); l.add("a"); l.add(0, "b"); l.addAll(["c"]); '
        'ctx._source.v = [l.size(), l.get(0), l.contains("c"), l.indexOf("a"), '
        'l.remove(0), l.isEmpty(), l.equals(["a", "c"]), l];'),
    # a def argument of the wrong type is a ClassCastException (a constant one would be
    # painless's WrongMethodTypeException, from its static types: not compared here)
    "list remove by value": "ctx._source.l.remove(ctx._source.s);",
    "list index of the wrong type": "ctx._source.v = ctx._source.l[ctx._source.d];",
    "substring of the wrong type": "ctx._source.v = ctx._source.s.substring(ctx._source.s);",
    "substring of null": "ctx._source.v = ctx._source.s.substring(ctx._source.z);",
    "string method of the wrong type": "ctx._source.v = ctx._source.s.startsWith(ctx._source.n);",
    "string methods": (
        "String s = ' Ab '; ctx._source.v = [s.trim(), s.length(), s.isEmpty(), "
        "s.toLowerCase(), s.contains('A'), 'abc'.startsWith('ab'), "
        "'abc'.endsWith('bc'), 'abc'.substring(1), 'abc'.substring(0, 2), "
        "'abc'.indexOf('c'), 'a-b'.replace('-', '+'), 'x'.equals('x'), "
        "'X'.equalsIgnoreCase('x')];"),
    "method on null": "ctx._source.v = ctx._source.z.size();",
    "unknown method of a string": "ctx._source.v = ctx._source.s.size();",
    "field of a string": "ctx._source.v = ctx._source.s.field;",
    "if else chain": (
        "def n = ctx._source.n; if (n < 0) { ctx._source.sign = 'minus'; } "
        "else if (n == 0) ctx._source.sign = 'zero'; else ctx._source.sign = 'plus';"),
    "if on null": "if (ctx._source.z) { ctx._source.v = 1; }",
    "if on a number": "if (ctx._source.n) { ctx._source.v = 1; }",
    "not of a string": "ctx._source.v = !ctx._source.s;",
    "try catch": (
        "try { ctx._source.z.c = 1; } catch (NullPointerException e) { ctx._source.a = 1; } "
        "try { ctx._source.v = ctx._source.n / 0; } catch (Exception e) { ctx._source.b = 2; }"
        " try { ctx._source.v = ctx._source.s.size(); } catch (Exception e) "
        "{ ctx._source.c = 3; }"),
    "catch of another class": "try { ctx._source.z.b = 1; } catch (ClassCastException e) {}",
    "for over a list": (
        "List out = []; for (def item : ctx._source.l) { out.add(item + '!'); } "
        "for (String t : new String[] {'z'}) out.add(t); ctx._source.v = out;"),
    "for over null": "for (def item : ctx._source.z) { ctx._source.v = item; }",
    "typed for over mixed items": "for (String item : ctx._source.l) { ctx._source.v = item; }",
    "elvis and ternary": (
        "ctx._source.v = [ctx._source.z ?: 'default', ctx._source.s ?: 'default', "
        "ctx._source.e ?: 'default', ctx._source.n > 3 ? 'big' : 'small'];"),
    "null-safe access": "ctx._source.v = [ctx._source.z?.deeper?.deepest, "
                        "ctx._source.z?.size(), ctx._source.m?.k, ctx._source.m?.size()];",
    "string equality": (
        "String c = 'x' + ''; ctx._source.v = [ctx._source.s == 'x', ctx._source.s != 'x', "
        "c == ctx._source.s, ctx._source.e == '', ctx._source.s == null, "
        "ctx._source.z != 'a', 'x'.equals(ctx._source.s), null != ctx._source.z];"),
    "comparison of two nulls": "ctx._source.v = null == null;",
    "number equality": (
        "ctx._source.v = [1 == 1L, 1 == 1.0, ctx._source.n == ctx._source.five, "
        "ctx._source.n == 5L, ctx._source.n.equals(ctx._source.five), "
        "ctx._source.n.equals(5), ctx._source.b == true, [1] == [1], ['a': 1] == ['a': 1]];"),
    "int arithmetic": "ctx._source.v = [7 / 2, -7 / 2, 7 % -2, -7 % 2, 2 * 3, 7 - 9, "
                      "ctx._source.n / 2, ctx._source.neg / 2, ctx._source.neg % 3];",
    "double arithmetic": "ctx._source.v = [7 / 2.0, 1 + 2.5, ctx._source.d * 2, "
                         "ctx._source.n + ctx._source.d, ctx._source.d / 2, 0.1 + 0.2, "
                         "ctx._source.d % 1, -ctx._source.d];",
    "long arithmetic": "ctx._source.v = [ctx._source.big + 1, ctx._source.big * 2, "
                       "3L * 4, 10L / 3, ctx._source.big / ctx._source.n];",
    "int overflow": "int a = 2147483647; ctx._source.v = [a + 1, ctx._source.max + 1, "
                    "ctx._source.max * 2, ctx._source.n * 1000000000, -2147483648 - 1];",
    "long overflow": "long a = 9223372036854775807L; ctx._source.v = [a + 1, a * 2];",
    "the least int and long": "ctx._source.v = [-2147483648, - 2147483648 - 1, "
                              "-(2147483648), -9223372036854775808L];",
    "division by zero": "ctx._source.v = ctx._source.n / 0;",
    "remainder by zero": "ctx._source.v = ctx._source.n % 0;",
    "double division by zero": "ctx._source.v = '' + ctx._source.d / 0 + ' ' + "
                               "(-ctx._source.d / 0) + ' ' + 0.0 / 0;",
    "concatenation": (
        "ctx._source.v = ['a' + null, null + 'a', 'n=' + 1 + 2, 1 + 2 + '=n', "
        "'' + true + 1.0 + 1e7 + [1, 2] + ['k': 'v'], '' + ctx._source.d, "
        "'' + ctx._source.z, ctx._source.s + ctx._source.n, ctx._source.m + '', "
        "ctx._source.l + '', ctx._source.big + ''];"),
    "double to string": (
        "ctx._source.v = ['' + 0.1, '' + 1e-4, '' + 0.001, '' + 100.0, '' + 1234567.0, "
        "'' + 12345678.0, '' + 1e21, '' + -0.0, '' + 1.5e-7, '' + 123456789.123, "
        "'' + ctx._source.five];"),
    "arithmetic on null": "ctx._source.v = ctx._source.z + 1;",
    "subtraction from a string": "ctx._source.v = ctx._source.s - 1;",
    "comparisons": (
        "ctx._source.v = [1 < 2, 2 <= 2, 3 > 4, 4 >= 5, ctx._source.n < ctx._source.d, "
        "ctx._source.big > ctx._source.n, ctx._source.d >= 2.5, 1 < 1.5];"),
    "comparison of strings": "ctx._source.v = ctx._source.s < ctx._source.s;",
    "comparison with null": "ctx._source.v = ctx._source.z < 1;",
    "boolean operators": (
        "ctx._source.v = [!false, true && false, false || true, "
        "1 < 2 && 2 < 3 || false, ctx._source.z != null && ctx._source.z.x == 1, "
        "ctx._source.z == null || ctx._source.z.x == 1];"),
    "and of a non boolean": "ctx._source.v = ctx._source.b && ctx._source.s;",
    "casts": "ctx._source.v = [(int) 3.7, (double) 2, (String) 'a', (def) null, "
             "(int) -3.7, (long) ctx._source.d];",
    "typed variable of another type": "String x = null; x = ctx._source.m;",
    "primitive of null": "int i = ctx._source.z;",
    "map of a string": "Map m = ctx._source.s;",
    "putAll shares nested maps": (
        "Map row = new HashMap(); row.putAll(ctx._source); row.m.x = 1; "
        "ctx._source.seen = ctx._source.m.x;"),
    "literals and escapes": (
        "ctx._source.v = [null, true, false, 12, 1.5, 2e3, 7L, 'it\\'s', "
        "\"say \\\"hi\\\"\", 'back\\\\slash', 0.5f];"),
    "comments": "// a line\nctx._source.a = 1; /* a block\ncomment */ ctx._source.b = 2; "
                "//row.c = <type keyword>;\n",
    "params": "ctx._source.v = [params.factor * 2, params.name + '!', params.absent];",
}


@pytest.mark.parametrize("name", CONSTRUCTS)
def test_construct(painless_node: PainlessNode, name: str) -> None:
    check_agrees(painless_node, CONSTRUCTS[name], CONSTRUCT_DOCUMENTS,
                 params={"factor": 3, "name": "n"})
