"""The two back ends agree: for random profiles indexed in a real Elasticsearch and random
conditions, the ids the compiled query returns are exactly the profiles the Python
evaluator accepts. A condition refused at compile time must be refused with a TqlError
naming the problem, never a crash, and never a syntax error (the generator writes valid
TQL)."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.tql.conftest import index_batch, search_ids
from tests.tql.profiles import NOW, SCHEMA, conditions, profiles
from tracardi_daemon.tql import Condition, TqlError, TqlSyntaxError


def _clock() -> datetime:
    return NOW


def _compile(text: str) -> Condition | None:
    try:
        condition = Condition(text, SCHEMA)
    except TqlSyntaxError as exc:
        raise AssertionError(f"the generator wrote invalid TQL {text!r}: {exc}") from exc
    except TqlError as exc:
        event(f"refused: {_reason(str(exc))}")
        return None
    event("compiled")
    return condition


def _reason(message: str) -> str:
    # group hypothesis statistics by the kind of refusal, not by the exact condition
    for marker in ("no order", "not a ", "as text", "cannot be searched", "is an object",
                   "out of range", "flattened", "NULL can only", "list can only",
                   "needs a string", "applies to text", "of one type"):
        if marker in message:
            return marker
    return message


def _expected_ids(condition: Condition, batch: list[dict[str, Any]], batch_id: str) -> set[str]:
    accepts = condition.predicate(_clock)
    return {f"{batch_id}-{number}" for number, profile in enumerate(batch)
            if accepts({"profile": profile})}


@settings(max_examples=int(os.environ.get("TQL_AGREEMENT_EXAMPLES", "200")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=st.lists(profiles, min_size=1, max_size=20),
       texts=st.lists(conditions, min_size=1, max_size=8))
def test_python_and_elasticsearch_agree(profile_index: tuple[Elasticsearch, str],
                                        corpus: tuple[str, list[dict[str, Any]]],
                                        batch: list[dict[str, Any]], texts: list[str]) -> None:
    """Each condition runs over this example's profiles (which hypothesis shrinks when
    they disagree) and over the fixed corpus (which gives every condition many cases)."""
    client, index = profile_index
    compiled = [(text, condition) for text in texts if (condition := _compile(text))]
    if not compiled:
        return
    batch_id = index_batch(client, index, batch)
    corpus_id, corpus_profiles = corpus
    queries = [condition.to_elastic(_clock) for _, condition in compiled]
    for group_id, group in ((batch_id, batch), (corpus_id, corpus_profiles)):
        found = search_ids(client, index, queries, group_id)
        for (text, condition), query, ids in zip(compiled, queries, found, strict=True):
            _assert_same(text, query, ids, _expected_ids(condition, group, group_id), group)


def _assert_same(text: str, query: dict[str, Any], ids: set[str], expected: set[str],
                 group: list[dict[str, Any]]) -> None:
    if ids == expected:
        return
    differing = sorted(ids ^ expected)
    shown = [group[int(doc_id.rsplit("-", 1)[1])] for doc_id in differing[:3]]
    raise AssertionError(
        f"{text}\nquery: {query}\nElasticsearch only: {sorted(ids - expected)}\n"
        f"Python only: {sorted(expected - ids)}\nprofiles: {shown}")
