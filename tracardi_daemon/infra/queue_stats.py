"""A queue's numbers for health and metrics, read in one round trip."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from tracardi_daemon.infra.queue_base import id_ms
from tracardi_daemon.infra.redis import RedisClient, text


@dataclass(frozen=True)
class QueueStats:
    length: int  # entries in the stream: waiting plus in flight (done ones are deleted)
    pending: int  # delivered, not acknowledged yet
    lag: int  # waiting, never delivered
    retrying: int  # parked until their retry is due
    dead: int  # dead letters
    oldest_pending_age_s: float | None  # since the oldest in-flight message was queued


def read_stats(client: RedisClient, stream: str, group: str, retry: str,
               dead: str) -> QueueStats:
    pipe = client.pipeline(transaction=False)
    pipe.xlen(stream)
    pipe.xinfo_groups(stream)
    pipe.xpending(stream, group)
    pipe.zcard(retry)
    pipe.xlen(dead)
    pipe.time()
    length, groups, summary, retrying, dead_count, now = pipe.execute(raise_on_error=False)
    for reply in (length, retrying, dead_count, now):
        if isinstance(reply, Exception):
            raise reply
    pending, oldest_id = _pending(summary)
    lag = _lag(groups, group)
    if lag is None:
        # acked entries are deleted, so what is in the stream and not pending is waiting
        lag = max(0, int(length) - pending)
    age = None
    if oldest_id is not None:
        now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
        age = max(0.0, (now_ms - id_ms(oldest_id)) / 1000)
    return QueueStats(int(length), pending, lag, int(retrying), int(dead_count), age)


def _pending(summary: Any) -> tuple[int, str | None]:
    if isinstance(summary, redis.ResponseError):
        return 0, None  # no stream or no group yet: nothing was delivered
    if isinstance(summary, Exception):
        raise summary
    oldest = summary.get("min")
    return int(summary.get("pending") or 0), None if oldest is None else text(oldest)


def _lag(groups: Any, group: str) -> int | None:
    """The group's lag as Redis 7 reports it; None where Redis cannot tell (6.2)."""
    if isinstance(groups, redis.ResponseError):
        return 0
    if isinstance(groups, Exception):
        raise groups
    for raw in groups:
        info = {text(k): v for k, v in raw.items()}
        if text(info.get("name", "")) == group:
            lag = info.get("lag")
            return None if lag is None else int(lag)
    return None
