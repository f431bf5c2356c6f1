"""The durable hand-off between what decides to send (scheduler, trigger, segmentation
passes) and the senders that deliver HTTP targets: the tenant's ``dispatch`` work queue.

A message is ``{target, idempotency_key, payload, origin}``; its dead letters are the
dispatcher's (``tracardi-daemon dead list dispatch``), and a requeued one is delivered
again with the same idempotency key.
"""

from __future__ import annotations

from typing import Any


def delivery(target: str, idempotency_key: str, payload: dict[str, Any],
             origin: str) -> dict[str, Any]:
    """One message of the dispatch queue; ``origin`` says what produced it (a job id)."""
    return {"target": target, "idempotency_key": idempotency_key, "payload": payload,
            "origin": origin}
