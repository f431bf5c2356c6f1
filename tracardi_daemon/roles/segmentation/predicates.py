"""A pass's condition evaluated over a batch of profile sources: in the calling thread
or in a process-pool worker, which compiles each condition text once and keeps it."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from tracardi_daemon.model.mapping_definitions import condition_schema
from tracardi_daemon.tql import Condition
from tracardi_daemon.tql.evaluate import Predicate

# (condition text, ISO time every now() of the pass reads): what a batch sends a worker
PredicateKey = tuple[str, str]


@functools.lru_cache(maxsize=64)
def _condition(text: str) -> Condition:
    return Condition(text, condition_schema())


@functools.lru_cache(maxsize=64)
def pass_predicate(text: str, clock_at: str) -> Predicate:
    """The predicate of a pass: the condition typed as the pass types it, its now() the
    pass's time (so a worker and the calling thread decide alike)."""
    moment = datetime.fromisoformat(clock_at)
    return _condition(text).predicate(lambda: moment)


def matches(key: PredicateKey, sources: list[dict[str, Any]]) -> list[bool]:
    """Whether the condition holds for each profile source, in order (a pool function)."""
    predicate = pass_predicate(*key)
    return [predicate({"profile": source}) for source in sources]
