"""A compiled condition: parsed and typed once, then evaluated in Python or compiled to an
Elasticsearch query as often as needed."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from tracardi_daemon.tql import ast, plan
from tracardi_daemon.tql.elastic import Query, compile_query
from tracardi_daemon.tql.evaluate import Predicate, build
from tracardi_daemon.tql.parser import parse
from tracardi_daemon.tql.schema import Schema
from tracardi_daemon.tql.typecheck import typecheck
from tracardi_daemon.tql.values import Clock, system_clock


class Condition:
    """One condition, checked against an optional schema.

    Raises TqlSyntaxError or TqlError when built; after that every back end accepts it,
    except that the Elasticsearch one refuses field-to-field comparisons and fields of
    another document kind.
    """

    def __init__(self, text: str, schema: Schema | None = None) -> None:
        self.text = text
        self.schema = schema
        self.tree: ast.Node = parse(text)
        self.plan: plan.Plan = typecheck(self.tree, schema)
        self.uses_clock = plan.uses_clock(self.plan)
        # a condition without now() gives the same predicate at any time: build it once
        self._predicate = None if self.uses_clock else build(self.plan, system_clock)

    def predicate(self, clock: Clock | None = None) -> Predicate:
        """A fast function of the documents; now() and now.offset() read ``clock`` once,
        here, so build one predicate per batch rather than per document."""
        if self._predicate is not None:
            return self._predicate
        return build(self.plan, clock or system_clock)

    def evaluate(self, documents: Mapping[str, Any], clock: Clock | None = None) -> bool:
        return self.predicate(clock)(documents)

    def to_elastic(self, clock: Clock | None = None, source: str = "profile") -> Query:
        return compile_query(self.plan, clock or system_clock, source)

    def __str__(self) -> str:
        return str(self.tree)

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"


@lru_cache(maxsize=512)
def _cached(text: str) -> Condition:
    return Condition(text)


def compile_condition(condition: Condition | str, schema: Schema | None = None) -> Condition:
    """A Condition from text (cached when there is no schema) or the one given."""
    if isinstance(condition, Condition):
        return condition
    return _cached(condition) if schema is None else Condition(condition, schema)


def evaluate(condition: Condition | str, documents: Mapping[str, Any], *,
             clock: Clock | None = None) -> bool:
    """Whether the condition holds for ``documents`` ({"profile": {...}, "event": ...})."""
    return compile_condition(condition).evaluate(documents, clock)


def to_elastic(condition: Condition | str, *, clock: Clock | None = None,
               source: str = "profile") -> Query:
    """Query DSL selecting the ``source`` documents for which the condition holds."""
    return compile_condition(condition).to_elastic(clock, source)
