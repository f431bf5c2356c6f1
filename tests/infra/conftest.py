"""Fixtures for the queue and dispatcher tests: queues on the real Redis, and a real
local HTTP server that answers with scripted statuses."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import pytest
from redis import Redis

from tracardi_daemon.infra.queue import WorkQueue

QueueFactory = Callable[..., WorkQueue]


@pytest.fixture
def make_queue(redis_client: Redis, prefix: str) -> QueueFactory:
    def make(name: str = "work", **options: Any) -> WorkQueue:
        options.setdefault("rng", random.Random(7))
        return WorkQueue(redis_client, prefix, name, **options)
    return make


def wait_until(predicate: Callable[[], Any], timeout_s: float, interval_s: float = 0.02) -> Any:
    """Poll until ``predicate`` returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(interval_s)


# the real local receivers, shared with the scheduler and fault tests
from tests.receivers import (  # noqa: E402
    ScriptedServer,
    black_hole,
    free_port,
    http_server,
    trickler,
)

__all__ = ["ScriptedServer", "black_hole", "free_port", "http_server", "trickler"]
