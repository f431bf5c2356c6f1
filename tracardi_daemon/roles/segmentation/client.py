"""Telling the segmentation role that profiles changed, from any Python producer (the
mapping role does this itself): ``{profile_id, index, fields, source, event_types}`` on
the tenant's ``profile-changed`` queue."""

from __future__ import annotations

from collections.abc import Iterable

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.queues import (
    PROFILE_CHANGED_QUEUE,
    work_queue,
)
from tracardi_daemon.infra.redis import RedisClient


def profile_changed(redis: RedisClient, tenant: str, profile_ids: Iterable[str], *,
                    source: str = "api", fields: Iterable[str] = (),
                    event_types: Iterable[str] | None = None) -> list[str]:
    """Queue the profiles for re-segmentation; returns the message ids. ``event_types``
    (what caused the change) limits which segments are re-evaluated: a segment with an
    ``event_type`` list is only re-evaluated for those; None re-evaluates every one."""
    ids = list(profile_ids)
    if not ids or not all(isinstance(i, str) and i.strip() for i in ids):
        raise InvalidInput("profile_changed: give one or more non-empty profile ids")
    payloads = [{"profile_id": profile_id, "index": None, "fields": sorted(fields),
                 "source": source,
                 "event_types": None if event_types is None else sorted(event_types)}
                for profile_id in ids]
    queue = work_queue(redis, tenant, PROFILE_CHANGED_QUEUE)
    return queue.enqueue_many(payloads)
