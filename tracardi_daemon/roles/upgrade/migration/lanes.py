"""The reading side of a migration: one lane per source index being copied.

A lane reads its index in two phases: documents with an ``id`` in ``id`` order, split
into slices read at the same time and resumed each from its own position
(``infra.sliced_scan``); then the documents without an ``id``, which have no order to
resume from, in one scroll repeated whole on takeover (the same ids: overwritten).

Several lanes run at once where the plan allows it: a source index may start while
others are copied only if every step being copied, and its own, is ``asynchronous``
(Tracardi's flag for a step the plan need not wait for). A lane leaves a phase only once
every write it sent in that phase has returned, so a checkpoint never points past a
batch that was not written.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan as es_scan

from tracardi_daemon.infra.elastic import elastic_errors
from tracardi_daemon.infra.scan import Hit
from tracardi_daemon.infra.sliced_scan import SlicedScan, split_bounds

PHASES = ("by-id", "without-id")


@dataclass(frozen=True)
class WorkItem:
    """One source index of a step and the index it is copied to."""

    step: str
    source: str
    target: str
    documents: int

    def to_list(self) -> list[Any]:
        return [self.step, self.source, self.target, self.documents]


@dataclass
class Lane:
    """The copy of one work item: where its reading stands (kept in the checkpoint) and
    what it has open (not kept)."""

    item: int  # index into the job's work items
    phase: int = 0
    bounds: list[str] | None = None  # of the by-id slices; None: not split yet
    positions: list[list[Any] | None] = field(default_factory=lambda: [None])
    in_flight: int = 0  # writes sent, not yet collected
    draining: bool = False  # the phase is read to its end; waiting for its writes
    scan: SlicedScan | None = None
    without_id: Iterator[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"item": self.item, "phase": self.phase, "bounds": self.bounds,
                "positions": self.positions}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Lane:
        return cls(int(raw["item"]), int(raw.get("phase", 0)), raw.get("bounds"),
                   list(raw.get("positions") or [None]))

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any], items: int) -> tuple[list[Lane], int]:
        """The lanes of a checkpoint and the first work item not started. A checkpoint of
        the version before lanes (``item``, ``phase``, ``position``) becomes one lane of
        one slice at that position, so a takeover across the upgrade goes on from it."""
        if "lanes" in checkpoint or "item" not in checkpoint:
            return ([cls.from_dict(raw) for raw in checkpoint.get("lanes", [])],
                    int(checkpoint.get("next_item", 0)))
        item, phase = int(checkpoint["item"]), int(checkpoint.get("phase", 0))
        if item >= items:
            return [], item
        bounds: list[str] | None = [] if phase == 0 else None
        return [cls(item, phase, bounds, [checkpoint.get("position")])], item + 1

    def close(self) -> None:
        if self.scan is not None:
            self.scan.close()
            self.scan = None
        self.without_id = None

    def next_phase(self) -> bool:
        """Move to the next phase; False when the lane has no phase left."""
        self.close()
        self.bounds, self.positions, self.draining = None, [None], False
        if self.phase + 1 < len(PHASES):
            self.phase += 1
            return True
        return False


class LaneReader:
    """Reads the batches of lanes from Elasticsearch."""

    def __init__(self, elastic: Elasticsearch, *, batch_size: int, slices: int,
                 name: str) -> None:
        self._elastic = elastic
        self._batch = batch_size
        self._slices = slices
        self._name = name
        self._sort_fields: dict[str, str | None] = {}

    def next_hits(self, lane: Lane, item: WorkItem) -> tuple[int, list[Hit], bool]:
        """``(slice, hits, split)`` of the lane's next batch, no hits at the end of its
        phase; ``split`` is true when the lane's slices were just chosen (the caller
        saves them before anything is written)."""
        sort_field = self._id_sort_field(item.source)
        if PHASES[lane.phase] == "by-id":
            if sort_field is None:
                return 0, [], False  # no sortable id: the next phase copies every document
            split = False
            if lane.scan is None:
                if lane.bounds is None:
                    lane.bounds = self._split(item, sort_field)
                    lane.positions = [None] * (len(lane.bounds) + 1)
                    split = True
                lane.scan = SlicedScan(self._elastic, item.source, sort_field,
                                       bounds=lane.bounds, positions=lane.positions,
                                       batch_size=self._batch,
                                       name=f"{self._name}-{lane.item}")
            number, hits = lane.scan.next()
            return number, hits, split
        if lane.without_id is None:
            query: dict[str, Any] = {"match_all": {}} if sort_field is None else {
                "bool": {"must_not": {"exists": {"field": sort_field}}}}
            with elastic_errors(f"scan {item.source}"):
                lane.without_id = iter(es_scan(self._elastic, index=item.source,
                                               size=self._batch, query={"query": query}))
        with elastic_errors(f"scan {item.source}"):
            batch = list(itertools.islice(lane.without_id, self._batch))
        return 0, [Hit(raw["_index"], raw["_id"], raw["_source"], [], None, None)
                   for raw in batch], False

    def _split(self, item: WorkItem, sort_field: str) -> list[str]:
        """Slices only where each gets a few batches: splitting costs a sample query."""
        slices = min(self._slices, item.documents // (2 * self._batch))
        return split_bounds(self._elastic, item.source, sort_field, slices)

    def _id_sort_field(self, index: str) -> str | None:
        """``id`` where it is a keyword (Tracardi's mappings), ``id.keyword`` where a
        dynamic mapping made it text; None when neither can be sorted on."""
        if index not in self._sort_fields:
            with elastic_errors(f"read the mapping of {index}"):
                found = self._elastic.indices.get_field_mapping(
                    index=index, fields="id,id.keyword").body.get(index, {}).get("mappings", {})
            kinds = {name: next(iter(entry["mapping"].values())).get("type")
                     for name, entry in found.items()}
            self._sort_fields[index] = next(
                (name for name in ("id", "id.keyword") if kinds.get(name) == "keyword"), None)
        return self._sort_fields[index]
