"""The bounds on a delayed job: pure checks that name the field they refuse."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracardi_daemon.config.settings import SchedulerSettings
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.roles.scheduler.limits import (
    JobLimits,
    check_due,
    check_interval,
    check_payload,
    payload_depth,
)

LIMITS = JobLimits(max_payload_bytes=100, max_payload_depth=3, max_delay_days=1.0,
                   min_interval_s=1.0)
NOW_MS = 1_700_000_000_000
DAY_MS = 86_400_000


def nested(depth: int) -> Any:
    value: Any = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_from_settings() -> None:
    limits = JobLimits.from_settings(SchedulerSettings())
    assert limits == JobLimits(max_payload_bytes=1_048_576, max_payload_depth=64,
                               max_delay_days=3650.0, min_interval_s=1.0)
    assert limits.max_delay_ms == 3650 * DAY_MS


def test_payload_within_limits() -> None:
    check_payload(nested(3), LIMITS)
    check_payload({"text": "x" * 80}, LIMITS)


@pytest.mark.parametrize(("payload", "message"), [
    (nested(4), "nested deeper than 3"),
    ({"a": [[[1]]]}, "nested deeper than 3"),
    ({"text": "x" * 100}, "more than 100"),
    ({"text": "\u00e9" * 20}, "more than 100"),  # 6 bytes each as stored (\u00e9)
    ({"n": math.nan}, "not serialisable"),
    ({"n": math.inf}, "not serialisable"),
    ({"s": {1, 2}}, "not serialisable"),
])
def test_payload_refused_names_the_field(payload: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        check_payload(payload, LIMITS)
    assert str(info.value).startswith("payload: ")


def test_very_deep_or_cyclic_payload_costs_little_and_never_recurses() -> None:
    with pytest.raises(InvalidInput, match="nested deeper"):
        check_payload(nested(100_000), LIMITS)
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(InvalidInput, match="nested deeper"):
        check_payload(cyclic, LIMITS)


@given(st.recursive(st.none() | st.integers(), lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=3), inner, max_size=3)))
def test_payload_depth_counts_containers(value: Any) -> None:
    def depth(item: Any) -> int:
        children = item.values() if isinstance(item, dict) else item
        if not isinstance(item, dict | list):
            return 0
        return 1 + max((depth(child) for child in children), default=0)

    assert payload_depth(value, limit=1000) == depth(value)


@pytest.mark.parametrize("interval_s", [1.0, 60, 86_400.0])
def test_interval_within_limits(interval_s: float) -> None:
    check_interval(interval_s, LIMITS)


@pytest.mark.parametrize(("interval_s", "message"), [
    (0.001, "shorter than 1s"), (0, "shorter"), (-5.0, "shorter"), (math.nan, "nan"),
    (math.inf, "longer than 1 days"), (86_401.0, "longer than 1 days"),
    (10 ** 400, "longer"), (True, "number"), ("60", "number"),
])
def test_interval_refused_names_the_field(interval_s: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        check_interval(interval_s, LIMITS)
    assert str(info.value).startswith("interval_s: ")


@pytest.mark.parametrize("due_ms", [0, NOW_MS - DAY_MS, NOW_MS, NOW_MS + DAY_MS])
def test_due_within_limits(due_ms: int) -> None:
    check_due(due_ms, NOW_MS, LIMITS)  # a past due time fires now: not refused


@pytest.mark.parametrize(("due_ms", "message"), [
    (NOW_MS + DAY_MS + 1, "more than 1 days ahead"), (10 ** 400, "more than"),
    (-1, "non-negative integer"), (1.5, "integer"), (math.nan, "integer"),
    (math.inf, "integer"), (True, "integer"), ("1", "integer"),
])
def test_due_refused_names_the_field(due_ms: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        check_due(due_ms, NOW_MS, LIMITS)
    assert str(info.value).startswith("due_ms: ")


def test_checks_are_pure() -> None:
    """Nothing is changed or kept between calls: the same input, the same answer."""
    payload = {"a": [1, 2]}
    before = json.dumps(payload)
    for _ in range(2):
        check_payload(payload, LIMITS)
    assert json.dumps(payload) == before
