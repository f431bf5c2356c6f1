"""Dead letters of a queue: work that failed for good, kept with its reason, attempts,
errors and original payload until an operator requeues or purges it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tracardi_daemon.infra.queue_base import dead_key, id_ms, load_script, queue_key, stream_entries
from tracardi_daemon.infra.redis import RedisClient, StreamFields, redis_errors, text

# fields every dead letter has; anything else (a dispatch target, ...) is ``extra``
_KNOWN = frozenset({"id", "reason", "attempts", "first_error", "last_error", "payload"})
_REQUEUE_BATCH = 100


@dataclass(frozen=True)
class DeadLetter:
    id: str  # in the dead-letter stream
    message_id: str  # in the queue it came from; empty if it never was a queue message
    reason: str
    attempts: int
    first_error: str | None
    last_error: str | None
    payload: Any  # the decoded JSON, or the raw text if it was not JSON
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def dead_at_ms(self) -> int:
        return id_ms(self.id)

    @classmethod
    def from_entry(cls, entry_id: str, fields: Mapping[str, str]) -> DeadLetter:
        raw = fields.get("payload", "")
        try:
            payload: Any = json.loads(raw)
        except ValueError:
            payload = raw
        return cls(id=entry_id, message_id=fields.get("id", ""),
                   reason=fields.get("reason", ""), attempts=int(fields.get("attempts", 0)),
                   first_error=fields.get("first_error"), last_error=fields.get("last_error"),
                   payload=payload,
                   extra={k: v for k, v in fields.items() if k not in _KNOWN})


def dead_letter_fields(reason: str, attempts: int, payload_json: str, *,
                       first_error: str | None = None, last_error: str | None = None,
                       extra: Mapping[str, str] | None = None) -> dict[str, str]:
    fields = {"reason": reason, "attempts": str(attempts), "payload": payload_json}
    if first_error is not None:
        fields["first_error"] = first_error
    if last_error is not None:
        fields["last_error"] = last_error
    fields.update(extra or {})
    return fields


def add_dead_letter(client: RedisClient, tenant: str, queue: str, *, payload: Any,
                    reason: str, attempts: int, first_error: str | None = None,
                    last_error: str | None = None,
                    extra: Mapping[str, str] | None = None) -> str:
    """Record a failure that was not a message of the queue (e.g. a final dispatch
    failure); returns the dead letter's id."""
    fields: StreamFields = {}
    fields.update(dead_letter_fields(reason, attempts, json.dumps(payload),
                                     first_error=first_error, last_error=last_error,
                                     extra=extra))
    with redis_errors(f"dead-letter to {dead_key(tenant, queue)}"):
        return text(client.xadd(dead_key(tenant, queue), fields))


class DeadLetters:
    """List, requeue and purge the dead letters of one queue."""

    def __init__(self, client: RedisClient, tenant: str, queue: str) -> None:
        self._client = client
        self._stream = queue_key(tenant, queue)
        self._dead = dead_key(tenant, queue)
        self._requeue_script = load_script(client, "requeue_dead.lua")

    def oldest(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters."""
        with redis_errors(f"list {self._dead}"):
            entries = self._client.xrange(self._dead, count=limit)
        return [DeadLetter.from_entry(entry_id, fields)
                for entry_id, fields in stream_entries(entries)]

    def count(self) -> int:
        with redis_errors(f"count {self._dead}"):
            return int(self._client.xlen(self._dead))

    def requeue(self, ids: Sequence[str] | Literal["all"]) -> int:
        """Put dead letters back on the queue with a fresh attempt budget; returns how
        many were requeued (unknown ids are skipped)."""
        if ids != "all":
            return self._requeue_batch(list(ids))
        requeued, start = 0, "-"
        # walk forwards by id, so letters added meanwhile are requeued too
        while batch := self._ids_from(start, _REQUEUE_BATCH):
            requeued += self._requeue_batch(batch)
            start = f"({batch[-1]}"
        return requeued

    def purge(self) -> int:
        """Delete every dead letter; returns how many there were."""
        with redis_errors(f"purge {self._dead}"):
            pipe = self._client.pipeline(transaction=True)
            pipe.xlen(self._dead)
            pipe.delete(self._dead)
            count, _ = pipe.execute()
        return int(count)

    def _ids_from(self, start: str, limit: int) -> list[str]:
        with redis_errors(f"list {self._dead}"):
            entries = self._client.xrange(self._dead, min=start, count=limit)
        return [entry_id for entry_id, _ in stream_entries(entries)]

    def _requeue_batch(self, ids: list[str]) -> int:
        if not ids:
            return 0
        with redis_errors(f"requeue from {self._dead}"):
            return int(self._requeue_script(keys=[self._stream, self._dead], args=ids))
