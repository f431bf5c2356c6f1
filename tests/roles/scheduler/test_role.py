"""The scheduler role driven by ``step()`` against real Redis with a ``stream:`` target:
on time, once, never early; recurring jobs; cancel; hand-back on stop."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tracardi_daemon.config.settings import SchedulerSettings, Settings, TracardiSettings
from tracardi_daemon.infra.delayed import DelayedStore, Job
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.roles.base import RoleContext
from tracardi_daemon.roles.scheduler.role import SchedulerRole

RoleMaker = Callable[[], tuple[SchedulerRole, RoleContext]]


@pytest.fixture
def make_role(start_role: Callable[..., tuple[Any, RoleContext]], prefix: str) -> RoleMaker:
    settings = Settings(tracardi=TracardiSettings(tenant=prefix),
                        scheduler=SchedulerSettings(horizon_s=1.0, lease_s=2.0))
    return lambda: start_role(SchedulerRole, settings)


def run_for(role: SchedulerRole, seconds: float) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        role.step(time.time())


def fired(redis_client: RedisClient, prefix: str) -> list[tuple[int, str, dict[str, object]]]:
    """(arrival ms, idempotency key, payload) of every entry on the output stream."""
    entries = redis_client.xrange(f"{prefix}:out")
    return [(int(entry_id.split(b"-")[0]), fields[b"idempotency_key"].decode(),
             json.loads(fields[b"payload"])) for entry_id, fields in entries]


def test_jobs_fire_once_on_time_never_early(make_role: RoleMaker, redis_client: RedisClient,
                                             prefix: str) -> None:
    role, ctx = make_role()
    store = DelayedStore(redis_client, prefix)
    base = int(time.time() * 1000)
    jobs = [Job(target="stream:out", payload={"n": n}, due_ms=base + 50 + n * 25)
            for n in range(11)]  # due in 50..300 ms
    ids = store.schedule_many(jobs)
    run_for(role, 0.8)
    out = fired(redis_client, prefix)
    assert sorted(payload["n"] for _, _, payload in out) == list(range(11))  # type: ignore[type-var]
    due_by_key = {f"{i}:{j.due_ms}": j.due_ms for i, j in zip(ids, jobs, strict=True)}
    assert {key for _, key, _ in out} == set(due_by_key)
    lateness = [arrived - due_by_key[key] for arrived, key, _ in out]
    assert min(lateness) >= 0, lateness  # none early
    assert max(lateness) < 100, lateness
    assert ctx.counters.processed == 11 and ctx.counters.failed == 0
    assert store.list(100) == []


def test_recurring_job_fires_every_interval(make_role: RoleMaker, redis_client: RedisClient,
                                            prefix: str) -> None:
    role, _ = make_role()
    store = DelayedStore(redis_client, prefix)
    due = int(time.time() * 1000) + 100
    job_id = store.schedule(Job(target="stream:out", payload={}, due_ms=due, interval_s=0.2))
    run_for(role, 1.05)  # due at +100, +300, +500, +700, +900 ms
    out = fired(redis_client, prefix)
    assert [key for _, key, _ in out] == [f"{job_id}:{due + k * 200}" for k in range(5)]
    assert all(arrived >= due + k * 200 for k, (arrived, _, _) in enumerate(out))
    assert store.get(job_id) is not None  # still scheduled
    assert store.cancel(job_id)
    run_for(role, 0.4)
    assert len(fired(redis_client, prefix)) == 5


def test_cancelled_job_is_not_fired_even_when_held(make_role: RoleMaker,
                                                   redis_client: RedisClient, prefix: str) -> None:
    role, ctx = make_role()
    store = DelayedStore(redis_client, prefix)
    due = int(time.time() * 1000) + 300
    kept = store.schedule(Job(target="stream:out", payload={"keep": True}, due_ms=due))
    dropped = store.schedule(Job(target="stream:out", payload={"keep": False}, due_ms=due))
    run_for(role, 0.1)  # both claimed into the wheel
    assert store.owned(role._owner, [kept, dropped]) == {kept, dropped}
    assert store.cancel(dropped)
    run_for(role, 0.5)
    assert [payload for _, _, payload in fired(redis_client, prefix)] == [{"keep": True}]
    assert ctx.counters.processed == 1


def test_stop_hands_held_jobs_back(make_role: RoleMaker, redis_client: RedisClient,
                                   prefix: str) -> None:
    first, _ = make_role()
    store = DelayedStore(redis_client, prefix)
    due = int(time.time() * 1000) + 400
    job_id = store.schedule(Job(target="stream:out", payload={}, due_ms=due))
    run_for(first, 0.1)
    assert redis_client.zscore(store.claimed_key, job_id) is not None
    first.stop()
    assert redis_client.zscore(store.due_key, job_id) == due
    second, _ = make_role()
    run_for(second, 0.5)
    assert [key for _, key, _ in fired(redis_client, prefix)] == [f"{job_id}:{due}"]


def handed_off(redis_client: RedisClient, prefix: str) -> list[dict[str, object]]:
    """The deliveries waiting on the dispatch queue."""
    return [json.loads(fields[b"payload"])
            for _, fields in redis_client.xrange(f"{{{prefix}:q:dispatch}}")]


def test_webhook_job_is_handed_off_not_sent_by_the_firing_thread(
        make_role: RoleMaker, redis_client: RedisClient, prefix: str) -> None:
    role, ctx = make_role()
    store = DelayedStore(redis_client, prefix)
    due = int(time.time() * 1000)
    # nothing listens on port 1: sending here would take the firing thread's time
    job_id = store.schedule(Job(target="webhook:http://127.0.0.1:1/x", payload={"n": 1},
                                due_ms=due))
    started = time.monotonic()
    run_for(role, 0.2)
    assert time.monotonic() - started < 0.5
    assert handed_off(redis_client, prefix) == [
        {"target": "webhook:http://127.0.0.1:1/x", "idempotency_key": f"{job_id}:{due}",
         "payload": {"n": 1}, "origin": job_id}]
    assert store.get(job_id) is None  # durable in the dispatch queue now
    assert ctx.counters.processed == 1 and ctx.counters.failed == 0


def test_stream_job_that_cannot_be_written_goes_to_the_senders(
        make_role: RoleMaker, redis_client: RedisClient, prefix: str) -> None:
    role, ctx = make_role()
    store = DelayedStore(redis_client, prefix)
    redis_client.set(f"{prefix}:not-a-stream", "x")  # XADD answers WRONGTYPE
    now = int(time.time() * 1000)
    store.schedule_many([Job(target="stream:not-a-stream", payload={}, due_ms=now),
                         Job(target="stream:out", payload={"ok": 1}, due_ms=now)])
    run_for(role, 0.3)
    assert [payload for _, _, payload in fired(redis_client, prefix)] == [{"ok": 1}]
    assert [d["target"] for d in handed_off(redis_client, prefix)] == ["stream:not-a-stream"]
    assert store.list(10) == []
    assert ctx.counters.processed == 2


def test_two_schedulers_share_jobs_without_firing_one_twice(
        make_role: RoleMaker, redis_client: RedisClient, prefix: str) -> None:
    (first, first_ctx), (second, second_ctx) = make_role(), make_role()
    store = DelayedStore(redis_client, prefix)
    base = int(time.time() * 1000) + 50
    ids = store.schedule_many([Job(target="stream:out", payload={"n": n}, due_ms=base + n)
                               for n in range(300)])
    threads = [threading.Thread(target=run_for, args=(role, 0.8)) for role in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys = [key for _, key, _ in fired(redis_client, prefix)]
    assert sorted(keys) == sorted(f"{i}:{base + n}" for n, i in enumerate(ids))
    assert first_ctx.counters.processed + second_ctx.counters.processed == 300
