"""Long jobs taken from a work queue, each a message that names a task record: the
runner takes one, holds its lease, steps it batch by batch while keeping the message's
claim, and acknowledges it when the job's task has ended. A batch that fails is retried
from the job's checkpoint with backoff; after ``queue.max_attempts`` the task ends
``failed``. Mapping jobs, segmentation passes, migrations and imports are such jobs.

A job is never left owned by no one. The role's ``tend`` (the supervisor's thread)
renews the job's lease and the message's claim while a batch runs, however long it
takes; a job that stopped without ending its task (its lease was lost anyway: a pause
longer than the lease, Redis away) hands its message back, so that a runner resumes it
from its checkpoint; and an idle runner adopts running tasks that no lease holds and no
one has touched for a while (left by an earlier version, or by a fault not foreseen)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import BackendUnavailable, DaemonError
from tracardi_daemon.infra.lease import Lease
from tracardi_daemon.infra.queue import Message, WorkQueue
from tracardi_daemon.infra.redis import valid_name
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.redact import mask_text

log = logging.getLogger(__name__)

# how often a step renews the job message's claim itself: a batch of a copy job takes
# milliseconds, and a round trip each would cost it a sixth of its time; the role's
# tend() renews the claim meanwhile, and the claim lasts queue.visibility_timeout_s
CLAIM_RENEWAL_S = 0.25
# how often an idle runner looks for running tasks that no one holds
ORPHAN_SWEEP_S = 30.0

Outcome_co = TypeVar("Outcome_co", covariant=True)  # what a batch reports


class TaskJob(Protocol[Outcome_co]):
    """One job being run: ``step`` does one batch and returns what it did (None: no
    batch); ``done`` once it finished, was cancelled or lost its lease."""

    @property
    def id(self) -> str: ...

    @property
    def done(self) -> bool: ...

    def step(self) -> Outcome_co | None: ...

    def close(self) -> None: ...


def queue_task(tasks: TaskStore, queue: WorkQueue, task_type: str, name: str,
               params: Mapping[str, Any]) -> TaskRecord:
    """A new job: its task record, and the message naming it that a runner takes."""
    record = tasks.create(task_type, name, params)
    queue.enqueue({"task_id": record.id})
    return record


def orphan_after_s(settings: Settings, lease_s: float) -> float:
    """How long a running task may go unleased and unwritten before it is adopted:
    longer than its message can wait for a retry, and than a few lease periods."""
    return settings.queue.retry_backoff_max_s + 3 * lease_s


def end_job(tasks: TaskStore, lease: Lease, task_id: str, status: str,
            error: str | None = None) -> None:
    """End a job's task (through its lease's fence) and let the lease go."""
    tasks.finish(task_id, status, error=error, fence=lease.fenced())
    lease.release()


class TaskJobRunner(Generic[Outcome_co]):
    """Runs one job at a time for one role thread: before each batch it renews the
    job's lease (a lost one drops the job) and honours a cancel request."""

    def __init__(self, tasks: TaskStore, queue: WorkQueue, *,
                 make_job: Callable[[TaskRecord, Lease], TaskJob[Outcome_co]],
                 lease_for: Callable[[str], Lease], consumer: str,
                 task_types: tuple[str, ...] = (), orphan_after_s: float = 600.0,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._tasks = tasks
        self._queue = queue
        self._make_job = make_job
        self._lease_for = lease_for  # (task id) -> its lease
        self._consumer = consumer
        # the types of the tasks whose messages this queue carries, and how long a
        # running one may go untouched and unleased before it is adopted: longer than
        # a message can wait for its retry, so that no retried job is adopted twice
        self._task_types = task_types
        self._orphan_after_s = orphan_after_s
        # wall time for the records' ages; a monotonic one paces the claim's renewal,
        # which a step of the wall clock must neither stall nor hurry
        self._clock, self._monotonic = clock, monotonic
        self._swept_at: float | None = None
        self.message: Message | None = None
        self._job: TaskJob[Outcome_co] | None = None
        self._lease: Lease | None = None
        self._claim_renewed_at: float | None = None

    def step(self) -> Outcome_co | None:
        if self._job is None and not self._take():
            self._sweep_if_due()
            return None
        assert self._job is not None and self.message is not None and self._lease is not None
        job, message, lease = self._job, self.message, self._lease
        now = self._monotonic()
        if self._claim_renewed_at is None or now - self._claim_renewed_at >= CLAIM_RENEWAL_S:
            self._queue.extend(self._consumer, [message.id])
            self._claim_renewed_at = now
        if not lease.ensure():
            self._hand_back(job, message, "its lease was lost")
            return None
        if self._tasks.cancel_requested(job.id):
            end_job(self._tasks, lease, job.id, "cancelled")
            log.info("%s job %s cancelled", self._queue.name, job.id)
            self._queue.ack([message.id])
            self._drop_job()
            return None
        try:
            outcome = job.step()
        except BackendUnavailable:
            raise  # the supervisor waits for the backend; the job resumes after it
        except DaemonError as exc:
            self._failed_batch(job, message, exc)
            return None
        if job.done:
            self._settle(job, message)
        return outcome

    def _settle(self, job: TaskJob[Outcome_co], message: Message) -> None:
        """A job that says it is done: acknowledged if its task has ended, else (its
        lease went while it ran, so its last write was refused) handed back."""
        record = self._tasks.get(job.id)
        if record is None or record.terminal:
            self._queue.ack([message.id])
            self._drop_job()
        else:
            self._hand_back(job, message, "it stopped before its task ended")

    def _hand_back(self, job: TaskJob[Outcome_co], message: Message, why: str) -> None:
        """Give the message back at once, without counting an attempt: whoever holds
        the job's lease next (another runner, or this one) resumes from the checkpoint;
        a runner that finds the lease held defers the message until it can lapse."""
        log.warning("%s job %s: %s; handing it back to be resumed from its checkpoint",
                    self._queue.name, job.id, why)
        self._drop_job()
        self._queue.release(message)

    def _failed_batch(self, job: TaskJob[Outcome_co], message: Message, exc: DaemonError) -> None:
        """A batch that failed (a query Elasticsearch refuses, a definition gone bad) is
        retried with backoff from its checkpoint; after queue.max_attempts the task ends
        ``failed`` with the error."""
        error = mask_text(str(exc))
        log.warning("%s job %s: batch failed (attempt %d of %d): %s", self._queue.name, job.id,
                    message.attempt, self._queue.max_attempts, error)
        if message.attempt >= self._queue.max_attempts:
            self._tasks.finish(job.id, "failed", error=error)
            self._queue.ack([message.id])
        else:
            self._tasks.progress(job.id, last_error=error)
            self._queue.retry(message, error)
        self._drop_job()

    def keep_claim(self) -> None:
        """Keep the running job's lease and the claim on its message while a long batch
        runs (called from the supervisor's thread by a role's ``tend``; reading the two
        attributes is atomic)."""
        message, lease = self.message, self._lease
        if message is not None:
            self._queue.extend(self._consumer, [message.id])
        if lease is not None:
            lease.keep()

    def _sweep_if_due(self) -> None:
        now = self._clock()
        if not self._task_types or (self._swept_at is not None
                                    and now - self._swept_at < ORPHAN_SWEEP_S):
            return
        self._swept_at = now
        self.adopt_orphans(now)

    def adopt_orphans(self, now: float) -> list[str]:
        """Queue a message for every running task of ours that no lease holds and that
        was not written for ``orphan_after_s``; returns their ids. A task that has a
        message still (waiting for its retry) gets a second one only past that time,
        and the lease keeps the two from running it at once."""
        adopted, ended = [], []
        for task_id in self._tasks.active_ids():
            record = self._tasks.get(task_id)
            if record is None or record.terminal:
                ended.append(task_id)
                continue
            if (record.type not in self._task_types or record.status != "running"
                    or now - (record.updated_at or 0.0) < self._orphan_after_s
                    or self._lease_for(task_id).holder() is not None):
                continue
            if self._queue.enqueue_once({"task_id": task_id}, f"adopt:{task_id}",
                                        ttl_s=self._orphan_after_s):
                log.warning("%s job %s: running, but no one has held it for %.0f s "
                            "(last owner %s); queued to be resumed from its checkpoint",
                            self._queue.name, task_id, now - (record.updated_at or 0.0),
                            record.owner or "unknown")
                adopted.append(task_id)
        self._tasks.forget_active(ended)
        return adopted

    def _drop_job(self) -> None:
        if self._job is not None:
            self._job.close()
        self._job, self.message, self._lease = None, None, None
        self._claim_renewed_at = None

    def close(self) -> None:
        message = self.message
        self._drop_job()
        if message is not None:
            self._queue.release(message)

    def _take(self) -> bool:
        messages = self._queue.consume(self._consumer, count=1)
        if not messages:
            return False
        message = messages[0]
        task_id = message.payload.get("task_id")
        if not isinstance(task_id, str) or not valid_name(task_id):
            # not a job any producer of ours writes: kept aside, never retried
            self._queue.dead_letter(message, f"'task_id' must name a task, got {task_id!r}")
            return False
        record = self._tasks.get(task_id)
        if record is None or record.terminal:
            self._queue.ack([message.id])  # cancelled, finished, or expired meanwhile
            return False
        lease = self._lease_for(task_id)
        if not lease.ensure():
            # its previous runner may still live; look again once its lease can lapse
            self._queue.defer(message, lease.ttl_s / 2)
            return False
        self.message, self._lease = message, lease
        self._job = self._make_job(record, lease)
        return True
