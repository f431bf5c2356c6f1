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
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fleet import Fleet, running, wait_for
from tests.mapping.conftest import World
from tests.receivers import ScriptedServer, http_server
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.tasks import TaskStore
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import Segment
from tracardi_daemon.roles.segmentation_pass import SEGMENTATION_QUEUE, pass_spec, submit_pass

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


def test_kill_9_mid_pass_then_the_other_daemon_finishes_and_each_workflow_starts_once(
        fleet: Fleet, segmentation_world: World, http_server: ScriptedServer) -> None:
    world = segmentation_world
    segment = Segment.from_dict({"id": "vip", "name": "VIP",
                                 "condition": "profile@traits.orders > 3"})
    DefinitionStore(world.es, world.settings).upsert_many([segment])
    world.define(workflow_trigger=[
        {"id": "welcome", "name": "Welcome", "type": "segment-add",
         "segment": {"id": "vip", "name": "VIP"}, "workflow": {"id": "wf-1", "name": "W"},
         "target": f"webhook:{http_server.url}"},
        {"id": "goodbye", "name": "Goodbye", "type": "segment-remove",
         "segment": {"id": "vip", "name": "VIP"}, "workflow": {"id": "wf-2", "name": "G"},
         "target": f"webhook:{http_server.url}"}])
    for number in range(PROFILES):
        # a third start in the segment: some stay, some leave, the rest may join
        world.add_profile(f"p{number}", traits={"orders": number % 10},
                          segments=["vip"] if number % 3 == 0 else [])
    world.es.indices.refresh(index=f"*{world.settings.tracardi.tenant}.tracardi-profile*")
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
    for number in range(PROFILES):
        segments = world.profile(f"p{number}").get("segments") or []
        assert ("vip" in segments) == _expected(number), number
    expected: Counter[tuple[str, str]] = Counter()
    for number in range(PROFILES):
        had = number % 3 == 0
        if had != _expected(number):
            expected[(f"p{number}", "add" if _expected(number) else "remove")] += 1

    def started() -> Counter[tuple[str, str]]:
        bodies = [json.loads(r.body) for r in list(http_server.received)]
        return Counter((b["profile"]["id"], b["change"]["type"]) for b in bodies)

    # the intents of the batch the first daemon was writing are settled by the sweep
    wait_for(lambda: sum(started().values()) >= sum(expected.values()), 60,
          "every workflow start")
    time.sleep(1.0)  # anything more would be a repeat
    assert started() == expected


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
