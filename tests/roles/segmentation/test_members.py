"""The durable membership record against the real Elasticsearch and Redis: a segment
another writer erased and the daemon put back is no new entry; a segment another writer
added is announced once; profiles older than the record are seeded from their documents;
a write is visible to searches before its transition is announced."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import RoleStarter
from tests.roles.mapping.conftest import World
from tests.roles.segmentation.conftest import changes, step_until_idle
from tracardi_daemon.infra.bulk import BulkWriter
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import SEGMENTATION_QUEUE
from tracardi_daemon.model.profiles import ProfileStore
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.segmentation.changes import Decision, SegmentChanges, SegmentRef
from tracardi_daemon.roles.segmentation.client import profile_changed
from tracardi_daemon.roles.segmentation.members import Announcement
from tracardi_daemon.roles.segmentation.passes import pass_spec, submit_pass
from tracardi_daemon.roles.segmentation.role import SegmentationRole

VIP = {"id": "vip", "name": "VIP", "condition": "profile@traits.orders > 3"}


def announced(world: World) -> list[tuple[str, str, str]]:
    return sorted((m.payload["profile_id"], m.payload["segment"], m.payload["change"])
                  for m in changes(world))


def stale_save(world: World, profile_id: str, source: dict[str, Any]) -> None:
    """What Tracardi's collector does with a copy it read before the daemon's write: the
    whole document indexed back, unconditionally."""
    [index] = [hit["_index"] for hit in world.es.search(
        index=f"{world.settings.tracardi.tenant}*profile*",
        query={"ids": {"values": [profile_id]}})["hits"]["hits"]]
    world.es.index(index=index, id=profile_id, document=source, refresh=True)


def run_pass(world: World, segment: Any) -> None:
    """Queue a pass of ``segment`` (run by the role's next steps)."""
    tasks = TaskStore(world.redis, world.es, world.settings)
    queue = WorkQueue(world.redis, world.settings.tracardi.tenant, SEGMENTATION_QUEUE)
    submit_pass(tasks, queue, pass_spec(segment, [], now_iso=datetime.now(UTC).isoformat()),
                "test pass")


def changed(world: World, *ids: str) -> None:
    profile_changed(world.redis, world.settings.tracardi.tenant, list(ids))


def test_a_segment_erased_by_another_writer_is_put_back_without_a_new_entry(
        segmentation_world: World, start_role: RoleStarter) -> None:
    world = segmentation_world
    world.define(segment=[VIP])
    world.add_profile("p1", traits={"orders": 5})
    before = world.profile("p1")
    role, ctx = start_role(SegmentationRole, world.settings)
    changed(world, "p1")
    step_until_idle(role, ctx)
    assert world.profile("p1")["segments"] == ["vip"]
    assert announced(world) == [("p1", "vip", "add")]
    for _ in range(2):  # erased twice, put back twice: still the one entry
        stale_save(world, "p1", {**before, "traits": {"orders": 6}})
        assert world.profile("p1").get("segments") in (None, [])
        changed(world, "p1")
        step_until_idle(role, ctx)
        assert world.profile("p1")["segments"] == ["vip"]
        assert announced(world) == []
    # leaving for real is announced, and so is coming back
    stale_save(world, "p1", {**world.profile("p1"), "traits": {"orders": 1}})
    changed(world, "p1")
    step_until_idle(role, ctx)
    assert announced(world) == [("p1", "vip", "remove")]
    members = SegmentChanges(world.redis, world.settings, ProfileStore(
        world.es, world.redis, world.settings, BulkWriter(world.es))).members
    assert members.records(["p1"]) == {"p1": None}  # in no segment: nothing kept
    stale_save(world, "p1", {**world.profile("p1"), "traits": {"orders": 7}})
    changed(world, "p1")
    step_until_idle(role, ctx)
    assert announced(world) == [("p1", "vip", "add")]


def test_a_pass_puts_an_erased_segment_back_without_announcing_it(
        segmentation_world: World, start_role: RoleStarter) -> None:
    world = segmentation_world
    [segment] = world.define(segment=[VIP])
    world.add_profile("p1", traits={"orders": 5})
    before = world.profile("p1")
    role, ctx = start_role(SegmentationRole, world.settings)
    run_pass(world, segment)
    step_until_idle(role, ctx)
    assert announced(world) == [("p1", "vip", "add")]
    stale_save(world, "p1", before)
    run_pass(world, segment)
    step_until_idle(role, ctx)
    assert world.profile("p1")["segments"] == ["vip"]
    assert announced(world) == []


def test_a_segment_another_writer_added_is_announced_once(
        segmentation_world: World, start_role: RoleStarter) -> None:
    world = segmentation_world
    world.define(segment=[VIP])
    role, ctx = start_role(SegmentationRole, world.settings)
    step_until_idle(role, ctx)  # the record starts, and is seeded from no profile
    # Tracardi's collector makes the profile and puts it in the segment itself
    world.add_profile("p1", when=datetime.now(UTC) + timedelta(seconds=1),
                      traits={"orders": 5}, segments=["vip"])
    changed(world, "p1")
    step_until_idle(role, ctx)
    assert world.profile("p1")["segments"] == ["vip"]
    assert announced(world) == [("p1", "vip", "add")]
    changed(world, "p1")
    step_until_idle(role, ctx)
    assert announced(world) == []
    # and takes it out itself: announced too
    stale_save(world, "p1", {**world.profile("p1"), "segments": [], "traits": {"orders": 0}})
    changed(world, "p1")
    step_until_idle(role, ctx)
    assert announced(world) == [("p1", "vip", "remove")]


def test_profiles_older_than_the_record_are_seeded_from_their_documents(
        segmentation_world: World, start_role: RoleStarter) -> None:
    world = segmentation_world
    world.define(segment=[VIP])
    old = datetime.now(UTC) - timedelta(days=3)
    world.add_profiles([{"id": f"p{n}", "traits": {"orders": 5},
                         "segments": ["vip", "from-a-workflow"]} for n in range(3)]
                       + [{"id": "p9", "traits": {"orders": 5}}], when=old)
    role, ctx = start_role(SegmentationRole, world.settings)
    step_until_idle(role, ctx)
    members = SegmentChanges(world.redis, world.settings, ProfileStore(
        world.es, world.redis, world.settings, BulkWriter(world.es))).members
    assert members.records(["p0", "p1", "p2", "p9"]) == {
        "p0": ["from-a-workflow", "vip"], "p1": ["from-a-workflow", "vip"],
        "p2": ["from-a-workflow", "vip"], "p9": None}
    # members already: nothing to announce; p9 is a new entry
    changed(world, "p0", "p1", "p2", "p9")
    step_until_idle(role, ctx)
    assert announced(world) == [("p9", "vip", "add")]


def test_an_old_profile_seen_before_the_seed_is_taken_as_its_document_says(
        segmentation_world: World) -> None:
    world = segmentation_world
    world.add_profile("p1", when=datetime.now(UTC) - timedelta(days=3),
                      traits={"orders": 5}, segments=["vip"])
    writer = SegmentChanges(world.redis, world.settings, ProfileStore(
        world.es, world.redis, world.settings, BulkWriter(world.es)))
    ref = SegmentRef("vip", "vip")
    outcome = writer.apply(["p1"], lambda _p: Decision(keep=(ref,)), "test")
    assert (outcome.added, outcome.removed) == (0, 0) and announced(world) == []
    outcome = writer.apply(["p1"], lambda _p: Decision(remove=(ref,)), "test")
    assert (outcome.added, outcome.removed) == (0, 1)
    assert announced(world) == [("p1", "vip", "remove")]


def test_two_writers_announcing_the_same_entry_announce_it_once(
        segmentation_world: World) -> None:
    world = segmentation_world
    members = SegmentChanges(world.redis, world.settings, ProfileStore(
        world.es, world.redis, world.settings, BulkWriter(world.es))).members

    def entry(token: str) -> Announcement:
        return Announcement("p1", [{"id": f"{token}:p1:vip:add", "profile_id": "p1",
                                    "segment": "vip", "segment_id": "vip", "change": "add",
                                    "at": "2026-12-07T12:00:00+00:00", "cause": "test"}],
                            None)

    assert members.announce([entry("a")]) == (1, 0)
    assert members.announce([entry("b")]) == (0, 0)
    assert [m.payload["id"] for m in changes(world)] == ["a:p1:vip:add"]
    assert members.records(["p1"]) == {"p1": ["vip"]}


def test_a_write_is_searchable_before_its_transition_is_announced(
        segmentation_world: World) -> None:
    world = segmentation_world
    world.add_profile("p1", traits={"orders": 5})
    world.add_profile("p2", traits={"orders": 5})
    world.es.indices.put_settings(index=f"{world.settings.tracardi.tenant}*profile*",
                                  settings={"index": {"refresh_interval": "-1"}})
    ref = SegmentRef("vip", "vip")

    def searchable(settings_changes: dict[str, Any], profile_id: str) -> bool:
        settings = replace(world.settings, tracardi=replace(world.settings.tracardi,
                                                            **settings_changes))
        writer = SegmentChanges(world.redis, settings, ProfileStore(
            world.es, world.redis, settings, BulkWriter(world.es)))
        seen: list[int] = []

        def announce(items: Any) -> tuple[int, int]:
            seen.append(world.es.count(
                index=f"{settings.tracardi.tenant}*profile*",
                query={"bool": {"filter": [{"ids": {"values": [profile_id]}},
                                           {"term": {"segments": "vip"}}]}})["count"])
            return 1, 0

        writer.members.announce = announce  # type: ignore[method-assign]
        writer.apply([profile_id], lambda _p: Decision(add=(ref,)), "test")
        return seen == [1]

    assert not searchable({"refresh_profile_writes": False}, "p1")
    assert searchable({"refresh_profile_writes": True}, "p2")
