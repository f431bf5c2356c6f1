"""Producing delayed jobs from Python: schedule one at a time or after a delay,
optionally recurring; cancel and look one up."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import redis

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.delayed import DelayedStore, Job


def due_ms_for(at: datetime | None = None, delay_s: float | None = None,
               now_s: float | None = None) -> int:
    """Due time in wall-clock ms from ``at`` (timezone-aware) or ``delay_s`` from now;
    neither means now."""
    if at is not None and delay_s is not None:
        raise InvalidInput("at/delay_s: give one of them, not both")
    if at is not None:
        if at.tzinfo is None:
            raise InvalidInput(f"at: {at.isoformat()} needs a timezone (e.g. +00:00)")
        return int(at.timestamp() * 1000)
    if delay_s is not None and delay_s < 0:
        raise InvalidInput(f"delay_s: must not be negative, not {delay_s}")
    start = time.time() if now_s is None else now_s
    return int((start + (delay_s or 0.0)) * 1000)


def schedule(client: redis.Redis[Any], tenant: str, target: str, payload: dict[str, Any],
             *, at: datetime | None = None, delay_s: float | None = None,
             every_s: float | None = None) -> str:
    """Store a job durably and return its id; InvalidInput names a bad field."""
    job = Job(target=target, payload=payload, due_ms=due_ms_for(at, delay_s),
              interval_s=every_s)
    return DelayedStore(client, tenant).schedule(job)


def cancel(client: redis.Redis[Any], tenant: str, job_id: str) -> bool:
    """True if the job existed; a daemon holding it drops it instead of firing."""
    return DelayedStore(client, tenant).cancel(job_id)


def get(client: redis.Redis[Any], tenant: str, job_id: str) -> Job | None:
    return DelayedStore(client, tenant).get(job_id)
