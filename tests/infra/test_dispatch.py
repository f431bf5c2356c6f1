"""One delivery attempt against a real local HTTP server and the real Redis: idempotency
keys, signatures, which failures are worth retrying, timeouts, masked errors."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis import Redis

from tests.infra.conftest import ScriptedServer, free_port
from tests.receivers import LOOPBACK_ALLOWED
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.dispatch import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    Dispatcher,
    Timeouts,
    parse_target,
)
from tracardi_daemon.infra.outbound import OutboundPolicy

TRACK = {"source": {"id": "src-1"}, "profile": {"id": "p-1"},
         "events": [{"type": "reminder", "properties": {"n": 1}}]}


@pytest.fixture
def make_dispatcher(redis_client: Redis, prefix: str) -> Iterator[Callable[..., Dispatcher]]:
    made: list[Dispatcher] = []

    def make(**options: Any) -> Dispatcher:
        options.setdefault("outbound", OutboundPolicy(LOOPBACK_ALLOWED))
        dispatcher = Dispatcher(redis_client, prefix, **options)
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.close()


def test_stream_target_writes_entry_with_idempotency_key(
        make_dispatcher: Callable[..., Dispatcher], redis_client: Redis, prefix: str) -> None:
    result = make_dispatcher().attempt("stream:segment-changes", {"profile": "p-1"},
                                       "job-1@1000")
    assert result.ok
    [(_, fields)] = redis_client.xrange(f"{prefix}:segment-changes")
    assert fields[b"idempotency_key"] == b"job-1@1000"
    assert json.loads(fields[b"payload"]) == {"profile": "p-1"}


def test_stream_that_is_another_type_is_a_final_failure(
        make_dispatcher: Callable[..., Dispatcher], redis_client: Redis, prefix: str) -> None:
    redis_client.set(f"{prefix}:not-a-stream", "x")
    result = make_dispatcher().attempt("stream:not-a-stream", {}, "k")
    assert not result.ok and not result.retryable and "WRONGTYPE" in result.error


def test_webhook_gets_post_with_headers_key_and_signature(
        make_dispatcher: Callable[..., Dispatcher], http_server: ScriptedServer) -> None:
    secret = "s3cret"
    result = make_dispatcher().attempt(f"webhook:{http_server.url}/hook?x=1", {"a": [1, "b"]},
                                       "job-2@2000", headers={"Authorization": "Bearer t"},
                                       secret=secret)
    assert result.ok and result.status == 200
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
    assert make_dispatcher().attempt(f"tracker:{http_server.url}/", TRACK, "k").ok
    dispatcher = make_dispatcher(tracker_api_url=http_server.url)
    assert dispatcher.attempt("tracker:", TRACK, "k2").ok
    assert [r.path for r in http_server.received] == ["/track", "/track"]
    assert http_server.received[1].json() == TRACK


def test_invalid_tracker_payload_fails_for_good_without_sending(
        make_dispatcher: Callable[..., Dispatcher], http_server: ScriptedServer) -> None:
    result = make_dispatcher().attempt(f"tracker:{http_server.url}", {"events": []}, "k")
    assert not result.ok and not result.retryable and "source.id" in result.error
    assert http_server.received == []


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (408, True),
                                                   (429, True), (400, False), (404, False)])
def test_http_status_decides_whether_to_retry(
        make_dispatcher: Callable[..., Dispatcher], http_server: ScriptedServer,
        status: int, retryable: bool) -> None:
    http_server.replies = [(status, '{"detail": "field x is required"}')]
    result = make_dispatcher().attempt(f"webhook:{http_server.url}/h", {"n": 2}, "k")
    assert (result.ok, result.retryable, result.status) == (False, retryable, status)
    assert f"HTTP {status}" in result.error and "field x is required" in result.error


def test_refused_connection_is_retryable(make_dispatcher: Callable[..., Dispatcher]) -> None:
    result = make_dispatcher().attempt(f"webhook:http://127.0.0.1:{free_port()}/h", {}, "k")
    assert not result.ok and result.retryable and "connection failed" in result.error


def test_credentials_in_the_url_never_reach_the_error(
        make_dispatcher: Callable[..., Dispatcher]) -> None:
    url = f"http://user:hunter2@127.0.0.1:{free_port()}/h?token=abc123"
    result = make_dispatcher().attempt(f"webhook:{url}", {}, "k")
    assert not result.ok
    assert "hunter2" not in result.error and "abc123" not in result.error


def test_a_receiver_that_never_answers_is_cut_at_the_read_timeout(
        make_dispatcher: Callable[..., Dispatcher], black_hole: str) -> None:
    started = time.monotonic()
    result = make_dispatcher(timeouts=Timeouts(connect_s=0.5, read_s=0.3, total_s=5)).attempt(
        f"webhook:{black_hole}/h", {}, "k")
    assert time.monotonic() - started < 2.0
    assert not result.ok and result.retryable and "timeout" in result.error


def test_a_trickling_answer_is_cut_at_the_total_timeout(
        make_dispatcher: Callable[..., Dispatcher], trickler: str) -> None:
    started = time.monotonic()
    result = make_dispatcher(timeouts=Timeouts(connect_s=0.5, read_s=0.5, total_s=0.6)).attempt(
        f"webhook:{trickler}/h", {}, "k")
    assert time.monotonic() - started < 2.0
    assert not result.ok and result.retryable and "within 0.6s" in result.error


@pytest.mark.parametrize(("spec", "message"), [
    ("nocolon", "expected KIND:ADDRESS"),
    ("email:someone@example.com", "unknown kind 'email'"),
    ("stream:", "stream name ''"),
    ("stream:bad{tag}", "stream name 'bad{tag}'"),
    ("webhook:", "must start with http"),
    ("webhook:ftp://example.com/x", "must start with http"),
    ("webhook:http://", "no valid host"),
    ("webhook:http://example.com:99999/", "is malformed (Port out of range"),
    ("webhook:http://[::1/x", "is malformed"),
    ("webhook:http://user:pw@", "URL 'http://********@' has no valid host"),
    ("tracker:example.com", "must start with http"),
    ("flow:somewhere", "a flow target has no address"),
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
    assert str(parse_target("flow:")) == "flow:"


def test_a_flow_target_without_a_flow_runner_fails_for_good_naming_the_setting(
        make_dispatcher: Callable[..., Dispatcher]) -> None:
    result = make_dispatcher().attempt("flow:", {"flow_id": "f", "profile_id": "p"}, "k")
    assert not result.ok and not result.retryable
    assert "dispatch.flow_python" in result.error
