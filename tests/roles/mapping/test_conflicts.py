"""Poisoned input for the mapping role, against the real Elasticsearch: a value one
profile gave a field fixes the field's type in the partition's mapping (dynamic
mapping), and later values of another type are refused. Only the events whose values
conflict fail, dead-lettered with the field and the mapping; the other events of the
same profiles and every other profile are applied, once, in the live tail and in batch
jobs alike."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import RoleStarter
from tests.infra.test_queue_commands import run as run_dead_command
from tests.roles.mapping.conftest import World, ago, run_until_idle, settings_with
from tracardi_daemon.infra.bulk import BulkAction, BulkWriter
from tracardi_daemon.infra.deadletters import DeadLetter, DeadLetters
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import MAPPING_QUEUE
from tracardi_daemon.model.field_conflicts import IndexMappings
from tracardi_daemon.model.naming import index_name
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.mapping.jobs import JobSpec, submit
from tracardi_daemon.roles.mapping.refusals import refusal_reason
from tracardi_daemon.roles.mapping.role import MappingRole

NAME = {"id": "name", "name": "Name", "event_type": {"id": "signup"},
        "items": [{"op": "increment", "profile": "stats.signups"},
                  {"event": "properties.name", "op": "equals", "profile": "traits.name"}]}
VIEWS = {"id": "views", "name": "Views", "event_type": {"id": "page-view"},
         "items": [{"op": "increment", "profile": "stats.views"},
                   {"event": "properties.page", "op": "append", "profile": "traits.pages"}]}
GOOD, EACH = 10, 5  # good profiles, and events of each type per good profile


def _dead(world: World) -> list[DeadLetter]:
    return DeadLetters(world.redis, world.settings.tracardi.tenant, MAPPING_QUEUE).oldest(1000)


def _one_partition(world: World, kind: str, span_s: float) -> datetime:
    """A moment a little in the past such that it and the ``span_s`` after it fall in
    one partition of ``kind`` (a test run may straddle the start of a new one)."""
    moment = ago(2 * span_s)
    later = moment + timedelta(seconds=span_s)
    if index_name(world.settings.tracardi, kind, moment) != \
            index_name(world.settings.tracardi, kind, later):
        moment -= timedelta(seconds=2 * span_s)
    return moment


def _mapped_type(world: World, index: str, path: str) -> str:
    node: Any = world.es.indices.get_mapping(index=index).body[index]["mappings"]
    for name in path.split("."):
        node = node["properties"][name]
    return str(node.get("type", "object"))


def _good_events(name: Any) -> list[dict[str, Any]]:
    """Per good profile, EACH signups (setting traits.name to ``name``) and EACH page
    views (unrelated fields), interleaved in time."""
    events = []
    for number in range(GOOD * EACH * 2):
        profile = f"g{number % GOOD}"
        signup = number // GOOD % 2 == 0
        events.append({"type": "signup" if signup else "page-view", "profile": profile,
                       "insert": ago(300 - number),
                       "properties": {"name": name} if signup else {"page": f"/{number}"}})
    return events


def test_a_field_one_profile_made_an_object_fails_only_the_events_that_set_a_string(
        world: World, start_role: RoleStarter) -> None:
    """The issue's case: every good profile's signups set traits.name to a string, which
    the poisoned mapping refuses; their page views are applied all the same."""
    world.define(event_to_profile=[NAME, VIEWS])
    index = world.add_profile("bad", traits={"name": {"first": "x"}})
    world.add_profiles([{"id": f"g{number}"} for number in range(GOOD)])
    assert _mapped_type(world, index, "traits.name") == "object"
    world.add_events(_good_events("Ann"))
    role, ctx = start_role(MappingRole, world.settings)
    run_until_idle(role, ctx)
    for number in range(GOOD):
        profile = world.profile(f"g{number}")
        assert profile["stats"] == {"views": EACH}, profile  # a refused event: none of it
        assert len(profile["traits"]["pages"]) == EACH and "name" not in profile["traits"]
    dead = _dead(world)
    assert len(dead) == GOOD * EACH
    assert len({letter.payload["event_id"] for letter in dead}) == GOOD * EACH
    assert {letter.payload["event_type"] for letter in dead} == {"signup"}
    assert {letter.reason for letter in dead} == {
        f'traits.name: the index {index} maps it as an object, the value is a string ("Ann")'}
    assert dead[0].payload["definition_id"] == "name"
    assert (ctx.counters.processed, ctx.counters.failed) == (GOOD * EACH, GOOD * EACH)
    # nothing is retried or dead-lettered again
    run_until_idle(role, ctx)
    assert len(_dead(world)) == GOOD * EACH
    assert world.profile("g0")["stats"] == {"views": EACH}


def test_in_a_job_the_one_profile_whose_value_conflicts_fails_alone(
        world: World, start_role: RoleStarter, capsys: pytest.CaptureFixture[str]) -> None:
    """traits.name is a keyword (good profiles wrote strings); one bad profile's last
    signup sets an object. Only that event fails; the bad profile's page view and first
    signup, and every good profile's signups and page views, are applied. (Had a later
    signup of the same batch overwritten the object, the object would never reach the
    index: nothing is refused then, and nothing fails.)"""
    world.settings = settings_with(world.settings, live=False)
    [name, views] = world.define(event_to_profile=[NAME, VIEWS])
    index = world.add_profile("zoe", traits={"name": "Zoe"})
    world.add_profiles([{"id": "bad"}] + [{"id": f"g{number}"} for number in range(GOOD)])
    assert _mapped_type(world, index, "traits.name") == "keyword"
    world.add_events([
        *_good_events("Ann"),
        {"type": "signup", "profile": "bad", "insert": ago(250), "properties": {"name": "B"}},
        {"type": "page-view", "profile": "bad", "insert": ago(240), "properties": {"page": "/b"}},
        {"type": "signup", "profile": "bad", "insert": ago(230),
         "properties": {"name": {"first": "x" * 100}}}])
    tasks = TaskStore(world.redis, world.es, world.settings)
    queue = WorkQueue(world.redis, world.settings.tracardi.tenant, MAPPING_QUEUE)
    record = submit(tasks, queue, JobSpec((name, views)), "poisoned value")
    role, ctx = start_role(MappingRole, world.settings)
    run_until_idle(role, ctx)
    done: TaskRecord | None = tasks.get(record.id)
    total = GOOD * EACH * 2 + 3
    assert done is not None and (done.status, done.total) == ("finished", total)
    assert (done.done, done.failed) == (total - 1, 1)
    bad = world.profile("bad")
    assert bad["stats"] == {"views": 1, "signups": 1} and bad["traits"]["name"] == "B"
    for number in range(GOOD):
        profile = world.profile(f"g{number}")
        assert profile["stats"] == {"views": EACH, "signups": EACH}
        assert profile["traits"]["name"] == "Ann"
    [letter] = _dead(world)
    assert letter.payload["profile_id"] == "bad"
    assert letter.reason.startswith(
        f'traits.name: the index {index} maps it as keyword, the value is an object '
        '({"first": "xxxxxxxxxxxxxxxxxxxxx...)')
    assert len(letter.reason) < 200  # a short prefix of the value, not all of it
    # what an operator reads: `dead list mapping`, in text and JSON
    tenant = world.settings.tracardi.tenant
    assert run_dead_command(world.redis, tenant, "list", "mapping") == 0
    text = capsys.readouterr().out
    assert f"reason='traits.name: the index {index} maps it as keyword, the value is an " \
        "object" in text and text.endswith("1 of 1 dead letter(s) in queue mapping\n")
    assert run_dead_command(world.redis, tenant, "list", "mapping", "--json") == 0
    [shown] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert shown["reason"] == letter.reason and shown["definition_id"] == "name"


# The daemon's profile mapping leaves no number or date that a definition may write
# refusing a value: dynamic numbers are ignore_malformed and date detection is off. A
# boolean is mapped from the first value as it comes, and a date field is one an
# operator (or a Tracardi installation) mapped itself.
@pytest.mark.parametrize(("path", "first", "mapped", "value", "reason"), [
    # a boolean another profile's value made: a type check finds the event
    ("traits.vip", True, None, "many",
     'traits.vip: the index {index} maps it as boolean, the value is a string ("many")'),
    # a date: only Elasticsearch knows; the event writing it is left out on its word
    ("traits.born", None, {"type": "date"}, "not a date",
     'traits.born: the index {index} maps it as date, and refused a string '
     '("not a date") for it (document_parsing_exception: '),
])
def test_a_value_of_the_wrong_type_for_a_typed_field_fails_only_its_event(
        world: World, start_role: RoleStarter, path: str, first: Any,
        mapped: dict[str, Any] | None, value: str, reason: str) -> None:
    item = {"event": "properties.value", "op": "equals", "profile": path}
    world.define(event_to_profile=[{"id": "typed", "name": "Typed",
                                    "event_type": {"id": "visit"}, "items": [item]}, VIEWS])
    field = path.rsplit(".", maxsplit=1)[-1]
    index = world.add_profile("p1")
    if first is not None:
        world.add_profile("other", traits={field: first})
    if mapped is not None:
        world.es.indices.put_mapping(index=index, properties={
            "traits": {"properties": {field: mapped}}})
    assert _mapped_type(world, index, path) == (mapped or {"type": "boolean"})["type"]
    world.add_events([
        {"type": "page-view", "profile": "p1", "insert": ago(30), "properties": {"page": "/a"}},
        {"type": "visit", "profile": "p1", "insert": ago(20), "properties": {"value": value}},
        {"type": "page-view", "profile": "p1", "insert": ago(10), "properties": {"page": "/b"}}])
    role, ctx = start_role(MappingRole, world.settings)
    run_until_idle(role, ctx)
    profile = world.profile("p1")
    assert profile["stats"] == {"views": 2} and profile["traits"] == {"pages": ["/a", "/b"]}
    [letter] = _dead(world)
    assert letter.payload["definition_id"] == "typed"
    assert letter.reason.startswith(reason.format(index=index)), letter.reason
    assert "in document with id" in letter.reason or "maps it as boolean" in letter.reason


def test_a_refused_event_trait_write_back_names_the_field_and_the_mapping(
        world: World, start_role: RoleStarter) -> None:
    """An event type's index_schema copies properties.name to the event's traits.name,
    which an earlier event made an object in the event partition: that event fails
    with the reason, the other events of the batch get their traits."""
    world.define(event_type=[{"id": "signup-traits", "name": "Signup",
                              "event_type": "signup", "index_schema": {"name": "name"}}])
    moment = _one_partition(world, "event", 60)  # the three events share a partition
    [first] = world.add_events([{"type": "other", "insert": moment,
                                 "traits": {"name": {"first": "x"}}}])
    event_index = index_name(world.settings.tracardi, "event", moment)
    assert _mapped_type(world, event_index, "traits.name") == "object"
    good, refused = world.add_events([
        {"type": "signup", "insert": moment + timedelta(seconds=30),
         "properties": {"name": {"first": "y"}}},
        {"type": "signup", "insert": moment + timedelta(seconds=40),
         "properties": {"name": "Ann"}}])
    role, ctx = start_role(MappingRole, world.settings)
    run_until_idle(role, ctx)
    assert world.event(good)["traits"] == {"name": {"first": "y"}}
    assert "traits" not in world.event(refused)
    [letter] = _dead(world)
    assert letter.payload["event_id"] == refused
    assert letter.reason == (f"traits not written to the event: traits.name: the index "
                             f'{event_index} maps it as an object, the value is a string ("Ann")')
    assert first != refused


def test_the_bulk_writer_names_the_field_a_mapping_refuses(world: World) -> None:
    """Each kind of refusal Elasticsearch reports, read back from real per-item errors."""
    index = f"{world.settings.tracardi.tenant}-refusals"
    world.es.indices.create(index=index, mappings={"dynamic": False, "properties": {
        "traits": {"type": "object", "dynamic": True, "properties": {
            "name": {"properties": {"first": {"type": "keyword"}}},
            "code": {"type": "keyword"}, "count": {"type": "integer"}}},
        "locked": {"type": "object", "dynamic": "strict",
                   "properties": {"a": {"type": "keyword"}}}}})
    documents: list[tuple[dict[str, Any], str, str]] = [
        ({"traits": {"name": "Ann"}}, "traits.name", "maps it as an object, the value is "
                                                      'a string ("Ann")'),
        ({"traits": {"code": {"x": 1}}}, "traits.code", 'maps it as keyword, the value is '
                                                        'an object ({"x": 1})'),
        ({"traits": {"count": "abc"}}, "traits.count", 'maps it as integer, the value is a '
                                                       'string ("abc")'),
        ({"locked": {"b": 1}}, "locked.b", "does not map it, and locked takes no new "
                                           "fields (dynamic: strict)"),
        ({"traits": {"name": ["Ann"]}}, "traits.name", "maps it as an object, the value is "
                                                       'a string ("Ann")'),
    ]
    try:
        writer = BulkWriter(world.es)
        results = writer.write([BulkAction("index", index, str(number), document)
                                for number, (document, _, _) in enumerate(documents)])
        mappings = IndexMappings(world.es)
        for result, (document, field, reason) in zip(results, documents, strict=True):
            assert not result.ok and result.refused_field == field, result
            assert refusal_reason(mappings, index, field, document, result.error) == \
                f"{field}: the index {index} {reason}"
        [fine] = writer.write([BulkAction("index", index, "ok", {"traits": {"name": {}}})])
        assert fine.ok and fine.refused_field is None
        [conflict] = writer.write([BulkAction("index", index, "ok", {"traits": {}},
                                              if_seq_no=99, if_primary_term=1)])
        assert conflict.conflict and conflict.refused_field is None
    finally:
        world.es.indices.delete(index=index)


def test_refused_events_are_dead_lettered_once_though_the_profile_is_retried(
        world: World, start_role: RoleStarter) -> None:
    """Two conflicting fields in one profile: both events fail in the same round, the
    profile's third event is applied, and a batch run again changes nothing."""
    world.define(event_to_profile=[NAME, VIEWS, {
        "id": "code", "name": "Code", "event_type": {"id": "coupon"},
        "items": [{"event": "properties.code", "op": "equals", "profile": "traits.code"}]}])
    world.add_profile("other", traits={"name": {"first": "x"}, "code": "C1"})
    world.add_profile("p1")
    world.add_events([
        {"type": "signup", "profile": "p1", "insert": ago(30), "properties": {"name": "Ann"}},
        {"type": "coupon", "profile": "p1", "insert": ago(20), "properties": {"code": {"a": 1}}},
        {"type": "page-view", "profile": "p1", "insert": ago(10), "properties": {"page": "/"}}])
    role, ctx = start_role(MappingRole, world.settings)
    run_until_idle(role, ctx)
    assert world.profile("p1")["stats"] == {"views": 1}
    reasons = sorted(letter.reason.split(":")[0] for letter in _dead(world))
    assert reasons == ["traits.code", "traits.name"]
    time.sleep(0.05)  # a few more look-backs of the live tail
    run_until_idle(role, ctx)
    assert len(_dead(world)) == 2 and world.profile("p1")["stats"] == {"views": 1}
