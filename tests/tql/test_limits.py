"""The size limits of a condition: each refused with a TqlError (never a RecursionError)
before anything recursive runs; a condition at the limits still parses, evaluates and
compiles to a query a real Elasticsearch accepts."""

from __future__ import annotations

import pytest
from elasticsearch import Elasticsearch

from tests.tql.conftest import index_batch, search_ids
from tests.tql.profiles import SCHEMA
from tracardi_daemon.tql import Condition, TqlError, ast, parse
from tracardi_daemon.tql.limits import (
    MAX_CONDITION_CHARS,
    MAX_DEPTH,
    MAX_FIELD_CHARS,
    MAX_STRING_CHARS,
    MAX_TERMS,
    short,
)

TERM = "profile@a EXISTS"


def nested(levels: int) -> str:
    """A condition ``levels`` deep, alternating NOT, OR and AND around a != (which the
    compiler turns into one more bool level)."""
    text = "profile@traits.age != 1"
    for level in range(levels):
        if level % 3 == 0:
            text = f"NOT ({text})"
        elif level % 3 == 1:
            text = f"(profile@stats.views != 2 OR {text})"
        else:
            text = f'(profile@traits.city != "x" AND {text})'
    return text


def refusal(text: str) -> str:
    with pytest.raises(TqlError) as caught:
        parse(text)
    return str(caught.value)


@pytest.mark.parametrize(("text", "reason"), [
    ("NOT " * 10_000 + TERM, "more than the 10,000 allowed"),
    ("NOT " * 2_000 + TERM, f"nested more than {MAX_DEPTH} levels deep (2,000 NOTs)"),
    ("NOT " * (MAX_DEPTH + 1) + TERM, f"nested more than {MAX_DEPTH} levels deep"),
    ("(" * 3_000 + TERM + ")" * 3_000, f"nested more than {MAX_DEPTH} levels deep at "
                                       f"character {MAX_DEPTH + 1}"),
    ("profile@a == " + "[" * 3_000 + "]" * 3_000, "nested more than"),
    ("profile@a == " + "lowercase(" * 900 + '"x"' + ")" * 900, "nested more than"),
    (" AND ".join([TERM] * (MAX_TERMS + 1)), f"more than {MAX_TERMS} terms"),
    (" OR ".join([TERM] * 10_000), "more than the 10,000 allowed"),
    ('profile@a == "' + "x" * (MAX_STRING_CHARS + 1) + '"',
     f"(1,001 characters) is longer than {MAX_STRING_CHARS:,} characters"),
    ("profile@" + "f" * MAX_FIELD_CHARS + " EXISTS",
     f"(264 characters) is longer than {MAX_FIELD_CHARS} characters"),
    ("x" * (MAX_CONDITION_CHARS + 1), "has 10,001 characters"),
])
def test_refused_without_recursion(text: str, reason: str) -> None:
    message = refusal(text)
    assert reason in message
    assert len(message) < 300


def test_brackets_inside_strings_do_not_count() -> None:
    text = 'profile@a == "' + "(" * 900 + '" AND profile@traits["((("] EXISTS'
    tree = parse(text)
    assert isinstance(tree, ast.And)
    compare, exists = tree.operands
    assert compare == ast.Compare(ast.Field("profile", ("a",)), "==", ast.Literal("(" * 900))
    assert exists == ast.Exists(ast.Field("profile", ("traits", "(((")))


def test_at_the_limits_a_condition_works_in_python_and_elasticsearch(
        profile_index: tuple[Elasticsearch, str]) -> None:
    client, index = profile_index
    deepest = Condition(nested(MAX_DEPTH), SCHEMA)
    with pytest.raises(TqlError):
        Condition(nested(MAX_DEPTH + 1), SCHEMA)
    widest = Condition(" OR ".join(f"profile@traits.score == {number}"
                                   for number in range(MAX_TERMS)), SCHEMA)
    profiles = [{"stats": {"views": views}, "traits": {"age": age, "city": city,
                                                         "score": score}}
                for age, views, city, score in ((1, 2, "x", 0), (2, 2, "x", MAX_TERMS - 1),
                                                (1, 3, "y", MAX_TERMS), (2, 3, "x", -1))]
    batch = index_batch(client, index, profiles)
    queries = [condition.to_elastic() for condition in (deepest, widest)]
    found = search_ids(client, index, queries, batch)
    for condition, ids in zip((deepest, widest), found, strict=True):
        expected = {f"{batch}-{number}" for number, profile in enumerate(profiles)
                    if condition.evaluate({"profile": profile})}
        assert ids == expected, condition.text[:80]
    assert found[0] and found[1] == {f"{batch}-0", f"{batch}-1"}


def test_short_quotes_a_prefix() -> None:
    assert short("abc") == "'abc'"
    assert short("y" * 1_000_000) == repr("y" * 40) + "... (1,000,000 characters)"
    assert len(short(list(range(100_000)))) == 43
