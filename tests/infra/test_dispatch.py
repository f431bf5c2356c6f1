"""The dispatcher against a real local HTTP server and the real Redis: idempotency keys,
signatures, retries with backoff, and dead letters for what cannot be delivered."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import socket
from collections.abc import Callable, Iterator

import pytest
from redis import Redis

from tests.infra.conftest import ScriptedServer
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.deadletters import DeadLetters
from tracardi_daemon.infra.dispatch import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    Dispatcher,
    Outcome,
    parse_target,
)

TRACK = {"source": {"id": "src-1"}, "profile": {"id": "p-1"},
         "events": [{"type": "reminder", "properties": {"n": 1}}]}


class FakeTime:
    """Waits return at once and move a fake monotonic clock; nothing really sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []
        self.stop_after: int | None = None

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return self.stop_after is not None and len(self.waits) >= self.stop_after

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_dispatcher(redis_client: Redis, prefix: str,
                    fake_time: FakeTime) -> Iterator[Callable[..., Dispatcher]]:
    made: list[Dispatcher] = []

    def make(**options: object) -> Dispatcher:
        settings: dict[str, object] = {
            "timeout_s": 2.0, "max_attempts": 4, "backoff_initial_s": 0.5,
            "backoff_max_s": 4.0, "max_total_s": 30.0, "wait": fake_time.wait,
            "monotonic": fake_time.monotonic, "rng": random.Random(3), **options}
        dispatcher = Dispatcher(redis_client, prefix, **settings)  # type: ignore[arg-type]
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.close()


def dead_letters(redis_client: Redis, prefix: str) -> DeadLetters:
    return DeadLetters(redis_client, prefix, "dispatch")


def test_stream_target_writes_entry_with_idempotency_key(
        make_dispatcher: Callable[..., Dispatcher], redis_client: Redis, prefix: str) -> None:
    result = make_dispatcher().send("stream:segment-changes", {"profile": "p-1"}, "job-1@1000")
    assert (result.outcome, result.attempts, result.done) == (Outcome.DELIVERED, 1, True)
    [(_, fields)] = redis_client.xrange(f"{prefix}:segment-changes")
    assert fields[b"idempotency_key"] == b"job-1@1000"
    assert json.loads(fields[b"payload"]) == {"profile": "p-1"}


def test_webhook_gets_post_with_headers_key_and_signature(
        make_dispatcher: Callable[..., Dispatcher], http_server: ScriptedServer) -> None:
    secret = "s3cret"
    result = make_dispatcher().send(f"webhook:{http_server.url}/hook?x=1", {"a": [1, "b"]},
                                    "job-2@2000", headers={"Authorization": "Bearer t"},
                                    secret=secret)
    assert result.outcome is Outcome.DELIVERED and result.status == 200
    [request] = http_server.received
    assert request.path == "/hook?x=1"
    assert request.json() == {"a": [1, "b"]}
    assert request.headers["authorization"] == "Bearer t"
    assert request.headers["content-type"] == "application/json"
    assert request.headers[IDEMPOTENCY_HEADER.lower()] == "job-2@2000"
    expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers[SIGNATURE_HEADER.lower()] == f"sha256={expected}"


def test_tracker_target_posts_to_track(make_dispatcher: Callable[..., Dispatcher],
                                       http_server: ScriptedServer) -> None:
    assert make_dispatcher().send(f"tracker:{http_server.url}/", TRACK, "k").done
    dispatcher = make_dispatcher(tracker_api_url=http_server.url)
    assert dispatcher.send("tracker:", TRACK, "k2").outcome is Outcome.DELIVERED
    assert [r.path for r in http_server.received] == ["/track", "/track"]
    assert http_server.received[1].json() == TRACK


def test_invalid_tracker_payload_is_dead_lettered_without_sending(
        make_dispatcher: Callable[..., Dispatcher], http_server: ScriptedServer,
        redis_client: Redis, prefix: str) -> None:
    result = make_dispatcher().send(f"tracker:{http_server.url}", {"events": []}, "k")
    assert result.outcome is Outcome.DEAD_LETTERED
    assert "source.id" in (result.reason or "")
    assert http_server.received == []
    assert dead_letters(redis_client, prefix).count() == 1


def test_server_error_is_retried_and_delivered_once(
        make_dispatcher: Callable[..., Dispatcher], http_server: ScriptedServer,
        fake_time: FakeTime, redis_client: Redis, prefix: str) -> None:
    http_server.replies = [(500, "oops")]
    result = make_dispatcher().send(f"webhook:{http_server.url}/h", {"n": 1}, "job-3@3")
    assert (result.outcome, result.attempts, result.status) == (Outcome.DELIVERED, 2, 200)
    assert len(http_server.received) == 2
    assert {r.headers[IDEMPOTENCY_HEADER.lower()] for r in http_server.received} == {"job-3@3"}
    [delay] = fake_time.waits
    assert 0.25 <= delay <= 0.5
    assert dead_letters(redis_client, prefix).count() == 0


def test_client_error_goes_to_dead_letters_at_once(
        make_dispatcher: Callable[..., Dispatcher], http_server: ScriptedServer,
        fake_time: FakeTime, redis_client: Redis, prefix: str) -> None:
    http_server.replies = [(400, '{"detail": "field x is required"}')]
    target = f"webhook:{http_server.url}/h"
    result = make_dispatcher().send(target, {"n": 2}, "job-4@4", secret="never stored")
    assert (result.outcome, result.attempts, result.status) == (Outcome.DEAD_LETTERED, 1, 400)
    assert len(http_server.received) == 1 and fake_time.waits == []
    [letter] = dead_letters(redis_client, prefix).oldest()
    assert letter.id == result.dead_letter_id
    assert "HTTP 400" in letter.reason and "field x is required" in letter.reason
    assert letter.extra == {"target": target, "idempotency_key": "job-4@4"}
    assert letter.payload == {"target": target, "idempotency_key": "job-4@4",
                              "payload": {"n": 2}}
    assert "never stored" not in json.dumps(letter.payload)


def test_rate_limit_is_retried_after_the_asked_pause(
        make_dispatcher: Callable[..., Dispatcher], http_server: ScriptedServer,
        fake_time: FakeTime) -> None:
    http_server.replies = [(429, "slow down"), (408, "timeout")]
    result = make_dispatcher().send(f"webhook:{http_server.url}/h", {}, "k")
    assert (result.outcome, result.attempts) == (Outcome.DELIVERED, 3)
    assert len(fake_time.waits) == 2


def test_refused_connection_ends_in_dead_letters_after_retries(
        make_dispatcher: Callable[..., Dispatcher], fake_time: FakeTime,
        redis_client: Redis, prefix: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = make_dispatcher(max_attempts=3).send(f"webhook:http://127.0.0.1:{port}/h",
                                                  {"n": 3}, "job-5@5")
    assert (result.outcome, result.attempts) == (Outcome.DEAD_LETTERED, 3)
    assert result.reason is not None and result.reason.startswith("gave up after 3 attempt(s)")
    assert "connection failed" in result.reason
    # exponential with jitter: each delay within [ceiling/2, ceiling], ceilings 0.5, 1.0
    assert len(fake_time.waits) == 2
    assert 0.25 <= fake_time.waits[0] <= 0.5 and 0.5 <= fake_time.waits[1] <= 1.0
    [letter] = dead_letters(redis_client, prefix).oldest()
    assert letter.attempts == 3 and "connection failed" in (letter.first_error or "")


def test_total_time_bounds_the_retries(make_dispatcher: Callable[..., Dispatcher],
                                       http_server: ScriptedServer,
                                       fake_time: FakeTime) -> None:
    http_server.replies = [(503, "busy")] * 10
    result = make_dispatcher(max_attempts=10, max_total_s=2.0).send(
        f"webhook:{http_server.url}/h", {}, "k")
    assert result.outcome is Outcome.DEAD_LETTERED
    assert sum(fake_time.waits) <= 2.0
    assert result.attempts < 10 and "HTTP 503" in (result.reason or "")


def test_stop_during_backoff_interrupts_without_dead_letter(
        make_dispatcher: Callable[..., Dispatcher], http_server: ScriptedServer,
        fake_time: FakeTime, redis_client: Redis, prefix: str) -> None:
    http_server.replies = [(502, "bad gateway")]
    fake_time.stop_after = 1
    result = make_dispatcher().send(f"webhook:{http_server.url}/h", {}, "k")
    assert (result.outcome, result.done) == (Outcome.INTERRUPTED, False)
    assert dead_letters(redis_client, prefix).count() == 0


@pytest.mark.parametrize(("spec", "message"), [
    ("nocolon", "expected KIND:ADDRESS"),
    ("email:someone@example.com", "unknown kind 'email'"),
    ("stream:", "stream name ''"),
    ("stream:bad{tag}", "stream name 'bad{tag}'"),
    ("webhook:", "must start with http"),
    ("webhook:ftp://example.com/x", "must start with http"),
    ("webhook:http://", "no valid host"),
    ("webhook:http://example.com:99999/", "invalid port"),
    ("tracker:example.com", "must start with http"),
])
def test_bad_targets_are_rejected_naming_the_bad_part(spec: str, message: str) -> None:
    with pytest.raises(InvalidInput, match="target") as info:
        parse_target(spec)
    assert message in str(info.value)


def test_good_targets_parse() -> None:
    assert str(parse_target("stream:segment-changes")) == "stream:segment-changes"
    assert parse_target("WEBHOOK:https://example.com/a?b=1").address == (
        "https://example.com/a?b=1")
    assert parse_target("tracker:").address == ""
