"""The ``segmentation`` role: keeps every profile's ``segments`` true — segments added
and removed — as profiles change and as time passes.

Each thread does three things per step: one batch of a queued pass (``segmentation``
queue, run by the shared task runner), one batch of ``profile-changed`` messages
(re-evaluating the changed profiles' segments in Python), and, on the one daemon that
holds the ``segmentation-schedule`` lease, queueing the passes the schedules say are due
(every enabled condition/query live segment on its own schedule, every segment whose
condition reads the clock every ``segmentation.time_pass_every_s``), settling the
segment-change intents of writers that died and, once, seeding the membership record
from the profiles' segments (``members``). Transitions go to ``segment-changes``.
In a Tracardi layout the first thread of the daemon that holds the ``segmentation-follow``
lease also follows the profiles Tracardi changes (``segmentation_follow``) onto
``profile-changed``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import schedule

from tracardi_daemon.errors import DaemonError
from tracardi_daemon.infra.bulk import BulkWriter
from tracardi_daemon.infra.lease import Lease
from tracardi_daemon.infra.queue import Message
from tracardi_daemon.infra.queues import (
    DISPATCH_QUEUE,
    PROFILE_CHANGED_QUEUE,
    SEGMENTATION_QUEUE,
    work_queue,
)
from tracardi_daemon.model.definition_store import DefinitionCache, DefinitionStore
from tracardi_daemon.model.definitions import LiveSegment, Segment
from tracardi_daemon.model.naming import alias_name
from tracardi_daemon.model.profiles import ProfileStore
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.base import BaseRole, RoleContext
from tracardi_daemon.roles.jobs import TaskJobRunner, orphan_after_s
from tracardi_daemon.roles.segmentation.changes import ChangeOutcome, SegmentChanges
from tracardi_daemon.roles.segmentation.follow import FollowLeaseLost, ProfileFollower
from tracardi_daemon.roles.segmentation.keys import PassMarkers
from tracardi_daemon.roles.segmentation.passes import (
    TASK_TYPE as PASS_TASK,
)
from tracardi_daemon.roles.segmentation.passes import (
    PassJob,
    pass_spec,
    scheduled_passes,
    submit_pass,
)
from tracardi_daemon.roles.segmentation.rules import SegmentRules

SCHEDULE_LEASE = "segmentation-schedule"
FOLLOW_LEASE = "segmentation-follow"
SWEEP_EVERY_S = 10.0


class SegmentationRole(BaseRole):
    """One segmentation thread."""

    def __init__(self) -> None:
        super().__init__()
        self._follower: ProfileFollower | None = None

    def _open(self, ctx: RoleContext) -> None:
        settings = ctx.settings
        self._redis, self._settings = ctx.redis, settings
        profiles = ProfileStore(ctx.elastic, ctx.redis, settings,
                                BulkWriter(ctx.elastic, stop=ctx.stop))
        self._changes = SegmentChanges(ctx.redis, settings, profiles, clock=ctx.clock)
        store = DefinitionStore(ctx.elastic, settings)
        refresh_s = settings.definitions.refresh_s
        self._segments = DefinitionCache(store, Segment, refresh_s)
        self._live_segments = DefinitionCache(store, LiveSegment, refresh_s)
        self._changed = work_queue(ctx.redis, ctx.settings.tracardi.tenant, PROFILE_CHANGED_QUEUE,
                                   ctx.settings)
        self._pass_queue = work_queue(ctx.redis, ctx.settings.tracardi.tenant, SEGMENTATION_QUEUE,
                                      ctx.settings)
        self._tasks = TaskStore(ctx.redis, ctx.elastic, settings)
        self._markers = PassMarkers(ctx.redis, settings.tracardi.tenant)
        profile_alias = self._profile_alias = alias_name(settings.tracardi, "profile")
        deliveries = work_queue(ctx.redis, ctx.settings.tracardi.tenant, DISPATCH_QUEUE,
                                ctx.settings)
        self._passes: TaskJobRunner[ChangeOutcome] = TaskJobRunner(
            self._tasks, self._pass_queue, lease_for=self._lease,
            consumer=self._owner, task_types=(PASS_TASK,),
            orphan_after_s=orphan_after_s(settings, settings.segmentation.lease_s),
            make_job=lambda record, lease: PassJob(
                settings, self._tasks, record, lease=lease, changes=self._changes,
                elastic=ctx.elastic, alias=profile_alias, deliveries=deliveries,
                pool=ctx.pool))
        self._schedule_lease = self._lease(SCHEDULE_LEASE) if ctx.thread_index == 0 else None
        self._scheduler: schedule.Scheduler | None = None
        self._scheduled_for: tuple[tuple[Segment, ...], tuple[LiveSegment, ...]] | None = None
        self._next_sweep = 0.0
        if (settings.segmentation.follow_tracardi and ctx.thread_index == 0
                and settings.tracardi.layout != "daemon"):
            self._follower = ProfileFollower(ctx.redis, ctx.elastic, settings,
                                             lease=self._lease(FOLLOW_LEASE), clock=ctx.clock)

    @property
    def idle_wait_s(self) -> float:  # type: ignore[override]
        return self._settings.segmentation.poll_interval_s

    def _now(self) -> datetime:
        """The role's clock as the conditions' ``now()``."""
        return datetime.fromtimestamp(self.ctx.clock(), UTC)

    def _lease(self, name: str) -> Lease:
        return Lease(self._redis, self._settings.tracardi.tenant, name, self._owner,
                     self._settings.segmentation.lease_s)

    def step(self, now: float) -> bool:
        did = False
        outcome = self._passes.step()
        if outcome is not None:
            self.ctx.counters.add(processed=outcome.written, failed=len(outcome.failed))
            did = True
        did = self._follow() or did
        did = self._incremental() or did
        if self._schedule_lease is not None and self._schedule_lease.ensure():
            self._run_schedule(now)
        return did

    def tend(self) -> None:
        """Keep the claim on the running job's message while a long batch runs."""
        self._passes.keep_claim()

    def _close(self) -> None:
        try:
            self._passes.close()
            if self._schedule_lease is not None:
                self._schedule_lease.release()
            if self._follower is not None:
                self._follower.close()
                self._follower.release()
        except DaemonError as exc:
            self.ctx.logger.warning("could not hand back segmentation work: %s", exc)

    # ------------------------------------------------------------ incremental

    def _follow(self) -> bool:
        if self._follower is None:
            return False
        try:
            return self._follower.step() is not None
        except FollowLeaseLost as exc:
            self.ctx.logger.warning("%s", exc)
            return False

    def _incremental(self) -> bool:
        messages = self._changed.consume(self._owner,
                                         count=self._settings.segmentation.batch_size)
        if not messages:
            return False
        causes: dict[str, set[str] | None] = {}  # event types; None: unknown, all
        by_profile: dict[str, list[Message]] = {}
        for message in messages:
            profile_id = message.payload.get("profile_id")
            if not isinstance(profile_id, str) or not profile_id:
                self._changed.dead_letter(message, "field 'profile_id' must be a "
                                                   "non-empty string")
                continue
            by_profile.setdefault(profile_id, []).append(message)
            types = message.payload.get("event_types")
            known = causes.setdefault(profile_id, set())
            if known is None:
                continue  # already every segment
            if isinstance(types, list) and types:
                causes[profile_id] = known | {str(t) for t in types}
            else:
                causes[profile_id] = None
        rules = SegmentRules(self._segments.get_all(), clock=self._now)
        outcome = self._changes.apply(
            list(by_profile), lambda loaded: rules.decide(loaded.source, causes[loaded.id]),
            cause="profile-changed")
        failed = {profile_id for profile_id, _ in outcome.failed}
        for profile_id, reason in outcome.failed:
            for message in by_profile[profile_id]:
                self._changed.retry(message, reason)
        self._changed.ack([m.id for pid, group in by_profile.items() if pid not in failed
                           for m in group])
        self.ctx.counters.add(processed=len(by_profile) - len(failed), failed=len(failed))
        return True

    # ------------------------------------------------------------ schedule

    def _run_schedule(self, now: float) -> None:
        segments, live = self._segments.get_all(), self._live_segments.get_all()
        signature = (tuple(segments), tuple(live))
        if self._scheduler is None or signature != self._scheduled_for:
            self._scheduler = schedule.Scheduler()
            every = self._settings.segmentation.time_pass_every_s
            for key, definition in scheduled_passes(segments, live).items():
                run = self._pass_runner(key)
                if isinstance(definition, LiveSegment):
                    definition.schedule_job(self._scheduler, run)
                else:
                    self._scheduler.every(max(1, round(every))).seconds.do(run)
            self._scheduled_for = signature
        self._scheduler.run_pending()
        if not self._changes.members.seeded:  # a batch a step, until every profile was read
            self._changes.members.seed_step(self.ctx.elastic, self._profile_alias)
        if now >= self._next_sweep:
            self._changes.sweep()
            self._next_sweep = now + SWEEP_EVERY_S

    def _pass_runner(self, key: str) -> Callable[[], None]:
        def run() -> None:
            self.queue_pass(key)
        return run

    def queue_pass(self, key: str) -> str | None:
        """Queue a pass of the definition ``key`` ("segment:<id>"/"live-segment:<id>")
        unless one is still waiting or running; returns the task id queued."""
        segments = self._segments.get_all()
        definition = scheduled_passes(segments, self._live_segments.get_all()).get(key)
        if definition is None:
            return None
        last = self._markers.last(key)
        if last is not None and (self._markers.is_claim(last) or not self._finished(last)):
            return None
        claim = self._markers.claim(key, last)
        if claim is None:
            return None  # another request moved the marker since we read it
        task_id: str | None = None
        try:
            spec = pass_spec(definition, segments, now_iso=_iso(self.ctx.clock()))
            task_id = submit_pass(self._tasks, self._pass_queue, spec,
                                  f"Segmentation pass {key}").id
        finally:
            self._markers.settle(key, claim, task_id)
        return task_id

    def _finished(self, task_id: str) -> bool:
        previous = self._tasks.get(task_id)
        return previous is None or previous.terminal


def _iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).isoformat()


def segmentation_factory() -> SegmentationRole:
    """The ``segmentation`` role's factory for the registry."""
    return SegmentationRole()
