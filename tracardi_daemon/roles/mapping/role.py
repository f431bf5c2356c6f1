"""The ``mapping`` role: applies event-to-profile and event-type definitions to events
already stored in Elasticsearch — live, by following the event index, and as batch jobs
from the ``mapping`` queue (``tracardi-daemon mapping run``).

Each thread runs jobs; the first thread of each daemon also competes for the live
tail's lease, so one daemon of many follows the index. The pieces: ``mapping_rules``
(which definitions apply and how), ``mapping_batch`` (one batch, exactly once),
``mapping_live`` (the tail) and ``mapping_jobs`` (the jobs).
"""

from __future__ import annotations

from tracardi_daemon.errors import DaemonError
from tracardi_daemon.infra.bulk import BulkWriter
from tracardi_daemon.infra.lease import Lease
from tracardi_daemon.infra.queues import MAPPING_QUEUE, work_queue
from tracardi_daemon.model.definition_store import DefinitionCache, DefinitionStore
from tracardi_daemon.model.definitions import EventToProfile, EventTypeMapping
from tracardi_daemon.model.naming import alias_name
from tracardi_daemon.model.profiles import ProfileStore
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.base import BaseRole, RoleContext
from tracardi_daemon.roles.jobs import TaskJobRunner, orphan_after_s
from tracardi_daemon.roles.mapping.batch import BatchApplier, BatchOutcome
from tracardi_daemon.roles.mapping.jobs import TASK_TYPE as MAPPING_TASK
from tracardi_daemon.roles.mapping.jobs import MappingJob
from tracardi_daemon.roles.mapping.live import LIVE_STREAM, LeaseLost, LiveTail
from tracardi_daemon.roles.mapping.rules import MappingRules

LIVE_LEASE = "mapping-live"


class MappingRole(BaseRole):
    """One mapping thread."""

    def __init__(self) -> None:
        super().__init__()
        self._live: LiveTail | None = None

    def _open(self, ctx: RoleContext) -> None:
        settings = ctx.settings
        self._elastic, self._redis, self._settings = ctx.elastic, ctx.redis, settings
        self._writer = BulkWriter(ctx.elastic, stop=ctx.stop)
        self._profiles = ProfileStore(ctx.elastic, ctx.redis, settings, self._writer)
        store = DefinitionStore(ctx.elastic, settings)
        refresh_s = settings.definitions.refresh_s
        self._mappings = DefinitionCache(store, EventToProfile, refresh_s)
        self._event_types = DefinitionCache(store, EventTypeMapping, refresh_s)
        self._queue = work_queue(ctx.redis, ctx.settings.tracardi.tenant, MAPPING_QUEUE,
                                 ctx.settings)
        tasks = TaskStore(ctx.redis, ctx.elastic, settings)
        event_alias = alias_name(settings.tracardi, "event")
        self._jobs: TaskJobRunner[BatchOutcome] = TaskJobRunner(
            tasks, self._queue, lease_for=self._lease, consumer=self._owner,
            task_types=(MAPPING_TASK,),
            orphan_after_s=orphan_after_s(settings, settings.mapping.lease_s),
            make_job=lambda record, lease: MappingJob(
                settings, tasks, record, lease=lease, applier=self._applier(record.id),
                alias=event_alias, owner=self._owner))
        self._live_lease = self._lease(LIVE_LEASE)
        if settings.mapping.live and ctx.thread_index == 0:
            self._live = LiveTail(ctx.redis, settings, self._applier(LIVE_STREAM),
                                  rules=self._live_rules, lease=self._live_lease,
                                  clock=ctx.clock)

    def _applier(self, stream: str) -> BatchApplier:
        return BatchApplier(self._elastic, self._redis, self._settings, writer=self._writer,
                            profiles=self._profiles, stream=stream)

    @property
    def idle_wait_s(self) -> float:  # type: ignore[override]
        return self.ctx.settings.mapping.poll_interval_s

    def _lease(self, name: str) -> Lease:
        return Lease(self._redis, self._settings.tracardi.tenant, name, self._owner,
                     self._settings.mapping.lease_s)

    def step(self, now: float) -> bool:
        job = self._jobs.step()
        live = self._live_step()
        for outcome in (job, live):
            if outcome is not None:
                self.ctx.counters.add(processed=outcome.applied, failed=outcome.failed)
        return job is not None or live is not None

    def _live_step(self) -> BatchOutcome | None:
        if self._live is None:
            return None
        try:
            outcome = self._live.step()
        except LeaseLost as exc:
            self.ctx.logger.warning("%s", exc)
            return None
        self.ctx.counters.lag_s = self._live.lag_s
        return outcome

    def tend(self) -> None:
        """Keep the claim on the running job's message while a long batch runs."""
        self._jobs.keep_claim()

    def _close(self) -> None:
        try:
            self._jobs.close()
            if self._live is not None:
                self._live.close()
                self._live_lease.release()
        except DaemonError as exc:
            # the leases lapse and the message is taken over after its timeout
            self.ctx.logger.warning("could not hand back mapping work: %s", exc)

    def _rules(self) -> MappingRules:
        return MappingRules(self._mappings.get_all(), self._event_types.get_all())

    def _live_rules(self) -> MappingRules:
        # beside Tracardi its collector mapped the new events at /track already; batch
        # jobs are for events stored before a mapping existed, which it never mapped
        mapped = self._settings.mapping.collector_mapped
        return MappingRules(self._mappings.get_all(), self._event_types.get_all(),
                            beside_collector=(self._settings.tracardi.layout != "daemon"
                                              if mapped is None else mapped))


def mapping_factory() -> MappingRole:
    """The ``mapping`` role's factory for the registry."""
    return MappingRole()
