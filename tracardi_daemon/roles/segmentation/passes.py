"""A full segmentation pass over the profile index: for one segment, the profiles that
match and lack it get it, those that have it and no longer match lose it.

Two paths. **Elasticsearch**: the condition is compiled by ``tql`` (or is a Lucene
query), and two scans find exactly the profiles to change — match and lack the segment,
have it and no longer match — reading nothing but their ``segments``; each is written
with the sequence number the scan saw, so a profile changed meanwhile is reloaded and
decided again in Python. **Python**: a condition the compiler refuses (a field compared
with a field) is evaluated over a scan of every profile. Either way a pass is a task
with a checkpoint per batch: taken over after ``kill -9`` it resumes where it was, and
re-deciding a profile it already wrote changes nothing. A batch's end and size are
recorded before its first write, so the runner that redoes it counts it once, at that
size, although the add and remove queries no longer find the profiles already changed.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Literal

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.cpu_pool import CpuPool
from tracardi_daemon.infra.delivery import delivery
from tracardi_daemon.infra.lease import Lease
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.scan import Hit, Scan, count
from tracardi_daemon.model.definitions import LiveSegment, Segment, machine_name
from tracardi_daemon.model.indices import Location
from tracardi_daemon.model.mapping_definitions import condition_schema
from tracardi_daemon.model.profiles import LoadedProfile
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.jobs import end_job, queue_task
from tracardi_daemon.roles.segmentation.changes import (
    ChangeOutcome,
    Decision,
    SegmentChanges,
    SegmentRef,
)
from tracardi_daemon.roles.segmentation.fit import answers, field_types
from tracardi_daemon.roles.segmentation.predicates import matches, pass_predicate
from tracardi_daemon.tql import Condition, TqlError

log = logging.getLogger(__name__)

TASK_TYPE = "segmentation-pass"
PASS_SORT = ({"id": "asc"},)
# what the query path reads of a profile: its segments, and its age for the record
PASS_SOURCE = ("segments", "metadata.time.insert")
# a workflow start is not repeated for a week: far longer than any pass takes
ONCE_TTL_S = 7 * 86400.0


@dataclass(frozen=True)
class PassPath:
    """How a pass runs: by a query (only the profiles to change are read) or by the
    condition evaluated in Python over every profile; ``query`` is None on that path."""

    name: Literal["elasticsearch", "python"]
    why: str
    query: dict[str, Any] | None = None


@dataclass(frozen=True)
class PassSpec:
    """What one pass does; stored in its task record."""

    definition: str  # "segment:<id>" or "live-segment:<id>"
    segment: str  # machine name
    segment_id: str | None
    condition: str | None  # TQL
    query: str | dict[str, Any] | None  # Lucene text or a query object
    operation: str  # add | remove | sync
    clock_at: str  # ISO time every now() of the pass reads
    dry_run: bool = False
    # a workflow live segment: the workflow each candidate profile is dispatched to
    workflow: dict[str, str] | None = None
    target: str | None = None  # dispatch target, "kind:address"
    source_id: str | None = None  # a tracker target's Tracardi event source
    # the condition is evaluated in Python: the profile index's mapping cannot answer
    # its compiled query (see segment_fit)
    python: bool = False

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> PassSpec:
        values: dict[str, Any] = {key: params.get(key) for key in cls.__dataclass_fields__}
        return cls(**{**values, "python": bool(values["python"])})

    def clock(self) -> datetime:
        return datetime.fromisoformat(self.clock_at)

    @functools.cached_property
    def route(self) -> PassPath:
        """The one place that decides how the pass runs, once per spec: the condition is
        parsed and compiled here and the query kept (``replace`` makes a new spec, which
        decides again)."""
        if self.query is not None:
            query = ({"query_string": {"query": self.query}} if isinstance(self.query, str)
                     else dict(self.query))
            return PassPath("elasticsearch", "a Lucene query, run as it is", query)
        if self.condition is None:  # a workflow for every profile
            return PassPath("elasticsearch", "every profile is a candidate", {"match_all": {}})
        if self.python:
            return PassPath("python", "the profile index's mapping cannot answer the compiled "
                            "query (a range over a flattened field, a term on analysed text): "
                            "every profile is scanned and the condition evaluated in Python")
        try:
            query = Condition(self.condition, condition_schema()).to_elastic(
                clock=self.clock, source="profile")
        except TqlError as exc:
            return PassPath("python", f"the Elasticsearch compiler refuses it ({exc}): every "
                            "profile is scanned and the condition evaluated in Python")
        return PassPath("elasticsearch", "compiled to a query: only profiles to change are "
                        "read", query)

    def path(self) -> tuple[str, str]:
        """("elasticsearch" | "python", why) — what ``segmentation plan`` shows."""
        return self.route.name, self.route.why

    def phases(self) -> list[str]:
        if self.workflow is not None:
            return ["workflow"]
        if self.route.name == "python":
            return ["python"]
        return {"add": ["add"], "remove": ["remove"], "sync": ["add", "remove"]}[
            self.operation]

    def phase_query(self, phase: str) -> dict[str, Any]:
        has = {"term": {"segments": self.segment}}
        compiled = self.route.query
        if compiled is None:
            return {"match_all": {}}  # every profile, the condition checked in Python
        if phase == "workflow":
            return compiled
        if phase == "add":
            return {"bool": {"filter": [compiled], "must_not": [has]}}
        return {"bool": {"filter": [has], "must_not": [compiled]}}


def workflow_payload(spec: PassSpec, profile_id: str, pass_id: str) -> dict[str, Any]:
    """What a workflow live segment sends for one profile: a Tracardi /track body with
    one ``live-segment`` event for a tracker, else a JSON description."""
    live = {"id": spec.definition.partition(":")[2]}
    if spec.target is not None and spec.target.startswith("tracker:"):
        return {"source": {"id": spec.source_id}, "profile": {"id": profile_id},
                "events": [{"type": "live-segment", "properties": {
                    "live_segment": live, "workflow": spec.workflow,
                    "pass": {"id": pass_id, "at": spec.clock_at}}}]}
    return {"live_segment": live, "workflow": spec.workflow, "profile": {"id": profile_id},
            "pass": {"id": pass_id, "at": spec.clock_at}}


def scheduled_passes(segments: Sequence[Segment],
                     live_segments: Sequence[LiveSegment]) -> dict[str, Segment | LiveSegment]:
    """The definitions that get passes on a schedule, by key: every enabled live segment,
    and every enabled segment whose condition reads the clock."""
    found: dict[str, Segment | LiveSegment] = {
        f"segment:{s.id}": s for s in segments if s.enabled and s.uses_clock}
    found.update({f"live-segment:{live.id}": live for live in live_segments
                  if live.enabled})
    return found


def pass_spec(definition: Segment | LiveSegment, segments: Sequence[Segment], *,
              now_iso: str, dry_run: bool = False) -> PassSpec:
    """The pass of a segment (added and removed by its condition) or of a condition or
    query live segment (its operation, on the segment it names)."""
    if isinstance(definition, Segment):
        return PassSpec(f"segment:{definition.id}", definition.machine_name, definition.id,
                        definition.condition, None, "sync", now_iso, dry_run)
    if definition.type == "workflow":
        assert definition.workflow is not None and definition.target is not None
        return PassSpec(f"live-segment:{definition.id}", "", None, definition.condition,
                        None, "add", now_iso, dry_run,
                        workflow={"id": definition.workflow.id,
                                  "name": definition.workflow.name},
                        target=definition.target.dispatch_target(),
                        source_id=definition.target.source_id)
    assert definition.segment is not None
    named = {s.id: s for s in segments}.get(definition.segment.id)
    name = named.machine_name if named else machine_name(definition.segment.name)
    return PassSpec(f"live-segment:{definition.id}", name, definition.segment.id,
                    definition.condition if definition.type == "condition" else None,
                    definition.query if definition.type == "query" else None,
                    definition.operation, now_iso, dry_run)


def submit_pass(tasks: TaskStore, queue: WorkQueue, spec: PassSpec, name: str) -> TaskRecord:
    if spec.condition is None and spec.query is None and spec.workflow is None:
        raise InvalidInput(f"{spec.definition}: a pass needs a condition or a query")
    return queue_task(tasks, queue, TASK_TYPE, name, asdict(spec))


def _fitted(spec: PassSpec, checkpoint: Mapping[str, Any], elastic: Any,
            alias: str) -> PassSpec:
    """``spec`` on the Python path if the profile index cannot answer its compiled query;
    a pass already under way keeps the path it started on."""
    if "python" in checkpoint:
        return replace(spec, python=bool(checkpoint["python"]))
    return fitted_spec(spec, elastic, alias)


def fitted_spec(spec: PassSpec, elastic: Any, alias: str) -> PassSpec:
    """``spec`` on the path a new pass takes over the profile index ``alias`` as it is
    mapped now: what ``segmentation plan`` and ``status`` report."""
    compiled = spec.route.query if spec.query is None else None
    if compiled is None or answers(compiled, field_types(elastic, alias)):
        return spec
    log.info("segmentation pass of %s: %s's mapping cannot answer its query; the "
             "condition is evaluated in Python", spec.definition, alias)
    return replace(spec, python=True)


class PassJob:
    """One pass, batch by batch (a TaskJob for the task runner).

    The constructor reads the profile index's mapping (``_fitted``) to choose the path
    of a new pass, and decides it there once; on the Python path each batch's condition
    is evaluated through ``pool`` (inline without one, or for a small batch)."""

    def __init__(self, settings: Settings, tasks: TaskStore, record: TaskRecord, *,
                 lease: Lease, changes: SegmentChanges, elastic: Any, alias: str,
                 deliveries: WorkQueue, pool: CpuPool | None = None) -> None:
        self.id = record.id
        self.done = False
        self._settings = settings
        self._tasks = tasks
        self._record = record
        self._lease = lease
        self._changes = changes
        self._elastic = elastic
        self._alias = alias
        self._deliveries = deliveries
        self._pool = pool
        checkpoint = record.checkpoint or {}
        self._spec = _fitted(PassSpec.from_params(record.params), checkpoint, elastic, alias)
        self._phase = int(checkpoint.get("phase", 0))
        self._position: list[Any] | None = checkpoint.get("position")
        # a batch recorded but not checkpointed: {"to": its last sort values, "count"}
        self._intent: dict[str, Any] | None = checkpoint.get("intent")
        self._samples: list[dict[str, Any]] = list(checkpoint.get("samples", []))
        self._scan: Scan | None = None
        self._started = False
        self._phases = self._spec.phases()
        self._python = self._spec.route.name == "python"
        self._predicate: Callable[[Mapping[str, Any]], bool] | None = None
        if self._spec.condition is not None:
            self._predicate = pass_predicate(self._spec.condition, self._spec.clock_at)

    def close(self) -> None:
        if self._scan is not None:
            self._scan.close()
            self._scan = None

    def step(self) -> ChangeOutcome | None:
        if not self._started and not self._begin():
            return None
        if self._phase >= len(self._phases):
            self._finish("finished")
            return None
        phase = self._phases[self._phase]
        if self._intent is not None:
            return self._redo(phase, self._intent)
        if self._scan is None:
            self._scan = self._open_scan(phase, self._spec.phase_query(phase),
                                         self._settings.segmentation.batch_size)
        hits = self._scan.next_batch()
        if not hits:
            self.close()
            self._phase, self._position = self._phase + 1, None
            self._checkpoint()
            return ChangeOutcome()
        if not self._spec.dry_run:
            # the batch's end and size go into the checkpoint before its first write
            self._intent = {"to": hits[-1].sort, "count": len(hits)}
            if not self._checkpoint():
                return None
        return self._batch(phase, hits, hits[-1].sort, len(hits))

    def _open_scan(self, phase: str, query: dict[str, Any], batch_size: int) -> Scan:
        return Scan(self._elastic, self._alias, query=query, sort=PASS_SORT,
                    batch_size=batch_size, after=self._position, seq_no_primary_term=True,
                    source=True if self._python else list(PASS_SOURCE))

    def _redo(self, phase: str, intent: Mapping[str, Any]) -> ChangeOutcome:
        """The batch a runner recorded and may have written, but did not checkpoint: the
        profiles of its range still to change are changed, and the batch is counted at
        the size it had. Counting what the scan finds now would miss every profile the
        stopped runner wrote: the add and remove queries no longer find those."""
        count, to = int(intent["count"]), list(intent["to"])
        query = {"bool": {"filter": [self._spec.phase_query(phase),
                                     {"range": {"id": {"lte": to[0]}}}]}}
        scan = self._open_scan(phase, query, max(1, count))
        try:
            hits = scan.next_batch()
        finally:
            scan.close()
        log.info("segmentation pass %s: redoing a batch of %d profile(s) left by a stopped "
                 "runner (%d still to change)", self.id, count, len(hits))
        return self._batch(phase, hits, to, count)

    def _batch(self, phase: str, hits: list[Hit], to: list[Any], count: int) -> ChangeOutcome:
        """Change (or dispatch) one batch, then checkpoint past it with its count."""
        if not hits:
            outcome = ChangeOutcome()
        elif phase == "workflow":
            outcome = self._dispatch(hits)
        else:
            outcome = self._apply(phase, hits)
        self._position, self._intent = to, None
        self._samples = (self._samples + outcome.samples)[:10]
        self._checkpoint(done=count - len(outcome.failed), failed=len(outcome.failed),
                         error=outcome.failed[0][1] if outcome.failed else None)
        return outcome

    def _begin(self) -> bool:
        fence = self._lease.fenced()
        if not self._tasks.start(self.id, self._lease.owner, fence=fence):
            self.done = True
            return False
        if self._record.total is None:
            total = sum(count(self._elastic, self._alias, self._spec.phase_query(phase))
                        for phase in self._phases)
            self._tasks.progress(self.id, total=total, fence=fence)
        self._started = True
        return True

    def _apply(self, phase: str, hits: list[Hit]) -> ChangeOutcome:
        spec = self._spec
        ref = SegmentRef(spec.segment, spec.segment_id)
        scanned = {hit.id: LoadedProfile(hit.id, Location(hit.index, hit.seq_no or 0,
                                                           hit.primary_term or 0), hit.source)
                   for hit in hits}
        verdicts = {hit.id: holds
                    for hit, holds in zip(hits, self._evaluate(hits), strict=True)}

        def decide(loaded: LoadedProfile) -> Decision:
            has = spec.segment in (loaded.source.get("segments") or [])
            if loaded is scanned.get(loaded.id):
                # the scan's verdict: the query's, or the batch's evaluation in Python
                holds = verdicts[loaded.id] if self._python else phase == "add"
            elif self._predicate is not None:  # reloaded after a conflict: decided again
                holds = self._predicate({"profile": loaded.source})
            else:
                holds = phase == "add"  # a Lucene query: its verdict stands
            if holds and spec.operation in ("add", "sync"):
                return Decision(keep=(ref,)) if has else Decision(add=(ref,))
            if not holds and spec.operation in ("remove", "sync"):
                return Decision(remove=(ref,)) if has else Decision(absent=(ref,))
            return Decision()

        return self._changes.apply(list(scanned), decide, f"pass {spec.definition}",
                                   preloaded=scanned, dry_run=spec.dry_run)

    def _dispatch(self, hits: list[Hit]) -> ChangeOutcome:
        """A workflow live segment: each candidate profile's workflow start, once per
        (live segment, profile, pass) — a batch repeated after a takeover adds none."""
        spec = self._spec
        assert spec.workflow is not None and spec.target is not None
        chosen = [hit for hit, holds in zip(hits, self._evaluate(hits), strict=True) if holds]
        items = []
        for hit in chosen:
            key = hashlib.sha256(f"{spec.definition}|{hit.id}|{self.id}".encode()).hexdigest()
            payload = workflow_payload(spec, hit.id, self.id)
            items.append((delivery(spec.target, key, payload, origin=spec.definition), key))
        added = [] if spec.dry_run or not items else self._deliveries.enqueue_once_many(
            items, ONCE_TTL_S)
        return ChangeOutcome(profiles=len(hits), written=sum(added))

    def _evaluate(self, hits: list[Hit]) -> list[bool]:
        """The condition over a batch on the Python path, through the pool where the
        batch pays for it; every hit holds on the query path (the query chose them)."""
        if not self._python:
            return [True] * len(hits)
        assert self._spec.condition is not None  # the Python path evaluates a condition
        key = (self._spec.condition, self._spec.clock_at)
        sources = [hit.source for hit in hits]
        if self._pool is None:
            return matches(key, sources)
        return self._pool.map_chunks(matches, key, sources)

    def _checkpoint(self, *, done: int = 0, failed: int = 0,
                    error: str | None = None) -> bool:
        """The position, the batch under way (if any) and the counts of the batch just
        done, in one fenced write: a batch is counted by the write that moves past it."""
        # the path chosen stays with the pass: a runner taking it over reads the same phases
        checkpoint: dict[str, Any] = {"phase": self._phase, "position": self._position,
                                      "python": self._spec.python, "intent": self._intent}
        if self._samples:
            checkpoint["samples"] = self._samples
        if not self._tasks.progress(self.id, done=done, failed=failed, checkpoint=checkpoint,
                                    last_error=error, fence=self._lease.fenced()):
            self.done = True  # the lease was lost: the new runner goes on from here
            return False
        return True

    def _finish(self, status: str) -> None:
        end_job(self._tasks, self._lease, self.id, status)
        self.done = True
        log.info("segmentation pass %s (%s) %s", self.id, self._spec.definition, status)

