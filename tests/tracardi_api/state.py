"""The daemon's Redis state that a test beside the shared Tracardi tenant must not inherit:
the follower's and the live tail's cursors and leases, removed before and after a test so
that each starts now, not where an older run stopped."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tracardi_daemon.infra.lease import lease_key
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.roles.mapping.keys import live_applied_key, live_state_key
from tracardi_daemon.roles.mapping.role import LIVE_LEASE
from tracardi_daemon.roles.segmentation.keys import follow_seen_key, follow_state_key
from tracardi_daemon.roles.segmentation.role import FOLLOW_LEASE


def follower_keys(tenant: str) -> tuple[str, ...]:
    return (follow_state_key(tenant), follow_seen_key(tenant), lease_key(tenant, FOLLOW_LEASE))


def live_tail_keys(tenant: str) -> tuple[str, ...]:
    return (live_state_key(tenant), live_applied_key(tenant), lease_key(tenant, LIVE_LEASE))


@contextmanager
def fresh(redis: RedisClient, keys: tuple[str, ...]) -> Iterator[None]:
    redis.delete(*keys)
    try:
        yield
    finally:
        redis.delete(*keys)
