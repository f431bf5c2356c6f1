"""Each construct of the supported subset, run on a document."""

from __future__ import annotations

from tests.painless.helpers import run, source_after, value_of
from tracardi_daemon.painless import compile_script


def test_typed_and_def_declarations_hold_their_values() -> None:
    script = ('Map m = new HashMap(); String s = "a"; def d = 1; int i = 2; long l = 3L; '
              'double x = 1.5; boolean b = true; List items = [1, 2]; Map e; String n; '
              'ctx._source.out = [m, s, d, i, l, x, b, items, e, n];')
    assert source_after(script)["out"] == [{}, "a", 1, 2, 3, 1.5, True, [1, 2], None, None]


def test_several_declarators_in_one_declaration() -> None:
    assert source_after("def a = 1, b = a + 1; ctx._source.v = b;")["v"] == 2


def test_arrays_with_initialisers_and_sizes() -> None:
    after = source_after('ctx._source.empty = new String[] {}; '
                         'ctx._source.tags = new String[] {"rest", "api"}; '
                         'int[] counts = new int[2]; ctx._source.counts = counts; '
                         'ctx._source.length = ctx._source.tags.length;')
    assert after == {"empty": [], "tags": ["rest", "api"], "counts": [0, 0], "length": 2}


def test_map_and_list_literals() -> None:
    assert value_of("[:]") == {}
    assert value_of("['a': 1, \"b\": [2, 3]]") == {"a": 1, "b": [2, 3]}
    assert value_of("[]") == []
    assert value_of("[1, 'x', null]") == [1, "x", None]


def test_assignment_to_dotted_paths_and_to_ctx_source() -> None:
    ctx = run('Map row = new HashMap(); row.putAll(ctx._source); row.a.b = 2; '
              'row.c = [:]; row.c.d = "x"; ctx._source = [:]; ctx._source.putAll(row);',
              {"a": {"b": 1}, "keep": True})
    assert ctx["_source"] == {"a": {"b": 2}, "keep": True, "c": {"d": "x"}}


def test_index_access_on_maps_lists_and_arrays() -> None:
    after = source_after("ctx._source.m['k'] = ctx._source.l[0] + ctx._source.l[-1]; "
                         "ctx._source.l[1] = 9;", {"m": {}, "l": [1, 2, 3]})
    assert after == {"m": {"k": 4}, "l": [1, 9, 3]}


def test_map_methods() -> None:
    script = ('Map m = ["a": 1]; def old = m.put("b", 2); m.putAll(["c": 3]); '
              'ctx._source.v = [old, m.get("a"), m.get("zz"), m.remove("a"), m.remove("zz"), '
              'm.containsKey("b"), m.containsKey("a"), m.size(), m.isEmpty(), '
              'new HashMap().isEmpty(), m.equals(["b": 2, "c": 3]), m.getOrDefault("q", 7), '
              'm.containsValue(3)];')
    assert source_after(script)["v"] == [None, 1, None, 1, None, True, False, 2, False, True,
                                        True, 7, True]


def test_list_methods() -> None:
    script = ('List l = new ArrayList(); l.add("a"); l.add(0, "b"); l.addAll(["c"]); '
              'ctx._source.v = [l.size(), l.get(0), l.contains("c"), l.indexOf("a"), '
              'l.remove(0), l.isEmpty(), l.equals(["a", "c"]), l];')
    assert source_after(script)["v"] == [3, "b", True, 1, "b", False, True, ["a", "c"]]


def test_string_methods() -> None:
    script = ("String s = ' Ab '; ctx._source.v = [s.trim(), s.length(), s.isEmpty(), "
              "s.toLowerCase(), s.contains('A'), 'abc'.startsWith('ab'), "
              "'abc'.endsWith('bc'), 'abc'.substring(1), 'abc'.substring(0, 2), "
              "'abc'.indexOf('c'), 'a-b'.replace('-', '+'), 'x'.equals('x'), "
              "'X'.equalsIgnoreCase('x')];")
    assert source_after(script)["v"] == ["Ab", 4, False, " ab ", True, True, True, "bc", "ab",
                                        2, "a+b", True, True]


def test_if_else_chains_and_blocks() -> None:
    script = ("def n = ctx._source.n; if (n < 0) { ctx._source.sign = 'minus'; } "
              "else if (n == 0) ctx._source.sign = 'zero'; else ctx._source.sign = 'plus';")
    assert [source_after(script, {"n": n})["sign"] for n in (-2, 0, 5)] == [
        "minus", "zero", "plus"]


def test_try_catch_catches_the_exception_and_its_subclasses_only() -> None:
    script = ("try { ctx._source.a.b.c = 1; } catch (NullPointerException e) "
              "{ ctx._source.caught = e.getMessage(); } "
              "try { ctx._source.x = 1 / 0; } catch (Exception e) { ctx._source.div = 'caught'; }")
    after = source_after(script)
    assert after["div"] == "caught" and "[b] of null" in after["caught"]
    ctx = {"_source": {}, "op": "index"}
    script_uncaught = compile_script("try { ctx._source.a.b = 1; } "
                                     "catch (ClassCastException e) {}")
    try:
        script_uncaught.run(ctx)
    except Exception as exc:  # the NullPointerException is not a ClassCastException
        assert getattr(exc, "exception", None) == "NullPointerException"
    else:
        raise AssertionError("the NullPointerException was caught by the wrong clause")


def test_for_over_a_list() -> None:
    script = ("List out = []; for (def tag : ctx._source.tags) { out.add(tag + '!'); } "
              "for (String t : new String[] {'z'}) out.add(t); ctx._source.tags = out;")
    assert source_after(script, {"tags": ["a", "b"]})["tags"] == ["a!", "b!", "z"]


def test_elvis_ternary_and_null_safe_access() -> None:
    after = source_after("ctx._source.a = ctx._source.missing ?: 'default'; "
                         "ctx._source.b = ctx._source.present ?: 'default'; "
                         "ctx._source.c = ctx._source.missing?.deeper?.deepest; "
                         "ctx._source.d = ctx._source.missing?.size(); "
                         "ctx._source.e = ctx._source.present == 'here' ? 1 : 2;",
                         {"present": "here"})
    assert after == {"present": "here", "a": "default", "b": "here", "c": None, "d": None,
                     "e": 1}


def test_boolean_operators_and_comparisons() -> None:
    assert value_of("[1 < 2, 2 <= 2, 3 > 4, 4 >= 5, 1 == 1.0, 'a' != 'b', !false, "
                    "true && false, false || true, 1 < 2 && 2 < 3 || false]") == [
        True, True, False, False, True, True, True, False, True, True]


def test_short_circuit_skips_the_right_side() -> None:
    # the right side would throw: reading a field of null
    assert value_of("ctx._source.none != null && ctx._source.none.x == 1") is False
    assert value_of("ctx._source.none == null || ctx._source.none.x == 1") is True


def test_literals_in_both_quotes_and_escapes() -> None:
    assert value_of("[null, true, false, 12, 1.5, 2e3, 7L, 'it\\'s', \"say \\\"hi\\\"\", "
                    "'back\\\\slash']") == [None, True, False, 12, 1.5, 2000.0, 7, "it's",
                                            'say "hi"', "back\\slash"]


def test_comments_are_ignored() -> None:
    script = ("// a line comment\nctx._source.a = 1; /* a block\ncomment */ "
              "ctx._source.b = 2; //row.c = <type keyword>;\n")
    assert source_after(script) == {"a": 1, "b": 2}


def test_params_from_compile_and_from_run() -> None:
    script = compile_script("ctx._source.v = params.factor * 2;", params={"factor": 3})
    ctx = {"_source": {}, "op": "index"}
    script.run(ctx)
    assert ctx["_source"]["v"] == 6
    script.run(ctx, params={"factor": 5})
    assert ctx["_source"]["v"] == 10


def test_ctx_op_and_metadata() -> None:
    ctx = run("if (ctx._source.gone == true) { ctx.op = 'delete'; } "
              "ctx._source.from = ctx._index + '/' + ctx._id;", {"gone": True})
    assert ctx["op"] == "delete" and ctx["_source"]["from"] == "test/1"


def test_casts() -> None:
    assert value_of("[(int) 3.7, (double) 2, (String) 'a', (def) null]") == [3, 2.0, "a", None]


def test_the_script_keeps_its_source_and_pickles_by_recompiling() -> None:
    import pickle

    source = "ctx._source.v = params.p;"
    script = compile_script(source, "plan step 3", params={"p": 1})
    assert script.source == source
    copy = pickle.loads(pickle.dumps(script))
    ctx = {"_source": {}, "op": "index"}
    copy.run(ctx)
    assert ctx["_source"] == {"v": 1} and copy.where == "plan step 3"
