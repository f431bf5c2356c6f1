"""The ``upgrade`` role (open source, no licence): runs the jobs on the ``upgrade``
queue — migrations between index versions (``tracardi-daemon migrate run``) and imports
(``tracardi-daemon import run``) — one batch per step, through the shared task runner,
so a job of a daemon that died is taken over and resumed from its checkpoint."""

from __future__ import annotations

from tracardi_daemon.errors import DaemonError
from tracardi_daemon.infra.bulk import BulkWriter
from tracardi_daemon.infra.lease import Lease
from tracardi_daemon.infra.queues import UPGRADE_QUEUE, work_queue
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.base import BaseRole, RoleContext
from tracardi_daemon.roles.jobs import TaskJob, TaskJobRunner, orphan_after_s
from tracardi_daemon.roles.upgrade.imports.job import IMPORT_TASK, ImportJob
from tracardi_daemon.roles.upgrade.migration.job import MIGRATION_TASK, MigrationJob


class _UnknownJob:
    """A job of a type this version does not run: it ends ``failed`` at once."""

    def __init__(self, tasks: TaskStore, record: TaskRecord, lease: Lease) -> None:
        self.id, self.done = record.id, False
        self._tasks, self._record, self._lease = tasks, record, lease

    def step(self) -> int | None:
        self._tasks.finish(self.id, "failed", fence=self._lease.fenced(),
                           error=f"this version of tracardi-daemon does not run "
                                 f"{self._record.type!r} jobs")
        self.done = True
        return None

    def close(self) -> None:
        pass


class UpgradeRole(BaseRole):
    """One upgrade thread."""

    def _open(self, ctx: RoleContext) -> None:
        settings = ctx.settings
        self._queue = work_queue(ctx.redis, ctx.settings.tracardi.tenant, UPGRADE_QUEUE,
                                 ctx.settings)
        tasks = TaskStore(ctx.redis, ctx.elastic, settings)
        writer = BulkWriter(ctx.elastic, stop=ctx.stop)

        def lease_for(task_id: str) -> Lease:
            return Lease(ctx.redis, settings.tracardi.tenant, f"upgrade-job:{task_id}",
                         self._owner, settings.upgrade.lease_s)

        def make_job(record: TaskRecord, lease: Lease) -> TaskJob[int]:
            if record.type == MIGRATION_TASK:
                return MigrationJob(settings, tasks, record, lease=lease,
                                    elastic=ctx.elastic, redis=ctx.redis, writer=writer,
                                    pool=ctx.pool)
            if record.type == IMPORT_TASK:
                return ImportJob(settings, tasks, record, lease=lease, elastic=ctx.elastic,
                                 redis=ctx.redis, writer=writer)
            return _UnknownJob(tasks, record, lease)

        self._jobs: TaskJobRunner[int] = TaskJobRunner(
            tasks, self._queue, make_job=make_job, lease_for=lease_for,
            consumer=self._owner, task_types=(MIGRATION_TASK, IMPORT_TASK),
            orphan_after_s=orphan_after_s(settings, settings.upgrade.lease_s))

    @property
    def idle_wait_s(self) -> float:  # type: ignore[override]
        return self.ctx.settings.upgrade.poll_interval_s

    def step(self, now: float) -> bool:
        copied = self._jobs.step()
        if copied is None:
            return False
        self.ctx.counters.add(processed=copied)
        return True

    def tend(self) -> None:
        """Keep the claim on the running job's message while a long batch runs."""
        self._jobs.keep_claim()

    def _close(self) -> None:
        try:
            self._jobs.close()
        except DaemonError as exc:
            self.ctx.logger.warning("could not hand back the upgrade job: %s", exc)


def upgrade_factory() -> UpgradeRole:
    """The ``upgrade`` role's factory for the registry."""
    return UpgradeRole()
