"""A long job's record as the task store keeps it: its fields parsed from the Redis
hash, the smoothed rate and ETA, and its document in the ``task`` index."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.redis import check_name
from tracardi_daemon.model.definitions import Task

TERMINAL_STATUSES = ("finished", "failed", "cancelled")
FINISHED_TTL_MS = 7 * 24 * 3600 * 1000  # the task index keeps the history
# the rate is sampled over at least this long, and smoothed with this time constant
RATE_MIN_WINDOW_S = 1.0
RATE_SMOOTHING_S = 10.0
# what the task index shows of a running job, in params["live"]
_LIVE_FIELDS = ("total", "done", "failed", "rate", "eta_s", "started_at", "updated_at",
                "finished_at", "last_error", "owner", "cancel_requested")  # fmt: skip


def task_key(tenant: str, task_id: str) -> str:
    """A hash: one task's record (Tracardi's task shape, plus the daemon's fields)."""
    return f"{check_name('tenant', tenant)}:task:{check_name('task id', task_id)}"


def active_key(tenant: str) -> str:
    """A set: the ids of the tasks that may not have ended."""
    return f"{check_name('tenant', tenant)}:tasks:active"


def active_indexed_key(tenant: str) -> str:
    """Set once the active set holds the tasks of earlier versions (found by a scan)."""
    return f"{active_key(tenant)}:indexed"


@dataclass(frozen=True)
class TaskRecord:
    """A task as stored in Redis; times are epoch seconds."""

    id: str
    type: str
    name: str
    status: str
    total: int | None
    done: int
    failed: int
    started_at: float | None
    updated_at: float | None
    finished_at: float | None
    rate: float | None  # items (done + failed) per second, smoothed
    eta_s: float | None
    last_error: str | None
    checkpoint: dict[str, Any] | None
    cancel_requested: bool
    owner: str | None
    params: dict[str, Any]
    created_at: float | None = None
    owned_since: float | None = None  # when ``owner`` took the task (a takeover resets it)

    @property
    def percent(self) -> float | None:
        """done / total as 0..100, None while the total is unknown."""
        if self.total is None:
            return None
        if self.total <= 0:
            return 100.0
        return min(100.0, max(0.0, self.done * 100.0 / self.total))

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> TaskRecord:
        return cls(
            id=fields.get("id", ""),
            type=fields.get("type", ""),
            name=fields.get("name", ""),
            status=fields.get("status", ""),
            total=_int(fields.get("total")),
            done=_int(fields.get("done")) or 0,
            failed=_int(fields.get("failed")) or 0,
            started_at=_float(fields.get("started_at")),
            updated_at=_float(fields.get("updated_at")),
            finished_at=_float(fields.get("finished_at")),
            rate=_float(fields.get("rate")),
            eta_s=_float(fields.get("eta_s")),
            last_error=fields.get("last_error") or None,
            checkpoint=_json_object(fields.get("checkpoint")),
            cancel_requested=fields.get("cancel") == "1",
            owner=fields.get("owner") or None,
            params=_json_object(fields.get("params")) or {},
            created_at=_float(fields.get("created_at")),
            owned_since=_float(fields.get("owned_since")),
        )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _json_object(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        decoded = json.loads(value)
    except (ValueError, RecursionError):
        return None
    return decoded if isinstance(decoded, dict) else None


def json_text(field: str, value: Mapping[str, Any]) -> str:
    try:
        return json.dumps(dict(value), separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"{field}: not JSON serialisable ({exc})") from None


def number_text(value: float | None, digits: int = 3) -> str:
    """A time, rate or ETA as hash text; empty for unknown."""
    return "" if value is None else f"{value:.{digits}f}"


def _smoothed_rate(
    previous: float | None, sample: tuple[float, int] | None, now: float, processed: int
) -> tuple[float | None, tuple[float, int]]:
    """The new rate and the sample to keep: the rate since ``sample`` (time, items
    processed), once at least RATE_MIN_WINDOW_S old, smoothed exponentially in time so
    that how often a job reports does not change the weighting."""
    if sample is None:
        return previous, (now, processed)
    elapsed = now - sample[0]
    if elapsed < RATE_MIN_WINDOW_S:
        return previous, sample
    current = max(0, processed - sample[1]) / elapsed
    if previous is None:
        return current, (now, processed)
    weight = 1.0 - math.exp(-elapsed / RATE_SMOOTHING_S)
    return previous + weight * (current - previous), (now, processed)


def rate_changes(
    fields: Mapping[str, str], now: float, processed: int, total: int | None
) -> dict[str, str]:
    """Rate, ETA and the rate sample to store once ``processed`` items are done."""
    sample_at = _float(fields.get("sample_at"))
    sample = None if sample_at is None else (sample_at, _int(fields.get("sample_processed")) or 0)
    previous = _float(fields.get("rate"))
    rate, (sample_at, sample_processed) = _smoothed_rate(previous, sample, now, processed)
    eta = max(0, total - processed) / rate if total is not None and rate else None
    return {"rate": number_text(rate), "eta_s": number_text(eta, 1),
            "sample_at": number_text(sample_at),
            "sample_processed": str(sample_processed)}  # fmt: skip


def to_definition(record: TaskRecord) -> Task:
    """The task's document in the ``task`` index; the live counters go to
    ``params["live"]`` (a job parameter of that name is shadowed there)."""
    progress = 100.0 if record.status == "finished" else record.percent or 0.0
    live = {name: getattr(record, name) for name in _LIVE_FIELDS}
    created = record.created_at or record.updated_at or 0.0
    return Task(
        id=record.id,
        name=record.name,
        type=record.type,
        status=record.status,
        progress=progress,
        created=datetime.fromtimestamp(created, UTC),
        params={**record.params, "live": live},
    )
