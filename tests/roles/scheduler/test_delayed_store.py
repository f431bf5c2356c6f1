"""The delayed store against real Redis: schedule, claim, complete, cancel, recurring
re-arm, lapsed claims, ownership and input errors."""

from __future__ import annotations

import time

import pytest

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.delayed import DelayedStore, Job
from tracardi_daemon.infra.redis import RedisClient


def now_ms() -> int:
    return int(time.time() * 1000)


def job(due_ms: int, **extra: object) -> Job:
    return Job(target="stream:out", payload={"n": 1}, due_ms=due_ms, **extra)  # type: ignore[arg-type]


@pytest.fixture
def store(redis_client: RedisClient, prefix: str) -> DelayedStore:
    return DelayedStore(redis_client, prefix)


def test_schedule_get_list_and_claim_within_horizon(store: DelayedStore) -> None:
    soon = store.schedule(job(now_ms() + 100))
    later = store.schedule(job(now_ms() + 60_000))
    stored = store.get(soon)
    assert stored is not None and stored.target == "stream:out" and stored.payload == {"n": 1}
    assert [j.id for j in store.list(10)] == [soon, later]
    _, claimed = store.claim_due("a", horizon_ms=1000, lease_ms=5000)
    assert [j.id for j in claimed] == [soon]
    assert store.claim_due("b", 1000, 5000)[1] == []  # already held
    assert [j.id for j in store.list(10)] == [soon, later]  # claimed ones are listed too


def test_complete_removes_and_cancel(store: DelayedStore, redis_client: RedisClient) -> None:
    first = store.schedule(job(now_ms()))
    second = store.schedule(job(now_ms() + 50_000))
    _, claimed = store.claim_due("a", 1000, 5000)
    assert store.complete("a", claimed, now_ms()) == []
    assert store.get(first) is None
    assert redis_client.zcard(store.claimed_key) == 0
    assert store.cancel(second) and not store.cancel(second)
    assert store.get(second) is None and redis_client.zcard(store.due_key) == 0


def test_cancel_of_a_held_job_ends_its_claim(store: DelayedStore) -> None:
    job_id = store.schedule(job(now_ms()))
    store.claim_due("a", 1000, 5000)
    assert store.cancel(job_id)
    assert store.owned("a", [job_id]) == set()
    assert store.renew("a", [job_id], 5000) == []


def test_recurring_job_is_rearmed(store: DelayedStore, redis_client: RedisClient) -> None:
    due = now_ms()
    job_id = store.schedule(job(due, interval_s=60))
    _, claimed = store.claim_due("a", 1000, 5000)
    assert store.complete("a", claimed, due + 10) == []
    again = store.get(job_id)
    assert again is not None and again.due_ms == due + 60_000
    assert redis_client.zscore(store.due_key, job_id) == due + 60_000
    # due again within the hold window: stays claimed, returned to the caller
    _, claimed = store.claim_due("a", 120_000, 5000)
    held = store.complete("a", claimed, due + 60_010, hold_until_ms=due + 200_000,
                          lease_ms=5000)
    assert [j.due_ms for j in held] == [due + 120_000]
    assert store.owned("a", [job_id]) == {job_id}


def test_missed_occurrences_are_skipped() -> None:
    recurring = job(1000, interval_s=1)
    assert recurring.next_due_ms(1000) == 2000
    assert recurring.next_due_ms(5500) == 6000
    assert job(1000).next_due_ms(5000) is None


def test_lapsed_claim_returns_to_due_and_old_owner_is_fenced(store: DelayedStore) -> None:
    due = now_ms()
    job_id = store.schedule(job(due))
    _, claimed = store.claim_due("a", 1000, lease_ms=50)
    time.sleep(0.1)
    _, taken = store.claim_due("b", 1000, 5000)  # first hands the lapsed claim back
    assert [j.id for j in taken] == [job_id] and taken[0].due_ms == due
    assert store.renew("a", [job_id], 5000) == []
    assert store.complete("a", claimed, now_ms()) == []  # not a's any more: no-op
    assert store.get(job_id) is not None
    assert store.release("a", [job_id]) == 0
    assert store.owned("b", [job_id]) == {job_id}
    store.complete("b", taken, now_ms())
    assert store.get(job_id) is None


def test_release_hands_back_at_the_original_due_time(store: DelayedStore,
                                                      redis_client: RedisClient) -> None:
    due = now_ms() + 500
    job_id = store.schedule(job(due))
    store.claim_due("a", 1000, 5000)
    assert store.release("a", [job_id]) == 1
    assert redis_client.zscore(store.due_key, job_id) == due
    assert store.owned("a", [job_id]) == set()


@pytest.mark.parametrize(("bad", "field"), [
    (Job(target="nope", payload={}, due_ms=1), "target"),
    (Job(target="webhook:ftp://x", payload={}, due_ms=1), "target"),
    (Job(target="stream:s", payload=[1], due_ms=1), "payload"),  # type: ignore[arg-type]
    (Job(target="stream:s", payload={}, due_ms=1, interval_s=0), "interval_s"),
    (Job(target="stream:s", payload={}, due_ms=-5), "due_ms"),
])
def test_bad_input_names_the_field(store: DelayedStore, bad: Job, field: str) -> None:
    with pytest.raises(InvalidInput, match=field):
        store.schedule(bad)


def test_unreadable_job_is_dead_lettered_not_blocking(store: DelayedStore,
                                                      redis_client: RedisClient,
                                                      prefix: str) -> None:
    good = store.schedule(job(now_ms()))
    redis_client.hset(store.jobs_key, "junk", "{not json")
    redis_client.zadd(store.due_key, {"junk": now_ms() - 1})
    _, claimed = store.claim_due("a", 1000, 5000)
    assert [j.id for j in claimed] == [good]
    assert redis_client.hget(store.jobs_key, "junk") is None
    assert redis_client.zcard(store.claimed_key) == 1
    dead = redis_client.xrange(f"{{{prefix}:q:scheduler}}:dead")
    assert len(dead) == 1 and b"unreadable delayed job junk" in dead[0][1][b"reason"]
    # a lapsed unreadable claim goes back to due instead of failing the script
    redis_client.hset(store.jobs_key, "junk2", "[1]")
    redis_client.zadd(store.claimed_key, {"junk2": 1})
    redis_client.hset(store.owner_key, "junk2", "x")
    assert store.claim_due("b", 1000, 5000)[1] == []
    assert redis_client.hget(store.jobs_key, "junk2") is None
