"""Stored job bodies written by anything else: whatever is in ``{<tenant>:sched}:jobs``,
the role never crashes, never delays the other jobs, and every bad body ends in the
``scheduler`` dead letters with a reason naming the field."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracardi_daemon.config.settings import SchedulerSettings, Settings, TracardiSettings
from tracardi_daemon.infra.cpu_pool import CpuPool
from tracardi_daemon.infra.deadletters import DeadLetters
from tracardi_daemon.infra.delayed import DelayedStore, Job
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.roles.base import RoleContext, RoleCounters
from tracardi_daemon.roles.scheduler.role import SchedulerRole

GOOD = {"target": "stream:out", "payload": {"n": 1}, "interval_s": None, "attempts": 0}


@pytest.fixture
def role(redis_client: RedisClient, elastic_url: str, prefix: str) -> Iterator[SchedulerRole]:
    elastic, pool = Elasticsearch(elastic_url), CpuPool(1)
    ctx = RoleContext(name="scheduler", redis=redis_client, elastic=elastic, pool=pool,
                      settings=Settings(tracardi=TracardiSettings(tenant=prefix),
                                        scheduler=SchedulerSettings(horizon_s=1.0,
                                                                    lease_s=2.0)),
                      stop=threading.Event(), logger=logging.getLogger("scheduler"),
                      counters=RoleCounters(), consumer_name="malformed")
    scheduler = SchedulerRole()
    scheduler.start(ctx)
    yield scheduler
    scheduler.stop()
    pool.shutdown()
    elastic.close()


def store_raw(redis_client: RedisClient, store: DelayedStore, job_id: str, body: str,
              due_ms: float) -> None:
    redis_client.hset(store.jobs_key, job_id, body)
    redis_client.zadd(store.due_key, {job_id: due_ms})


def run_for(role: SchedulerRole, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        role.step(time.time())


def body(fields: dict[str, Any]) -> str:
    return json.dumps({**GOOD, **fields})


@pytest.mark.parametrize(("raw", "named"), [
    ('{"id": "bad", "due_ms": %(due)d, "target": 5, "payload": {}}', "target"),
    ('{"id": "bad", "due_ms": %(due)d, "target": "stream:out", "payload": {}, '
     '"interval_s": "abc"}', "interval_s"),
    ('{"id": "bad", "due_ms": 1e400, "target": "stream:out", "payload": {}}', "due_ms"),
    ('{"id": "other", "due_ms": %(due)d, "target": "stream:out", "payload": {}}',
     "differs from its key"),
    ('{"id": "bad", "due_ms": %(due)d, "target": "webhook:ftp://x", "payload": {}}',
     "target"),
    ('{"id": "bad", "due_ms": %(due)d, "target": "stream:out", "payload": [1]}', "payload"),
    ('{"id": "bad", "due_ms": true, "target": "stream:out", "payload": {}}', "due_ms"),
    ('{"id": "bad", "due_ms": %(due)d, "target": "stream:out", "payload": {}, '
     '"attempts": 1e400}', "attempts"),
    ('{"id": "bad", "due_ms": %(due)d, "target": "stream:out", "payload": {}, '
     '"interval_s": 0}', "interval_s"),
    ("not json at all", "body"),
    ("[1, 2, 3]", "body"),
    ('{"id": "bad"}', "missing"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_a_bad_body_is_dead_lettered_and_the_jobs_beside_it_fire_on_time(
        role: SchedulerRole, redis_client: RedisClient, prefix: str, raw: str,
        named: str) -> None:
    store = DelayedStore(redis_client, prefix)
    due = int(time.time() * 1000) + 100
    good = store.schedule_many([Job(target="stream:out", payload={"n": n}, due_ms=due + n)
                                for n in range(20)])
    store_raw(redis_client, store, "bad", raw.replace("%(due)d", str(due)), due)
    run_for(role, 0.5)
    fired = redis_client.xrange(f"{prefix}:out")
    assert len(fired) == 20
    lateness = [int(entry_id.split(b"-")[0]) - due - n for n, (entry_id, _) in
                enumerate(sorted(fired, key=lambda e: json.loads(e[1][b"payload"])["n"]))]
    assert max(lateness) < 100, lateness
    [letter] = DeadLetters(redis_client, prefix, "scheduler").oldest()
    assert named in letter.reason and letter.extra["job_id"] == "bad"
    assert redis_client.hget(store.jobs_key, "bad") is None  # gone from the store
    assert all(store.get(i) is None for i in good)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["id", "target", "payload", "due_ms", "interval_s", "attempts"]),
       value=JSON)
def test_any_json_value_in_any_field_is_fired_or_dead_lettered(
        role: SchedulerRole, redis_client: RedisClient, prefix: str, field: str,
        value: Any) -> None:
    store = DelayedStore(redis_client, prefix)
    redis_client.delete(store.jobs_key, store.due_key, f"{{{prefix}:q:scheduler}}:dead",
                        f"{prefix}:out")
    due = int(time.time() * 1000)
    # an id of its own per example: the role (one for every example) may still hold an
    # earlier example's job of the same id in its wheel
    job_id = f"j{uuid.uuid4().hex[:12]}"
    try:
        raw = body({"id": job_id, "due_ms": due, field: value})
    except ValueError:  # NaN in a float field: json.dumps writes it, others may not
        return
    store_raw(redis_client, store, job_id, raw, due)
    store.schedule(Job(target="stream:out", payload={"witness": True}, due_ms=due))
    run_for(role, 0.15)
    outputs = [json.loads(f[b"payload"]) for _, f in redis_client.xrange(f"{prefix}:out")]
    dead = DeadLetters(redis_client, prefix, "scheduler").count()
    assert {"witness": True} in outputs  # the other job is never held up
    # the odd job either fired (its body was valid after all) or was dead-lettered
    assert (len(outputs) == 2) != (dead == 1), (field, value, outputs, dead)
    assert store.list(10) == [] or store.get(job_id) is not None  # recurring ones stay
