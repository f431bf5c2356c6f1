"""A segmentation pass taken over again and again, each runner stopping after it wrote a
batch's profiles and before it checkpointed that batch: every profile ends right and the
task's counters are exact (``done == total``), the redone batches counted once."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.roles.mapping.conftest import World
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.infra.bulk import BulkWriter
from tracardi_daemon.infra.lease import Lease
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import SEGMENTATION_QUEUE
from tracardi_daemon.model.definitions import Segment
from tracardi_daemon.model.naming import alias_name
from tracardi_daemon.model.profiles import LoadedProfile, ProfileStore
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.segmentation.changes import ChangeOutcome, Decision, SegmentChanges
from tracardi_daemon.roles.segmentation.passes import PassJob, pass_spec, submit_pass

PROFILES = 600  # 240 to add (5 batches of 50), 80 to remove (2 batches)
VIP = {"id": "vip", "name": "VIP", "condition": "profile@traits.orders > 3"}


class _Killed(Exception):
    """The runner stops here: its profiles are written, its checkpoint is not."""


class _DyingChanges(SegmentChanges):
    """Writes a batch, then dies on the ``die_at``-th batch this runner writes."""

    def __init__(self, world: World, die_at: int | None) -> None:
        profiles = ProfileStore(world.es, world.redis, world.settings, BulkWriter(world.es))
        super().__init__(world.redis, world.settings, profiles)
        self._die_at = die_at
        self.batches = 0

    def apply(self, ids: Iterable[str], decide: Callable[[LoadedProfile], Decision],
              cause: str, *, preloaded: Mapping[str, LoadedProfile] | None = None,
              dry_run: bool = False, sample_size: int = 10) -> ChangeOutcome:
        outcome = super().apply(ids, decide, cause, preloaded=preloaded, dry_run=dry_run,
                                sample_size=sample_size)
        self.batches += 1
        if self.batches == self._die_at:
            raise _Killed(f"runner stopped after writing its batch {self.batches}")
        return outcome


def _runner(world: World, tasks: TaskStore, task_id: str, number: int,
            die_at: int | None) -> None:
    """One runner taking the pass over from its task record, as a fresh daemon does,
    and stepping it until it finishes or dies."""
    settings: Settings = world.settings
    record = tasks.get(task_id)
    assert record is not None and not record.terminal
    lease = Lease(world.redis, settings.tracardi.tenant, task_id, f"runner-{number}",
                  settings.segmentation.lease_s)
    assert lease.ensure()
    job = PassJob(settings, tasks, record, lease=lease,
                  changes=_DyingChanges(world, die_at), elastic=world.es,
                  alias=alias_name(settings.tracardi, "profile"),
                  deliveries=WorkQueue(world.redis, settings.tracardi.tenant, "deliveries"))
    try:
        for _ in range(100):
            if not lease.ensure():
                raise AssertionError(f"runner {number} lost its lease")
            job.step()
            if job.done:
                assert die_at is None, f"runner {number} finished before its batch {die_at}"
                return
        raise AssertionError(f"runner {number} did not finish in 100 steps")
    except _Killed:
        # dead: its lease lapses (deleted here rather than waited for), and by the time
        # another daemon takes over, what it wrote is visible to searches
        world.redis.delete(lease.key)
        world.es.indices.refresh(index=alias_name(settings.tracardi, "profile"))
        return
    finally:
        job.close()


@pytest.mark.parametrize("deaths", [
    (1, 2, 3, 1),  # every runner but the last dies, at several points of the pass
    (5, 1, 1),  # the last batch of the add phase, then each batch of the remove phase
])
def test_a_pass_taken_over_after_each_write_counts_every_profile_once(
        segmentation_world: World, deaths: tuple[int, ...]) -> None:
    world = segmentation_world
    [segment] = world.define(segment=[VIP])
    assert isinstance(segment, Segment)
    world.add_profiles([{"id": f"p{number:03d}", "traits": {"orders": number % 10},
                         "segments": ["vip"] if number % 3 == 0 else []}
                        for number in range(PROFILES)])
    tasks = TaskStore(world.redis, world.es, world.settings)
    queue = WorkQueue(world.redis, world.settings.tracardi.tenant, SEGMENTATION_QUEUE)
    spec = pass_spec(segment, [], now_iso=datetime.now(UTC).isoformat())
    record = submit_pass(tasks, queue, spec, "takeover test")
    for number, die_at in enumerate((*deaths, None)):
        _runner(world, tasks, record.id, number, die_at)
    done: TaskRecord | None = tasks.get(record.id)
    assert done is not None and done.status == "finished"
    expected_total = sum(1 for n in range(PROFILES) if (n % 10 > 3) != (n % 3 == 0))
    assert (done.total, done.done, done.failed) == (expected_total, expected_total, 0)
    for number in range(PROFILES):
        segments: Any = world.profile(f"p{number:03d}").get("segments") or []
        assert ("vip" in segments) == (number % 10 > 3), number
