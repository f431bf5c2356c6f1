"""Bounds on a delayed job: payload size and nesting, how far ahead it may be due, how
often it may recur. Pure checks (no I/O) for the producers (CLI, Python client); a job
already stored is checked only for what firing it needs (``delayed.validate_job``)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from tracardi_daemon.config.settings import SchedulerSettings
from tracardi_daemon.errors import InvalidInput

_MS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class JobLimits:
    max_payload_bytes: int
    max_payload_depth: int
    max_delay_days: float
    min_interval_s: float

    @classmethod
    def from_settings(cls, settings: SchedulerSettings) -> JobLimits:
        return cls(max_payload_bytes=settings.max_payload_bytes,
                   max_payload_depth=settings.max_payload_depth,
                   max_delay_days=settings.max_delay_days,
                   min_interval_s=settings.min_interval_s)

    @property
    def max_delay_ms(self) -> float:
        return self.max_delay_days * _MS_PER_DAY


def check_payload(payload_obj: Any, limits: JobLimits) -> None:
    """InvalidInput naming ``payload`` unless it nests at most ``max_payload_depth``
    containers deep and serialises (as stored) to at most ``max_payload_bytes``."""
    depth = payload_depth(payload_obj, limit=limits.max_payload_depth)
    if depth > limits.max_payload_depth:
        raise InvalidInput(f"payload: nested deeper than {limits.max_payload_depth} levels "
                           "(scheduler.max_payload_depth)")
    try:
        # the same encoding as the stored job's (Job.to_json); NaN/Infinity are not JSON
        size = len(json.dumps(payload_obj, separators=(",", ":"), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"payload: not serialisable as JSON ({exc})") from None
    if size > limits.max_payload_bytes:
        raise InvalidInput(f"payload: {size} bytes as JSON, more than "
                           f"{limits.max_payload_bytes} (scheduler.max_payload_bytes)")


def check_interval(interval_s: float, limits: JobLimits) -> None:
    """InvalidInput naming ``interval_s`` unless it is a finite number of seconds between
    ``min_interval_s`` and ``max_delay_days`` (a longer one could never fire)."""
    if isinstance(interval_s, bool) or not isinstance(interval_s, int | float):
        raise InvalidInput(f"interval_s: must be a number of seconds, not {interval_s!r}")
    seconds = _as_float(interval_s)
    if math.isnan(seconds):
        raise InvalidInput("interval_s: must be a number of seconds, not nan")
    if seconds < limits.min_interval_s:
        raise InvalidInput(f"interval_s: {seconds:g}s is shorter than "
                           f"{limits.min_interval_s:g}s (scheduler.min_interval_s)")
    if seconds * 1000 > limits.max_delay_ms:
        raise InvalidInput(f"interval_s: {seconds:g}s is longer than "
                           f"{limits.max_delay_days:g} days (scheduler.max_delay_days)")


def check_due(due_ms: int, now_ms: float, limits: JobLimits) -> None:
    """InvalidInput naming ``due_ms`` unless it is a non-negative integer at most
    ``max_delay_days`` after ``now_ms``. A due time in the past is fine: it fires now."""
    if isinstance(due_ms, bool) or not isinstance(due_ms, int) or due_ms < 0:
        raise InvalidInput(f"due_ms: must be a non-negative integer, not {due_ms!r}")
    # int against float compares exactly, without overflowing however large due_ms is
    if due_ms > now_ms + limits.max_delay_ms:
        raise InvalidInput(f"due_ms: {due_ms} is more than {limits.max_delay_days:g} days "
                           "ahead (scheduler.max_delay_days)")


def _as_float(number: float) -> float:
    """``number`` as a float; an int too large for one is infinity."""
    try:
        return float(number)
    except OverflowError:
        return math.inf


def payload_depth(value: Any, limit: int) -> int:
    """How many containers (objects, arrays) deep ``value`` nests; counting stops past
    ``limit``, so a deep or self-referencing value costs little and never recurses."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        pending.extend((child, depth + 1) for child in children)
    return deepest
