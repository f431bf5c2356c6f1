"""Elasticsearch faults under real daemon processes, on a private node: a hang longer
than a job's lease in the middle of a batch, health while it hangs, and a kill -9 and
restart of the node under the live mapping tail (its shards recover meanwhile). Every
profile counts its events through ``increment`` and ``append``, so a lost or repeated
event shows in the counters."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from tests.faults.elastic_node import PrivateElastic, private_elastic
from tests.fleet import Fleet, running, wait_for
from tests.roles.mapping.conftest import World, ago
from tracardi_daemon.config.settings import (
    DefinitionsSettings,
    ElasticSettings,
    MappingSettings,
    Settings,
    TracardiSettings,
)
from tracardi_daemon.errors import DaemonError
from tracardi_daemon.health.server import fetch
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import MAPPING_QUEUE
from tracardi_daemon.model.definitions import EventToProfile
from tracardi_daemon.model.indices import install
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.mapping.jobs import JobSpec, submit

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

PROFILES, EVENTS_EACH = 20, 100  # 2,000 events
LEASE_S = 2.0  # as in SETTINGS
HANG_S = 3.5 * LEASE_S  # well past the lease of the job whose batch it holds up
COUNT = {"id": "count", "name": "Count", "event_type": {"id": "page-view"},
         "items": [{"op": "increment", "profile": "stats.views"},
                   {"event": "properties.n", "op": "append", "profile": "traits.seen"}]}
SETTINGS = """
[queue]
visibility_timeout_s = 1.0
[mapping]
live = {live}
live_start = "earliest"
batch_size = 100
lease_s = 2.0
poll_interval_s = 0.1
recheck_every_s = 0.5
[definitions]
refresh_s = 0.5
[elastic]
hosts = ["{elastic}"]
"""


@pytest.fixture(scope="module")
def node() -> Iterator[PrivateElastic]:
    with private_elastic() as started:
        yield started


@pytest.fixture
def world(node: PrivateElastic, redis_client: Redis, prefix: str) -> Iterator[World]:
    settings = Settings(
        tracardi=TracardiSettings(tenant=prefix),
        elastic=ElasticSettings(hosts=(node.url,)),
        mapping=MappingSettings(live=True, live_start="earliest", batch_size=100,
                                lease_s=LEASE_S),
        definitions=DefinitionsSettings(refresh_s=0.5))
    client = node.client()
    install(client, settings)
    yield World(client, redis_client, settings)
    node.resume()
    node.drop(prefix)
    client.close()


@pytest.fixture
def fleet(prefix: str, world: World) -> Iterator[Fleet]:
    workdir = Path(tempfile.mkdtemp(prefix="td-es-faults-"))
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


def test_a_hang_longer_than_the_lease_mid_batch_keeps_the_job_owned_and_exact(
        fleet: Fleet, world: World, node: PrivateElastic) -> None:
    definition = _seed(world)
    tasks = TaskStore(world.redis, None, world.settings)
    queue = WorkQueue(world.redis, world.settings.tracardi.tenant, MAPPING_QUEUE)
    record = submit(tasks, queue, JobSpec((definition,)), "hang test")
    fleet.start(["mapping"], live="false", elastic=node.url)
    wait_for(lambda: _task(tasks, record.id).done >= 200, 60, "the first batches")
    node.pause()
    time.sleep(HANG_S)  # the fault: a node that answers nothing for this long
    held = _task(tasks, record.id)
    node.resume()
    # the lease was kept while the batch waited, so the same daemon still owns the job
    assert held.status == "running" and held.owner is not None
    wait_for(lambda: _task(tasks, record.id).status == "finished", 90, "the job to finish")
    done = _task(tasks, record.id)
    assert (done.done, done.failed) == (PROFILES * EVENTS_EACH, 0)
    assert done.owner == held.owner  # nobody had to take it over
    assert _counted(world) == PROFILES


def test_health_answers_from_the_last_probe_while_elasticsearch_hangs(
        fleet: Fleet, world: World, node: PrivateElastic) -> None:
    daemon = fleet.start(["mapping"], live="true", elastic=node.url)
    daemon.wait_health(running("mapping"), timeout_s=30)
    node.pause()

    def reports_elastic_down() -> bool:
        # a client that waits one second gets an answer, every time
        status, body = fetch(daemon.socket, "/health", timeout_s=1.0)
        return status == 503 and not json.loads(body)["backends"]["elasticsearch"]["up"]

    try:
        wait_for(reports_elastic_down, 20, "health to say elasticsearch is down")
        for _ in range(5):
            status, _body = fetch(daemon.socket, "/health", timeout_s=1.0)
            assert status == 503
    finally:
        node.resume()
    daemon.wait_health(lambda status, _r: status == 200, timeout_s=30)


def test_a_restart_of_elasticsearch_under_the_live_tail_loses_nothing_and_fails_nothing(
        fleet: Fleet, world: World, node: PrivateElastic) -> None:
    _seed(world)
    daemon = fleet.start(["mapping"], live="true", elastic=node.url)
    daemon.wait_health(lambda _s, r: r["roles"].get("mapping", {}).get("processed", 0) >= 200,
                       timeout_s=60)
    node.kill9()
    try:
        wait_for(lambda: _health_or_none(daemon.socket) is not None, 10, "health")
    finally:
        node.start()  # on the same data: every shard recovers before it answers
    wait_for(lambda: _counted(world) == PROFILES, 120, "every event applied")
    report = daemon.wait_health(running("mapping"), timeout_s=60)
    assert report["roles"]["mapping"]["state"] == "running"
    log = daemon.log.read_text(errors="replace")
    assert "not restarting it" not in log
    assert "Traceback" not in log, log[-4000:]
    waits = [line for line in log.splitlines() if "waits for elasticsearch" in line]
    assert 1 <= len(waits) <= 4, waits


def _health_or_none(socket: str) -> int | None:
    try:
        return fetch(socket, "/health", timeout_s=1.0)[0]
    except DaemonError:
        return None
