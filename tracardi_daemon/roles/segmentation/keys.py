"""The segmentation role's Redis keys, and the pass marker that lets one pass of a
definition wait or run at a time."""

from __future__ import annotations

import uuid

import redis

from tracardi_daemon.infra.queue_base import queue_key
from tracardi_daemon.infra.queues import SEGMENT_CHANGES_QUEUE
from tracardi_daemon.infra.redis import RedisClient, check_name, redis_errors, text

# A claim holds the marker while its pass is being queued; it expires so that a
# daemon dying in between does not block the definition's passes for good.
CLAIM_PREFIX = "claim:"
CLAIM_TTL_S = 60


def pass_marker_key(tenant: str, definition: str) -> str:
    """The last pass queued for ``definition`` ("segment:<id>"/"live-segment:<id>")."""
    return f"{check_name('tenant', tenant)}:segmentation:pass:{definition}"


def intent_key(tenant: str) -> str:
    """The hash of segment-change intents; in the queue's hash tag, so that announcing
    and forgetting an intent is one transaction."""
    return f"{queue_key(tenant, SEGMENT_CHANGES_QUEUE)}:intent"


def members_key(tenant: str) -> str:
    """The hash of each profile's segments as last announced (a JSON array a profile);
    in the queue's hash tag, so that one script announces and records."""
    return f"{queue_key(tenant, SEGMENT_CHANGES_QUEUE)}:members"


def members_state_key(tenant: str) -> str:
    """A hash: when the record was started (``since``), the seed scan's ``cursor`` and
    when it ended (``seeded``)."""
    return f"{members_key(tenant)}:state"


def intent_field(profile_id: str, token: str) -> str:
    """A profile's intent within the hash, one per writing batch (its token)."""
    return f"{profile_id}:{token}"


class PassMarkers:
    """Which pass of a definition was queued last. A request reads the marker, decides
    whether that pass is over, and then claims the marker only if nobody moved it
    meanwhile (WATCH/MULTI), so two requests racing queue one pass."""

    def __init__(self, client: RedisClient, tenant: str) -> None:
        self._redis = client
        self._tenant = tenant

    def last(self, definition: str) -> str | None:
        """The marker's value: a task id, a claim (see ``is_claim``) or None."""
        key = pass_marker_key(self._tenant, definition)
        with redis_errors(f"read {key}"):
            value = self._redis.get(key)
        return text(value) if value is not None else None

    @staticmethod
    def is_claim(value: str) -> bool:
        return value.startswith(CLAIM_PREFIX)

    def claim(self, definition: str, seen: str | None) -> str | None:
        """A claim on the marker if it still reads ``seen``; None if it moved."""
        key = pass_marker_key(self._tenant, definition)
        claim = f"{CLAIM_PREFIX}{uuid.uuid4().hex}"
        return claim if self._swap(key, seen, claim, CLAIM_TTL_S) else None

    def settle(self, definition: str, claim: str, task_id: str | None) -> None:
        """Point the claimed marker at the queued task; with None (nothing was queued)
        remove it: no marker means no pass waits."""
        key = pass_marker_key(self._tenant, definition)
        self._swap(key, claim, task_id, None)

    def _swap(self, key: str, seen: str | None, new: str | None, ttl_s: int | None) -> bool:
        with redis_errors(f"write {key}"), self._redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]  # untyped in redis-py
                current = pipe.get(key)
                if (text(current) if current is not None else None) != seen:
                    return False
                pipe.multi()
                if new is None:
                    pipe.delete(key)
                else:
                    pipe.set(key, new, ex=ttl_s)
                pipe.execute()
            except redis.WatchError:
                return False
        return True


def follow_state_key(tenant: str) -> str:
    """A hash: where the follower of Tracardi's profile changes is (its cursor)."""
    return f"{check_name('tenant', tenant)}:segmentation:follow"


def follow_seen_key(tenant: str) -> str:
    """A sorted set: the profile versions (``<id>@<update ms>``) the follower announced,
    scored by their update time, so that its look-back announces none twice."""
    return f"{follow_state_key(tenant)}:seen"
