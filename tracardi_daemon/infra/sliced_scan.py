"""A scan in key order split into slices that are read at the same time and resumed
each from its own position.

Elasticsearch's own sliced point in time splits a shard by ``_shard_doc``, whose values
change from one point in time to the next, so a slice could not be resumed after a
takeover. These slices are ranges of the unique sort key instead: slice i holds the
keys from ``bounds[i-1]`` (included) to ``bounds[i]`` (excluded), so they never overlap
and together hold every document, whatever the bounds are. ``split_bounds`` picks the
bounds from a random sample of the keys so that slices come out about equal; the caller
keeps them (and each slice's position) in its checkpoint, and a takeover reads the same
slices from where each stopped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from elasticsearch import Elasticsearch

from tracardi_daemon.infra.elastic import elastic_errors
from tracardi_daemon.infra.pipeline import ReadAhead
from tracardi_daemon.infra.scan import Hit, Scan

__all__ = ["SlicedScan", "split_bounds"]

SAMPLE_SIZE = 1000  # keys sampled to place the bounds


def split_bounds(client: Elasticsearch, index: str, key: str, slices: int, *,
                 query: Mapping[str, Any] | None = None) -> list[str]:
    """``slices - 1`` keys that split ``index``'s documents into about equal ranges of
    ``key`` (a keyword field); fewer when the sample holds fewer distinct keys, [] for
    one slice."""
    if slices < 2:
        return []
    with elastic_errors(f"sample the keys of {index}"):
        response = client.search(
            index=index, size=SAMPLE_SIZE, source=False, docvalue_fields=[{"field": key}],
            query={"function_score": {"query": query or {"exists": {"field": key}},
                                      "random_score": {"seed": 1, "field": "_seq_no"}}},
            ignore_unavailable=True, allow_no_indices=True)
    keys = sorted({str(value) for hit in response["hits"]["hits"]
                   for value in hit.get("fields", {}).get(key, [])})
    if len(keys) < slices:
        return []
    return sorted({keys[len(keys) * share // slices] for share in range(1, slices)})


class SlicedScan:
    """Batches over ``index`` in ``key`` order, one slice per range between ``bounds``,
    each slice read ahead in its own thread; ``next`` takes the slices in turn and says
    which slice a batch came from. ``positions`` (one per slice, None: from the start)
    are where each slice resumes; the caller records a slice's new position once the
    batch is written."""

    def __init__(self, client: Elasticsearch, index: str, key: str, *,
                 bounds: Sequence[str], positions: Sequence[list[Any] | None],
                 query: Mapping[str, Any] | None = None, batch_size: int,
                 name: str) -> None:
        if len(positions) != len(bounds) + 1:
            raise ValueError(f"{len(bounds)} bounds make {len(bounds) + 1} slices, "
                             f"but {len(positions)} positions were given")
        self._scans: list[Scan] = []
        self._readers: list[ReadAhead[Hit]] = []
        edges: list[str | None] = [None, *bounds, None]
        for number, after in enumerate(positions):
            key_range = {name: edge for name, edge in
                         (("gte", edges[number]), ("lt", edges[number + 1]))
                         if edge is not None}
            filters: list[Mapping[str, Any]] = [query or {"exists": {"field": key}}]
            if key_range:
                filters.append({"range": {key: key_range}})
            scan = Scan(client, index, query={"bool": {"filter": filters}},
                        sort=[{key: "asc"}], batch_size=batch_size, after=after)
            self._scans.append(scan)
            self._readers.append(ReadAhead(scan.next_batch, name=f"{name}-{number}"))
        self._open = list(range(len(positions)))  # slices not yet at their end
        self._turn = 0

    def next(self) -> tuple[int, list[Hit]]:
        """``(slice, batch)``; ``(-1, [])`` once every slice is at its end."""
        while self._open:
            self._turn %= len(self._open)
            number = self._open[self._turn]
            batch = self._readers[number].next()
            if batch:
                self._turn += 1
                return number, batch
            self._open.remove(number)
        return -1, []

    def close(self) -> None:
        for reader in self._readers:
            reader.close()  # first: a read may be in flight on the scan
        for scan in self._scans:
            scan.close()
