"""Long jobs taken from a work queue, each a message that names a task record: the
runner takes one, holds its lease, steps it batch by batch while keeping the message's
claim, and acknowledges it when the job is done. A batch that fails is retried from the
job's checkpoint with backoff; after ``queue.max_attempts`` the task ends ``failed``.
Mapping jobs and segmentation passes are such jobs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from tracardi_daemon.errors import BackendUnavailable, DaemonError
from tracardi_daemon.infra.lease import Lease
from tracardi_daemon.infra.queue import Message, WorkQueue
from tracardi_daemon.infra.queue_base import valid_name
from tracardi_daemon.infra.tasks import TaskRecord, TaskStore
from tracardi_daemon.redact import mask_text

log = logging.getLogger(__name__)

# how often a step renews the job message's claim itself: a batch of a copy job takes
# milliseconds, and a round trip each would cost it a sixth of its time; the role's
# tend() renews the claim meanwhile, and the claim lasts queue.visibility_timeout_s
CLAIM_RENEWAL_S = 0.25

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
                 lease_for: Callable[[str], Lease], consumer: str) -> None:
        self._tasks = tasks
        self._queue = queue
        self._make_job = make_job
        self._lease_for = lease_for  # (task id) -> its lease
        self._consumer = consumer
        self.message: Message | None = None
        self._job: TaskJob[Outcome_co] | None = None
        self._lease: Lease | None = None
        self._claim_renewed_at: float | None = None

    def step(self) -> Outcome_co | None:
        if self._job is None and not self._take():
            return None
        assert self._job is not None and self.message is not None and self._lease is not None
        job, message, lease = self._job, self.message, self._lease
        now = time.monotonic()
        if self._claim_renewed_at is None or now - self._claim_renewed_at >= CLAIM_RENEWAL_S:
            self._queue.extend(self._consumer, [message.id])
            self._claim_renewed_at = now
        if not lease.ensure():
            # another runner holds the job now and goes on from its checkpoint
            log.warning("%s job %s: lease lost; another runner takes it over",
                        self._queue.name, job.id)
            self._drop_job()
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
            self._queue.ack([message.id])
            self._drop_job()
        return outcome

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
        """Keep the claim on the running job's message while a long batch runs (called
        from the supervisor's thread by a role's ``tend``; reading it is atomic)."""
        message = self.message
        if message is not None:
            self._queue.extend(self._consumer, [message.id])

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
