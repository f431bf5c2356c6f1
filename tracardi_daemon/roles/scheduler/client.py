"""Producing delayed jobs from Python: schedule one at a time or after a delay,
optionally recurring; cancel and look one up."""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.delayed import DelayedStore, Job
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.roles.scheduler.limits import (
    JobLimits,
    check_due,
    check_interval,
    check_payload,
)


def due_ms_for(at: datetime | None = None, delay_s: float | None = None,
               now_s: float | None = None) -> int:
    """Due time in wall-clock ms from ``at`` (timezone-aware) or ``delay_s`` from now;
    neither means now."""
    if at is not None and delay_s is not None:
        raise InvalidInput("at/delay_s: give one of them, not both")
    if at is not None:
        if at.tzinfo is None:
            raise InvalidInput(f"at: {at.isoformat()} needs a timezone (e.g. +00:00)")
        try:
            return int(at.timestamp() * 1000)
        except (OverflowError, ValueError):  # an offset pushing it past year 1 or 9999
            raise InvalidInput(f"at: {at.isoformat()} is out of range") from None
    if delay_s is not None and not _is_delay(delay_s):
        raise InvalidInput(f"delay_s: must be a finite, non-negative number of seconds, "
                           f"not {delay_s!r}")
    start = time.time() if now_s is None else now_s
    return int((start + (delay_s or 0.0)) * 1000)


def _is_delay(delay_s: float) -> bool:
    return (isinstance(delay_s, int | float) and not isinstance(delay_s, bool)
            and math.isfinite(delay_s) and delay_s >= 0)


def schedule(client: RedisClient, tenant: str, target: str, payload: dict[str, Any],
             *, at: datetime | None = None, delay_s: float | None = None,
             every_s: float | None = None, limits: JobLimits | None = None) -> str:
    """Store a job durably and return its id; InvalidInput names a bad field. With
    ``limits`` (``JobLimits.from_settings(settings.scheduler)``), the payload, interval
    and due time are held to them as well. A due time in the past fires at once."""
    now_ms = time.time() * 1000
    job = Job(target=target, payload=payload, due_ms=due_ms_for(at, delay_s, now_ms / 1000),
              interval_s=every_s)
    if limits is not None:
        check_job_limits(job, now_ms, limits)
    return DelayedStore(client, tenant).schedule(job)


def check_job_limits(job: Job, now_ms: float, limits: JobLimits) -> None:
    """InvalidInput naming the field of ``job`` that is outside ``limits``."""
    check_payload(job.payload, limits)
    if job.interval_s is not None:
        check_interval(job.interval_s, limits)
    check_due(job.due_ms, now_ms, limits)


def cancel(client: RedisClient, tenant: str, job_id: str) -> bool:
    """True if the job existed; a daemon holding it drops it instead of firing."""
    return DelayedStore(client, tenant).cancel(job_id)


def get(client: RedisClient, tenant: str, job_id: str) -> Job | None:
    return DelayedStore(client, tenant).get(job_id)
