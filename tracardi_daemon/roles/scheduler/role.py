"""The ``scheduler`` role: claims the next horizon of delayed jobs into a timing wheel
and, when each is due, writes it to its stream or hands it off durably to the dispatch
queue (webhook and tracker targets, delivered by the ``dispatch`` role's senders), then
completes or re-arms it. The firing thread never waits on a receiver."""

from __future__ import annotations

from typing import Any

from tracardi_daemon.errors import DaemonError, InvalidInput
from tracardi_daemon.infra.delayed import DelayedStore, Job
from tracardi_daemon.infra.delivery import delivery
from tracardi_daemon.infra.dispatch import parse_target, stream_entry
from tracardi_daemon.infra.dispatch_targets import TargetKind
from tracardi_daemon.infra.queues import DISPATCH_QUEUE, work_queue
from tracardi_daemon.infra.redis import redis_errors
from tracardi_daemon.infra.timerwheel import Timer, TimingWheel
from tracardi_daemon.roles.base import BaseRole, RoleContext

# how often Redis is asked for newly due jobs: bounds the lateness of a job scheduled
# less than a horizon ahead; one cheap script call per interval
CLAIM_POLL_S = 0.05
CLAIM_BATCH = 1000
# a claim must outlast its job's due time by this much, for the time firing takes
FIRING_SLACK_MS = 1000.0


class SchedulerRole(BaseRole):
    """One scheduler thread; several threads or daemons share the jobs through claims."""

    def __init__(self) -> None:
        super().__init__()
        self._held: dict[str, Timer[Job]] = {}
        self._lease_until_ms: dict[str, float] = {}  # our view of each claim's deadline

    def _open(self, ctx: RoleContext) -> None:
        tenant = ctx.settings.tracardi.tenant
        self._store = DelayedStore(ctx.redis, tenant)
        self._deliveries = work_queue(ctx.redis, ctx.settings.tracardi.tenant, DISPATCH_QUEUE,
                                      ctx.settings)
        self._wheel: TimingWheel[Job] = TimingWheel(clock_ms=lambda: ctx.clock() * 1000.0)
        settings = ctx.settings.scheduler
        self._horizon_ms = int(settings.horizon_s * 1000)
        self._lease_ms = int(settings.lease_s * 1000)
        self._claim_every_s = min(settings.horizon_s / 3, CLAIM_POLL_S)
        self._renew_every_s = settings.lease_s / 3
        self._next_claim = self._next_renew = 0.0

    def step(self, now: float) -> bool:
        claimed = 0
        if now >= self._next_claim:
            claimed = self._claim()
            # a full batch means more are due: ask again at once
            self._next_claim = now if claimed >= CLAIM_BATCH else now + self._claim_every_s
        if now >= self._next_renew:
            self._renew()
            self._next_renew = now + self._renew_every_s
        max_wait = max(0.0, min(self._next_claim, self._next_renew) - self.ctx.clock())
        fired = self._wheel.wait_due(self.ctx.stop, max_wait)
        if fired:
            self._fire([timer.item for timer in fired])
        return bool(claimed or fired)

    def _close(self) -> None:
        try:
            released = self._store.release(self._owner, list(self._held))
            if released:
                self.ctx.logger.info("handed %s unfired delayed job(s) back", released)
        except DaemonError as exc:
            # their leases lapse and another daemon takes them over
            self.ctx.logger.warning("could not hand back delayed jobs: %s", exc)
        finally:
            self._held.clear()
            self._lease_until_ms.clear()

    def _claim(self) -> int:
        _, jobs = self._store.claim_due(self._owner, self._horizon_ms, self._lease_ms,
                                        CLAIM_BATCH)
        for job in jobs:
            self._hold(job)
        return len(jobs)

    def _hold(self, job: Job) -> None:
        old = self._held.pop(job.id, None)
        if old is not None:
            self._wheel.cancel(old)
        self._held[job.id] = self._wheel.schedule(job.due_ms, job)
        self._lease_until_ms[job.id] = self.ctx.clock() * 1000.0 + self._lease_ms

    def _renew(self) -> None:
        """Renew only the claims that would lapse before their job fires.

        With the horizon shorter than the lease, a job fired on time never needs one;
        renewing every held id (tens of thousands at high rates) in one script would
        stall this thread and Redis for hundreds of milliseconds."""
        now_ms = self.ctx.clock() * 1000.0
        # a claim that outlives the next renewal round can wait for it
        cutoff_ms = now_ms + 2 * self._renew_every_s * 1000.0
        due = [job_id for job_id, timer in self._held.items()
               if (lease := self._lease_until_ms.get(job_id, 0.0)) < cutoff_ms
               and lease < timer.item.due_ms + FIRING_SLACK_MS]
        if not due:
            return
        renewed = set(self._store.renew(self._owner, due, self._lease_ms))
        for job_id in due:
            if job_id in renewed:
                self._lease_until_ms[job_id] = now_ms + self._lease_ms
            else:
                self._forget(job_id)  # cancelled or taken over

    def _forget(self, job_id: str) -> None:
        timer = self._held.pop(job_id, None)
        if timer is not None:
            self._wheel.cancel(timer)
        self._lease_until_ms.pop(job_id, None)

    def _fire(self, jobs: list[Job]) -> None:
        """Deliver due stream jobs at once (one pipelined round trip) and hand the others
        off durably to the dispatch queue, whose senders deliver them; then complete or
        re-arm them. Nothing here waits on a receiver."""
        for job in jobs:
            self._held.pop(job.id, None)
            self._lease_until_ms.pop(job.id, None)
        live = self._store.owned(self._owner, [job.id for job in jobs])
        jobs = [job for job in jobs if job.id in live]
        written = self._send_streams([job for job in jobs if _stream_name(job)])
        # HTTP targets, and stream jobs whose XADD failed (the senders retry or
        # dead-letter those with the reason)
        handed = [job for job in jobs if job.id not in written]
        if handed:
            self._deliveries.enqueue_many(
                [delivery(job.target, job.idempotency_key, job.payload, origin=job.id)
                 for job in handed])
        now_ms = self.ctx.clock() * 1000.0
        for job in self._store.complete(self._owner, jobs, now_ms,
                                        hold_until_ms=now_ms + self._horizon_ms,
                                        lease_ms=self._lease_ms):
            self._hold(job)  # a recurring job due again within the horizon
        self.ctx.counters.add(processed=len(jobs))

    def _send_streams(self, jobs: list[Job]) -> set[str]:
        """One XADD per job, pipelined; returns the ids of the jobs written."""
        if not jobs:
            return set()
        tenant = self.ctx.settings.tracardi.tenant
        pipe = self.ctx.redis.pipeline(transaction=False)
        for job in jobs:
            key, fields = stream_entry(tenant, _stream_name(job) or "", job.idempotency_key,
                                       job.payload)
            pipe.xadd(key, fields)
        with redis_errors("pipelined dispatch to streams"):
            replies: list[Any] = pipe.execute(raise_on_error=False)
        return {job.id for job, reply in zip(jobs, replies, strict=True)
                if not isinstance(reply, Exception)}


def _stream_name(job: Job) -> str | None:
    try:
        target = parse_target(job.target)
    except InvalidInput:
        return None  # the dispatcher reports it
    return target.address if target.kind is TargetKind.STREAM else None


def scheduler_factory() -> SchedulerRole:
    """The ``scheduler`` role's factory for the registry."""
    return SchedulerRole()
