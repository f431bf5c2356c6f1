"""Batch mapping jobs (Tracardi's "Run in background"): a message on the ``mapping`` queue
names a task record; the role that takes it applies the job's definitions to the events
its query selects, one batch per step, checkpointed in the task record.

Events are read grouped by profile (``profile.id``, then insert time), so that a profile
with many events is written once rather than once per batch. The events a job covers
are fixed when it is submitted: ``--to`` defaults to the submission time. A job taken
over after a crash resumes from its checkpoint under the job's lease, finishing the
interrupted batch under the same batch id (see ``mapping_batch``), so no event is
applied twice and the counters stay exact.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.lease import Lease
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.scan import Hit, Scan, count
from tracardi_daemon.model.definitions import (
    Definition,
    EventToProfile,
    EventTypeMapping,
    definition_type,
)
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.jobs import end_job, queue_task
from tracardi_daemon.roles.mapping.batch import BatchApplier, BatchOutcome, load_events
from tracardi_daemon.roles.mapping.rules import MappingRules
from tracardi_daemon.tql import Condition, TqlError

log = logging.getLogger(__name__)

TASK_TYPE = "mapping"
D = TypeVar("D", EventToProfile, EventTypeMapping)
# a profile's events together, in time order; "id" makes every position unique
JOB_SORT = ({"profile.id": {"order": "asc", "missing": "_first"}},
            {"metadata.time.insert": {"order": "asc", "missing": "_first"}}, {"id": "asc"})


@dataclass(frozen=True)
class JobSpec:
    """What a job applies, and to which events."""

    definitions: tuple[Definition, ...]  # event-to-profile and event-type definitions
    query: str | None = None  # Lucene query string over events
    where: str | None = None  # TQL over events (event@...)
    insert_from: str | None = None  # ISO 8601, inclusive
    insert_to: str | None = None  # ISO 8601, inclusive
    dry_run: bool = False

    def to_params(self) -> dict[str, Any]:
        return {"definitions": [{"kind": d.kind, **d.to_dict()} for d in self.definitions],
                "query": self.query, "where": self.where, "from": self.insert_from,
                "to": self.insert_to, "dry_run": self.dry_run}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> JobSpec:
        definitions: list[Definition] = []
        for raw in params.get("definitions") or []:
            fields = {k: v for k, v in raw.items() if k != "kind"}
            definitions.append(definition_type(str(raw.get("kind"))).from_dict(fields))
        return cls(tuple(definitions), params.get("query"), params.get("where"),
                   params.get("from"), params.get("to"), bool(params.get("dry_run")))

    def rules(self) -> MappingRules:
        mappings = [d for d in self.definitions if isinstance(d, EventToProfile)]
        event_types = [d for d in self.definitions if isinstance(d, EventTypeMapping)]
        # a job runs the definitions it names even if they are switched off for the tail
        return MappingRules([_enabled(d) for d in mappings],
                            [_enabled(d) for d in event_types])

    def query_body(self, event_types: Sequence[str]) -> dict[str, Any]:
        filters: list[dict[str, Any]] = [{"terms": {"type": list(event_types)}}]
        if self.query:
            filters.append({"query_string": {"query": self.query}})
        if self.where:
            try:
                filters.append(Condition(self.where).to_elastic(source="event"))
            except TqlError as exc:
                raise InvalidInput(f"--where: {exc}") from exc
        bounds = {key: value for key, value in (("gte", self.insert_from),
                                                 ("lte", self.insert_to)) if value}
        if bounds:
            filters.append({"range": {"metadata.time.insert": bounds}})
        return {"bool": {"filter": filters}}


def _enabled(definition: D) -> D:
    return replace(definition, enabled=True)


def validate_spec(spec: JobSpec) -> None:
    """Refuse a job that could not run, before it is queued."""
    if not spec.definitions:
        raise InvalidInput("a mapping job needs at least one definition")
    spec.query_body(spec.rules().event_types)  # compiles --where
    for bound, name in ((spec.insert_from, "--from"), (spec.insert_to, "--to")):
        if bound is not None:
            try:
                datetime.fromisoformat(bound)
            except ValueError:
                raise InvalidInput(f"{name}: not an ISO 8601 date and time: {bound!r}") \
                    from None


def submit(tasks: TaskStore, queue: WorkQueue, spec: JobSpec, name: str) -> TaskRecord:
    """Create the job's task record and queue it; the events it covers end now unless
    ``--to`` says otherwise."""
    if spec.insert_to is None:
        spec = JobSpec(spec.definitions, spec.query, spec.where, spec.insert_from,
                       datetime.now(UTC).isoformat(), spec.dry_run)
    validate_spec(spec)
    return queue_task(tasks, queue, TASK_TYPE, name, spec.to_params())


class MappingJob:
    """One mapping job: its events, batch by batch, from its checkpoint."""

    def __init__(self, settings: Settings, tasks: TaskStore, record: TaskRecord, *,
                 lease: Lease, applier: BatchApplier, alias: str, owner: str) -> None:
        self._settings = settings
        self._tasks = tasks
        self.id = record.id
        self._lease = lease
        self._applier = applier
        self._spec = JobSpec.from_params(record.params)
        self._rules = self._spec.rules()
        checkpoint = record.checkpoint or {}
        self._seq = int(checkpoint.get("seq", 0))
        self._position: list[Any] | None = checkpoint.get("position")
        self._intent: dict[str, Any] | None = checkpoint.get("intent")
        self._samples: list[dict[str, Any]] = list(checkpoint.get("samples", []))
        self._alias = alias
        self._query = self._spec.query_body(self._rules.event_types)
        # opened after an interrupted batch is finished: from the position after it
        self._scan: Scan | None = None
        self.done = False
        self._record = record
        self._owner = owner
        self._started = False

    def _begin(self) -> None:
        """Mark the task running (a takeover restarts it) and count its events once."""
        fence = self._lease.fenced()
        if not self._tasks.start(self.id, self._owner, fence=fence):
            self.done = True
            return
        if self._record.total is None:
            self._tasks.progress(self.id, fence=fence, total=count(
                self._applier.elastic, self._alias, self._query))
        log.info("mapping job %s %s", self.id,
                 "resumes from its checkpoint" if self._record.checkpoint else "starts")
        self._started = True

    def close(self) -> None:
        if self._scan is not None:
            self._scan.close()

    def step(self) -> BatchOutcome | None:
        if not self.done and not self._started:
            self._begin()
        if self.done:
            return None
        if self._intent is not None:
            refs = [Hit(index, event_id, {}, [], None, None)
                    for index, event_id in self._intent["events"]]
            return self._apply(load_events(self._applier.elastic, refs),
                               self._intent["position"], len(refs))
        if self._scan is None:
            self._scan = Scan(self._applier.elastic, self._alias, query=self._query,
                              sort=JOB_SORT, batch_size=self._settings.mapping.batch_size,
                              after=self._position)
        hits = self._scan.next_batch()
        if not hits:
            self._finish("finished")
            return None
        self._seq += 1
        self._intent = {"batch": f"{self.id}-{self._seq}",
                        "events": [[hit.index, hit.id] for hit in hits],
                        "position": hits[-1].sort}
        if not self._spec.dry_run:
            self._checkpoint(intent=self._intent)
        return self._apply(hits, hits[-1].sort, len(hits))

    def _apply(self, hits: Sequence[Hit], position: list[Any], read: int) -> BatchOutcome:
        assert self._intent is not None
        outcome = self._applier.apply(hits, self._rules, self._intent["batch"],
                                      dry_run=self._spec.dry_run)
        self._samples = (self._samples + outcome.samples)[:10]
        self._position, self._intent = position, None
        self._checkpoint(done=read - outcome.failed, failed=outcome.failed)
        return outcome

    def _checkpoint(self, *, done: int = 0, failed: int = 0,
                    intent: dict[str, Any] | None = None) -> None:
        checkpoint: dict[str, Any] = {"seq": self._seq, "position": self._position,
                                      "intent": intent}
        if self._samples:
            checkpoint["samples"] = self._samples
        if not self._tasks.progress(self.id, done=done, failed=failed, checkpoint=checkpoint,
                                    fence=self._lease.fenced()):
            self.done = True  # the lease was lost: the new runner redoes this batch

    def _finish(self, status: str) -> None:
        end_job(self._tasks, self._lease, self.id, status)
        self.done = True
        log.info("mapping job %s %s", self.id, status)
