"""Work queue on a Redis stream and consumer group: at-least-once delivery, takeover of a
lost consumer's messages, retries with backoff that block nothing, and dead letters."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import redis
from redis.client import Pipeline

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.deadletters import (
    DeadLetter,
    DeadLetters,
    add_dead_letter,
    dead_letter_fields,
)
from tracardi_daemon.infra.queue_base import (
    backoff_s,
    dead_key,
    decode_fields,
    flatten,
    is_nogroup,
    load_script,
    queue_key,
    retry_key,
)
from tracardi_daemon.infra.queue_stats import QueueStats, read_stats
from tracardi_daemon.infra.redis import RedisClient, StreamFields, redis_errors, text

__all__ = ["DeadLetter", "Message", "QueueStats", "WorkQueue", "add_dead_letter"]

logger = logging.getLogger(__name__)

DEFAULT_GROUP = "tracardi-daemon"
LOST_ERROR = "not acknowledged within the visibility timeout (worker lost)"
_MAX_ERROR_CHARS = 2000  # a traceback per attempt would bloat every entry
_PROMOTE_LIMIT = 100
# how often consumers look for retries that other consumers parked
PROMOTE_RECHECK_S = 0.25
_RawEntry = tuple[str, dict[str, str], int]  # id, fields, times delivered


@dataclass(frozen=True)
class Message:
    id: str
    payload: dict[str, Any]
    attempt: int  # 1 on the first delivery; counts retries and lost deliveries
    first_error: str | None = None
    last_error: str | None = None


class WorkQueue:
    """One queue of one tenant; safe to share between threads and daemons."""

    def __init__(self, client: RedisClient, tenant: str, queue: str, *,
                 group: str = DEFAULT_GROUP, visibility_timeout_s: float = 5.0,
                 max_attempts: int = 5, retry_backoff_initial_s: float = 1.0,
                 retry_backoff_max_s: float = 300.0,
                 monotonic: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None, max_length: int | None = None) -> None:
        if max_attempts < 1 or visibility_timeout_s <= 0:
            raise InvalidInput("max_attempts must be >= 1 and visibility_timeout_s > 0")
        self.name = queue
        self.max_attempts = max_attempts
        self._client = client
        self._stream = queue_key(tenant, queue)
        self._dead = dead_key(tenant, queue)
        self._retry = retry_key(tenant, queue)
        self._group = group
        self._visibility_ms = int(visibility_timeout_s * 1000)
        self._backoff = (retry_backoff_initial_s, retry_backoff_max_s)
        self._monotonic = monotonic
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._group_ready = False
        # a queue whose consumer may not run anywhere (profile-changed without a
        # segmentation role) is trimmed to about this many entries, oldest first
        self._max_length = max_length
        self._last_reclaim = float("-inf")
        self._reclaim_cursor = "0-0"
        self._next_promote = float("-inf")
        self._dead_letters = DeadLetters(client, tenant, queue)
        self._scripts = {name: load_script(client, f"{name}.lua")
                         for name in ("reclaim", "retry", "promote", "dead_letter", "extend",
                                      "enqueue_once")}

    # producing

    def enqueue(self, payload: dict[str, Any]) -> str:
        """Add one message; returns its id."""
        return self.enqueue_many([payload])[0]

    def enqueue_many(self, payloads: Iterable[dict[str, Any]]) -> list[str]:
        """Add messages in one round trip; returns their ids in order."""
        with redis_errors(f"enqueue to {self._stream}"):
            pipe = self._client.pipeline(transaction=False)
            self.pipeline_enqueue(pipe, payloads)
            return [text(entry_id) for entry_id in pipe.execute()]

    def pipeline_enqueue(self, pipe: Pipeline, payloads: Iterable[dict[str, Any]]) -> None:
        """Add messages on the caller's pipeline, so that a producer whose messages must
        go out with its own writes (one transaction) still leaves the entry's format to
        the queue; their ids are the XADD replies of the caller's ``execute()``."""
        entries = [_new_entry(p) for p in payloads]  # all checked before any is added
        for fields in entries:
            pipe.xadd(self._stream, fields, maxlen=self._max_length, approximate=True)

    def entry_fields(self, payload: dict[str, Any]) -> StreamFields:
        """The stream entry of one message, for a script that adds it itself (so the
        entry's format stays the queue's)."""
        return _new_entry(payload)

    def enqueue_once(self, payload: dict[str, Any], key: str, ttl_s: float) -> bool:
        """Add a message unless one with ``key`` was added within the last ``ttl_s``;
        True if added. A producer that may repeat itself (a redelivered input, a
        takeover) passes a key derived from what it produces, so the repeat is dropped."""
        return self.enqueue_once_many([(payload, key)], ttl_s)[0]

    def enqueue_once_many(self, items: Sequence[tuple[dict[str, Any], str]],
                          ttl_s: float) -> list[bool]:
        """``enqueue_once`` for (payload, key) pairs in one round trip; True for each
        message added, False for each whose key was seen."""
        if ttl_s <= 0:
            raise InvalidInput(f"ttl_s must be > 0, got {ttl_s}")
        entries = [(_new_entry(payload), self._once_key(key)) for payload, key in items]
        if not entries:
            return []
        ttl_ms, max_length = max(1, int(ttl_s * 1000)), self._max_length or 0
        with redis_errors(f"enqueue once to {self._stream}"):
            pipe = self._client.pipeline(transaction=False)
            for fields, marker in entries:
                self._scripts["enqueue_once"](keys=[self._stream, marker],
                                              args=[ttl_ms, max_length,
                                                    *(part for pair in fields.items()
                                                      for part in pair)],
                                              client=pipe)
            return [entry_id is not None for entry_id in pipe.execute()]

    # consuming

    def consume(self, consumer: str, count: int = 1, block_ms: int = 0) -> list[Message]:
        """Up to ``count`` messages: first ones a lost consumer left behind, then due
        retries and new ones. ``block_ms`` > 0 waits that long for new ones."""
        with redis_errors(f"consume from {self._stream}"):
            try:
                raw = self._consume_raw(consumer, count, block_ms)
            except redis.ResponseError as exc:
                if not is_nogroup(exc):
                    raise
                self._group_ready = False  # the stream was deleted; start it again
                raw = self._consume_raw(consumer, count, block_ms)
        return self._decode(raw)

    def ack(self, ids: Sequence[str]) -> int:
        """Mark messages done and delete them, so the stream holds only unfinished work."""
        if not ids:
            return 0
        with redis_errors(f"ack on {self._stream}"):
            # one key, so MULTI is as atomic as a script would be
            pipe = self._client.pipeline(transaction=True)
            pipe.xack(self._stream, self._group, *ids)
            pipe.xdel(self._stream, *ids)
            acked, _ = pipe.execute()
        return int(acked)

    def extend(self, consumer: str, ids: Sequence[str]) -> list[str]:
        """Renew the claim on messages a long job still works on; returns the ids still
        held (one missing was taken over: its work will be done again elsewhere)."""
        if not ids:
            return []
        with redis_errors(f"extend claims on {self._stream}"):
            held = self._scripts["extend"](keys=[self._stream],
                                           args=[self._group, consumer, *ids])
        return [text(entry_id) for entry_id in held]

    def retry(self, message: Message, error: str, delay_s: float | None = None) -> bool:
        """Try the message again after ``delay_s`` (default: backoff with jitter), without
        holding up the messages behind it. Returns False if it will not be retried: it
        used up ``max_attempts`` and went to the dead letters, or another consumer that
        took it over has finished it meanwhile."""
        error = error[:_MAX_ERROR_CHARS]
        if message.attempt >= self.max_attempts:
            self.give_up(message, error)
            return False
        delay = self.backoff_s(message.attempt) if delay_s is None else delay_s
        return self._park(message, message.attempt, message.first_error or error, error, delay)

    def give_up(self, message: Message, error: str) -> bool:
        """Move a message that used up its attempts to the dead letters, with ``error``
        as its last; False if another consumer had finished it meanwhile."""
        error = error[:_MAX_ERROR_CHARS]
        reason = f"failed {message.attempt} times; max_attempts {self.max_attempts} reached"
        return self._move_to_dead(message.id, _dump_payload(message.payload), reason,
                                  message.attempt, first_error=message.first_error or error,
                                  last_error=error)

    def release(self, message: Message) -> None:
        """Hand an unfinished message back at once without counting an attempt (used
        when stopping: another consumer gets it without waiting for the timeout)."""
        self.defer(message, 0.0)

    def defer(self, message: Message, delay_s: float) -> None:
        """Hand a message back to be delivered again after ``delay_s``, without counting
        an attempt (used when the consumer may not work on it yet, e.g. a host limit)."""
        self._park(message, message.attempt - 1, message.first_error, message.last_error,
                   delay_s)

    def dead_letter(self, message: Message, reason: str) -> bool:
        """Move a message to the dead letters now (bad input that no retry can fix);
        False if another consumer had finished it meanwhile."""
        return self._move_to_dead(message.id, _dump_payload(message.payload), reason,
                                  message.attempt, first_error=message.first_error,
                                  last_error=message.last_error)

    def backoff_s(self, attempt: int) -> float:
        """Delay before retrying after failed attempt ``attempt``."""
        return backoff_s(attempt, *self._backoff, self._rng)

    def promote_due_retries(self) -> int:
        """Move retries whose delay has passed back into the stream; consume does this."""
        with redis_errors(f"promote retries of {self._stream}"):
            moved, _ = self._promote()
        return moved

    # dead letters and health

    def list_dead(self, limit: int = 100) -> list[DeadLetter]:
        return self._dead_letters.oldest(limit)

    def requeue_dead(self, ids: Sequence[str] | Literal["all"]) -> int:
        return self._dead_letters.requeue(ids)

    def purge_dead(self) -> int:
        return self._dead_letters.purge()

    def stats(self) -> QueueStats:
        with redis_errors(f"stats of {self._stream}"):
            return read_stats(self._client, self._stream, self._group, self._retry, self._dead)

    # internals

    def _once_key(self, key: str) -> str:
        if not isinstance(key, str) or not key:
            raise InvalidInput(f"enqueue once: key must be a non-empty string, not {key!r}")
        return f"{self._stream}:once:{key}"

    def _consume_raw(self, consumer: str, count: int, block_ms: int) -> list[_RawEntry]:
        self._ensure_group()
        entries = self._reclaim_if_due(consumer, count)
        remaining_ms = block_ms if not entries else 0
        while True:
            retry_wait_ms = self._promote_if_due()
            if len(entries) >= count:
                return entries
            block: int | None = None
            if remaining_ms > 0:
                # wake when the next retry falls due instead of sleeping past it
                block = max(1, min(remaining_ms, retry_wait_ms))
            reply = self._client.xreadgroup(self._group, consumer, {self._stream: ">"},
                                            count=count - len(entries), block=block)
            entries += [(text(i), decode_fields(f), 1) for i, f in _stream_entries(reply)]
            if entries or block is None:
                return entries
            remaining_ms -= block

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # from id 0, so messages enqueued before the first consumer are not skipped
            self._client.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _reclaim_if_due(self, consumer: str, count: int) -> list[_RawEntry]:
        """XAUTOCLAIM at most every visibility/4 (sooner while a scan is unfinished):
        a takeover then waits at most 1.25 visibility timeouts, for one call per period."""
        now = self._monotonic()
        period_s = self._visibility_ms / 4000
        if self._reclaim_cursor == "0-0" and now - self._last_reclaim < period_s:
            return []
        self._last_reclaim = now
        cursor, claimed, dead_lettered = self._scripts["reclaim"](
            keys=[self._stream, self._dead],
            args=[self._group, consumer, self._visibility_ms, self._reclaim_cursor, count,
                  self.max_attempts, LOST_ERROR])
        self._reclaim_cursor = text(cursor)
        if dead_lettered:
            logger.warning("%s: %d message(s) dead-lettered after repeated lost deliveries",
                           self._stream, dead_lettered)
        return [(text(i), decode_fields(f), int(n)) for i, f, n in claimed]

    def _promote_if_due(self) -> int:
        """Promote due retries when one may be due; ms until the next check.

        Skipping the script while nothing is due saves a round trip per consume; retries
        parked by other consumers are still noticed within PROMOTE_RECHECK_S."""
        now = self._monotonic()
        if now < self._next_promote:
            return max(1, int((self._next_promote - now) * 1000))
        _, wait_ms = self._promote()
        recheck_ms = int(PROMOTE_RECHECK_S * 1000)
        wait_ms = recheck_ms if wait_ms < 0 else min(wait_ms, recheck_ms)
        self._next_promote = now + wait_ms / 1000
        return max(1, wait_ms)

    def _promote(self) -> tuple[int, int]:
        moved, wait_ms = self._scripts["promote"](keys=[self._stream, self._retry],
                                                  args=[_PROMOTE_LIMIT])
        return int(moved), int(wait_ms)

    def _decode(self, raw: list[_RawEntry]) -> list[Message]:
        messages = []
        for entry_id, fields, deliveries in raw:
            attempt = int(fields.get("attempts", 0)) + deliveries
            try:
                payload = json.loads(fields.get("payload", ""))
                if not isinstance(payload, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                # bad input must not come back forever nor block the queue
                self._move_to_dead(entry_id, fields.get("payload", ""),
                                   f"invalid payload: {exc}", attempt,
                                   first_error=None, last_error=None)
                continue
            messages.append(Message(entry_id, payload, attempt, fields.get("first_error"),
                                    fields.get("last_error")))
        return messages

    def _park(self, message: Message, attempts: int, first_error: str | None,
              last_error: str | None, delay_s: float) -> bool:
        member = json.dumps({"id": message.id, "payload": _dump_payload(message.payload),
                             "attempts": attempts, "first_error": first_error,
                             "last_error": last_error})
        with redis_errors(f"retry on {self._stream}"):
            parked = self._scripts["retry"](
                keys=[self._stream, self._retry],
                args=[self._group, message.id, int(delay_s * 1000), member])
        self._next_promote = min(self._next_promote, self._monotonic() + delay_s)
        return bool(parked)

    def _move_to_dead(self, entry_id: str, payload_json: str, reason: str, attempts: int,
                      *, first_error: str | None, last_error: str | None) -> bool:
        fields = dead_letter_fields(reason, attempts, payload_json,
                                    first_error=first_error, last_error=last_error)
        with redis_errors(f"dead-letter from {self._stream}"):
            moved = self._scripts["dead_letter"](keys=[self._stream, self._dead],
                                                 args=[self._group, entry_id, *flatten(fields)])
        return bool(moved)


def _new_entry(payload: dict[str, Any]) -> StreamFields:
    return {"payload": _dump_payload(payload), "attempts": "0"}


def _dump_payload(payload: Any) -> str:
    if not isinstance(payload, dict):
        raise InvalidInput(f"payload must be a JSON object, not {type(payload).__name__}")
    try:
        return json.dumps(payload, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"payload is not JSON-serialisable: {exc}") from exc


def _stream_entries(reply: Any) -> list[tuple[Any, Any]]:
    """The (id, fields) pairs of a one-stream XREADGROUP reply, RESP2 or RESP3."""
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, dict) else [item[1] for item in reply]
    return [(entry[0], entry[1]) for entries in streams for entry in entries]
