"""The ``dispatch`` role: sender threads that deliver the webhook, tracker, stream and
flow targets handed off by the scheduler, the trigger and segmentation passes (workflow
live segments) through the durable dispatch queue. A flow target runs a Tracardi
workflow in Tracardi's own engine; each sender keeps its own helper process for it.

It starts with the roles that produce deliveries, ``dispatch.senders`` threads. Each
thread sends one delivery at a time within the dispatcher's timeouts, under a per-host
limit shared by the daemon's senders, so a slow or dead receiver holds at most its
share of them and delays only its own deliveries. While a request runs, the supervisor's
``tend`` keeps the message's claim alive; a sender that is really lost has its message
taken over after ``queue.visibility_timeout_s`` and sent again with the same key.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.dispatch import Attempt, Dispatcher, Target, Timeouts, parse_target
from tracardi_daemon.infra.dispatch_credentials import (
    restored_credentials,
    stored_without_credentials,
)
from tracardi_daemon.infra.dispatch_targets import TargetKind
from tracardi_daemon.infra.host_limits import HostLimits
from tracardi_daemon.infra.outbound import OutboundPolicy
from tracardi_daemon.infra.queue import Message
from tracardi_daemon.infra.queues import DISPATCH_QUEUE, work_queue
from tracardi_daemon.model.tracardi_flow import configured_flow_runner
from tracardi_daemon.redact import mask_url
from tracardi_daemon.roles.base import BaseRole, RoleContext

# how long a consume waits for work; bounds how soon a stop is noticed
POLL_S = 0.5
# a delivery whose host is at its limit comes back after about this long
HOST_BUSY_DEFER_S = 0.25
# how often a sender measures the queue's lag for health
STATS_EVERY_S = 5.0


class DispatchRole(BaseRole):
    """One sender thread."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._in_flight: Message | None = None

    def _open(self, ctx: RoleContext) -> None:
        settings = ctx.settings
        self._queue = work_queue(ctx.redis, ctx.settings.tracardi.tenant, DISPATCH_QUEUE,
                                 ctx.settings)
        self._flows = configured_flow_runner(settings)
        self._dispatcher = Dispatcher(ctx.redis, settings.tracardi.tenant,
                                      tracker_api_url=settings.tracardi.api_url,
                                      timeouts=Timeouts.from_settings(settings.dispatch),
                                      outbound=OutboundPolicy(settings.outbound),
                                      flow_runner=self._flows.run if self._flows else None)
        self._limits = ctx.host_limits or HostLimits(settings.dispatch.per_host_concurrency)
        self._consumer = ctx.consumer_name or ctx.name
        self._poll_ms = int(min(POLL_S, settings.queue.poll_interval_s) * 1000)
        self._next_stats = 0.0

    def step(self, now: float) -> bool:
        messages = self._queue.consume(self._consumer, count=1, block_ms=self._poll_ms)
        for message in messages:
            self._deliver(message)
        if now >= self._next_stats:
            # deliveries waiting for a sender, or for their retry: health's queue lag
            stats = self._queue.stats()
            self.ctx.counters.queue_lag = stats.lag + stats.retrying
            self._next_stats = now + STATS_EVERY_S
        return bool(messages)

    def tend(self) -> None:
        """Keep the claim on the delivery being sent (called from the supervisor's
        thread while this one may be blocked in a request)."""
        with self._lock:
            message = self._in_flight
        if message is not None:
            self._queue.extend(self._consumer, [message.id])

    def _close(self) -> None:
        self._dispatcher.close()
        if self._flows is not None:
            self._flows.close()

    def _deliver(self, message: Message) -> None:
        try:
            target, key, payload = _parse(restored_credentials(
                self.ctx.redis, self.ctx.settings.tracardi.tenant, DISPATCH_QUEUE,
                message.payload))
        except InvalidInput as exc:
            if self._dead_letter(message, f"invalid delivery: {exc}", retryable=False):
                self.ctx.counters.add(failed=1)
            return
        host = _host(target)
        if not self._limits.try_acquire(host):
            self._queue.defer(message, HOST_BUSY_DEFER_S)
            return
        try:
            with self._lock:
                self._in_flight = message
            result = self._dispatcher.attempt(target, payload, key)
        finally:
            with self._lock:
                self._in_flight = None
            self._limits.release(host)
        self._settle(message, result)

    def _settle(self, message: Message, result: Attempt) -> None:
        if result.ok:
            self._queue.ack([message.id])
            self.ctx.counters.add(processed=1)
            return
        if not result.retryable or message.attempt >= self._queue.max_attempts:
            # False: another sender took it over (this one looked lost) and finished it
            if self._dead_letter(message, result.error, retryable=result.retryable):
                self.ctx.counters.add(failed=1)
                self.ctx.logger.warning(
                    "delivery %s to %s dead-lettered after %d attempt(s): %s",
                    message.payload.get("idempotency_key"), _shown_target(message),
                    message.attempt, result.error)
            return
        delay = self._queue.backoff_s(message.attempt)
        if result.retry_after_s is not None:  # the receiver asked for a pause
            delay = max(delay, min(result.retry_after_s,
                                   self.ctx.settings.dispatch.retry_backoff_max_s))
        self._queue.retry(message, result.error, delay)

    def _dead_letter(self, message: Message, reason: str, *, retryable: bool) -> bool:
        """Moves ``message`` to the dead letters without its URL's credentials (kept
        aside for a requeue); False when another sender already settled it."""
        kept = replace(message, payload=stored_without_credentials(
            self.ctx.redis, self.ctx.settings.tracardi.tenant, DISPATCH_QUEUE,
            message.payload))
        if retryable:
            return self._queue.give_up(kept, reason)
        return self._queue.dead_letter(kept, reason)


def _parse(body: dict[str, Any]) -> tuple[Target, str, dict[str, Any]]:
    key, payload = body.get("idempotency_key"), body.get("payload")
    if not isinstance(key, str) or not key:
        raise InvalidInput("idempotency_key: must be a non-empty string")
    if not isinstance(payload, dict):
        raise InvalidInput("payload: must be a JSON object")
    target = body.get("target")
    if not isinstance(target, str):
        raise InvalidInput(f"target: must be a string, not {type(target).__name__}")
    return parse_target(target), key, payload


def _host(target: Target) -> str:
    if target.kind is TargetKind.STREAM:
        return "redis"
    if target.kind is TargetKind.FLOW:
        return "tracardi-flow"  # each sender has its own helper: the limit spares Tracardi
    return (urlsplit(target.address).hostname or "") if target.address else "tracker"


def _shown_target(message: Message) -> str:
    return mask_url(str(message.payload.get("target")))


def dispatch_factory() -> DispatchRole:
    """The ``dispatch`` role's factory for the registry."""
    return DispatchRole()

