"""A pass on the Python path evaluated through the process pool changes exactly the
profiles the same pass evaluated in the calling thread changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.roles.mapping.conftest import World
from tracardi_daemon.infra.bulk import BulkWriter
from tracardi_daemon.infra.cpu_pool import CpuPool
from tracardi_daemon.infra.lease import Lease
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import SEGMENTATION_QUEUE
from tracardi_daemon.model.definitions import Segment
from tracardi_daemon.model.naming import alias_name
from tracardi_daemon.model.profiles import ProfileStore
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.segmentation.changes import SegmentChanges
from tracardi_daemon.roles.segmentation.passes import PassJob, pass_spec, submit_pass

PROFILES = 300  # 6 batches of 50
# a field compared with a field: the Elasticsearch compiler refuses it, Python decides
CONDITION = "profile@traits.spent > profile@traits.budget"


def _run_pass(world: World, segment: Segment, pool: CpuPool | None) -> None:
    settings = world.settings
    tasks = TaskStore(world.redis, world.es, settings)
    queue = WorkQueue(world.redis, settings.tracardi.tenant, SEGMENTATION_QUEUE)
    spec = pass_spec(segment, [], now_iso=datetime.now(UTC).isoformat())
    assert spec.path()[0] == "python"
    record = submit_pass(tasks, queue, spec, f"pass of {segment.id}")
    lease = Lease(world.redis, settings.tracardi.tenant, record.id, "runner",
                  settings.segmentation.lease_s)
    assert lease.ensure()
    profiles = ProfileStore(world.es, world.redis, settings, BulkWriter(world.es))
    job = PassJob(settings, tasks, record, lease=lease,
                  changes=SegmentChanges(world.redis, settings, profiles), elastic=world.es,
                  alias=alias_name(settings.tracardi, "profile"),
                  deliveries=WorkQueue(world.redis, settings.tracardi.tenant, "deliveries"),
                  pool=pool)
    try:
        for _ in range(100):
            job.step()
            if job.done:
                break
    finally:
        job.close()
    finished = tasks.get(record.id)
    assert finished is not None and finished.status == "finished", finished
    world.es.indices.refresh(index=alias_name(settings.tracardi, "profile"))


def test_a_python_pass_through_the_pool_equals_the_inline_pass(
        segmentation_world: World) -> None:
    world = segmentation_world
    pooled, inline = world.define(segment=[
        {"id": "pooled", "name": "Pooled", "condition": CONDITION},
        {"id": "inline", "name": "Inline", "condition": CONDITION}])
    assert isinstance(pooled, Segment) and isinstance(inline, Segment)
    # some hold and lack the segment, some have it and no longer hold, some stay
    world.add_profiles([{"id": f"p{n:03d}", "traits": {"spent": n % 7, "budget": n % 5},
                         "segments": ["pooled", "inline"] if n % 4 == 0 else []}
                        for n in range(PROFILES)])
    pool = CpuPool(2, inline_below=1)  # every batch goes to the workers
    try:
        _run_pass(world, pooled, pool)
        assert pool.pids(), "the pass never used the pool's workers"
    finally:
        pool.shutdown()
    _run_pass(world, inline, None)
    added = removed = 0
    for n in range(PROFILES):
        segments: Any = world.profile(f"p{n:03d}").get("segments") or []
        assert ("pooled" in segments) == ("inline" in segments) == (n % 7 > n % 5), n
        added += n % 4 != 0 and "pooled" in segments
        removed += n % 4 == 0 and "pooled" not in segments
    assert added and removed  # the pass both added and removed
