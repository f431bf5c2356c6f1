"""The work queue on the real Redis: delivery, ack with deletion, retries that block
nothing, poison messages, takeover after a lost consumer (also a SIGKILLed process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.infra.conftest import QueueFactory, wait_until
from tracardi_daemon.errors import BackendUnavailable, InvalidInput
from tracardi_daemon.infra.queue import LOST_ERROR, WorkQueue
from tracardi_daemon.infra.queue_base import dead_key, queue_key

REPO = Path(__file__).resolve().parents[2]


def test_enqueue_consume_ack(make_queue: QueueFactory) -> None:
    work = make_queue()
    ids = work.enqueue_many([{"n": 1}, {"n": 2}])
    ids.append(work.enqueue({"n": 3, "nested": {"a": [1, 2]}}))
    messages = work.consume("c1", count=10)
    assert [m.id for m in messages] == ids
    assert [m.payload["n"] for m in messages] == [1, 2, 3]
    assert messages[2].payload["nested"] == {"a": [1, 2]}
    assert {m.attempt for m in messages} == {1}
    assert work.consume("c1", count=10) == []
    stats = work.stats()
    assert (stats.length, stats.pending, stats.lag) == (3, 3, 0)
    assert stats.oldest_pending_age_s is not None and stats.oldest_pending_age_s < 5
    assert work.ack(ids) == 3
    stats = work.stats()
    assert (stats.length, stats.pending, stats.lag, stats.dead) == (0, 0, 0, 0)
    assert stats.oldest_pending_age_s is None


def test_messages_added_in_a_callers_transaction_are_consumed(
        make_queue: QueueFactory, redis_client: Redis, prefix: str) -> None:
    """A producer that must add messages atomically with its own writes hands the queue
    its transaction; what it adds is consumed like any enqueued message."""
    work = make_queue()
    beside = f"{queue_key(prefix, 'work')}:beside"
    pipe = redis_client.pipeline(transaction=True)
    work.pipeline_enqueue(pipe, [{"n": 1}, {"n": 2}])
    pipe.set(beside, "written")
    replies = pipe.execute()
    messages = work.consume("c1", count=10)
    assert [m.id for m in messages] == [r.decode() for r in replies[:2]]
    assert [(m.payload, m.attempt) for m in messages] == [({"n": 1}, 1), ({"n": 2}, 1)]
    assert redis_client.get(beside) == b"written"
    with pytest.raises(InvalidInput, match="JSON object"):
        work.pipeline_enqueue(redis_client.pipeline(), ["not an object"])  # type: ignore[list-item]


def test_stats_of_a_queue_never_used(make_queue: QueueFactory) -> None:
    stats = make_queue().stats()
    assert (stats.length, stats.pending, stats.lag, stats.retrying, stats.dead) == (0,) * 5


def test_lag_counts_undelivered(make_queue: QueueFactory) -> None:
    work = make_queue()
    work.enqueue_many([{"n": n} for n in range(5)])
    work.ack([m.id for m in work.consume("c1", count=2)])
    stats = work.stats()
    assert (stats.length, stats.pending, stats.lag) == (3, 0, 3)


def test_bad_payloads_are_rejected_on_enqueue(make_queue: QueueFactory) -> None:
    work = make_queue()
    with pytest.raises(InvalidInput, match="JSON object"):
        work.enqueue(["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="serialisable"):
        work.enqueue({"when": object()})
    with pytest.raises(InvalidInput, match="queue"):
        make_queue("bad{name}")


def test_garbage_from_another_producer_is_dead_lettered_not_blocking(
        make_queue: QueueFactory, redis_client: Redis, prefix: str) -> None:
    work = make_queue()
    redis_client.xadd(queue_key(prefix, "work"), {"payload": "{not json"})
    good = work.enqueue({"ok": True})
    assert [m.id for m in work.consume("c1", count=5)] == [good]
    [letter] = work.list_dead()
    assert letter.reason.startswith("invalid payload")
    assert letter.payload == "{not json"


def test_retry_backs_off_without_blocking_later_messages(make_queue: QueueFactory) -> None:
    work = make_queue(retry_backoff_initial_s=0.2, retry_backoff_max_s=1.0)
    first = work.enqueue({"n": "first"})
    second = work.enqueue({"n": "second"})
    [message] = work.consume("c1")
    assert message.id == first
    assert work.retry(message, "boom") is True
    [later] = work.consume("c1")
    assert later.id == second  # not held up behind the failing one
    work.ack([later.id])
    assert work.consume("c1") == []
    assert work.stats().retrying == 1
    started = time.monotonic()
    # the block is cut short when the retry falls due (0.1..0.2 s), well before 5 s
    [again] = work.consume("c1", block_ms=5000)
    assert 0.05 < time.monotonic() - started < 1.5
    assert again.payload == {"n": "first"}
    assert (again.attempt, again.first_error, again.last_error) == (2, "boom", "boom")
    work.retry(again, "bang", delay_s=0)
    [third] = wait_until(lambda: work.consume("c1"), 2)
    assert (third.attempt, third.first_error, third.last_error) == (3, "boom", "bang")


def test_backoff_doubles_with_jitter_up_to_the_cap(make_queue: QueueFactory) -> None:
    work = make_queue(retry_backoff_initial_s=1.0, retry_backoff_max_s=30.0)
    for attempt in range(1, 12):
        ceiling = min(30.0, 2.0 ** (attempt - 1))
        delays = {work.backoff_s(attempt) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1
    assert work.backoff_s(10_000) <= 30.0


def test_retries_end_in_dead_letters_after_max_attempts(make_queue: QueueFactory) -> None:
    work = make_queue(max_attempts=3)
    work.enqueue({"job": 42})
    errors = ["first failure", "second failure", "third failure"]
    for attempt, error in enumerate(errors, start=1):
        [message] = wait_until(lambda: work.consume("c1"), 2)
        assert message.attempt == attempt
        assert work.retry(message, error, delay_s=0) is (attempt < 3)
    [letter] = work.list_dead()
    assert letter.attempts == 3
    assert "max_attempts 3" in letter.reason
    assert (letter.first_error, letter.last_error) == ("first failure", "third failure")
    assert letter.payload == {"job": 42}
    stats = work.stats()
    assert (stats.length, stats.pending, stats.retrying, stats.dead) == (0, 0, 0, 1)


def test_explicit_dead_letter(make_queue: QueueFactory) -> None:
    work = make_queue()
    work.enqueue({"x": 1})
    [message] = work.consume("c1")
    assert work.dead_letter(message, "unknown job type") is True
    assert work.dead_letter(message, "again") is False  # already gone
    [letter] = work.list_dead()
    assert (letter.reason, letter.message_id, letter.payload) == (
        "unknown job type", message.id, {"x": 1})
    assert letter.dead_at_ms > 0


def test_lost_message_is_taken_over_after_visibility_timeout(make_queue: QueueFactory) -> None:
    visibility = 0.3
    consumer_a = make_queue(visibility_timeout_s=visibility)
    consumer_b = make_queue(visibility_timeout_s=visibility)
    msg_id = consumer_a.enqueue({"job": "takeover"})
    assert [m.id for m in consumer_a.consume("a")] == [msg_id]
    assert consumer_b.consume("b") == []  # still within A's visibility timeout
    started = time.monotonic()
    [taken] = wait_until(lambda: consumer_b.consume("b"), visibility * 3)
    assert time.monotonic() - started >= visibility * 0.8
    assert (taken.id, taken.attempt) == (msg_id, 2)
    assert consumer_a.extend("a", [msg_id]) == []  # A learns it lost the claim
    consumer_b.ack([taken.id])
    assert consumer_b.stats().pending == 0


def test_extend_keeps_a_long_job_claimed(make_queue: QueueFactory) -> None:
    visibility = 0.3
    consumer_a = make_queue(visibility_timeout_s=visibility)
    consumer_b = make_queue(visibility_timeout_s=visibility)
    msg_id = consumer_a.enqueue({"job": "long"})
    consumer_a.consume("a")
    deadline = time.monotonic() + visibility * 3
    while time.monotonic() < deadline:
        assert consumer_a.extend("a", [msg_id]) == [msg_id]
        assert consumer_b.consume("b") == []
        time.sleep(visibility / 4)
    assert consumer_a.ack([msg_id]) == 1


def test_poison_message_that_kills_its_worker_ends_in_dead_letters(
        make_queue: QueueFactory) -> None:
    visibility = 0.2
    poison = make_queue(visibility_timeout_s=visibility, max_attempts=3)
    poison.enqueue({"poison": True})
    behind = poison.enqueue({"fine": True})
    deliveries = 0
    deadline = time.monotonic() + 10 * visibility + 3
    # every "worker" takes the message and dies without acking; the fine one is acked
    while not poison.list_dead() and time.monotonic() < deadline:
        worker = make_queue(visibility_timeout_s=visibility, max_attempts=3)
        for message in worker.consume(f"worker-{deliveries}", count=5, block_ms=50):
            if message.payload.get("poison"):
                deliveries += 1
                assert message.attempt == deliveries
            else:
                assert message.id == behind
                worker.ack([message.id])
    assert deliveries == 3
    [letter] = poison.list_dead()
    assert "max_attempts 3" in letter.reason
    assert letter.attempts == 3
    assert letter.last_error == LOST_ERROR
    assert letter.payload == {"poison": True}
    stats = poison.stats()
    assert (stats.length, stats.pending, stats.dead) == (0, 0, 1)


def test_release_hands_back_without_counting_an_attempt(make_queue: QueueFactory) -> None:
    work = make_queue(visibility_timeout_s=30)
    work.enqueue({"job": 1})
    [message] = work.consume("stopping")
    work.release(message)
    [again] = wait_until(lambda: make_queue(visibility_timeout_s=30).consume("other"), 2)
    assert again.payload == {"job": 1}
    assert again.attempt == 1


def test_acked_messages_do_not_accumulate(make_queue: QueueFactory, redis_client: Redis,
                                          prefix: str) -> None:
    work = make_queue()
    key = queue_key(prefix, "work")
    work.enqueue({"warm": "up"})
    work.ack([m.id for m in work.consume("c1")])
    empty_bytes = redis_client.memory_usage(key)
    assert empty_bytes is not None
    for _ in range(20):
        work.enqueue_many([{"n": n, "data": "x" * 200} for n in range(250)])
        while batch := work.consume("c1", count=100):
            work.ack([m.id for m in batch])
        assert redis_client.xlen(key) == 0
    used = redis_client.memory_usage(key)
    assert used is not None and used <= empty_bytes + 1024, (used, empty_bytes)


def test_a_deleted_stream_is_recreated(make_queue: QueueFactory, redis_client: Redis,
                                       prefix: str) -> None:
    work = make_queue()
    work.consume("c1")
    redis_client.delete(queue_key(prefix, "work"))
    msg_id = work.enqueue({"after": "delete"})
    assert [m.id for m in work.consume("c1")] == [msg_id]


def test_requeue_and_purge_dead_letters(make_queue: QueueFactory) -> None:
    work = make_queue(max_attempts=1)
    work.enqueue_many([{"n": n} for n in range(3)])
    for message in work.consume("c1", count=3):
        assert work.retry(message, f"failed {message.payload['n']}") is False
    letters = work.list_dead()
    assert [d.payload["n"] for d in letters] == [0, 1, 2]
    assert work.requeue_dead([letters[0].id, "1-1"]) == 1
    [message] = work.consume("c1", count=5)
    assert (message.payload, message.attempt, message.first_error) == ({"n": 0}, 1, None)
    work.ack([message.id])
    assert work.requeue_dead("all") == 2
    assert work.stats().dead == 0
    for message in work.consume("c1", count=5):
        work.dead_letter(message, "still broken")
    assert work.purge_dead() == 2
    assert work.list_dead() == []


def test_unreachable_redis_is_backend_unavailable() -> None:
    client: Redis = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2,
                          retry=Retry(NoBackoff(), 0))
    work = WorkQueue(client, "tenant", "work")
    with pytest.raises(BackendUnavailable, match="redis"):
        work.consume("c1")
    with pytest.raises(BackendUnavailable):
        work.enqueue({"a": 1})


def test_sigkilled_consumer_message_is_finished_by_another(
        make_queue: QueueFactory, redis_url: str, prefix: str, redis_client: Redis) -> None:
    visibility = 0.5
    work = make_queue(visibility_timeout_s=visibility)
    msg_id = work.enqueue({"job": "survives kill -9"})
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.infra.lost_consumer", redis_url, prefix, "work",
         str(visibility)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == msg_id
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(5)
    killed_at = time.monotonic()
    [message] = wait_until(lambda: work.consume("survivor", block_ms=50), visibility + 2)
    assert time.monotonic() - killed_at <= visibility + 2
    assert message.id == msg_id and message.attempt == 2
    assert work.ack([message.id]) == 1
    assert redis_client.xlen(dead_key(prefix, "work")) == 0
