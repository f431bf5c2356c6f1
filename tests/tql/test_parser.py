"""The parser: conditions and their canonical printed trees, and syntax errors with their
positions. The canonical form puts parentheses around every AND/OR inside another
operator, so each row also states the precedence the parser chose."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from tests.tql.profiles import conditions
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.tql import TqlError, TqlSyntaxError, ast, parse

VALID = [
    # fields
    ("profile@age == 1", "profile@age == 1"),
    ("profile@a.b.c == 1", "profile@a.b.c == 1"),
    ("event@properties.price > 10", "event@properties.price > 10"),
    ("session@context.browser == 'x'", 'session@context.browser == "x"'),
    ("payload@x == 1", "payload@x == 1"),
    ("PROFILE@traits.Age == 1", "profile@traits.Age == 1"),
    ('profile@traits["a b"] == 1', 'profile@traits["a b"] == 1'),
    ("profile@traits['a b'].c == 1", 'profile@traits["a b"].c == 1'),
    ('profile@["x y"] EXISTS', 'profile@["x y"] EXISTS'),
    ('profile@traits["plain"] == 1', "profile@traits.plain == 1"),
    ('profile@traits[ "spaced" ] EXISTS', "profile@traits.spaced EXISTS"),
    ("profile@traits.first-name EXISTS", "profile@traits.first-name EXISTS"),
    ("profile@traits.$x EXISTS", "profile@traits.$x EXISTS"),
    ("profile@traits.0 EXISTS", "profile@traits.0 EXISTS"),
    ("profile@traits.zażółć EXISTS", "profile@traits.zażółć EXISTS"),
    ("profile@traits.and EXISTS", "profile@traits.and EXISTS"),
    # operators
    ("profile@a = 1", "profile@a == 1"),
    ("profile@a != 1", "profile@a != 1"),
    ("profile@a > 1", "profile@a > 1"),
    ("profile@a >= 1", "profile@a >= 1"),
    ("profile@a => 1", "profile@a >= 1"),
    ("profile@a < 1", "profile@a < 1"),
    ("profile@a <= 1", "profile@a <= 1"),
    ("profile@a =< 1", "profile@a <= 1"),
    ("profile@a==1", "profile@a == 1"),
    ("profile@a>=-1", "profile@a >= -1"),
    ("profile@a BETWEEN 1 AND 5", "profile@a BETWEEN 1 AND 5"),
    ("profile@a between 'a' and 'b'", 'profile@a BETWEEN "a" AND "b"'),
    ("profile@a IS NULL", "NOT profile@a EXISTS"),
    ("profile@a is not null", "profile@a EXISTS"),
    ("profile@a EXISTS", "profile@a EXISTS"),
    ("profile@a NOT EXISTS", "NOT profile@a EXISTS"),
    ("profile@a Exists", "profile@a EXISTS"),
    ("profile@a EMPTY", "profile@a EMPTY"),
    ("profile@a NOT EMPTY", "NOT profile@a EMPTY"),
    ('profile@a CONTAINS "x"', 'profile@a CONTAINS "x"'),
    ('profile@a STARTS WITH "x"', 'profile@a STARTS WITH "x"'),
    ('profile@a starts with "x"', 'profile@a STARTS WITH "x"'),
    ('profile@a ENDS   WITH "x"', 'profile@a ENDS WITH "x"'),
    ("profile@a == profile@b", "profile@a == profile@b"),
    ("profile@a < event@b", "profile@a < event@b"),
    # values
    ("profile@a == NULL", "profile@a == NULL"),
    ("profile@a != null", "profile@a != NULL"),
    ("profile@a == TRUE", "profile@a == TRUE"),
    ("profile@a == false", "profile@a == FALSE"),
    ("profile@a == 0", "profile@a == 0"),
    ("profile@a == -12", "profile@a == -12"),
    ("profile@a == +3", "profile@a == 3"),
    ("profile@a == 1.5", "profile@a == 1.5"),
    ("profile@a == .5", "profile@a == 0.5"),
    ("profile@a == 5.", "profile@a == 5.0"),
    ("profile@a == 1e3", "profile@a == 1000.0"),
    ("profile@a == 2.5E-1", "profile@a == 0.25"),
    ('profile@a == "it\'s"', 'profile@a == "it\'s"'),
    ("profile@a == 'say \"hi\"'", 'profile@a == "say \\"hi\\""'),
    ('profile@a == "tab\\tnew\\nline"', 'profile@a == "tab\\tnew\\nline"'),
    ('profile@a == "\\u0041\\u00e9"', 'profile@a == "Aé"'),
    ('profile@a == "\\ud83d\\ude00"', 'profile@a == "😀"'),
    ('profile@a == ""', 'profile@a == ""'),
    ("profile@a == []", "profile@a == []"),
    ('profile@a == [1, "a", TRUE, NULL]', 'profile@a == [1, "a", TRUE, NULL]'),
    ("profile@a == [ 1 , 2 ]", "profile@a == [1, 2]"),
    ("profile@a > 10m", "profile@a > 10m"),
    ("profile@a > 1d12h", "profile@a > 1d12h"),
    ("profile@a < -30s", "profile@a < -30s"),
    ("profile@a < 1.5h", "profile@a < 1.5h"),
    ("profile@a > 2w", "profile@a > 2w"),
    ("profile@a > now()", "profile@a > now()"),
    ("profile@a > NOW()", "profile@a > now()"),
    ('profile@a > now("Europe/Warsaw")', 'profile@a > now("Europe/Warsaw")'),
    ('profile@a > now.offset("-30d")', 'profile@a > now.offset("-30d")'),
    ("profile@a > now.offset(-30d)", "profile@a > now.offset(-30d)"),
    ('profile@a > datetime("2024-01-01T00:00:00")', 'profile@a > datetime("2024-01-01T00:00:00")'),
    ('profile@a > datetime.offset("2024-01-01", "+1d")',
     'profile@a > datetime.offset("2024-01-01", "+1d")'),
    ('profile@a > datetime.offset(now(), "-1w", "UTC")',
     'profile@a > datetime.offset(now(), "-1w", "UTC")'),
    ('profile@a == lowercase("ABC")', 'profile@a == lowercase("ABC")'),
    ('profile@a == uppercase(lowercase("x"))', 'profile@a == uppercase(lowercase("x"))'),
    # boolean structure and precedence
    ("profile@a EXISTS AND profile@b EXISTS", "profile@a EXISTS AND profile@b EXISTS"),
    ("profile@a EXISTS and profile@b EXISTS or profile@c EXISTS",
     "(profile@a EXISTS AND profile@b EXISTS) OR profile@c EXISTS"),
    ("profile@a EXISTS OR profile@b EXISTS AND profile@c EXISTS",
     "profile@a EXISTS OR (profile@b EXISTS AND profile@c EXISTS)"),
    ("(profile@a EXISTS OR profile@b EXISTS) AND profile@c EXISTS",
     "(profile@a EXISTS OR profile@b EXISTS) AND profile@c EXISTS"),
    ("profile@a EXISTS AND (profile@b EXISTS AND profile@c EXISTS)",
     "profile@a EXISTS AND profile@b EXISTS AND profile@c EXISTS"),
    ("NOT profile@a EXISTS AND profile@b EXISTS", "NOT profile@a EXISTS AND profile@b EXISTS"),
    ("NOT (profile@a EXISTS AND profile@b EXISTS)",
     "NOT (profile@a EXISTS AND profile@b EXISTS)"),
    ("not not profile@a EXISTS", "NOT NOT profile@a EXISTS"),
    ("((profile@a EXISTS))", "profile@a EXISTS"),
    ("profile@a BETWEEN 1 AND 2 AND profile@b EXISTS",
     "profile@a BETWEEN 1 AND 2 AND profile@b EXISTS"),
    ("profile@a EXISTS\n  AND profile@b == 1\n  OR profile@c == 2",
     "(profile@a EXISTS AND profile@b == 1) OR profile@c == 2"),
    ("NOT profile@a NOT EXISTS", "NOT NOT profile@a EXISTS"),
]

INVALID = [
    # (condition, line, column, offending text, a part of the message)
    ("", 1, 1, "", "unexpected end"),
    ("profile@a", 1, 10, "", "unexpected end"),
    ("profile@a ==", 1, 13, "", "unexpected end"),
    ("profile@a == 1 AND", 1, 19, "", "unexpected end"),
    ("profile@a = = 1", 1, 13, "=", "unexpected '='"),
    ("profile@a == abc", 1, 17, "", "quotes"),
    ("profile@a == abc AND profile@b EXISTS", 1, 18, "AND", "quotes"),
    ('profile@a == "abc', 1, 14, '"', "unterminated string"),
    ("profile@a == 'abc", 1, 14, "'", "unterminated string"),
    ('profile@a == "a\\qb"', 1, 14, '"a\\qb"', "unknown escape"),
    ("profile@a == 10min", 1, 14, "10min", "unexpected '10min'"),
    ("profile@a == 1e999", 1, 14, "1e999", "out of range"),
    ("foo@a == 1", 1, 1, "foo@a", "unknown field source 'foo'"),
    ('profile@["a.b"] EXISTS', 1, 1, 'profile@["a.b"]', "contains a dot"),
    ('profile@traits[""] EXISTS', 1, 1, 'profile@traits[""]', "empty"),
    ("profile@ EXISTS", 1, 1, "profile@", "malformed field"),
    ("profile@a. EXISTS", 1, 10, ".", "unexpected '.'"),
    ("profile@a..b EXISTS", 1, 10, "..b", "unexpected"),
    ("(profile@a EXISTS", 1, 18, "", "expected ')'"),
    ("profile@a EXISTS)", 1, 17, ")", "unexpected ')'"),
    ("profile@a EXISTS profile@b EXISTS", 1, 18, "profile@b", "unexpected"),
    ("AND profile@a EXISTS", 1, 1, "AND", "unexpected 'AND'"),
    ("profile@a BETWEEN 1", 1, 20, "", "expected AND"),
    ("profile@a BETWEEN 1 OR 2", 1, 21, "OR", "unexpected 'OR'"),
    ("profile@a IS", 1, 13, "", "expected NOT or NULL"),
    ("profile@a IS EMPTY", 1, 14, "EMPTY", "unexpected"),
    ("profile@a STARTS 'x'", 1, 18, "'x'", "expected WITH"),
    ("profile@a == [1, 2", 1, 19, "", "expected ']'"),
    ("profile@a == [1 2]", 1, 17, "2", "unexpected '2'"),
    ("profile@a == now(", 1, 18, "", "unexpected end"),
    ("profile@a == 1\nAND profile@b ==", 2, 17, "", "unexpected end"),
    ("profile@a == 1\n  OR\n  profile@b !! 2", 3, 13, "!!", "unexpected"),
    ("profile@a == #", 1, 14, "#", "unexpected '#'"),
    ("== 1", 1, 1, "==", "expected a field"),
    ("profile@a EXISTS AND AND profile@b EXISTS", 1, 22, "AND", "unexpected 'AND'"),
]

# parse, but refer to something that does not exist: TqlError naming it
UNKNOWN = [
    ("profile@a == foo()", "unknown function foo()"),
    ("profile@a == now.later()", "unknown function now.later()"),
    ("profile@a == now(1, 2)", "now() takes 0 to 1 arguments, got 2"),
    ("profile@a == lowercase()", "lowercase() takes 1 argument, got 0"),
    ('profile@a == datetime.offset("2024-01-01")', "datetime.offset() takes 2 to 3"),
]


@pytest.mark.parametrize(("text", "canonical"), VALID)
def test_valid_conditions_print_canonically(text: str, canonical: str) -> None:
    tree = parse(text)
    assert str(tree) == canonical
    assert parse(canonical) == tree  # the canonical form parses back to the same tree


@pytest.mark.parametrize(("text", "line", "column", "offending", "message"), INVALID)
def test_syntax_errors_give_position_text_and_expectation(
        text: str, line: int, column: int, offending: str, message: str) -> None:
    with pytest.raises(TqlSyntaxError) as caught:
        parse(text)
    error = caught.value
    assert (error.line, error.column, error.text) == (line, column, offending)
    assert message in str(error)
    assert str(error).startswith(f"line {line}, column {column}: ")
    assert isinstance(error, InvalidInput)


@pytest.mark.parametrize(("text", "message"), UNKNOWN)
def test_unknown_functions_and_arities_are_named(text: str, message: str) -> None:
    with pytest.raises(TqlError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(text)


def test_the_table_is_large_enough() -> None:
    assert len(VALID) + len(INVALID) + len(UNKNOWN) >= 80


def test_error_names_what_was_expected() -> None:
    with pytest.raises(TqlSyntaxError) as caught:
        parse("profile@a")
    assert "an operator (==, !=, >, >=, <, <=)" in caught.value.expected
    assert "EXISTS" in caught.value.expected


def test_pointer_marks_the_column() -> None:
    with pytest.raises(TqlSyntaxError) as caught:
        parse("profile@a == 1\n  AND profile@b === 2")
    assert caught.value.pointer() == "  AND profile@b === 2\n                  ^"


def test_tree_nodes() -> None:
    tree = parse('profile@a.b == 1 OR NOT event@c CONTAINS "x"')
    field = ast.Field("profile", ("a", "b"))
    assert tree == ast.Or((ast.Compare(field, "==", ast.Literal(1)),
                           ast.Not(ast.TextMatch(ast.Field("event", ("c",)), "CONTAINS",
                                                 ast.Literal("x")))))
    assert field.dotted == "a.b"


@settings(max_examples=300, deadline=None)
@given(conditions)
def test_canonical_form_round_trips(text: str) -> None:
    tree = parse(text)
    assert parse(str(tree)) == tree
