"""Reading every document behind an alias or index pattern in batches: a point in time
plus ``search_after``, resumable from the last hit's sort values (no from/size paging)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from tracardi_daemon.infra.elastic import elastic_errors

__all__ = ["Hit", "Scan", "count"]

logger = logging.getLogger(__name__)

_MATCH_ALL: Mapping[str, Any] = {"match_all": {}}
# how Elasticsearch reports a point in time that expired or was closed
_MISSING_PIT_MARKERS = ("search_context_missing_exception", "No search context found")


@dataclass(frozen=True)
class Hit:
    index: str  # the concrete index the document lives in
    id: str
    source: dict[str, Any]  # {} when the scan asked for no source
    sort: list[Any]  # the hit's values of the caller's sort: a resume position
    seq_no: int | None  # set when the scan asked for seq_no_primary_term
    primary_term: int | None


class Scan:
    """Batches of hits over ``index`` (an alias, pattern or name list) in ``sort`` order.

    ``sort`` must end in a field unique per document (e.g. ``{"id": "asc"}``): a resume
    from ``position`` (or an expired point in time reopened mid-scan) searches a NEW point
    in time after those values, which is exact only if they name one document. The
    implicit ``_shard_doc`` tiebreaker is never part of a position: its values differ
    between points in time.

    Names that match nothing yield no batches (the point in time is opened with
    ``ignore_unavailable``, so a missing or closed index named explicitly is skipped, as a
    pattern skips closed indices). Shard failures fail the search instead of returning
    partial batches. Not thread-safe.
    """

    def __init__(
        self,
        client: Elasticsearch,
        index: str,
        *,
        query: Mapping[str, Any] | None = None,
        sort: Sequence[Mapping[str, Any]],
        batch_size: int = 1000,
        after: Sequence[Any] | None = None,
        source: bool | Sequence[str] = True,
        seq_no_primary_term: bool = False,
        keep_alive: str = "2m",
    ) -> None:
        if not sort:
            raise ValueError("scan needs a sort that ends in a unique field")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        if after is not None and len(after) != len(sort):
            raise ValueError(f"after has {len(after)} values but sort has {len(sort)} fields")
        self._client = client
        self._index = index
        self._query = query or _MATCH_ALL
        self._sort = [dict(field) for field in sort]
        self._batch_size = batch_size
        self._position = list(after) if after is not None else None
        self._source = _source_option(source)
        self._seq_no_primary_term = seq_no_primary_term
        self._keep_alive = keep_alive
        self._pit_id: str | None = None
        self._exhausted = False

    @property
    def position(self) -> list[Any] | None:
        """Sort values of the last hit returned (or ``after``): the checkpoint to resume
        from with ``Scan(..., after=position)``."""
        return None if self._position is None else list(self._position)

    @property
    def pit_id(self) -> str | None:
        """The open point in time's id, None before the first batch and after the end."""
        return self._pit_id

    def next_batch(self) -> list[Hit]:
        """The next batch in sort order; [] once exhausted (the point in time is then
        closed)."""
        if self._exhausted:
            return []
        with elastic_errors(f"scan {self._index}"):
            if self._pit_id is None:
                self._pit_id = self._open_pit()
            response = self._search_reopening_once()
        hits = [self._hit(raw) for raw in response["hits"]["hits"]]
        if hits:
            self._position = hits[-1].sort
        if len(hits) < self._batch_size:
            # a point in time is a fixed view: a short batch is the last one
            self._exhausted = True
            self.close()
        return hits

    def close(self) -> None:
        """Close the point in time if one is open. Best effort and idempotent: an unclosed
        point in time expires after ``keep_alive`` anyway."""
        pit_id, self._pit_id = self._pit_id, None
        if pit_id is None:
            return
        try:
            self._client.options(ignore_status=404).close_point_in_time(id=pit_id)
        except (ApiError, TransportError) as exc:
            logger.warning("could not close the point in time of scan %s: %s", self._index, exc)

    def __iter__(self) -> Iterator[list[Hit]]:
        try:
            while batch := self.next_batch():
                yield batch
        finally:
            self.close()

    def __enter__(self) -> Scan:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _open_pit(self) -> str:
        # ignore_unavailable: an alias or name that does not exist is an empty scan
        response = self._client.open_point_in_time(
            index=self._index, keep_alive=self._keep_alive, ignore_unavailable=True
        )
        return str(response["id"])

    def _search_reopening_once(self) -> Mapping[str, Any]:
        try:
            return self._search()
        except ApiError as exc:
            if not _is_missing_pit(exc):
                raise
        logger.info(
            "point in time of scan %s expired or was closed; reopening after %s",
            self._index,
            self._position,
        )
        self._pit_id = self._open_pit()
        return self._search()

    def _search(self) -> Mapping[str, Any]:
        assert self._pit_id is not None
        options: dict[str, Any] = {}
        if self._position is not None:
            options["search_after"] = self._position
        if self._seq_no_primary_term:
            options["seq_no_primary_term"] = True
        response = self._client.search(
            pit={"id": self._pit_id, "keep_alive": self._keep_alive},
            query=self._query,
            sort=self._sort,
            size=self._batch_size,
            source=self._source,
            track_total_hits=False,
            allow_partial_search_results=False,
            **options,
        )
        body: Mapping[str, Any] = response.body
        self._pit_id = body.get("pit_id", self._pit_id)
        return body

    def _hit(self, raw: Mapping[str, Any]) -> Hit:
        return _to_hit(raw, len(self._sort))


def _to_hit(raw: Mapping[str, Any], sort_fields: int) -> Hit:
    return Hit(
        index=raw["_index"],
        id=raw["_id"],
        source=raw.get("_source") or {},
        # without the implicit _shard_doc tiebreaker (see the Scan docstring)
        sort=list(raw["sort"][:sort_fields]),
        seq_no=raw.get("_seq_no"),
        primary_term=raw.get("_primary_term"),
    )


def search_page(client: Elasticsearch, index: str, *, query: Mapping[str, Any],
                sort: Sequence[Mapping[str, Any]], size: int,
                after: Sequence[Any] | None = None) -> list[Hit]:
    """One page after ``after`` in ``sort`` order, without a point in time: one request,
    for a reader that resumes from its own cursor each time (a follower polling for what
    is new), where a fixed view across pages is not needed. Hits carry no source."""
    options: dict[str, Any] = {"search_after": list(after)} if after is not None else {}
    with elastic_errors(f"search {index}"):
        response = client.search(index=index, query=query, sort=[dict(f) for f in sort],
                                 size=size, source=False, track_total_hits=False,
                                 allow_partial_search_results=False,
                                 ignore_unavailable=True, **options)
    return [_to_hit(raw, len(sort)) for raw in response["hits"]["hits"]]


def count(client: Elasticsearch, index: str, query: Mapping[str, Any] | None = None) -> int:
    """How many documents behind ``index`` match ``query``; 0 when nothing matches the
    name."""
    with elastic_errors(f"count {index}"):
        response = client.count(index=index, query=query or _MATCH_ALL, ignore_unavailable=True)
    return int(response["count"])


def _source_option(source: bool | Sequence[str]) -> bool | Mapping[str, Any]:
    if isinstance(source, bool):
        return source
    if isinstance(source, str):
        return {"includes": [source]}
    return {"includes": list(source)}


def _is_missing_pit(exc: ApiError) -> bool:
    text = str(exc.body)
    return any(marker in text for marker in _MISSING_PIT_MARKERS)
