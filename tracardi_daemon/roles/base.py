"""What a role is: a small object the supervisor drives, and what it is handed.

A role never creates threads. The supervisor creates one role object per configured
thread, calls ``start(ctx)`` once, ``step(now)`` until stopped, and ``stop()`` at the end.
Tests drive roles the same way with an injected clock.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tracardi_daemon.infra.cpu_pool import CpuPool
from tracardi_daemon.infra.host_limits import HostLimits
from tracardi_daemon.infra.redis import RedisClient

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from tracardi_daemon.config.settings import Settings


class RoleCounters:
    """Processed/failed counts of one role, shared by its threads; read by health."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.processed = 0
        self.failed = 0
        self.queue_lag: int | None = None  # set by roles that consume a queue
        # set by roles that follow a stream of data: now - the time of the newest item
        # applied (the mapping role's tail of the event index)
        self.lag_s: float | None = None

    def add(self, processed: int = 0, failed: int = 0) -> None:
        with self._lock:
            self.processed += processed
            self.failed += failed


@dataclass(frozen=True)
class RoleContext:
    """Everything a role may use. Built by the supervisor, one per role thread."""

    name: str
    settings: Settings
    redis: RedisClient
    elastic: Elasticsearch
    pool: CpuPool  # the daemon's one process pool, for CPU-bound pure work
    stop: threading.Event
    logger: logging.Logger
    counters: RoleCounters
    thread_index: int = 0
    consumer_name: str = ""
    clock: Callable[[], float] = time.time
    # the daemon's per-host limit, shared by every sender thread (None: the role's own)
    host_limits: HostLimits | None = None


class Role(Protocol):
    """The lifecycle every role implements."""

    def start(self, ctx: RoleContext) -> None:
        """Open what the role needs; raise a DaemonError if it cannot start."""

    def step(self, now: float) -> bool:
        """Do one bounded unit of work; return True if there was work, False if idle.

        After an idle step the supervisor waits ``idle_wait_s`` (an attribute of the
        role, 0 if it has none) on the stop event; a step that blocks, on its queue or
        its timing wheel, does so on ``ctx.stop`` (never ``time.sleep``) for at most its
        poll interval, so the role notices a stop within one interval.
        """

    def stop(self) -> None:
        """Hand back in-flight work and release resources; called once."""


@runtime_checkable
class TendedRole(Protocol):
    """A role whose step may block on one long operation (an HTTP request) while its
    claim on the work must stay alive: the supervisor calls ``tend`` from its own
    thread every tick."""

    def tend(self) -> None:
        """Renew claims on in-flight work; quick, thread-safe, may raise DaemonError."""


RoleFactory = Callable[[], Role]


class BaseRole:
    """The skeleton the roles share: the context once started, an owner name unique
    to this role object (a restarted role must not pass for its predecessor in a lease
    or a claim), how long the supervisor waits after an idle step, and nothing to tend
    or close unless a role says so. A role implements ``_open``, ``step`` and, when it
    holds work, ``_close`` and ``tend``."""

    # seconds the supervisor waits on the stop event after a step that found no work;
    # 0 for a role whose step blocks on its queue itself
    idle_wait_s = 0.0

    def __init__(self) -> None:
        self._ctx: RoleContext | None = None
        self._owner = ""

    @property
    def ctx(self) -> RoleContext:
        assert self._ctx is not None, "start() first"
        return self._ctx

    def start(self, ctx: RoleContext) -> None:
        self._owner = f"{ctx.consumer_name or ctx.name}:{uuid.uuid4().hex[:8]}"
        self._open(ctx)
        self._ctx = ctx  # last: stop() has nothing to hand back if opening failed

    def _open(self, ctx: RoleContext) -> None:
        raise NotImplementedError

    def tend(self) -> None:
        """Renew claims on in-flight work; nothing by default."""

    def stop(self) -> None:
        if self._ctx is not None:
            self._close()

    def _close(self) -> None:
        """Hand back in-flight work; nothing by default."""
