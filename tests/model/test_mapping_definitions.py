"""Event-to-profile mappings in the daemon's shape and in Tracardi's stored JSON, their ops,
paths and TQL conditions, and event-type metadata; applied and shown through the CLI."""

from __future__ import annotations

import copy
import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import (
    MAPPING_OPERATIONS,
    PROFILE_ROOTS,
    EventToProfile,
    EventTypeMapping,
    MappingItem,
    Ref,
    parse_definitions,
)
from tracardi_daemon.model.indices import install, status
from tracardi_daemon.model.mapping_definitions import condition_schema
from tracardi_daemon.model.naming import base_index_name, index_name

from .conftest import CliRunner

TRACARDI_MAPPING: dict[str, Any] = json.loads("""
{"id":"c1","name":"Email to profile","event_type":{"id":"identify","name":"Identify"},
 "enabled":true,"config":{"condition":"event@properties.email EXISTS"},
 "event_to_profile":[
   {"event":{"value":"properties.email","ref":true},"op":0,
    "profile":{"value":"data.contact.email.main","ref":true}},
   {"event":{"value":"properties.tags","ref":true},"op":2,
    "profile":{"value":"traits.tags","ref":true}}],
 "tags":[],"production":false,"running":false}
""")

DAEMON_MAPPING_TOML = """
[[event_to_profile]]
id = "c1"
name = "Email to profile"
event_type = { id = "identify", name = "Identify" }
condition = "event@properties.email EXISTS"
items = [
  { event = "properties.email", op = "equals", profile = "data.contact.email.main" },
  { event = "properties.tags", op = "append", profile = "traits.tags" },
]
"""

TRACARDI_EVENT_TYPE: dict[str, Any] = {
    "id": "purchase",
    "name": "Purchase",
    "event_type": "purchase",
    "description": "A paid order",
    "enabled": True,
    "journey": "conversion",
    "index_schema": {
        "properties.order.total": "traits.orders.last_total",
        "currency": "orders.currency",
    },
    "tags": ["commerce"],
    "build_in": False,
    "production": False,
    "running": False,
}


def daemon_mapping(*items: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "id": "m1",
        "name": "Mapping",
        "event_type": {"id": "identify", "name": "Identify"},
        "items": list(items),
        **fields,
    }


def tracardi_mapping(*items: dict[str, Any], **fields: Any) -> dict[str, Any]:
    data = copy.deepcopy(TRACARDI_MAPPING)
    data.update(fields)
    if items:
        data["event_to_profile"] = list(items)
    return data


def tracardi_item(
    event: str, op: object, profile: str, *, event_ref: bool = True, profile_ref: bool = True
) -> dict[str, Any]:
    return {
        "event": {"value": event, "ref": event_ref},
        "op": op,
        "profile": {"value": profile, "ref": profile_ref},
    }


def error_of(
    data: dict[str, Any],
    cls: type[EventToProfile | EventTypeMapping] = EventToProfile,
    *,
    strict: bool = False,
) -> str:
    with pytest.raises(InvalidInput) as caught:
        cls.from_dict(data, strict=strict)
    return str(caught.value)


# ------------------------------------------------------------------ ops


@pytest.mark.parametrize(
    ("spelling", "op"),
    [
        (0, "equals"),
        (1, "equals_if_not_exists"),
        (2, "append"),
        ("equals", "equals"),
        ("equal", "equals"),
        ("equals_if_not_exists", "equals_if_not_exists"),
        ("append", "append"),
        ("increment", "increment"),
        ("+", "increment"),
        ("decrement", "decrement"),
        ("-", "decrement"),
        ("delete", "delete"),
    ],
)
def test_every_op_spelling_is_accepted(spelling: object, op: str) -> None:
    item = {"event": "properties.count", "op": spelling, "profile": "stats.count"}
    mapping = EventToProfile.from_dict(daemon_mapping(item), strict=True)
    assert mapping.items[0].op == op
    assert mapping.to_dict()["items"][0]["op"] == op
    tracardi = EventToProfile.from_dict(
        tracardi_mapping(tracardi_item("properties.count", spelling, "stats.count"))
    )
    assert tracardi.items[0].op == op
    assert set(MAPPING_OPERATIONS) >= {op}


@pytest.mark.parametrize(
    "spelling", ["replace", "EQUALS", "", 3, -1, 1.0, True, False, None, ["equals"]]
)
def test_unknown_op_spellings_are_refused_naming_the_field(spelling: object) -> None:
    accepted = (
        "must be one of equals, equals_if_not_exists, append, increment, decrement, "
        f"delete, 0, 1, 2, equal, +, -, got {spelling!r}"
    )
    good = {"event": "properties.a", "op": "equals", "profile": "traits.a"}
    bad = {"event": "properties.b", "op": spelling, "profile": "traits.b"}
    assert error_of(daemon_mapping(good, bad)) == (
        f"event-to-profile 'm1': field 'items[1].op' {accepted}"
    )
    items = [
        tracardi_item("properties.a", 0, "traits.a"),
        tracardi_item("properties.b", spelling, "traits.b"),
    ]
    assert error_of(tracardi_mapping(*items)) == (
        f"event-to-profile 'c1': field 'event_to_profile[1].op' {accepted}"
    )


# ------------------------------------------------------------------ paths


def test_profile_path_must_start_with_a_profile_root() -> None:
    items = [
        {"event": "properties.a", "op": "equals", "profile": root} for root in ("data.a", "traits")
    ] + [{"event": "properties.name", "op": 0, "profile": "pii.name"}]
    assert error_of(daemon_mapping(*items)) == (
        "event-to-profile 'm1': field 'items[2].profile' must start with one of data, traits, "
        "ids, stats, segments, interests, consents, aux, misc, trash, got 'pii.name'"
    )
    assert error_of(tracardi_mapping(tracardi_item("properties.a", 0, "profile.a"))).startswith(
        "event-to-profile 'c1': field 'event_to_profile[0].profile.value' must start with one "
        "of data, traits"
    )
    every_root = [
        {"event": "properties.a", "op": "equals", "profile": f"{root}.x"} for root in PROFILE_ROOTS
    ]
    assert len(EventToProfile.from_dict(daemon_mapping(*every_root)).items) == 10


def test_profile_side_must_be_a_reference() -> None:
    item = tracardi_item("properties.a", 0, "traits.a", profile_ref=False)
    assert error_of(tracardi_mapping(item)) == (
        "event-to-profile 'c1': field 'event_to_profile[0].profile.ref' must be true: the "
        "profile side is always a path, never a value"
    )


@pytest.mark.parametrize("op", ["delete", "increment", "decrement"])
def test_event_is_optional_for_delete_increment_decrement(op: str) -> None:
    mapping = EventToProfile.from_dict(daemon_mapping({"op": op, "profile": "stats.visits"}))
    assert mapping.items == (MappingItem(None, op, "stats.visits"),)
    assert mapping.to_dict()["items"] == [{"op": op, "profile": "stats.visits"}]
    assert EventToProfile.from_dict(mapping.to_dict(), strict=True) == mapping
    # Tracardi's shape: a blank event value means none, the item is kept
    blank = EventToProfile.from_dict(tracardi_mapping(tracardi_item("", op, "stats.visits")))
    assert blank.items == mapping.items


@pytest.mark.parametrize("op", ["equals", "equals_if_not_exists", "append"])
def test_event_is_required_for_copying_ops(op: str) -> None:
    assert error_of(daemon_mapping({"op": op, "profile": "traits.a"})) == (
        f"event-to-profile 'm1': field 'items[0].event' is required for op '{op}'; only "
        "delete, increment, decrement may leave it out"
    )


def test_literal_event_values() -> None:
    items = [
        {"event": "gold", "event_ref": False, "op": "equals", "profile": "traits.tier"},
        {"event": "5", "event_ref": False, "op": "+", "profile": "stats.points"},
    ]
    mapping = EventToProfile.from_dict(daemon_mapping(*items), strict=True)
    assert mapping.items == (
        MappingItem("gold", "equals", "traits.tier", event_ref=False),
        MappingItem("5", "increment", "stats.points", event_ref=False),
    )
    assert mapping.to_dict()["items"][0] == items[0]
    assert EventToProfile.from_dict(mapping.to_dict(), strict=True) == mapping
    tracardi = EventToProfile.from_dict(
        tracardi_mapping(tracardi_item("gold", 0, "traits.tier", event_ref=False))
    )
    assert tracardi.items == mapping.items[:1]

    def item_error(**item: Any) -> str:
        return error_of(daemon_mapping({"profile": "stats.points", **item}))

    assert item_error(event="many", event_ref=False, op="increment").endswith(
        "field 'items[0].event' must be a number to increment by, got 'many'"
    )
    assert item_error(event=" ", event_ref=False, op="equals").endswith(
        "field 'items[0].event' must be a non-empty string (the value to write, as event_ref "
        "is false)"
    )
    assert item_error(event="a", event_ref="no", op="equals").endswith(
        "field 'items[0].event_ref' must be true or false"
    )
    assert item_error(event_ref=False, op="delete").endswith(
        "field 'items[0].event' must hold the value to write, as event_ref is false"
    )


def test_unknown_item_keys_are_refused_in_strict_mode() -> None:
    item = {"event": "properties.a", "op": "equals", "profile": "traits.a", "opp": 1}
    assert error_of(daemon_mapping(item), strict=True) == (
        "event-to-profile 'm1': field 'items[0].opp' is not a known field"
    )
    assert EventToProfile.from_dict(daemon_mapping(item)).items[0].profile == "traits.a"
    tracardi = tracardi_mapping({**tracardi_item("properties.a", 0, "traits.a"), "x": 1})
    assert error_of(tracardi, strict=True).endswith(
        "field 'event_to_profile[0].x' is not a known field"
    )


# ------------------------------------------------------------------ the two shapes


def test_tracardi_json_reads_like_the_daemon_toml() -> None:
    from_tracardi = EventToProfile.from_dict(TRACARDI_MAPPING, strict=True)
    (from_toml,) = parse_definitions(tomllib.loads(DAEMON_MAPPING_TOML))
    assert from_tracardi == from_toml
    assert from_tracardi == EventToProfile(
        id="c1",
        name="Email to profile",
        event_type=Ref("identify", "Identify"),
        enabled=True,
        condition="event@properties.email EXISTS",
        items=(
            MappingItem("properties.email", "equals", "data.contact.email.main"),
            MappingItem("properties.tags", "append", "traits.tags"),
        ),
    )
    written = from_tracardi.to_dict()
    assert "event_to_profile" not in written and "config" not in written
    assert written["items"][0] == {
        "event": "properties.email",
        "op": "equals",
        "profile": "data.contact.email.main",
    }
    assert EventToProfile.from_dict(written, strict=True) == from_tracardi


def test_enabled_defaults_differ_by_shape() -> None:
    tracardi = tracardi_mapping()
    del tracardi["enabled"]
    assert EventToProfile.from_dict(tracardi).enabled is False  # Tracardi's default
    item = {"event": "properties.a", "op": "equals", "profile": "traits.a"}
    assert EventToProfile.from_dict(daemon_mapping(item)).enabled is True


def test_config_may_be_empty_or_absent() -> None:
    for config in ({}, {"condition": ""}, None):
        data = tracardi_mapping(config=config)
        if config is None:
            del data["config"]
        assert EventToProfile.from_dict(data, strict=True).condition is None


def test_blank_tracardi_items_are_skipped_but_one_must_remain() -> None:
    blank_event = tracardi_item("", 0, "traits.a")
    blank_profile = tracardi_item("properties.b", 2, "  ")
    mapping = EventToProfile.from_dict(
        tracardi_mapping(blank_event, *TRACARDI_MAPPING["event_to_profile"], blank_profile)
    )
    assert mapping == EventToProfile.from_dict(TRACARDI_MAPPING)
    assert error_of(tracardi_mapping(blank_event, blank_profile)) == (
        "event-to-profile 'c1': field 'event_to_profile' has no item with both an event and a "
        "profile value"
    )
    assert error_of(tracardi_mapping(event_to_profile=[])).startswith(
        "event-to-profile 'c1': field 'event_to_profile' must be a non-empty list"
    )


def test_shapes_do_not_mix() -> None:
    item = {"event": "properties.a", "op": "equals", "profile": "traits.a"}
    assert error_of(tracardi_mapping(items=[item])) == (
        "event-to-profile 'c1': field 'items' cannot be combined with event_to_profile "
        "(Tracardi's shape)"
    )


def test_tracardi_extras_are_ignored_even_in_strict_mode() -> None:
    data = tracardi_mapping(build_in=True, description="From the GUI", tags=["a"])
    mapping = EventToProfile.from_dict(data, strict=True)
    assert mapping.description == "From the GUI"
    assert "tags" not in mapping.to_dict() and "running" not in mapping.to_dict()
    assert error_of(tracardi_mapping(color="red"), strict=True).endswith(
        "field 'color' is not a known field"
    )


# ------------------------------------------------------------------ conditions


@pytest.mark.parametrize(
    "condition",
    [
        "event@properties.email EXISTS",
        'event@properties.plan == "pro"',
        "profile@traits.visits > 3",
    ],
)
def test_good_conditions_are_accepted(condition: str) -> None:
    item = {"event": "properties.a", "op": "equals", "profile": "traits.a"}
    assert (
        EventToProfile.from_dict(daemon_mapping(item, condition=condition)).condition == condition
    )
    tracardi = tracardi_mapping(config={"condition": condition})
    assert EventToProfile.from_dict(tracardi).condition == condition


@pytest.mark.parametrize(
    ("condition", "detail"),
    [
        ("event@properties.email ==", "line 1, column 26: unexpected end of the condition"),
        ('profile@metadata.time.visit.count < "a"', "'a' is not a number"),
        ("properties.email EXISTS", "expected a field like profile@traits.age"),
    ],
)
def test_bad_conditions_are_refused_naming_the_field(condition: str, detail: str) -> None:
    item = {"event": "properties.a", "op": "equals", "profile": "traits.a"}
    message = error_of(daemon_mapping(item, condition=condition))
    assert message.startswith("event-to-profile 'm1': field 'condition' is not a valid condition: ")
    assert detail in message
    message = error_of(tracardi_mapping(config={"condition": condition}))
    assert message.startswith("event-to-profile 'c1': field 'config.condition' is not a valid")
    assert detail in message


def test_condition_schema_is_built_once() -> None:
    assert condition_schema() is condition_schema()


# ------------------------------------------------------------------ event types


def test_event_type_from_tracardi() -> None:
    event_type = EventTypeMapping.from_dict(TRACARDI_EVENT_TYPE, strict=True)
    assert event_type == EventTypeMapping(
        id="purchase",
        name="Purchase",
        event_type="purchase",
        description="A paid order",
        enabled=True,
        index_schema={"order.total": "orders.last_total", "currency": "orders.currency"},
        journey="conversion",
        tags=("commerce",),
    )
    written = event_type.to_dict()
    assert "build_in" not in written and written["tags"] == ["commerce"]
    assert EventTypeMapping.from_dict(written, strict=True) == event_type


def test_event_type_defaults() -> None:
    event_type = EventTypeMapping.from_dict({"event_type": "page-view"}, strict=True)
    assert event_type == EventTypeMapping(
        id="page-view",
        name="page-view",
        event_type="page-view",
        description="",
        enabled=True,
        index_schema={},
        journey=None,
        tags=(),
    )
    assert "journey" not in event_type.to_dict()
    assert EventTypeMapping.from_dict(event_type.to_dict(), strict=True) == event_type
    # Tracardi forces id = event_type; a different id given here is kept
    assert EventTypeMapping.from_dict({"id": "pv", "event_type": "page-view"}).id == "pv"


@pytest.mark.parametrize(
    ("schema", "field", "problem"),
    [
        (
            {"a b": "x"},
            "index_schema.a b",
            "must map a dotted property path to a dotted trait path, got 'a b' = 'x'",
        ),
        ({"price": "traits..price"}, "index_schema.price", "must map a dotted property path"),
        ({"price": 3}, "index_schema.price", "must map a dotted property path"),
        ({"price": {"traits": "price"}}, "index_schema.price", "must map a dotted property path"),
        (
            {"price": "a", "properties.price": "b"},
            "index_schema.properties.price",
            "names property 'price' a second time",
        ),
    ],
)
def test_event_type_bad_index_schema(schema: dict[str, Any], field: str, problem: str) -> None:
    message = error_of({"event_type": "purchase", "index_schema": schema}, EventTypeMapping)
    assert message.startswith(f"event-type 'purchase': field '{field}' {problem}")


def test_event_type_errors() -> None:
    assert error_of({"name": "No type"}, EventTypeMapping) == (
        "event-type (without id): field 'event_type' must be a non-empty string"
    )
    assert error_of({"event_type": "a", "tags": "x"}, EventTypeMapping) == (
        "event-type 'a': field 'tags' must be a list of non-empty strings"
    )
    assert (
        error_of({"event_type": "a", "index_enabled": True}, EventTypeMapping, strict=True)
        == "event-type 'a': field 'index_enabled' is not a known field"
    )


# ------------------------------------------------------------------ Elasticsearch


def test_apply_and_show_tracardi_shaped_definitions(
    es: Elasticsearch,
    settings: Settings,
    run_cli: CliRunner,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "tracardi.json"
    path.write_text(
        json.dumps({"event_to_profile": [TRACARDI_MAPPING], "event-type": [TRACARDI_EVENT_TYPE]}),
        encoding="utf-8",
    )
    assert run_cli("definitions", "apply", str(path)) == 0
    assert "applied 2 definition(s)" in capsys.readouterr().out

    assert run_cli("definitions", "show", "event-type", "purchase") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == EventTypeMapping.from_dict(TRACARDI_EVENT_TYPE).to_dict()
    assert shown["index_schema"] == {
        "order.total": "orders.last_total",
        "currency": "orders.currency",
    }
    assert run_cli("definitions", "show", "event_to_profile", "c1") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["condition"] == "event@properties.email EXISTS"
    assert shown["items"][1] == {
        "event": "properties.tags",
        "op": "append",
        "profile": "traits.tags",
    }

    store = DefinitionStore(es, settings)
    assert store.get(EventToProfile, "c1") == EventToProfile.from_dict(TRACARDI_MAPPING)
    assert [item.id for item in store.list("event-type")] == ["purchase"]
    assert run_cli("definitions", "list", "event_type") == 0
    assert capsys.readouterr().out.splitlines()[1].split() == ["event-type", "purchase", "Purchase"]
    assert run_cli("definitions", "delete", "event-type", "purchase") == 0
    assert store.get("event-type", "purchase") is None


def test_install_creates_the_event_type_index_apart_from_events(
    es: Elasticsearch, settings: Settings
) -> None:
    when = datetime(2024, 2, 10, tzinfo=UTC)
    report = install(es, settings, when)
    event_type_index = base_index_name(settings.tracardi, "event-type")
    assert f"index {event_type_index}" in report.installed
    assert es.indices.get_mapping(index=event_type_index)[event_type_index]["mappings"][
        "properties"
    ]["index_schema"] == {"type": "object", "enabled": False}

    after = status(es, settings, when)
    assert after.missing == () and after.conflicts == ()
    by_kind = {kind.kind: kind for kind in after.kinds}
    # the event partitions' patterns must not pick up the event-type index
    assert by_kind["event"].indices == (index_name(settings.tracardi, "event", when),)
    assert by_kind["event-type"].indices == (event_type_index,)
