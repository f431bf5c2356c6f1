"""What a definition can make the dispatcher do: a webhook to a loopback, link-local
(cloud metadata) or private address is refused by the outbound policy and dead-lettered
with the reason unless the operator allows it; a dead letter never keeps the URL's
password, and a requeued one is still delivered with it."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from tests.conftest import start_role
from tests.receivers import LOOPBACK_ALLOWED, ScriptedServer
from tracardi_daemon.config.settings import (
    DispatchSettings,
    OutboundSettings,
    QueueSettings,
    Settings,
    TracardiSettings,
)
from tracardi_daemon.infra.deadletters import DeadLetters
from tracardi_daemon.infra.delivery import delivery
from tracardi_daemon.infra.queues import DISPATCH_QUEUE, work_queue
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.roles.dispatch.role import DispatchRole

Starter = Callable[..., tuple[Any, Any]]
__all__ = ["start_role"]


@pytest.fixture
def settings(prefix: str) -> Settings:
    """The policy as shipped: nothing allowed beyond the default."""
    return Settings(
        tracardi=TracardiSettings(tenant=prefix),
        queue=QueueSettings(visibility_timeout_s=0.6, poll_interval_s=0.1),
        dispatch=DispatchSettings(max_attempts=2, retry_backoff_initial_s=0.05,
                                  retry_backoff_max_s=0.1, connect_timeout_s=0.5,
                                  read_timeout_s=2.0, total_timeout_s=3.0))


def run_until(role: Any, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        role.step(time.time())


def hand_off(redis_client: RedisClient, settings: Settings, target: str, key: str) -> None:
    queue = work_queue(redis_client, settings.tracardi.tenant, DISPATCH_QUEUE, settings)
    queue.enqueue(delivery(target, key, {"n": 1}, "test"))


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/",
                                 "http://10.20.30.40:8080/hook", "http://[fd00::5]/hook"])
def test_a_webhook_to_a_closed_address_is_dead_lettered_without_a_try(
        start_role: Starter, redis_client: RedisClient, settings: Settings, prefix: str,
        url: str) -> None:
    role, ctx = start_role(DispatchRole, settings)
    hand_off(redis_client, settings, f"webhook:{url}", "k-closed")
    run_until(role, lambda: ctx.counters.failed == 1)
    [letter] = DeadLetters(redis_client, prefix, "dispatch").oldest()
    assert "refused" in letter.reason and "outbound.allow" in letter.reason
    assert letter.attempts == 1  # refused, not retried


def test_a_loopback_receiver_gets_nothing_until_allowed(
        start_role: Starter, redis_client: RedisClient, settings: Settings, prefix: str,
        http_server: ScriptedServer) -> None:
    role, ctx = start_role(DispatchRole, settings)
    hand_off(redis_client, settings, f"webhook:{http_server.url}/h", "k-loop")
    run_until(role, lambda: ctx.counters.failed == 1)
    assert http_server.received == []
    [letter] = DeadLetters(redis_client, prefix, "dispatch").oldest()
    assert "loopback" in letter.reason
    allowed, allowed_ctx = start_role(DispatchRole, replace(settings, outbound=LOOPBACK_ALLOWED))
    assert DeadLetters(redis_client, prefix, "dispatch").requeue("all") == 1
    run_until(allowed, lambda: allowed_ctx.counters.processed == 1)
    assert http_server.keys() == ["k-loop"]


def test_the_dead_letter_keeps_no_password_and_a_requeue_still_sends_it(
        start_role: Starter, redis_client: RedisClient, settings: Settings, prefix: str,
        http_server: ScriptedServer) -> None:
    role, ctx = start_role(DispatchRole, replace(settings, outbound=LOOPBACK_ALLOWED))
    http_server.replies = [(503, "busy")] * 2
    password = "pa55-w0rd-secret"
    target = f"webhook:{http_server.url.replace('://', f'://hook-user:{password}@')}/h"
    hand_off(redis_client, settings, target, "k-secret")
    run_until(role, lambda: ctx.counters.failed == 1)
    dead_key = f"{{{prefix}:q:dispatch}}:dead"
    stored = [value for _, fields in redis_client.xrange(dead_key)
              for value in fields.values()]
    assert stored and not any(password.encode() in value for value in stored)
    [letter] = DeadLetters(redis_client, prefix, "dispatch").oldest()
    assert letter.payload["target"].startswith("webhook:http://********@127.0.0.1")
    assert DeadLetters(redis_client, prefix, "dispatch").requeue("all") == 1
    run_until(role, lambda: ctx.counters.processed == 1)
    sent = http_server.received[-1].headers.get("authorization", "")
    assert base64.b64decode(sent.removeprefix("Basic ")) == f"hook-user:{password}".encode()
    assert http_server.keys()[-1] == "k-secret"


def test_a_requeued_delivery_whose_credentials_are_gone_is_dead_again_with_why(
        start_role: Starter, redis_client: RedisClient, settings: Settings, prefix: str,
        http_server: ScriptedServer) -> None:
    role, ctx = start_role(DispatchRole, replace(settings, outbound=OutboundSettings(
        allow=("127.0.0.1",))))
    http_server.replies = [(400, "no")]
    target = f"webhook:{http_server.url.replace('://', '://u:p-secret@')}/h"
    hand_off(redis_client, settings, target, "k-gone")
    run_until(role, lambda: ctx.counters.failed == 1)
    redis_client.delete(f"{{{prefix}:q:dispatch}}:credentials")
    letters = DeadLetters(redis_client, prefix, "dispatch")
    assert letters.requeue("all") == 1
    run_until(role, lambda: ctx.counters.failed == 2)
    [letter] = letters.oldest()
    assert "no longer kept" in letter.reason and len(http_server.received) == 1
