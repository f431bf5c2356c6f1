"""A migration: a plan's steps copied by the daemon itself — point-in-time scan of each
source index, each document through the step's Tracardi 0.7.1 worker, painless script
(interpreted) or declarative transforms (``per_document``), bulk writes under the source
ids — as one queued job with a task record and a checkpoint per batch.

What it guarantees: documents keep their ids, so a batch replayed after a takeover
overwrites and never duplicates; progress is documents done over the whole plan's
count, from the first batch; a target index that Tracardi has not installed, or that
holds documents this plan did not write, stops the run naming it (``targets``); a
document a script or transform cannot handle goes to the ``upgrade`` dead letters with
its step, index, id and reason; aliases move to the new indices only when every step
succeeded (``aliases``); a finished plan is recorded, and running it again does nothing
unless forced.

How a source index is read — in ``id`` order, in slices resumed each from its own
position, several indices at once where the plan's steps are asynchronous — is in
``lanes``. While up to ``upgrade.writes_in_flight`` batches are written, the
next one is read and transformed (``infra.pipeline``); a batch's checkpoint is saved
once its write has returned.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.bulk import BulkAction, BulkWriter, ItemResult
from tracardi_daemon.infra.cpu_pool import CpuPool
from tracardi_daemon.infra.deadletters import add_dead_letter
from tracardi_daemon.infra.elastic import elastic_errors
from tracardi_daemon.infra.lease import Lease
from tracardi_daemon.infra.pipeline import WriteBehind
from tracardi_daemon.infra.queues import UPGRADE_QUEUE
from tracardi_daemon.infra.redis import RedisClient, redis_errors, text
from tracardi_daemon.infra.scan import Hit, count
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.model.tracardi_names import Layout
from tracardi_daemon.roles.jobs import end_job
from tracardi_daemon.roles.upgrade.keys import done_key
from tracardi_daemon.roles.upgrade.migration.aliases import switch_aliases, target_aliases
from tracardi_daemon.roles.upgrade.migration.lanes import Lane, LaneReader, WorkItem
from tracardi_daemon.roles.upgrade.migration.per_document import changed_documents
from tracardi_daemon.roles.upgrade.migration.plan import Plan, Step, resolve_targets
from tracardi_daemon.roles.upgrade.migration.targets import prepare_target, target_refusal
from tracardi_daemon.roles.upgrade.migration.transforms import TransformError

log = logging.getLogger(__name__)

MIGRATION_TASK = "upgrade"  # Tracardi's task type for migrations


@dataclass(frozen=True)
class _Written:
    """A batch whose bulk write has been sent: what to record once it returns."""

    lane: Lane
    size: int  # documents read
    slice: int  # of the by-id scan (0 in the pass over documents without an id)
    position: list[Any] | None  # the slice's position after this batch
    failures: list[tuple[str, str]]  # (document id, reason) found before writing
    results: list[ItemResult]


def plan_key(plan: Plan) -> str:
    """The plan's identity: what "already done" and "written by this plan" refer to."""
    text_form = json.dumps(plan.to_dict(), sort_keys=True)
    return hashlib.sha256(text_form.encode()).hexdigest()[:16]


def resolve_work(elastic: Elasticsearch, plan: Plan, target: Layout) -> list[WorkItem]:
    """Every (step, source index, target index) with the source's document count."""
    items: list[WorkItem] = []
    for step in plan.steps:
        for moded in _modes(step, plan.source):
            pattern = moded.source_pattern(plan.source)
            with elastic_errors(f"list the indices of step {step.id!r}"):
                names = sorted(elastic.indices.get(index=pattern, ignore_unavailable=True,
                                                   allow_no_indices=True,
                                                   features=["settings"]))
            for source, destination in resolve_targets(moded, names, plan.source, target):
                items.append(WorkItem(step.id, source, destination, count(elastic, source)))
    return items


def _modes(step: Step, source: Layout) -> tuple[Step, ...]:
    """The step once per mode it copies: a Tracardi installation keeps staging and
    production (``prod-``) indices side by side, and an upgrade moves both; a step that
    names its mode, or a daemon layout (one mode), copies one."""
    if step.production is not None or source.style != "tracardi":
        return (step,)
    return (replace(step, production=False), replace(step, production=True))


class MigrationJob:
    """One migration plan, batch by batch (a TaskJob for the task runner)."""

    def __init__(self, settings: Settings, tasks: TaskStore, record: TaskRecord, *,
                 lease: Lease, elastic: Elasticsearch, redis: RedisClient,
                 writer: BulkWriter, pool: CpuPool | None = None) -> None:
        self.id = record.id
        self.done = False
        self._settings = settings
        self._tasks = tasks
        self._record = record
        self._lease = lease
        self._elastic = elastic
        self._redis = redis
        self._writer = writer
        self._pool = pool  # None: every batch is transformed in the calling thread
        self._plan = Plan.from_dict(record.params["plan"])
        self._key = str(record.params.get("key") or plan_key(self._plan))
        self._force = bool(record.params.get("force"))
        limit = record.params.get("max_failed_docs")
        self._max_failed = int(limit) if limit is not None else None
        self._target = self._plan.target_layout(settings.tracardi)
        checkpoint = record.checkpoint or {}
        self._work = [WorkItem(*raw) for raw in checkpoint.get("work", [])]
        # the lanes being copied, and the first work item not started
        self._lanes, self._next_item = Lane.from_checkpoint(checkpoint, len(self._work))
        self._turn = 0  # the lane whose batch is read next
        self._failed = int(checkpoint.get("failed", 0))
        self._created: set[str] = set()
        self._reader = LaneReader(elastic, batch_size=settings.upgrade.batch_size,
                                  slices=settings.upgrade.scan_slices, name=f"read-{self.id}")
        # batches N-1 and N are written while batch N+1 is read and transformed
        self._writes: WriteBehind[_Written] = WriteBehind(
            name=f"write-{self.id}", depth=settings.upgrade.writes_in_flight)
        self._started = False

    def close(self) -> None:
        self._writes.close()  # a write in flight is not recorded: a takeover redoes it
        for lane in self._lanes:
            lane.close()

    # ------------------------------------------------------------ begin

    def _begin(self) -> bool:
        fence = self._lease.fenced()
        if not self._tasks.start(self.id, self._lease.owner, fence=fence):
            self.done = True
            return False
        self._started = True
        if self._work:  # taken over: the work was resolved and checked before
            return True
        refusal = self._refusal()
        if refusal is not None:
            self._finish("failed", refusal)
            return False
        total = sum(item.documents for item in self._work)
        self._tasks.progress(self.id, total=total, checkpoint=self._checkpoint_body(),
                             fence=fence)
        log.info("migration %s: %d index(es), %d document(s)", self.id, len(self._work),
                 total)
        return True

    def _refusal(self) -> str | None:
        with redis_errors("read the migration record"):
            done = self._redis.get(done_key(self._settings.tracardi.tenant, self._key))
        if done is not None and not self._force:
            return (f"this plan already ran ({text(done)}); run it again with --force")
        self._work = resolve_work(self._elastic, self._plan, self._target)
        if not self._work:
            return "no source index of the plan exists: nothing to migrate"
        return target_refusal(self._elastic, self._work, self._steps(),
                              source=self._plan.source, target=self._target, key=self._key)

    # ------------------------------------------------------------ steps

    def step(self) -> int | None:
        """One batch; returns the documents it copied (None: no batch ran)."""
        if not self._started and not self._begin():
            return None
        self._admit_lanes()
        if not self._lanes:
            switch_aliases(self._elastic,
                           target_aliases(self._work, self._steps(), self._target))
            self._record_done()
            self._finish("finished")
            return None
        lane = self._next_lane()
        if lane is None:  # every lane waits for its last writes
            return self._collect()
        item = self._work[lane.item]
        self._prepare_target(item.target)
        slice_number, hits, split = self._reader.next_hits(lane, item)
        if split:
            self._save()  # the slices, before anything is written under them
        if not hits:
            lane.close()
            lane.draining = True
            self._end_phase_if_written(lane)
            self._save()
            return 0
        actions, failures = self._transform(item, hits)
        copied = self._collect() if self._writes.full else 0
        if not self.done:
            position = hits[-1].sort if lane.phase == 0 else None
            self._writes.submit(lambda: _Written(lane, len(hits), slice_number, position,
                                                 failures, self._writer.write(actions)))
            lane.in_flight += 1
        return copied

    def _admit_lanes(self) -> None:
        """Start the next work items where the plan allows them to run at once."""
        steps = self._steps()
        limit = self._settings.upgrade.concurrent_indices
        while self._next_item < len(self._work) and len(self._lanes) < limit:
            if self._lanes and not (
                    steps[self._work[self._next_item].step].asynchronous
                    and all(steps[self._work[lane.item].step].asynchronous
                            for lane in self._lanes)):
                return
            self._lanes.append(Lane(self._next_item))
            self._next_item += 1

    def _next_lane(self) -> Lane | None:
        reading = [lane for lane in self._lanes if not lane.draining]
        if not reading:
            return None
        self._turn = (self._turn + 1) % len(reading)
        return reading[self._turn]

    def _end_phase_if_written(self, lane: Lane) -> None:
        """A lane read to the end of its phase moves on once the phase's writes are in;
        after its last phase it leaves."""
        if lane.draining and lane.in_flight == 0 and not lane.next_phase():
            self._lanes.remove(lane)

    def _transform(self, item: WorkItem,
                   hits: list[Hit]) -> tuple[list[BulkAction], list[tuple[str, str]]]:
        actions: list[BulkAction] = []
        failures: list[tuple[str, str]] = []
        documents = changed_documents(self._steps()[item.step], item, hits,
                                      elastic=self._elastic, pool=self._pool)
        for hit, document in zip(hits, documents, strict=True):
            if isinstance(document, TransformError):
                failures.append((hit.id, document.reason))
            elif document is not None:  # None: the script's ctx.op said noop or delete
                actions.append(BulkAction("index", item.target, hit.id, document))
        return actions, failures

    def _collect(self) -> int:
        """Record the batch whose write was in flight: its failed documents in the dead
        letters, then its counts and checkpoint; returns the documents it copied."""
        written = self._writes.collect()
        if written is None:
            return 0
        lane = written.lane
        item = self._work[lane.item]
        failures = written.failures + [(result.action.id, f"not written: {result.error}")
                                       for result in written.results if not result.ok]
        for doc_id, reason in failures:
            add_dead_letter(self._redis, self._settings.tracardi.tenant, UPGRADE_QUEUE,
                            payload={"task": self.id, "step": item.step, "index": item.source,
                                     "target": item.target, "document_id": doc_id},
                            reason=f"step {item.step!r}, {item.source}, document "
                                   f"{doc_id!r}: {reason}", attempts=1)
        copied = written.size - len(failures)
        lane.in_flight -= 1
        if lane.phase == 0:
            lane.positions[written.slice] = written.position
        self._end_phase_if_written(lane)
        self._failed += len(failures)
        self._save(done=copied, failed=len(failures))
        if self._max_failed is not None and self._failed > self._max_failed:
            self._finish("failed", f"step {item.step!r}: {self._failed} documents failed, "
                                   f"more than max_failed_docs ({self._max_failed})")
        return copied

    def _steps(self) -> dict[str, Step]:
        return {step.id: step for step in self._plan.steps}

    def _prepare_target(self, target: str) -> None:
        if target not in self._created:
            prepare_target(self._elastic, target, self._key)
            self._created.add(target)

    # ------------------------------------------------------------ the end

    def _record_done(self) -> None:
        record = json.dumps({"task": self.id, "finished_at": time.time(),
                             "documents": sum(item.documents for item in self._work)})
        with redis_errors("record the finished migration"):
            self._redis.set(done_key(self._settings.tracardi.tenant, self._key), record)

    def _checkpoint_body(self) -> dict[str, Any]:
        return {"work": [item.to_list() for item in self._work],
                "lanes": [lane.to_dict() for lane in self._lanes],
                "next_item": self._next_item, "failed": self._failed}

    def _save(self, *, done: int = 0, failed: int = 0) -> None:
        if not self._tasks.progress(self.id, done=done, failed=failed,
                                    checkpoint=self._checkpoint_body(),
                                    fence=self._lease.fenced()):
            self.done = True  # the lease was lost: the new runner goes on from here

    def _finish(self, status: str, error: str | None = None) -> None:
        end_job(self._tasks, self._lease, self.id, status, error)
        self.done = True
        log.log(logging.WARNING if error else logging.INFO, "migration %s %s%s", self.id,
                status, f": {error}" if error else "")


def migration_params(plan: Plan, *, force: bool = False,
                     max_failed_docs: int | None = None) -> dict[str, Any]:
    if max_failed_docs is not None and max_failed_docs < 0:
        raise InvalidInput("--max-failed-docs must be 0 or more")
    return {"plan": plan.to_dict(), "key": plan_key(plan), "force": force,
            "max_failed_docs": max_failed_docs}
