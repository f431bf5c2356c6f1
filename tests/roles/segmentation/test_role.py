"""The segmentation role against the real Elasticsearch and Redis: segments added and
removed from profile-changed messages and by passes (both query paths), transitions
announced once, a time-relative segment fixed by a pass, leases, and a writer that
dies between its write and its announcement."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import RoleStarter
from tests.receivers import ScriptedServer, http_server
from tests.roles.mapping.conftest import World, ago
from tests.roles.segmentation.conftest import changes, step_until_idle
from tracardi_daemon.infra.bulk import BulkWriter
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import SEGMENTATION_QUEUE
from tracardi_daemon.model.profiles import LoadedProfile, ProfileStore, cache_key
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.dispatch.role import DispatchRole
from tracardi_daemon.roles.segmentation.changes import Decision, SegmentChanges, SegmentRef
from tracardi_daemon.roles.segmentation.client import profile_changed
from tracardi_daemon.roles.segmentation.passes import PassSpec, pass_spec, submit_pass
from tracardi_daemon.roles.segmentation.role import SegmentationRole

__all__ = ["http_server"]  # the fixture, used by name

VIP = {"id": "vip", "name": "VIP", "condition": "profile@traits.orders > 3"}


def _segments(world: World, profile_id: str) -> list[str]:
    return list(world.profile(profile_id).get("segments") or [])


def _pass(world: World, definition: Any, *, at: datetime | None = None,
          dry_run: bool = False) -> TaskRecord:
    tasks = TaskStore(world.redis, world.es, world.settings)
    queue = WorkQueue(world.redis, world.settings.tracardi.tenant, SEGMENTATION_QUEUE)
    spec = pass_spec(definition, [], now_iso=(at or datetime.now(UTC)).isoformat(),
                     dry_run=dry_run)
    return submit_pass(tasks, queue, spec, "test pass")


def _task(world: World, task_id: str) -> TaskRecord:
    record = TaskStore(world.redis, world.es, world.settings).get(task_id)
    assert record is not None
    return record


def test_profile_changes_add_and_remove_owned_segments_and_announce_each_once(
        segmentation_world: World, start_role: RoleStarter) -> None:
    world = segmentation_world
    world.define(segment=[VIP])
    world.add_profile("p1", traits={"orders": 5})
    world.add_profile("p2", traits={"orders": 1}, segments=["vip", "from-a-workflow"])
    world.add_profile("p3", traits={"orders": 9}, segments=["vip"])
    key = cache_key(world.settings.tracardi.tenant, False, "p1")
    world.redis.set(key, b"stale")
    profile_changed(world.redis, world.settings.tracardi.tenant, ["p1", "p2", "p3", "p1"])
    role, ctx = start_role(SegmentationRole, world.settings)
    step_until_idle(role, ctx)
    assert _segments(world, "p1") == ["vip"]
    assert _segments(world, "p2") == ["from-a-workflow"]  # not ours: left alone
    assert _segments(world, "p3") == ["vip"]
    assert "segmentation" in world.profile("p1")["metadata"]["time"]
    assert world.redis.exists(key) == 0
    announced = sorted((m.payload["profile_id"], m.payload["segment"], m.payload["change"])
                       for m in changes(world))
    assert announced == [("p1", "vip", "add"), ("p2", "vip", "remove")]
    # evaluated again with nothing changed: no second announcement
    profile_changed(world.redis, world.settings.tracardi.tenant, ["p1", "p2", "p3"])
    step_until_idle(role, ctx)
    assert changes(world) == []


def test_a_segment_with_event_types_is_evaluated_only_for_them(
        segmentation_world: World, start_role: RoleStarter) -> None:
    world = segmentation_world
    world.define(segment=[{**VIP, "eventType": ["purchase"]}])
    world.add_profile("p1", traits={"orders": 5})
    tenant = world.settings.tracardi.tenant
    profile_changed(world.redis, tenant, ["p1"], event_types=["page-view"])
    role, ctx = start_role(SegmentationRole, world.settings)
    step_until_idle(role, ctx)
    assert _segments(world, "p1") == []
    profile_changed(world.redis, tenant, ["p1"], event_types=["purchase", "page-view"])
    step_until_idle(role, ctx)
    assert _segments(world, "p1") == ["vip"]


@pytest.mark.parametrize("condition", [
    "profile@traits.orders > 3",  # compiled: two queries find the profiles to change
    "profile@traits.orders > profile@traits.returns",  # refused by ES: Python over a scan
])
def test_a_pass_adds_and_removes_on_either_path(
        segmentation_world: World, start_role: RoleStarter, condition: str) -> None:
    world = segmentation_world
    [segment] = world.define(segment=[{**VIP, "condition": condition}])
    for number in range(120):  # batches of 50
        orders = number % 10
        world.add_profile(f"p{number}", traits={"orders": orders, "returns": 3},
                          segments=["vip"] if number % 3 == 0 else [])
    record = _pass(world, segment)
    role, ctx = start_role(SegmentationRole, world.settings)
    step_until_idle(role, ctx)
    for number in range(120):
        assert ("vip" in _segments(world, f"p{number}")) == (number % 10 > 3), number
    done = _task(world, record.id)
    assert done.status == "finished" and done.failed == 0
    announced = changes(world)
    expected = sum(1 for n in range(120) if (n % 10 > 3) != (n % 3 == 0))
    assert len(announced) == expected
    assert len({m.payload["id"] for m in announced}) == expected


def test_time_alone_moves_a_profile_out_and_a_pass_fixes_it(
        segmentation_world: World, start_role: RoleStarter) -> None:
    world = segmentation_world
    [segment] = world.define(segment=[{
        "id": "new", "name": "New customers",
        "condition": 'profile@metadata.time.insert > now.offset("-7d")'}])
    world.add_profile("fresh", when=datetime.now(UTC) - timedelta(days=3))
    role, ctx = start_role(SegmentationRole, world.settings)
    profile_changed(world.redis, world.settings.tracardi.tenant, ["fresh"])
    step_until_idle(role, ctx)
    assert _segments(world, "fresh") == ["new-customers"]
    # five days later (the pass's clock), nothing else changed: it no longer holds
    world.es.indices.refresh(index=f"*{world.settings.tracardi.tenant}.tracardi-profile*")
    _pass(world, segment, at=datetime.now(UTC) + timedelta(days=5))
    step_until_idle(role, ctx)
    assert _segments(world, "fresh") == []
    assert [m.payload["change"] for m in changes(world)] == ["add", "remove"]


def test_the_injected_clock_decides_a_time_relative_segment_on_profile_changes(
        segmentation_world: World, start_role: RoleStarter) -> None:
    """A profile-changed message is decided at the role's clock, not the machine's."""
    world = segmentation_world
    world.define(segment=[{
        "id": "new", "name": "New customers",
        "condition": 'profile@metadata.time.insert > now.offset("-7d")'}])
    world.add_profile("fresh", when=datetime.now(UTC) - timedelta(days=3))
    later = (datetime.now(UTC) + timedelta(days=5)).timestamp()
    role, ctx = start_role(SegmentationRole, world.settings, clock=lambda: later)
    profile_changed(world.redis, world.settings.tracardi.tenant, ["fresh"])
    step_until_idle(role, ctx)
    # eight days old at the role's clock: not a new customer
    assert _segments(world, "fresh") == []
    assert changes(world) == []


def test_a_dry_run_pass_changes_nothing(segmentation_world: World,
                                        start_role: RoleStarter) -> None:
    world = segmentation_world
    [segment] = world.define(segment=[VIP])
    world.add_profile("p1", traits={"orders": 5})
    record = _pass(world, segment, dry_run=True)
    role, ctx = start_role(SegmentationRole, world.settings)
    step_until_idle(role, ctx)
    done = _task(world, record.id)
    assert done.status == "finished" and done.checkpoint is not None
    assert done.checkpoint["samples"] == [{"profile_id": "p1", "before": [],
                                           "after": ["vip"]}]
    assert _segments(world, "p1") == [] and changes(world) == []


def test_a_lucene_live_segment_with_operation_remove_only_removes(
        segmentation_world: World, start_role: RoleStarter) -> None:
    """The query says who belongs; ``remove`` takes the segment from those who have it
    and no longer match, and adds it to nobody."""
    world = segmentation_world
    world.define(segment=[VIP])
    [live] = world.define(live_segment=[{
        "id": "active", "name": "Active", "type": "query", "query": "traits.orders:[1 TO *]",
        "segment": {"id": "vip", "name": "VIP"}, "operation": "remove"}])
    world.add_profile("gone", traits={"orders": 0}, segments=["vip"])
    world.add_profile("kept", traits={"orders": 2}, segments=["vip"])
    world.add_profile("not-added", traits={"orders": 7})
    _pass(world, live)
    role, ctx = start_role(SegmentationRole, world.settings)
    step_until_idle(role, ctx)
    assert _segments(world, "gone") == [] and _segments(world, "kept") == ["vip"]
    assert _segments(world, "not-added") == []


def test_two_daemons_queue_one_scheduled_pass(segmentation_world: World,
                                              start_role: RoleStarter) -> None:
    world = segmentation_world
    world.define(live_segment=[{
        "id": "busy", "name": "Busy", "type": "condition",
        "condition": "profile@traits.orders > 3", "segment": {"id": "vip", "name": "VIP"},
        "schedule": {"every": "1m"}}])
    first, first_ctx = start_role(SegmentationRole, world.settings)
    second, second_ctx = start_role(SegmentationRole, world.settings)
    for role, ctx in ((first, first_ctx), (second, second_ctx)):
        role.step(ctx.clock())  # each builds its schedule if it holds the lease
    leaders = [role for role in (first, second) if role.queue_pass("live-segment:busy")]
    assert len(leaders) == 1  # a second request while the first waits is refused
    tasks = TaskStore(world.redis, world.es, world.settings).list("segmentation-pass")
    assert len(tasks) == 1


def test_two_requests_racing_past_a_finished_pass_queue_one(
        segmentation_world: World, start_role: RoleStarter) -> None:
    """Both read the marker of a finished pass before either writes it: one queues, the
    other sees the marker moved and queues nothing."""
    world = segmentation_world
    world.define(live_segment=[{
        "id": "busy", "name": "Busy", "type": "condition",
        "condition": "profile@traits.orders > 3", "segment": {"id": "vip", "name": "VIP"},
        "schedule": {"every": "1m"}}])
    first, _ = start_role(SegmentationRole, world.settings)
    second, _ = start_role(SegmentationRole, world.settings)
    tasks = TaskStore(world.redis, world.es, world.settings)
    earlier = first.queue_pass("live-segment:busy")
    assert earlier is not None and tasks.finish(earlier, "finished")
    looked_up = first._tasks.get
    raced: list[str | None] = []

    def look_up_then_race(task_id: str) -> TaskRecord | None:
        # the second request runs between the first's read of the marker and its write
        record = looked_up(task_id)
        if not raced:
            raced.append(second.queue_pass("live-segment:busy"))
        return record

    first._tasks.get = look_up_then_race
    mine = first.queue_pass("live-segment:busy")
    assert raced[0] is not None and mine is None
    waiting = [t.id for t in tasks.list("segmentation-pass") if not t.terminal]
    assert waiting == [raced[0]]


def test_a_concurrent_writer_is_reloaded_and_decided_again(
        segmentation_world: World) -> None:
    world = segmentation_world
    world.add_profile("p1", traits={"orders": 5})
    profiles = ProfileStore(world.es, world.redis, world.settings, BulkWriter(world.es))
    changes_writer = SegmentChanges(world.redis, world.settings, profiles)
    stale = profiles.load_many(["p1"])
    # another writer lowers the orders after our read
    world.es.index(index=stale["p1"].location.index, id="p1",
                   document={**stale["p1"].source, "traits": {"orders": 1}})
    seen: list[int] = []

    def decide(loaded: LoadedProfile) -> Decision:
        seen.append(loaded.source["traits"]["orders"])
        if loaded.source["traits"]["orders"] > 3:
            return Decision(add=(SegmentRef("vip", "vip"),))
        return Decision()

    outcome = changes_writer.apply(["p1"], decide, "test", preloaded=stale)
    assert seen == [5, 1]  # the stale copy conflicted; the fresh one decided
    assert outcome.written == 0 and _segments(world, "p1") == []
    assert world.profile("p1")["traits"] == {"orders": 1}
    assert changes(world) == []


def test_transitions_of_a_writer_that_died_after_writing_are_announced_by_the_sweep(
        segmentation_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world = segmentation_world
    world.add_profile("p1")
    world.add_profile("p2")
    profiles = ProfileStore(world.es, world.redis, world.settings, BulkWriter(world.es))
    writer = SegmentChanges(world.redis, world.settings, profiles)

    def die(*_args: Any) -> None:
        raise RuntimeError("killed after the write")

    monkeypatch.setattr(writer.members, "announce", die)
    with pytest.raises(RuntimeError):
        writer.apply(["p1"], lambda _p: Decision(add=(SegmentRef("vip", "vip"),)), "test")
    monkeypatch.undo()
    assert _segments(world, "p1") == ["vip"] and changes(world) == []
    # an intent whose profile was never written (its writer died before) is dropped
    world.redis.hset(f"{{{world.settings.tracardi.tenant}:q:segment-changes}}:intent",
                     "p2:never", json.dumps({"at": 0, "profile_id": "p2", "token": "never",
                                             "transitions": [{"id": "x"}]}))
    assert writer.sweep(older_than_s=60) == 0  # too young to be a dead writer's
    assert writer.sweep(older_than_s=0) == 1
    [announced] = changes(world)
    assert announced.payload["profile_id"] == "p1" and announced.payload["change"] == "add"
    assert writer.sweep(older_than_s=0) == 0


def test_a_pass_spec_names_its_path(segmentation_world: World) -> None:
    compiled = PassSpec("segment:a", "a", "a", "profile@traits.x > 1", None, "sync",
                        datetime.now(UTC).isoformat())
    python = PassSpec("segment:b", "b", "b", "profile@traits.x > profile@traits.y", None,
                      "sync", datetime.now(UTC).isoformat())
    assert compiled.path()[0] == "elasticsearch" and compiled.phases() == ["add", "remove"]
    assert python.path()[0] == "python" and python.phases() == ["python"]
    assert "refuses" in python.path()[1]
    assert ago(0) <= datetime.now(UTC)


def test_a_workflow_live_segment_starts_each_candidates_workflow_once_per_pass(
        segmentation_world: World, start_role: RoleStarter,
        http_server: ScriptedServer) -> None:
    world = segmentation_world
    [live] = world.define(live_segment=[{
        "id": "nurture", "name": "Nurture", "type": "workflow",
        "condition": "profile@traits.orders > 3", "workflow": {"id": "wf", "name": "Nurture"},
        "target": f"webhook:{http_server.url}"}])
    for number in range(6):
        world.add_profile(f"p{number}", traits={"orders": number})
    record = _pass(world, live)
    segmentation, seg_ctx = start_role(SegmentationRole, world.settings)
    dispatch, dispatch_ctx = start_role(DispatchRole, world.settings)
    step_until_idle(segmentation, seg_ctx)
    deadline = time.monotonic() + 10
    while len(http_server.received) < 2 and time.monotonic() < deadline:
        dispatch.step(dispatch_ctx.clock())
    bodies = sorted((json.loads(r.body) for r in http_server.received),
                    key=lambda body: body["profile"]["id"])
    assert [b["profile"]["id"] for b in bodies] == ["p4", "p5"]
    assert bodies[0]["workflow"] == {"id": "wf", "name": "Nurture"}
    assert bodies[0]["pass"]["id"] == record.id
    assert _task(world, record.id).status == "finished"
    assert _segments(world, "p4") == []  # a workflow live segment writes no segment
