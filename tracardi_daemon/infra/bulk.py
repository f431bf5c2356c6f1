"""The bulk writer: index/create/update/delete actions sent through the bulk API in
bounded requests, with per-item results in the caller's order, optimistic concurrency
passed through, and back-off on items the cluster cannot take now (429, and 503 while
shards recover): only those are resent. A 503 still refused then raises
BackendUnavailable, so that no caller counts a document of a recovering shard as failed;
a 429 still refused comes back as the item's result (one document larger than the
node's indexing-pressure limit is refused so for ever, and must not block its batch)."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from elastic_transport import Serializer
from elasticsearch import ApiError, Elasticsearch

from tracardi_daemon.errors import BackendUnavailable
from tracardi_daemon.infra.elastic import elastic_errors
from tracardi_daemon.infra.queue_base import backoff_s
from tracardi_daemon.infra.refused_fields import refused_field
from tracardi_daemon.redact import mask_text

__all__ = ["RETRY_LATER_STATUSES", "BulkAction", "BulkStats", "BulkWriter", "ItemResult"]

logger = logging.getLogger(__name__)

Op = Literal["index", "create", "update", "delete"]
_REJECTED = 429
# item statuses that say "not now": resent with back-off, never a failed document
_UNAVAILABLE = 503
RETRY_LATER_STATUSES = frozenset({_REJECTED, _UNAVAILABLE})
_CONFLICT = 409
# what _item_result reads: the response without each item's _id, _version and _shards
# is a third shorter, and decoding it is a writer's largest cost after encoding
_ITEM_FIELDS = ",".join(f"items.*.{field}" for field in
                        ("status", "error", "result", "_index", "_seq_no", "_primary_term"))


@dataclass(frozen=True)
class BulkAction:
    op: Op
    index: str  # the concrete index to write to (the one the document was read from)
    id: str
    document: Mapping[str, Any] | None = None  # source for index/create, partial doc for update
    if_seq_no: int | None = None
    if_primary_term: int | None = None
    key: Any = None  # the caller's own tag, handed back with the result

    def __post_init__(self) -> None:
        if (self.document is None) != (self.op == "delete"):
            raise ValueError(
                f"{self.op} action for {self.id!r}: a document is required for "
                "index/create/update and not allowed for delete"
            )
        if (self.if_seq_no is None) != (self.if_primary_term is None):
            raise ValueError(
                f"{self.op} action for {self.id!r}: if_seq_no and if_primary_term go together"
            )
        if self.op == "create" and self.if_seq_no is not None:
            # Elasticsearch refuses the whole request, not just the item
            raise ValueError(f"create action for {self.id!r}: create cannot be conditional")


@dataclass(frozen=True)
class ItemResult:
    action: BulkAction
    status: int  # HTTP status of the item
    ok: bool
    conflict: bool  # 409: the document changed since it was read (or create found it)
    error: str | None  # "type: reason" when not ok
    index: str | None  # where it was written
    seq_no: int | None
    primary_term: int | None
    # the field the index's mapping refuses (a value of the wrong type), when it says so
    refused_field: str | None = None


@dataclass(frozen=True)
class BulkStats:
    requests: int  # bulk requests sent, including rejected ones
    items: int  # items sent, a resent item counted each time
    retried_429: int  # items resent after a 429


class BulkWriter:
    """Writes actions with the bulk API. A request holds at most ``max_actions`` actions
    and ``max_bytes`` of JSON lines (a single larger action goes alone). Items rejected
    with 429 or 503 are resent with exponential back-off and jitter up to ``max_retries``
    times (waiting on ``stop``); a 503 left then raises BackendUnavailable (what was
    written stays written; the caller redoes the batch, which its idempotent writes
    allow), a 429 left comes back in the results as other item failures do. Connection
    errors, timeouts, 429 and 5xx answers to the whole request raise BackendUnavailable,
    a refused request BackendError. Several threads may write at once (the client is
    thread-safe, and so are the stats).
    """

    def __init__(
        self,
        client: Elasticsearch,
        *,
        max_actions: int = 1000,
        max_bytes: int = 10 * 1024 * 1024,
        max_retries: int = 5,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        stop: threading.Event | None = None,
        refresh: bool | str | None = None,
        require_alias: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        if max_actions < 1 or max_bytes < 1 or max_retries < 0:
            raise ValueError("max_actions and max_bytes must be positive, max_retries >= 0")
        # 429s are this writer's to retry, with back-off: not the transport's, at once
        self._client = client.options(retry_on_status=())
        # the client's own JSON encoding (dates, UUIDs, decimals), applied once per action
        self._serializer = client.transport.serializers.get_serializer("application/json")
        self._max_actions = max_actions
        self._max_bytes = max_bytes
        self._max_retries = max_retries
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._stop = stop or threading.Event()
        self._refresh = refresh
        self._require_alias = require_alias  # refuse to create an index by writing to it
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._stats = BulkStats(requests=0, items=0, retried_429=0)
        self._stats_lock = threading.Lock()

    @property
    def stats(self) -> BulkStats:
        """Cumulative over every write of this writer."""
        return self._stats

    def write(self, actions: Sequence[BulkAction]) -> list[ItemResult]:
        """One result per action, in the order of ``actions``."""
        lines = [_lines(action, self._serializer) for action in actions]
        results: list[ItemResult | None] = [None] * len(actions)
        pending = list(range(len(actions)))
        attempt = 0
        while pending:
            rejected = [
                position
                for chunk in self._chunks(pending, lines)
                for position in self._send(chunk, actions, lines, results)
            ]
            if not rejected:
                break
            if attempt >= self._max_retries:
                self._raise_if_unavailable(rejected, results, "after retries")
                break
            attempt += 1
            delay_s = backoff_s(attempt, *self._backoff, self._rng)
            logger.info(
                "%d bulk items refused for now (429/503); retry %d of %d in %.2f s",
                len(rejected),
                attempt,
                self._max_retries,
                delay_s,
            )
            if self._stop.wait(delay_s):
                self._raise_if_unavailable(rejected, results, "when stopping")
                break  # stopping: the items refused with 429 come back as failed
            self._count(retried_429=len(rejected))
            pending = rejected
        return [result for result in results if result is not None]

    @staticmethod
    def _raise_if_unavailable(rejected: list[int], results: list[ItemResult | None],
                              when: str) -> None:
        unavailable = [results[p] for p in rejected
                       if (result := results[p]) is not None and result.status == _UNAVAILABLE]
        if unavailable:
            raise BackendUnavailable(
                "elasticsearch", f"bulk: {len(unavailable)} items refused with 503 {when}: "
                                 f"{unavailable[0].error if unavailable[0] else ''}")

    def _chunks(self, pending: list[int], lines: list[list[bytes]]) -> Iterator[list[int]]:
        chunk: list[int] = []
        chunk_bytes = 0
        for position in pending:
            size = sum(len(line) + 1 for line in lines[position])
            if chunk and (len(chunk) == self._max_actions or chunk_bytes + size > self._max_bytes):
                yield chunk
                chunk, chunk_bytes = [], 0
            chunk.append(position)
            chunk_bytes += size
        if chunk:
            yield chunk

    def _send(
        self,
        chunk: list[int],
        actions: Sequence[BulkAction],
        lines: list[list[bytes]],
        results: list[ItemResult | None],
    ) -> list[int]:
        """Send one request; fill in ``results`` and return the positions refused for
        now (429, 503)."""
        # pre-encoded lines: the client's NDJSON serializer forwards bytes as they are
        operations = cast(
            Sequence[Mapping[str, Any]], [line for position in chunk for line in lines[position]]
        )
        options: dict[str, Any] = {} if self._refresh is None else {"refresh": self._refresh}
        self._count(requests=1, items=len(chunk))
        with elastic_errors(f"bulk of {len(chunk)} actions"):
            try:
                response = self._client.bulk(
                    operations=operations,
                    require_alias=self._require_alias,
                    include_source_on_error=False,
                    filter_path=_ITEM_FIELDS,
                    **options,
                )
            except ApiError as exc:
                if exc.meta.status not in RETRY_LATER_STATUSES:
                    raise
                error = _error_text(
                    exc.body.get("error") if isinstance(exc.body, dict) else None
                ) or mask_text(str(exc))
                for position in chunk:
                    results[position] = _failed(actions[position], exc.meta.status, error)
                return chunk
        rejected = []
        for position, item in zip(chunk, response["items"], strict=True):
            result = _item_result(actions[position], item)
            results[position] = result
            if result.status in RETRY_LATER_STATUSES:
                rejected.append(position)
        return rejected

    def _count(self, *, requests: int = 0, items: int = 0, retried_429: int = 0) -> None:
        with self._stats_lock:
            stats = self._stats
            self._stats = BulkStats(
                requests=stats.requests + requests,
                items=stats.items + items,
                retried_429=stats.retried_429 + retried_429,
            )


def _lines(action: BulkAction, serializer: Serializer) -> list[bytes]:
    """The action's JSON lines (their length is what ``max_bytes`` bounds)."""
    meta: dict[str, Any] = {"_index": action.index, "_id": action.id}
    if action.if_seq_no is not None:
        meta["if_seq_no"] = action.if_seq_no
        meta["if_primary_term"] = action.if_primary_term
    lines: list[Any] = [{action.op: meta}]
    if action.op == "update":
        lines.append({"doc": action.document})  # a partial document: never a script
    elif action.op != "delete":
        lines.append(action.document)
    return [serializer.dumps(line) for line in lines]


def _item_result(action: BulkAction, item: Mapping[str, Any]) -> ItemResult:
    [outcome] = item.values()
    status = int(outcome["status"])
    ok = 200 <= status < 300
    error = _error_text(outcome.get("error"))
    if not ok and error is None:
        error = f"{outcome.get('result', 'failed')}: status {status}"  # delete of a missing id
    return ItemResult(
        action=action,
        status=status,
        ok=ok,
        conflict=status == _CONFLICT,
        error=error,
        index=outcome.get("_index"),
        seq_no=outcome.get("_seq_no") if ok else None,
        primary_term=outcome.get("_primary_term") if ok else None,
        refused_field=None if ok else refused_field(outcome.get("error")),
    )


def _failed(action: BulkAction, status: int, error: str) -> ItemResult:
    return ItemResult(
        action=action,
        status=status,
        ok=False,
        conflict=False,
        error=error,
        index=None,
        seq_no=None,
        primary_term=None,
    )


def _error_text(error: Any) -> str | None:
    """``type: reason (caused by type: reason)`` from an Elasticsearch error object."""
    if not isinstance(error, Mapping):
        return None if error is None else mask_text(str(error))
    text = f"{error.get('type')}: {error.get('reason')}"
    cause = error.get("caused_by")
    if isinstance(cause, Mapping):
        text += f" (caused by {cause.get('type')}: {cause.get('reason')})"
    return mask_text(text)
