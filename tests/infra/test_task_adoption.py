"""Adoption of orphaned jobs on the real Redis: a running task that no lease holds and
that nothing wrote for ``orphan_after_s`` gets one new message, so that some runner
resumes it from its checkpoint; a task still held, recent, of another type or ended is
left alone (an ended one leaves the set of active tasks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from redis import Redis

from tracardi_daemon.config.settings import Settings, TracardiSettings
from tracardi_daemon.infra.lease import Lease
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.jobs import CLAIM_RENEWAL_S, TaskJob, TaskJobRunner

ORPHAN_AFTER_S = 60.0
START = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class World:
    def __init__(self, redis_client: Redis, tenant: str) -> None:
        self.redis, self.tenant, self.clock = redis_client, tenant, Clock()
        settings = Settings(tracardi=TracardiSettings(tenant=tenant))
        self.tasks = TaskStore(redis_client, None, settings, clock=self.clock)
        self.queue = WorkQueue(redis_client, tenant, "adoption-test")
        self.runner: TaskJobRunner[Any] = TaskJobRunner(
            self.tasks, self.queue, make_job=self._no_job, lease_for=self.lease,
            consumer="adopter", task_types=("copy",), orphan_after_s=ORPHAN_AFTER_S,
            clock=self.clock)

    def lease(self, task_id: str, owner: str = "adopter") -> Lease:
        return Lease(self.redis, self.tenant, f"test-job:{task_id}", owner, 30.0)

    def running(self, task_type: str = "copy", owner: str = "gone-daemon") -> str:
        record = self.tasks.create(task_type, "a long job", {})
        assert self.tasks.start(record.id, owner)
        return record.id

    def messages(self) -> list[dict[str, Any]]:
        return [message.payload for message in self.queue.consume("reader", count=100)]

    @staticmethod
    def _no_job(*_: Any) -> TaskJob[Any]:
        raise AssertionError("adoption only queues a message; it runs no job")


@pytest.fixture
def world(redis_client: Redis, prefix: str) -> World:
    return World(redis_client, prefix)


def test_an_unheld_silent_running_task_gets_one_message(world: World) -> None:
    task_id = world.running()
    assert world.runner.adopt_orphans(START + ORPHAN_AFTER_S - 1) == []  # not yet
    assert world.runner.adopt_orphans(START + ORPHAN_AFTER_S + 1) == [task_id]
    # a second sweep (this daemon's or another's) adds nothing while the first waits
    assert world.runner.adopt_orphans(START + ORPHAN_AFTER_S + 2) == []
    assert world.messages() == [{"task_id": task_id}]


def test_a_task_whose_lease_is_held_is_not_adopted(world: World) -> None:
    task_id = world.running()
    holder = world.lease(task_id, owner="busy-daemon")
    assert holder.acquire()
    assert world.runner.adopt_orphans(START + 10 * ORPHAN_AFTER_S) == []
    holder.release()
    assert world.runner.adopt_orphans(START + 10 * ORPHAN_AFTER_S) == [task_id]


def test_a_task_written_recently_is_not_adopted(world: World) -> None:
    task_id = world.running()
    world.clock.now = START + ORPHAN_AFTER_S  # its owner reports progress: a write
    assert world.tasks.progress(task_id, done=1)
    assert world.runner.adopt_orphans(START + ORPHAN_AFTER_S + 1) == []
    assert world.runner.adopt_orphans(START + 2 * ORPHAN_AFTER_S + 1) == [task_id]


def test_other_types_pending_and_ended_tasks_are_left_alone(world: World) -> None:
    other = world.running(task_type="segmentation-pass")
    pending = world.tasks.create("copy", "not started", {}).id
    ended = world.running()
    assert world.tasks.finish(ended, "finished")
    later = START + 10 * ORPHAN_AFTER_S
    assert world.runner.adopt_orphans(later) == []
    assert world.messages() == []
    assert set(world.tasks.active_ids()) == {other, pending}


class _Endless:
    """A job that always has one more batch."""

    def __init__(self, record: Any, lease: Lease) -> None:
        self.id, self.done = record.id, False

    def step(self) -> int:
        return 1

    def close(self) -> None:
        pass


class _CountingQueue(WorkQueue):
    """The real queue, counting the claim renewals the runner asks for."""

    renewals = 0

    def extend(self, consumer: str, ids: Sequence[str]) -> list[str]:
        self.renewals += 1
        return super().extend(consumer, ids)


def test_the_runner_renews_a_claim_by_its_injected_monotonic_clock(
        redis_client: Redis, prefix: str) -> None:
    world = World(redis_client, prefix)
    ticks = Clock()
    queue = _CountingQueue(redis_client, prefix, "renewal-test")
    runner: TaskJobRunner[int] = TaskJobRunner(
        world.tasks, queue, make_job=_Endless, lease_for=world.lease, consumer="adopter",
        clock=world.clock, monotonic=ticks)
    record = world.tasks.create("copy", "a long job", {})
    queue.enqueue({"task_id": record.id})
    assert runner.step() == 1 and queue.renewals == 1  # the claim, renewed on taking it
    assert runner.step() == 1 and queue.renewals == 1  # no time passed
    ticks.now += CLAIM_RENEWAL_S
    assert runner.step() == 1 and queue.renewals == 2
    runner.close()
