"""Leases with fencing tokens on the real Redis: one holder at a time, tokens that grow
across holders, local expiry, and writes that a former holder can no longer make."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from redis import Redis

from tracardi_daemon.errors import BackendError, InvalidInput
from tracardi_daemon.infra.lease import Lease

SHORT_TTL_S = 0.3


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def lapse() -> None:
    """Wait until a lease of SHORT_TTL_S has expired in Redis."""
    time.sleep(SHORT_TTL_S + 0.15)


LeaseFactory = Callable[..., Lease]


@pytest.fixture
def lease_for(redis_client: Redis, prefix: str) -> LeaseFactory:
    def make(owner: str, ttl_s: float = 10.0, clock: FakeClock | None = None) -> Lease:
        if clock is None:
            return Lease(redis_client, prefix, "segmentation", owner, ttl_s)
        return Lease(redis_client, prefix, "segmentation", owner, ttl_s, clock=clock)

    return make


def test_one_holder_at_a_time(lease_for: LeaseFactory, redis_client: Redis, prefix: str) -> None:
    a, b = lease_for("A"), lease_for("B")
    assert a.acquire()
    assert a.held and a.token is not None
    assert a.value == f"A|{a.token}"
    assert a.key == f"{prefix}:lease:segmentation"
    assert not b.acquire()
    assert not b.held and b.token is None and b.value is None
    assert a.holder() == b.holder() == ("A", a.token)

    redis_client.pexpire(a.key, 1000)
    assert a.renew()
    assert redis_client.pttl(a.key) > 9000
    assert a.acquire(), "acquiring a lease already ours extends it"
    assert a.holder() == ("A", a.token)


def test_a_lapsed_lease_goes_to_the_next_owner_with_a_higher_token(lease_for: LeaseFactory) -> None:
    a, b = lease_for("A", SHORT_TTL_S), lease_for("B", SHORT_TTL_S)
    assert a.acquire()
    first = a.token
    assert first is not None
    lapse()
    assert b.acquire()
    assert b.token is not None and b.token > first
    assert b.holder() == ("B", b.token)
    assert not a.renew()
    assert not a.held and a.token is None


def test_tokens_grow_across_holders(lease_for: LeaseFactory) -> None:
    a, b = lease_for("A"), lease_for("B")
    tokens = []
    for lease in (a, b, a):
        assert lease.acquire() and lease.token is not None
        tokens.append(lease.token)
        lease.release()
    assert tokens[0] < tokens[1] < tokens[2]


def test_a_former_holder_writes_nothing(
    lease_for: LeaseFactory, redis_client: Redis, prefix: str
) -> None:
    # A's clock stands still, so only Redis can tell A that the lease is gone
    a = lease_for("A", SHORT_TTL_S, clock=FakeClock())
    b = lease_for("B", SHORT_TTL_S)
    checkpoint = f"{prefix}:checkpoint"
    assert a.acquire()
    fence_a = a.fenced()
    assert fence_a.token == a.token
    assert fence_a.execute([("HSET", checkpoint, "after", "a-1")])
    lapse()
    assert b.acquire()

    assert a.held, "locally A still believes it holds the lease"
    assert not fence_a.execute([("HSET", checkpoint, "after", "a-2"), ("DEL", checkpoint)])
    assert redis_client.hgetall(checkpoint) == {b"after": b"a-1"}

    assert b.fenced().execute([("HSET", checkpoint, "after", "b-1")])
    assert redis_client.hget(checkpoint, "after") == b"b-1"
    assert not a.renew()
    assert not a.held
    assert not a.fenced().execute([("HSET", checkpoint, "after", "a-3")])
    assert redis_client.hget(checkpoint, "after") == b"b-1"


def test_a_fence_refuses_after_the_lease_is_taken_again(
    lease_for: LeaseFactory, redis_client: Redis, prefix: str
) -> None:
    a = lease_for("A")
    assert a.acquire()
    old_fence = a.fenced()
    a.release()
    assert a.acquire()
    assert not old_fence.execute([("SET", f"{prefix}:x", "1")])
    assert a.fenced().execute([("SET", f"{prefix}:x", "1")])
    assert redis_client.get(f"{prefix}:x") == b"1"


def test_local_expiry_without_asking_redis(
    lease_for: LeaseFactory, redis_client: Redis, prefix: str
) -> None:
    clock = FakeClock()
    a = lease_for("A", 10.0, clock=clock)
    assert a.acquire()
    token = a.token
    fence = a.fenced()
    clock.now += 9.9
    assert a.held
    clock.now += 0.1
    assert not a.held and a.token is None and a.value is None
    assert a.holder() == ("A", token), "Redis still has it; only our view lapsed"
    assert not fence.execute([("SET", f"{prefix}:x", "1")])
    assert redis_client.get(f"{prefix}:x") is None

    # nobody took it meanwhile, so ensure() gets it back with the same token, and a
    # fence of that holding works again
    assert a.ensure()
    assert a.token == token
    assert fence.execute([("SET", f"{prefix}:x", "1")])


def test_release_only_by_the_holder(lease_for: LeaseFactory) -> None:
    a = lease_for("A", SHORT_TTL_S, clock=FakeClock())
    b = lease_for("B", SHORT_TTL_S)
    b.release()  # holds nothing: a no-op
    assert a.acquire()
    b.release()
    assert a.holder() == ("A", a.token)
    lapse()
    assert b.acquire()
    a.release()  # A's holding lapsed: B's lease stays
    assert not a.held
    assert b.holder() == ("B", b.token)
    b.release()
    assert b.holder() is None and not b.held


def test_ensure_renews_after_a_third_of_the_ttl_and_reacquires(
    lease_for: LeaseFactory, redis_client: Redis
) -> None:
    clock = FakeClock()
    a = lease_for("A", 9.0, clock=clock)
    assert a.ensure()
    first = a.token
    redis_client.pexpire(a.key, 5000)
    clock.now += 2.9
    assert a.ensure()
    assert redis_client.pttl(a.key) <= 5000, "no renewal before a third of the ttl"
    clock.now += 0.2
    assert a.ensure()
    assert redis_client.pttl(a.key) > 8000

    a.release()
    assert not a.held
    assert a.ensure()
    assert a.token is not None and first is not None and a.token > first


def test_ensure_reports_a_lost_lease_before_taking_it_again(
    lease_for: LeaseFactory, redis_client: Redis
) -> None:
    clock = FakeClock()
    a = lease_for("A", 9.0, clock=clock)
    assert a.ensure()
    redis_client.delete(a.key)  # lost (e.g. Redis failed over without it)
    clock.now += 4
    assert not a.ensure(), "the role must stop the duty at once"
    assert a.ensure()


def test_fenced_commands(lease_for: LeaseFactory, redis_client: Redis, prefix: str) -> None:
    a = lease_for("A")
    assert a.acquire()
    h, z, s = f"{prefix}:h", f"{prefix}:z", f"{prefix}:s"
    assert a.fenced().execute(
        [
            ("HSET", h, "a", "1", "b", "2"),
            ("HINCRBY", h, "a", "5"),
            ("HDEL", h, "b"),
            ("ZADD", z, "1", "one", "2", "two", "3", "three"),
            ("ZREMRANGEBYSCORE", z, "2", "2"),
            ("XADD", s, "*", "event", "checkpoint"),
            ("PEXPIRE", h, "60000"),
        ]
    )
    assert redis_client.hgetall(h) == {b"a": b"6"}
    assert 0 < redis_client.pttl(h) <= 60000
    assert redis_client.zrange(z, 0, -1) == [b"one", b"three"]
    assert redis_client.xlen(s) == 1
    assert a.fenced().execute([("DEL", h, z)])
    assert redis_client.exists(h, z) == 0
    assert a.fenced().execute([]), "no commands: only the lease check"


def test_fenced_allow_list_and_declared_keys(
    lease_for: LeaseFactory, redis_client: Redis, prefix: str
) -> None:
    a = lease_for("A")
    assert a.acquire()
    key = f"{prefix}:h"
    with pytest.raises(BackendError, match="FLUSHALL is not allowed"):
        a.fenced().execute([("HSET", key, "a", "1"), ("FLUSHALL",)])
    assert redis_client.exists(key) == 0, "refused before any command ran"
    with pytest.raises(BackendError, match="EVAL is not allowed"):
        a.fenced().execute([("eval", "return 1", "0")])
    with pytest.raises(BackendError, match="not declared"):
        a.fenced().execute([("DEL", a.key)])
    with pytest.raises(BackendError, match="not declared"):
        a.fenced().execute([("SET", a.key, "mine")])
    assert a.holder() == ("A", a.token)
    with pytest.raises(InvalidInput):
        a.fenced().execute([()])


def test_invalid_arguments(redis_client: Redis, prefix: str) -> None:
    with pytest.raises(InvalidInput, match="ttl_s"):
        Lease(redis_client, prefix, "x", "A", 0)
    with pytest.raises(InvalidInput, match="owner"):
        Lease(redis_client, prefix, "x", "", 1)
    with pytest.raises(InvalidInput, match="lease name"):
        Lease(redis_client, prefix, "{x}", "A", 1)
