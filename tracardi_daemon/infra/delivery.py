"""The durable hand-off between what decides to send (scheduler, trigger) and the
senders that deliver HTTP targets: the tenant's ``dispatch`` work queue.

A message is ``{target, idempotency_key, payload, origin}``; its dead letters are the
dispatcher's (``tracardi-daemon dead list dispatch``), and a requeued one is delivered
again with the same idempotency key.
"""

from __future__ import annotations

from typing import Any

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.infra.dispatch import DISPATCH_QUEUE
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.redis import RedisClient


def delivery_queue(client: RedisClient, settings: Settings) -> WorkQueue:
    dispatch = settings.dispatch
    return WorkQueue(client, settings.tracardi.tenant, DISPATCH_QUEUE,
                     visibility_timeout_s=settings.queue.visibility_timeout_s,
                     max_attempts=dispatch.max_attempts,
                     retry_backoff_initial_s=dispatch.retry_backoff_initial_s,
                     retry_backoff_max_s=dispatch.retry_backoff_max_s)


def delivery(target: str, idempotency_key: str, payload: dict[str, Any],
             origin: str) -> dict[str, Any]:
    """One message of the dispatch queue; ``origin`` says what produced it (a job id)."""
    return {"target": target, "idempotency_key": idempotency_key, "payload": payload,
            "origin": origin}
