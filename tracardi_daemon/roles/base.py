"""What a role is: a small object the supervisor drives, and what it is handed.

A role never creates threads. The supervisor creates one role object per configured
thread, calls ``start(ctx)`` once, ``step(now)`` until stopped, and ``stop()`` at the end.
Tests drive roles the same way with an injected clock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch
    from redis import Redis

    from tracardi_daemon.settings import Settings


class RoleCounters:
    """Processed/failed counts of one role, shared by its threads; read by health."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.processed = 0
        self.failed = 0
        self.queue_lag: int | None = None  # set by roles that consume a queue

    def add(self, processed: int = 0, failed: int = 0) -> None:
        with self._lock:
            self.processed += processed
            self.failed += failed


@dataclass(frozen=True)
class RoleContext:
    """Everything a role may use. Built by the supervisor, one per role thread."""

    name: str
    settings: Settings
    redis: Redis[bytes]
    elastic: Elasticsearch
    pool: Executor
    stop: threading.Event
    logger: logging.Logger
    counters: RoleCounters
    thread_index: int = 0
    consumer_name: str = ""
    clock: Callable[[], float] = field(default=lambda: __import__("time").time())


class Role(Protocol):
    """The lifecycle every role implements."""

    def start(self, ctx: RoleContext) -> None:
        """Open what the role needs; raise a DaemonError if it cannot start."""

    def step(self, now: float) -> bool:
        """Do one bounded unit of work; return True if there was work, False if idle.

        An idle step should wait on ``ctx.stop`` (never ``time.sleep``) for at most its
        poll interval, so the role notices a stop within one interval.
        """

    def stop(self) -> None:
        """Hand back in-flight work and release resources; called once."""


RoleFactory = Callable[[], Role]
