"""``WorkQueue.enqueue_once``: a message is added once per key within the key's time to
live, atomically and in the queue's hash tag; on the real Redis."""

from __future__ import annotations

import time

import pytest
from redis import Redis

from tests.infra.conftest import QueueFactory
from tracardi_daemon.errors import BackendError, InvalidInput
from tracardi_daemon.infra.queue_base import queue_key


def test_a_key_is_added_once(make_queue: QueueFactory, redis_client: Redis,
                             prefix: str) -> None:
    work = make_queue()
    assert work.enqueue_once({"n": 1}, "k1", ttl_s=60) is True
    assert work.enqueue_once({"n": 2}, "k1", ttl_s=60) is False
    assert work.enqueue_once({"n": 3}, "k2", ttl_s=60) is True
    messages = work.consume("c1", count=10)
    assert [m.payload["n"] for m in messages] == [1, 3]
    assert {m.attempt for m in messages} == {1}  # the fields enqueue_many writes
    marker = f"{queue_key(prefix, 'work')}:once:k1"
    assert 0 < redis_client.pttl(marker) <= 60_000
    # acking the message does not forget the key: a redelivered producer input must not
    # add it again after the first copy was handled
    work.ack([m.id for m in messages])
    assert work.enqueue_once({"n": 4}, "k1", ttl_s=60) is False
    assert work.consume("c1", count=10) == []


def test_a_key_is_forgotten_after_its_ttl(make_queue: QueueFactory) -> None:
    work = make_queue()
    assert work.enqueue_once({"n": 1}, "k", ttl_s=0.05)
    time.sleep(0.1)
    assert work.enqueue_once({"n": 2}, "k", ttl_s=0.05)
    assert [m.payload["n"] for m in work.consume("c1", count=10)] == [1, 2]


def test_many_in_one_round_trip(make_queue: QueueFactory) -> None:
    work = make_queue()
    assert work.enqueue_once({"n": 0}, "b", ttl_s=60)
    added = work.enqueue_once_many([({"n": 1}, "a"), ({"n": 2}, "b"), ({"n": 3}, "a"),
                                    ({"n": 4}, "c")], ttl_s=60)
    assert added == [True, False, False, True]
    assert [m.payload["n"] for m in work.consume("c1", count=10)] == [0, 1, 4]
    assert work.enqueue_once_many([], ttl_s=60) == []


def test_max_length_trims(make_queue: QueueFactory, redis_client: Redis, prefix: str) -> None:
    work = make_queue(max_length=10)
    assert all(work.enqueue_once_many([({"n": n}, f"k{n}") for n in range(500)], ttl_s=60))
    # approximate trimming: whole macro nodes (100 entries by default) are removed
    assert redis_client.xlen(queue_key(prefix, "work")) < 500


def test_both_keys_share_the_queues_hash_tag(make_queue: QueueFactory, redis_client: Redis,
                                             prefix: str) -> None:
    make_queue().enqueue_once({"n": 1}, "k", ttl_s=60)
    keys = {key.decode() for key in redis_client.scan_iter(match=f"*{prefix}*")}
    stream = queue_key(prefix, "work")
    assert keys == {stream, f"{stream}:once:k"}
    assert {key[:key.index("}") + 1] for key in keys} == {stream}


def test_a_failed_add_leaves_no_marker(make_queue: QueueFactory, redis_client: Redis,
                                       prefix: str) -> None:
    redis_client.set(queue_key(prefix, "work"), "not a stream")
    work = make_queue()
    with pytest.raises(BackendError, match="WRONGTYPE"):
        work.enqueue_once({"n": 1}, "k", ttl_s=60)
    assert not redis_client.exists(f"{queue_key(prefix, 'work')}:once:k")


@pytest.mark.parametrize(("key", "ttl_s", "message"), [
    ("", 60, "key must be a non-empty string"),
    ("k", 0, "ttl_s must be > 0"),
])
def test_bad_arguments(make_queue: QueueFactory, key: str, ttl_s: float, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        make_queue().enqueue_once({"n": 1}, key, ttl_s)


def test_bad_payload_is_refused(make_queue: QueueFactory) -> None:
    with pytest.raises(InvalidInput, match="JSON object"):
        make_queue().enqueue_once(["not", "an", "object"], "k", 60)  # type: ignore[arg-type]
