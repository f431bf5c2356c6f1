"""The dispatch role's senders against real receivers and the real Redis: retries with
the same key, dead letters with the reason, a per-host limit, claims kept alive while a
request runs, and takeover of a lost sender's delivery."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.receivers import LOOPBACK_ALLOWED, ScriptedServer
from tracardi_daemon.config.settings import (
    DispatchSettings,
    QueueSettings,
    SchedulerSettings,
    Settings,
    TracardiSettings,
)
from tracardi_daemon.infra.deadletters import DeadLetters
from tracardi_daemon.infra.delivery import delivery
from tracardi_daemon.infra.host_limits import HostLimits
from tracardi_daemon.infra.queues import DISPATCH_QUEUE, work_queue
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.roles.dispatch.role import DispatchRole
from tracardi_daemon.roles.scheduler.role import SchedulerRole

Maker = Callable[..., tuple[Any, Any]]


@pytest.fixture
def settings(prefix: str) -> Settings:
    return Settings(
        tracardi=TracardiSettings(tenant=prefix),
        outbound=LOOPBACK_ALLOWED,
        queue=QueueSettings(visibility_timeout_s=0.6, poll_interval_s=0.1),
        scheduler=SchedulerSettings(horizon_s=1.0, lease_s=2.0),
        dispatch=DispatchSettings(max_attempts=3, retry_backoff_initial_s=0.05,
                                  retry_backoff_max_s=0.1, connect_timeout_s=0.5,
                                  read_timeout_s=3.0, total_timeout_s=4.0))


@pytest.fixture
def make_role(start_role: Callable[..., tuple[Any, Any]], settings: Settings) -> Maker:
    def make(kind: type[Any] = DispatchRole, limits: HostLimits | None = None) -> tuple[Any, Any]:
        return start_role(kind, settings, limits)
    return make


def run_for(role: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        role.step(time.time())


def run_until(role: Any, predicate: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        role.step(time.time())


def hand_off(redis_client: RedisClient, settings: Settings, target: str, key: str,
             payload: dict[str, Any] | None = None) -> None:
    work_queue(redis_client, settings.tracardi.tenant, DISPATCH_QUEUE, settings).enqueue(
        delivery(target, key, payload or {"n": 1}, origin="test"))


def dead(redis_client: RedisClient, prefix: str) -> DeadLetters:
    return DeadLetters(redis_client, prefix, "dispatch")


def test_server_error_is_retried_and_delivered_once_with_the_same_key(
        make_role: Maker, http_server: ScriptedServer, redis_client: RedisClient,
        settings: Settings, prefix: str) -> None:
    role, ctx = make_role()
    http_server.replies = [(500, "oops"), (503, "busy")]
    hand_off(redis_client, settings, f"webhook:{http_server.url}/h", "job-1:1000")
    run_until(role, lambda: ctx.counters.processed == 1, 5)
    assert http_server.keys() == ["job-1:1000"] * 3
    assert dead(redis_client, prefix).count() == 0
    run_for(role, 0.3)
    assert len(http_server.received) == 3  # acknowledged: never sent again


def test_failures_end_in_the_dead_letters_with_the_reason_and_a_requeueable_body(
        make_role: Maker, http_server: ScriptedServer, redis_client: RedisClient,
        settings: Settings, prefix: str) -> None:
    role, ctx = make_role()
    http_server.replies = [(502, "bad gateway")] * 3
    target = f"webhook:{http_server.url}/h"
    hand_off(redis_client, settings, target, "job-2:2000", {"n": 2})
    run_until(role, lambda: ctx.counters.failed == 1, 5)
    [letter] = dead(redis_client, prefix).oldest()
    assert letter.attempts == 3 and "max_attempts 3" in letter.reason
    assert "HTTP 502" in (letter.last_error or "")
    assert letter.payload["target"] == target and letter.payload["payload"] == {"n": 2}
    # requeued, it is delivered with its original key
    assert dead(redis_client, prefix).requeue("all") == 1
    run_until(role, lambda: ctx.counters.processed == 1, 5)
    assert http_server.keys()[-1] == "job-2:2000"


def test_a_client_error_is_dead_lettered_at_once(
        make_role: Maker, http_server: ScriptedServer, redis_client: RedisClient,
        settings: Settings, prefix: str) -> None:
    role, ctx = make_role()
    http_server.replies = [(400, '{"detail": "x is required"}')]
    hand_off(redis_client, settings, f"webhook:{http_server.url}/h", "k")
    run_until(role, lambda: ctx.counters.failed == 1, 5)
    [letter] = dead(redis_client, prefix).oldest()
    assert "HTTP 400" in letter.reason and "x is required" in letter.reason
    assert len(http_server.received) == 1


@pytest.mark.parametrize("body", [
    {"target": 5, "idempotency_key": "k", "payload": {}},
    {"target": "webhook:ftp://x", "idempotency_key": "k", "payload": {}},
    {"target": "stream:out", "idempotency_key": "", "payload": {}},
    {"target": "stream:out", "idempotency_key": "k", "payload": [1]},
])
def test_a_malformed_delivery_is_dead_lettered_with_the_field_named(
        make_role: Maker, redis_client: RedisClient, settings: Settings, prefix: str,
        body: dict[str, Any]) -> None:
    role, ctx = make_role()
    work_queue(redis_client, settings.tracardi.tenant, DISPATCH_QUEUE, settings).enqueue(body)
    run_until(role, lambda: ctx.counters.failed == 1, 3)
    [letter] = dead(redis_client, prefix).oldest()
    assert letter.reason.startswith("invalid delivery: ")
    assert any(name in letter.reason for name in ("target", "idempotency_key", "payload"))


def test_a_host_at_its_limit_waits_without_taking_a_sender(
        make_role: Maker, http_server: ScriptedServer, redis_client: RedisClient,
        settings: Settings) -> None:
    limits = HostLimits(1)
    role, ctx = make_role(limits=limits)
    assert limits.try_acquire("127.0.0.1")  # another sender is busy with this host
    hand_off(redis_client, settings, f"webhook:{http_server.url}/h", "k")
    started = time.monotonic()
    run_for(role, 0.5)
    assert http_server.received == [] and time.monotonic() - started < 1.0
    limits.release("127.0.0.1")
    run_until(role, lambda: ctx.counters.processed == 1, 3)
    assert http_server.keys() == ["k"]


def test_a_slow_receiver_delays_only_its_own_deliveries(
        make_role: Maker, redis_client: RedisClient, settings: Settings,
        http_server: ScriptedServer) -> None:
    from tests.receivers import start_scripted_server

    slow, slow_httpd = start_scripted_server()
    slow.delay_s = 1.5
    limits = HostLimits(1)
    senders = [make_role(limits=limits) for _ in range(2)]
    # the slow host is "localhost", the fast one 127.0.0.1: two hosts, one limit each
    slow_url = slow.url.replace("127.0.0.1", "localhost")
    for n in range(3):
        hand_off(redis_client, settings, f"webhook:{slow_url}/slow", f"slow-{n}")
    for n in range(5):
        hand_off(redis_client, settings, f"webhook:{http_server.url}/fast", f"fast-{n}")
    stop = threading.Event()

    def loop(role: Any) -> None:
        while not stop.is_set():
            role.step(time.time())

    threads = [threading.Thread(target=loop, args=(role,)) for role, _ in senders]
    started = time.time()
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 3
        while len(http_server.received) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        fast_done = max(r.at for r in http_server.received) - started
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        slow_httpd.shutdown()
        slow_httpd.server_close()
    assert sorted(http_server.keys()) == [f"fast-{n}" for n in range(5)]
    assert fast_done < 1.0, fast_done  # not behind a 1.5 s answer


def test_tend_keeps_a_long_request_from_being_taken_over(
        make_role: Maker, http_server: ScriptedServer, redis_client: RedisClient,
        settings: Settings) -> None:
    http_server.delay_s = 1.5  # 2.5 visibility timeouts
    sender, sender_ctx = make_role()
    other, _ = make_role()
    hand_off(redis_client, settings, f"webhook:{http_server.url}/h", "long")
    stop = threading.Event()

    def tend() -> None:
        while not stop.wait(0.1):
            sender.tend()

    tender = threading.Thread(target=tend)
    tender.start()
    worker = threading.Thread(target=lambda: run_until(
        sender, lambda: sender_ctx.counters.processed == 1, 5))
    worker.start()
    try:
        time.sleep(0.2)  # the sender has it
        run_for(other, 1.8)  # past the visibility timeout, looking for lost work
    finally:
        worker.join()
        stop.set()
        tender.join()
    assert http_server.keys() == ["long"]


def test_a_lost_senders_delivery_is_sent_again_with_the_same_key(
        make_role: Maker, http_server: ScriptedServer, redis_client: RedisClient,
        settings: Settings) -> None:
    hand_off(redis_client, settings, f"webhook:{http_server.url}/h", "job-9:9")
    queue = work_queue(redis_client, settings.tracardi.tenant, DISPATCH_QUEUE, settings)
    [taken] = queue.consume("lost-sender", count=1)  # then it dies: never acked
    role, ctx = make_role()
    started = time.monotonic()
    run_until(role, lambda: ctx.counters.processed == 1, 5)
    assert time.monotonic() - started >= 0.5  # only after the visibility timeout
    assert http_server.keys() == ["job-9:9"]
    assert json.loads(json.dumps(taken.payload))["idempotency_key"] == "job-9:9"


def test_scheduler_and_senders_deliver_a_webhook_job_end_to_end(
        make_role: Maker, http_server: ScriptedServer, redis_client: RedisClient,
        prefix: str) -> None:
    from tracardi_daemon.infra.delayed import DelayedStore, Job

    scheduler, _ = make_role(SchedulerRole)
    sender, ctx = make_role()
    due = int(time.time() * 1000) + 100
    job_id = DelayedStore(redis_client, prefix).schedule(
        Job(target=f"webhook:{http_server.url}/h", payload={"a": 1}, due_ms=due))
    run_for(scheduler, 0.3)
    run_until(sender, lambda: ctx.counters.processed == 1, 3)
    [request] = http_server.received
    assert request.json() == {"a": 1}
    assert request.headers["idempotency-key"] == f"{job_id}:{due}"
    assert request.at * 1000 >= due


def test_only_a_written_dead_letter_counts_as_failed(
        make_role: Maker, redis_client: RedisClient, settings: Settings, prefix: str) -> None:
    from tracardi_daemon.infra.dispatch import Attempt

    role, ctx = make_role()
    queue = work_queue(redis_client, settings.tracardi.tenant, DISPATCH_QUEUE, settings)
    for key in ("taken-over", "own"):
        hand_off(redis_client, settings, "stream:out", key)
    taken_over, own = queue.consume(ctx.consumer_name, count=2)
    queue.ack([taken_over.id])  # another sender took it over and finished it meanwhile
    role._settle(taken_over, Attempt(ok=False, error="HTTP 400"))
    assert ctx.counters.failed == 0 and dead(redis_client, prefix).count() == 0
    role._settle(own, Attempt(ok=False, error="HTTP 400"))
    assert ctx.counters.failed == 1 and dead(redis_client, prefix).count() == 1


def test_the_queue_lag_counts_deliveries_waiting_for_a_sender(
        make_role: Maker, redis_client: RedisClient, settings: Settings) -> None:
    role, ctx = make_role()
    for n in range(3):
        hand_off(redis_client, settings, "stream:out", f"k{n}")
    role.step(time.time())  # delivers one, then measures: two still wait
    assert ctx.counters.processed == 1 and ctx.counters.queue_lag == 2
