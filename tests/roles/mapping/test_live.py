"""The mapping role's live tail against the real Elasticsearch and Redis: definitions in
Tracardi's shapes applied, profiles written where they live, exactly once also for
events that become visible out of order or late."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.conftest import RoleStarter
from tests.roles.mapping.conftest import World, ago, run_until_idle, settings_with
from tracardi_daemon.infra.deadletters import DeadLetters
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import MAPPING_QUEUE, PROFILE_CHANGED_QUEUE
from tracardi_daemon.model.profiles import cache_key
from tracardi_daemon.roles.mapping.role import MappingRole

# as Tracardi stores it: op as a number, condition inside config, RefValues
TRACARDI_EMAIL = {
    "id": "email-to-profile", "name": "Email to profile",
    "event_type": {"id": "identify", "name": "Identify"}, "enabled": True,
    "config": {"condition": "event@properties.email EXISTS"},
    "event_to_profile": [
        {"event": {"value": "properties.email", "ref": True}, "op": 0,
         "profile": {"value": "data.contact.email.main", "ref": True}},
        {"event": {"value": "properties.tags", "ref": True}, "op": "append",
         "profile": {"value": "traits.tags", "ref": True}},
        {"event": {"value": "properties.newsletter", "ref": True}, "op": 1,
         "profile": {"value": "traits.newsletter", "ref": True}},
    ],
    "tags": [], "production": False, "running": False,
}
COUNT_VISITS = {
    "id": "count-visits", "name": "Count visits", "event_type": {"id": "page-view"},
    "items": [{"op": "increment", "profile": "stats.views"},
              {"event": "properties.price", "op": "increment", "profile": "stats.spent"}],
}


def _visits(world: World, profile_id: str) -> Any:
    return world.profile(profile_id).get("stats", {}).get("views")


def test_tracardi_shaped_definition_applies_and_zero_and_false_are_copied(
        world: World, start_role: RoleStarter) -> None:
    world.define(event_to_profile=[TRACARDI_EMAIL])
    index = world.add_profile("p1", traits={"tags": ["a"], "newsletter": None})
    events = world.add_events([
        {"type": "identify", "profile": "p1", "insert": ago(30),
         "properties": {"email": "a@example.com", "tags": ["a", "b", None],
                        "newsletter": False}},
        {"type": "identify", "profile": "p1", "insert": ago(20),
         "properties": {"email": "b@example.com", "tags": "b", "newsletter": True}},
        {"type": "identify", "profile": "p1", "insert": ago(10),
         "properties": {"tags": ["c"]}},  # fails the condition: no email
    ])
    role, ctx = start_role(MappingRole, world.settings)
    run_until_idle(role, ctx)
    profile = world.profile("p1")
    assert profile["data"]["contact"]["email"]["main"] == "b@example.com"
    assert profile["traits"]["tags"] == ["a", "b"]  # no duplicate, no null, no "c"
    assert profile["traits"]["newsletter"] is False  # false is copied and then exists
    fields = profile["metadata"]["fields"]
    assert fields["data.contact.email.main"][1] == events[1]
    assert "update" in profile["metadata"]["time"]
    assert ctx.counters.processed == 3 and ctx.counters.failed == 0
    # written in place, and announced to segmentation with its index
    assert world.es.exists(index=index, id="p1")
    announced = WorkQueue(world.redis, world.settings.tracardi.tenant,
                          PROFILE_CHANGED_QUEUE).consume("test", count=10)
    assert [m.payload["profile_id"] for m in announced] == ["p1"]
    assert announced[0].payload["index"] == index
    assert announced[0].payload["source"] == "mapping"
    assert "data.contact.email.main" in announced[0].payload["fields"]


def test_a_profile_in_an_older_partition_is_changed_there_and_its_cache_deleted(
        world: World, start_role: RoleStarter) -> None:
    world.define(event_to_profile=[COUNT_VISITS])
    old = world.add_profile("old-1", when=datetime(2023, 2, 1, tzinfo=UTC))
    key = cache_key(world.settings.tracardi.tenant, False, "old-1")
    world.redis.set(key, b"stale copy")
    world.add_events([{"type": "page-view", "profile": "old-1", "insert": ago(5)}])
    role, ctx = start_role(MappingRole, world.settings)
    run_until_idle(role, ctx)
    world.es.indices.refresh(index=f"*{world.settings.tracardi.tenant}.tracardi-profile-*")
    copies = world.es.search(index=f"*{world.settings.tracardi.tenant}.tracardi-profile-*",
                             query={"ids": {"values": ["old-1"]}})["hits"]["hits"]
    assert [hit["_index"] for hit in copies] == [old]
    assert copies[0]["_source"]["stats"]["views"] == 1
    assert world.redis.exists(key) == 0


def test_events_out_of_order_and_late_apply_exactly_once(
        world: World, start_role: RoleStarter) -> None:
    settings = settings_with(world.settings, late_arrival_s=60.0, live_start="now")
    world.define(event_to_profile=[COUNT_VISITS])
    world.add_profile("p1")
    role, ctx = start_role(MappingRole, settings)
    run_until_idle(role, ctx)  # the tail starts now: nothing yet
    world.add_events([{"type": "page-view", "profile": "p1", "insert": ago(s),
                       "properties": {"price": 1}} for s in (5, 3, 4, 1, 2)])
    run_until_idle(role, ctx)
    assert _visits(world, "p1") == 5
    # visible only now, behind the cursor but within the late-arrival window
    world.add_events([{"type": "page-view", "profile": "p1", "insert": ago(s),
                       "properties": {"price": 1}} for s in (30, 10, 2.5)])
    run_until_idle(role, ctx)
    profile = world.profile("p1")
    assert profile["stats"] == {"views": 8, "spent": 8}
    # more steps, a restarted role (new object, same checkpoint): nothing twice
    run_until_idle(role, ctx)
    role.stop()
    again, again_ctx = start_role(MappingRole, settings)
    run_until_idle(again, again_ctx)
    assert world.profile("p1")["stats"] == {"views": 8, "spent": 8}
    assert ctx.counters.processed == 8 and again_ctx.counters.processed == 0


def test_an_event_beyond_the_late_arrival_window_is_not_applied(
        world: World, start_role: RoleStarter) -> None:
    settings = settings_with(world.settings, late_arrival_s=5.0, live_start="now")
    world.define(event_to_profile=[COUNT_VISITS])
    world.add_profile("p1")
    role, ctx = start_role(MappingRole, settings)
    world.add_events([{"type": "page-view", "profile": "p1", "insert": ago(1)}])
    run_until_idle(role, ctx)
    world.add_events([{"type": "page-view", "profile": "p1", "insert": ago(120)}])
    run_until_idle(role, ctx)
    assert _visits(world, "p1") == 1  # documented bound: older than late_arrival_s


def test_bad_events_go_to_dead_letters_and_the_rest_of_the_batch_goes_on(
        world: World, start_role: RoleStarter) -> None:
    world.define(event_to_profile=[COUNT_VISITS])
    world.add_profile("good")
    world.add_profile("bad", stats={"views": "many"})
    ids = world.add_events([
        {"type": "page-view", "profile": "bad", "insert": ago(4)},
        {"type": "page-view", "profile": "good", "insert": ago(3),
         "properties": {"price": "free"}},  # not a number: the whole event fails
        {"type": "page-view", "profile": "good", "insert": ago(2), "properties": {"price": 2}},
        {"type": "page-view", "profile": "nobody", "insert": ago(1)},
    ])
    role, ctx = start_role(MappingRole, world.settings)
    run_until_idle(role, ctx)
    assert world.profile("good")["stats"] == {"views": 1, "spent": 2}
    assert world.profile("bad")["stats"] == {"views": "many"}
    dead = DeadLetters(world.redis, world.settings.tracardi.tenant, MAPPING_QUEUE).oldest(10)
    by_event = {d.payload["event_id"]: d for d in dead}
    assert set(by_event) == {ids[0], ids[1], ids[3]}
    bad = by_event[ids[0]].payload
    assert bad["definition_id"] == "count-visits" and bad["item"]["op"] == "increment"
    assert "number" in by_event[ids[0]].reason
    assert "not found" in by_event[ids[3]].reason
    assert ctx.counters.failed == 3 and ctx.counters.processed == 1


def test_event_type_mapping_copies_properties_to_the_events_traits_first(
        world: World, start_role: RoleStarter) -> None:
    world.define(
        event_type=[{"event_type": "purchase", "index_schema": {"amount": "order.value"},
                     "journey": "conversion", "tags": ["sale"]}],
        event_to_profile=[{"id": "value", "name": "Order value",
                           "event_type": {"id": "purchase"},
                           "items": [{"event": "traits.order.value", "op": "equals",
                                      "profile": "traits.last_order"}]}])
    world.add_profile("p1")
    event_id, clash = world.add_events([
        {"type": "purchase", "profile": "p1", "insert": ago(2), "properties": {"amount": 0}},
        # its traits.order is text: the copy to traits.order.value cannot be made (in an
        # older partition, whose mapping of traits.order is its own)
        {"type": "purchase", "profile": "p1", "insert": ago(100 * 86400),
         "properties": {"amount": 5}, "traits": {"order": "n/a"}}])
    role, ctx = start_role(MappingRole, world.settings)
    run_until_idle(role, ctx)
    [dead] = DeadLetters(world.redis, world.settings.tracardi.tenant, MAPPING_QUEUE).oldest(10)
    assert dead.payload["event_id"] == clash and "path conflict" in dead.reason
    assert dead.payload["definition_id"] == "purchase"
    assert world.event(clash)["traits"] == {"order": "n/a"}
    event = world.event(event_id)
    assert event["traits"] == {"order": {"value": 0}}
    assert event["journey"] == {"state": "conversion"}
    assert event["tags"]["values"] == ["sale"]
    assert world.profile("p1")["traits"]["last_order"] == 0


def test_a_condition_compares_event_values_as_they_are_stored(
        world: World, start_role: RoleStarter) -> None:
    """``event@properties.value > 10`` compares numbers (properties are one flattened
    field in Elasticsearch, where they would compare as text: "9" > "10")."""
    world.define(event_to_profile=[{
        "id": "big-orders", "name": "Big orders", "event_type": {"id": "purchase"},
        "condition": "event@properties.value > 10 AND profile@traits.vip == true",
        "items": [{"op": "increment", "profile": "stats.big_orders"}]}])
    world.add_profile("vip", traits={"vip": True})
    world.add_profile("regular", traits={"vip": False})
    world.add_events([{"type": "purchase", "profile": profile, "insert": ago(5 - n),
                       "properties": {"value": value}}
                      for n, (profile, value) in enumerate(
                          [("vip", 9), ("vip", 11), ("vip", 100), ("regular", 50)])])
    role, ctx = start_role(MappingRole, world.settings)
    run_until_idle(role, ctx)
    assert world.profile("vip")["stats"] == {"big_orders": 2}
    assert "stats" not in world.profile("regular")
    assert ctx.counters.processed == 4 and ctx.counters.failed == 0
