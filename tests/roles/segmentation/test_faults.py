"""Segmentation and triggers in real daemon processes: ``kill -9`` of the daemon running
a pass, another daemon finishing it with every profile right and every workflow started
exactly once per transition (counted at a local HTTP server); and health without a
licence for them."""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from tests.faults.scenarios import private_redis
from tests.fleet import Fleet, running, wait_for
from tests.receivers import ScriptedServer, http_server
from tests.roles.mapping.conftest import World
from tracardi_daemon.infra.deadletters import DeadLetters
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import SEGMENTATION_QUEUE
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import Segment
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.segmentation.passes import pass_spec, submit_pass

pytestmark = [pytest.mark.faults, pytest.mark.e2e]
__all__ = ["http_server"]  # the fixture, used by name

PROFILES = 1500
SETTINGS = """
[queue]
visibility_timeout_s = 1.0
[segmentation]
batch_size = 50
lease_s = 2.0
poll_interval_s = 0.05
intent_stale_s = 2.0
[definitions]
refresh_s = 0.5
"""


@pytest.fixture
def fleet(prefix: str, segmentation_world: World) -> Iterator[Fleet]:
    workdir = Path(tempfile.mkdtemp(prefix="td-segmentation-"))
    started = Fleet(workdir, prefix, ("segmentation", "trigger"), settings=SETTINGS)
    yield started
    started.kill_all()
    shutil.rmtree(workdir, ignore_errors=True)


def _expected(number: int) -> bool:
    return number % 10 >= 4  # orders 4-9 are VIPs


def _setup(world: World, url: str) -> Segment:
    """The VIP segment, two webhook triggers and the profiles; returns the segment."""
    segment = Segment.from_dict({"id": "vip", "name": "VIP",
                                 "condition": "profile@traits.orders > 3"})
    DefinitionStore(world.es, world.settings).upsert_many([segment])
    world.define(workflow_trigger=[
        {"id": "welcome", "name": "Welcome", "type": "segment-add",
         "segment": {"id": "vip", "name": "VIP"}, "workflow": {"id": "wf-1", "name": "W"},
         "target": f"webhook:{url}"},
        {"id": "goodbye", "name": "Goodbye", "type": "segment-remove",
         "segment": {"id": "vip", "name": "VIP"}, "workflow": {"id": "wf-2", "name": "G"},
         "target": f"webhook:{url}"}])
    # a third start in the segment: some stay, some leave, the rest may join
    world.add_profiles([{"id": f"p{number}", "traits": {"orders": number % 10},
                         "segments": ["vip"] if number % 3 == 0 else []}
                        for number in range(PROFILES)])
    return segment


def _check_every_profile_and_start(world: World, server: ScriptedServer) -> None:
    """Every profile's segments right, and one workflow start per transition: one
    idempotency key per (profile, change). A start repeated with the same key (a sender
    that lost its ack in the outage) is the same start to the receiver."""
    index = f"*{world.settings.tracardi.tenant}.tracardi-profile*"
    world.es.indices.refresh(index=index)
    hits = world.es.search(index=index, size=PROFILES + 10, source=["segments"],
                           query={"match_all": {}})["hits"]["hits"]
    assert len(hits) == PROFILES
    for hit in hits:
        number = int(hit["_id"][1:])
        assert ("vip" in (hit["_source"].get("segments") or [])) == _expected(number), number
    expected = {(f"p{n}", "add" if _expected(n) else "remove") for n in range(PROFILES)
                if (n % 3 == 0) != _expected(n)}

    def started() -> dict[tuple[str, str], set[str]]:
        keys: dict[tuple[str, str], set[str]] = {}
        for request in list(server.received):
            body = json.loads(request.body)
            keys.setdefault((body["profile"]["id"], body["change"]["type"]), set()).add(
                request.headers.get("idempotency-key", ""))
        return keys

    # the intents of a batch being written when it broke are settled by the sweep
    wait_for(lambda: len(started()) >= len(expected), 60, "every workflow start")
    time.sleep(1.0)  # anything more would be a second start
    keys = started()
    assert set(keys) == expected
    assert all(len(distinct) == 1 for distinct in keys.values()), \
        [(change, distinct) for change, distinct in keys.items() if len(distinct) > 1]


def test_kill_9_mid_pass_then_the_other_daemon_finishes_and_each_workflow_starts_once(
        fleet: Fleet, segmentation_world: World, http_server: ScriptedServer) -> None:
    world = segmentation_world
    segment = _setup(world, http_server.url)
    tasks = TaskStore(world.redis, world.es, world.settings)
    queue = WorkQueue(world.redis, world.settings.tracardi.tenant, SEGMENTATION_QUEUE)
    record = submit_pass(tasks, queue, pass_spec(
        segment, [segment], now_iso=datetime.now(UTC).isoformat()), "kill -9 test")
    first = fleet.start(["segmentation", "trigger"])
    wait_for(lambda: (current := tasks.get(record.id)) is not None and current.done >= 150,
             60, "the first batches of the pass")
    first.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    first.proc.wait(10)  # type: ignore[union-attr]
    killed_at = tasks.get(record.id)
    assert killed_at is not None and killed_at.status == "running"
    fleet.start(["segmentation", "trigger"])
    wait_for(lambda: (current := tasks.get(record.id)) is not None
             and current.status == "finished", 60, "the other daemon to finish the pass")
    _check_every_profile_and_start(world, http_server)


def test_a_redis_restart_mid_pass_loses_and_repeats_nothing(
        fleet: Fleet, segmentation_world: World, http_server: ScriptedServer) -> None:
    world = segmentation_world
    segment = _setup(world, http_server.url)
    with private_redis() as server:
        client = redis.Redis(port=server.port)
        tasks = TaskStore(client, world.es, world.settings)
        queue = WorkQueue(client, world.settings.tracardi.tenant, SEGMENTATION_QUEUE)
        record = submit_pass(tasks, queue, pass_spec(
            segment, [segment], now_iso=datetime.now(UTC).isoformat()), "restart test")
        daemon = fleet.start(["segmentation", "trigger"], redis_port=server.port)
        wait_for(lambda: (current := tasks.get(record.id)) is not None and current.done >= 150,
                 60, "the first batches of the pass")
        server.stop()
        time.sleep(1.0)
        server.start()
        wait_for(lambda: (current := tasks.get(record.id)) is not None
                 and current.status == "finished", 90, "the pass to finish")
        _check_every_profile_and_start(world, http_server)
        assert daemon.proc is not None and daemon.proc.poll() is None


def test_a_poisoned_profile_changed_message_is_dead_lettered_and_blocks_nothing(
        fleet: Fleet, segmentation_world: World) -> None:
    world = segmentation_world
    world.define(segment=[{"id": "vip", "name": "VIP", "condition": "profile@traits.orders > 3"}])
    world.add_profile("good", traits={"orders": 5})
    tenant = world.settings.tracardi.tenant
    changed = WorkQueue(world.redis, tenant, "profile-changed")
    changed.enqueue_many([{"profile_id": 42}, {"no": "profile"}, {"profile_id": "good"}])
    world.redis.xadd(f"{{{tenant}:q:profile-changed}}", {"payload": "not json", "attempts": "0"})
    fleet.start(["segmentation", "trigger"])
    wait_for(lambda: "vip" in (world.profile("good").get("segments") or []), 30,
             "the good message")
    dead = DeadLetters(world.redis, tenant, "profile-changed")
    wait_for(lambda: dead.count() == 3, 10, "three dead letters")
    reasons = sorted(letter.reason for letter in dead.oldest(10))
    assert sum("profile_id" in reason for reason in reasons) == 2
    assert any("invalid payload" in reason for reason in reasons)


def test_without_a_licence_segmentation_and_trigger_are_reported_unlicensed(
        prefix: str, segmentation_world: World) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="td-segmentation-"))
    fleet = Fleet(workdir, prefix, ("scheduler",), settings=SETTINGS)
    try:
        daemon = fleet.start(["scheduler", "segmentation", "trigger"])
        report = daemon.wait_health(running("scheduler"))
        for role in ("segmentation", "trigger"):
            assert report["roles"][role]["state"] == "unlicensed"
            assert role in report["roles"][role]["detail"]
    finally:
        fleet.kill_all()
        shutil.rmtree(workdir, ignore_errors=True)
