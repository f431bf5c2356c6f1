"""The mapping role in real daemon processes: ``kill -9`` in the middle of a batch job and
of the live tail, a Redis restart mid-job, and a daemon without a licence for it. Every
profile counts its events through ``increment`` and ``append``, so a lost or repeated
event shows in the counters."""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.faults.scenarios import private_redis
from tests.fleet import Fleet, running, wait_for
from tests.roles.mapping.conftest import World, ago
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import MAPPING_QUEUE
from tracardi_daemon.model.definitions import EventToProfile
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.mapping.jobs import JobSpec, submit

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

PROFILES, EVENTS_EACH = 30, 120  # 3,600 events
COUNT = {"id": "count", "name": "Count", "event_type": {"id": "page-view"},
         "items": [{"op": "increment", "profile": "stats.views"},
                   {"event": "properties.n", "op": "append", "profile": "traits.seen"}]}
SETTINGS = """
[queue]
visibility_timeout_s = 1.0
[mapping]
live = {live}
live_start = "earliest"
batch_size = 150
lease_s = 2.0
poll_interval_s = 0.1
recheck_every_s = 0.5
[definitions]
refresh_s = 0.5
"""


@pytest.fixture
def fleet(prefix: str, world: World) -> Iterator[Fleet]:
    workdir = Path(tempfile.mkdtemp(prefix="td-mapping-"))
    started = Fleet(workdir, prefix, ("mapping",), settings=SETTINGS)
    yield started
    started.kill_all()
    shutil.rmtree(workdir, ignore_errors=True)


def _seed(world: World) -> EventToProfile:
    world.add_profiles([{"id": f"p{number}"} for number in range(PROFILES)])
    world.add_events([{"type": "page-view", "profile": f"p{n % PROFILES}",
                       "insert": ago(3600 - n * 0.5), "properties": {"n": n}}
                      for n in range(PROFILES * EVENTS_EACH)])
    [definition] = world.define(event_to_profile=[COUNT])
    assert isinstance(definition, EventToProfile)
    return definition


def _counted(world: World) -> int:
    """Profiles whose counters are complete; fails on any over-count."""
    complete = 0
    for number in range(PROFILES):
        profile = world.profile(f"p{number}")
        views = profile.get("stats", {}).get("views", 0)
        seen = profile.get("traits", {}).get("seen", [])
        assert views <= EVENTS_EACH and len(seen) == len(set(seen)) == views, profile
        complete += views == EVENTS_EACH
    return complete


def _task(tasks: TaskStore, task_id: str) -> TaskRecord:
    record = tasks.get(task_id)
    assert record is not None
    return record


def test_kill_9_in_the_middle_of_a_job_then_another_daemon_finishes_it_exactly(
        fleet: Fleet, world: World) -> None:
    definition = _seed(world)
    tasks = TaskStore(world.redis, world.es, world.settings)
    queue = WorkQueue(world.redis, world.settings.tracardi.tenant, MAPPING_QUEUE)
    record = submit(tasks, queue, JobSpec((definition,)), "kill -9 test")
    first = fleet.start(["mapping"], live="false")
    wait_for(lambda: _task(tasks, record.id).done >= 300, 60, "the first batches")
    first.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    first.proc.wait(10)  # type: ignore[union-attr]
    killed_at = _task(tasks, record.id)
    assert killed_at.status == "running" and killed_at.done < PROFILES * EVENTS_EACH
    fleet.start(["mapping"], live="false")
    wait_for(lambda: _task(tasks, record.id).status == "finished", 60, "the takeover")
    done = _task(tasks, record.id)
    assert (done.done, done.failed) == (PROFILES * EVENTS_EACH, 0)
    assert _counted(world) == PROFILES


def test_kill_9_of_the_live_tail_leader_then_another_daemon_goes_on_exactly(
        fleet: Fleet, world: World) -> None:
    _seed(world)
    first = fleet.start(["mapping"], live="true")
    first.wait_health(lambda _s, r: r["roles"].get("mapping", {}).get("processed", 0) >= 300,
                      timeout_s=60)
    first.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    first.proc.wait(10)  # type: ignore[union-attr]
    assert _counted(world) < PROFILES
    second = fleet.start(["mapping"], live="true")
    wait_for(lambda: _counted(world) == PROFILES, 60, "every event applied")
    time.sleep(1.5)  # a few more look-backs: nothing may be applied twice
    assert _counted(world) == PROFILES
    report = second.wait_health(running("mapping"))
    assert report["roles"]["mapping"]["lag_s"] is not None


def test_a_redis_restart_in_the_middle_of_a_job_loses_and_repeats_nothing(
        fleet: Fleet, world: World) -> None:
    definition = _seed(world)
    with private_redis() as server:
        client = redis.Redis(port=server.port)
        tasks = TaskStore(client, world.es, world.settings)
        queue = WorkQueue(client, world.settings.tracardi.tenant, MAPPING_QUEUE)
        record = submit(tasks, queue, JobSpec((definition,)), "redis restart test")
        daemon = fleet.start(["mapping"], live="false", redis_port=server.port)
        wait_for(lambda: _task(tasks, record.id).done >= 300, 60, "the first batches")
        server.stop()
        time.sleep(1.0)
        server.start()
        wait_for(lambda: _task(tasks, record.id).status == "finished", 90, "the job to finish")
        done = _task(tasks, record.id)
        assert (done.done, done.failed) == (PROFILES * EVENTS_EACH, 0)
        assert _counted(world) == PROFILES
        assert daemon.proc is not None and daemon.proc.poll() is None


def test_without_a_licence_for_mapping_health_says_so(prefix: str, world: World) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="td-mapping-"))
    fleet = Fleet(workdir, prefix, ("scheduler",), settings=SETTINGS)
    try:
        daemon = fleet.start(["scheduler", "mapping"], live="true")
        report = daemon.wait_health(running("scheduler"))
        assert report["roles"]["mapping"]["state"] == "unlicensed"
        assert "mapping" in report["roles"]["mapping"]["detail"]
    finally:
        fleet.kill_all()
        shutil.rmtree(workdir, ignore_errors=True)
