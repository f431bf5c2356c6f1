"""Definition models: every validation error names the kind, the id and the field; valid
definitions survive to_dict/from_dict unchanged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.model.definitions import (
    DEFINITION_TYPES,
    EventToProfile,
    EventTypeMapping,
    LiveSchedule,
    LiveSegment,
    Segment,
    Task,
    WorkflowTrigger,
    definition_type,
    parse_definitions,
)

VALID: dict[str, dict[str, Any]] = {
    "segment": {
        "id": "vip",
        "name": "VIP customers",
        "event_type": ["purchase"],
        "condition": "profile@stats.visits > 10",
    },
    "live-segment": {
        "id": "ls1",
        "name": "Live VIP",
        "type": "condition",
        "condition": "profile@traits.vip == true",
        "segment": {"id": "vip", "name": "VIP"},
        "operation": "sync",
    },
    "event-to-profile": {
        "id": "m1",
        "name": "Email",
        "event_type": {"id": "identify", "name": "Identify"},
        "items": [
            {"event": "properties.email", "op": "equals", "profile": "data.contact.email.main"}
        ],
    },
    "event-type": {
        "id": "purchase",
        "name": "Purchase",
        "event_type": "purchase",
        "description": "A paid order",
        "enabled": False,
        "index_schema": {"order.total": "orders.last_total"},
        "journey": "conversion",
        "tags": ["commerce"],
    },
    "workflow-trigger": {
        "id": "w1",
        "name": "Welcome",
        "type": "segment-add",
        "segment": {"id": "vip", "name": "VIP"},
        "workflow": {"id": "wf", "name": "Welcome flow"},
        "target": {"type": "webhook", "url": "https://example.com/h"},
    },
    "import": {"id": "i1", "name": "CSV", "source": "csv",
               "config": {"path": "x.csv", "target": "profiles", "key": "email",
                          "fields": {"email": "data.email"}}},
    "task": {
        "id": "t1",
        "name": "Import",
        "type": "import",
        "status": "running",
        "progress": 42.5,
        "created": "2024-03-01T10:00:00+00:00",
        "params": {"a": 1},
    },
}


def with_fields(kind: str, **changes: Any) -> dict[str, Any]:
    data = dict(VALID[kind])
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


# (kind, data, expected message)
INVALID = [
    (
        "segment",
        with_fields("segment", condition=None),
        "segment 'vip': field 'condition' must be a non-empty string",
    ),
    (
        "segment",
        with_fields("segment", condition="  "),
        "segment 'vip': field 'condition' must be a non-empty string",
    ),
    (
        "segment",
        with_fields("segment", id=None),
        "segment (without id): field 'id' must be a non-empty string",
    ),
    (
        "segment",
        with_fields("segment", name=""),
        "segment 'vip': field 'name' must be a non-empty string",
    ),
    (
        "segment",
        with_fields("segment", event_type="purchase"),
        "segment 'vip': field 'event_type' must be a list of non-empty strings",
    ),
    (
        "segment",
        with_fields("segment", enabled="yes"),
        "segment 'vip': field 'enabled' must be true or false",
    ),
    (
        "live-segment",
        with_fields("live-segment", type="magic"),
        "live-segment 'ls1': field 'type' must be one of condition, query, workflow",
    ),
    (
        "live-segment",
        with_fields("live-segment", condition=None),
        "live-segment 'ls1': field 'condition' must be a non-empty string",
    ),
    (
        "live-segment",
        with_fields("live-segment", type="query", query={}, condition=None),
        "live-segment 'ls1': field 'query' must be a Lucene query string (Tracardi's form) "
        "or a non-empty Elasticsearch query object",
    ),
    (
        "live-segment",
        with_fields("live-segment", type="workflow"),
        "live-segment 'ls1': field 'workflow' must be a table/object",
    ),
    (
        "live-segment",
        with_fields("live-segment", segment={"name": "no id"}),
        "live-segment 'ls1': field 'segment' must be a table/object with a non-empty",
    ),
    (
        "live-segment",
        with_fields("live-segment", operation="toggle"),
        "live-segment 'ls1': field 'operation' must be one of add, remove, sync",
    ),
    (
        "event-to-profile",
        with_fields("event-to-profile", items=[]),
        "event-to-profile 'm1': field 'items' must be a non-empty list",
    ),
    (
        "event-to-profile",
        with_fields(
            "event-to-profile",
            items=[
                {"event": "properties.a", "op": "equals", "profile": "traits.a"},
                {"event": "properties.b", "op": "replace", "profile": "traits.b"},
            ],
        ),
        "event-to-profile 'm1': field 'items[1].op' must be one of equals, "
        "equals_if_not_exists, append, increment, decrement, delete",
    ),
    (
        "event-to-profile",
        with_fields(
            "event-to-profile",
            items=[{"event": "properties..a", "op": "equals", "profile": "traits.a"}],
        ),
        "event-to-profile 'm1': field 'items[0].event' must be a dotted path",
    ),
    (
        "event-to-profile",
        with_fields(
            "event-to-profile",
            items=[{"event": "properties.a", "op": "append", "profile": "traits a"}],
        ),
        "event-to-profile 'm1': field 'items[0].profile' must be a dotted path",
    ),
    (
        "event-to-profile",
        with_fields("event-to-profile", event_type=None),
        "event-to-profile 'm1': field 'event_type' must be a table/object",
    ),
    (
        "event-to-profile",
        with_fields("event-to-profile", condition=""),
        "event-to-profile 'm1': field 'condition' must be a non-empty string",
    ),
    (
        "event-type",
        with_fields("event-type", event_type=None),
        "event-type 'purchase': field 'event_type' must be a non-empty string",
    ),
    (
        "workflow-trigger",
        with_fields("workflow-trigger", type="segment-change"),
        "workflow-trigger 'w1': field 'type' must be one of segment-add, segment-remove",
    ),
    (
        "workflow-trigger",
        with_fields("workflow-trigger", target={"type": "webhook"}),
        "workflow-trigger 'w1': field 'target.url' must be an http:// or https:// URL",
    ),
    (
        "workflow-trigger",
        with_fields("workflow-trigger", target={"type": "stream"}),
        "workflow-trigger 'w1': field 'target.stream' must be a non-empty stream name",
    ),
    (
        "workflow-trigger",
        with_fields("workflow-trigger", target="email"),
        "workflow-trigger 'w1': field 'target' is not a dispatch target: target 'email': "
        "expected KIND:ADDRESS",
    ),
    (
        "workflow-trigger",
        with_fields("workflow-trigger", target={"type": "email"}),
        "workflow-trigger 'w1': field 'target.type' must be one of tracker, webhook, stream, flow",
    ),
    (
        "workflow-trigger",
        with_fields("workflow-trigger", workflow=None),
        "workflow-trigger 'w1': field 'workflow' must be a table/object",
    ),
    (
        "import",
        with_fields("import", source=None),
        "import 'i1': field 'source' must be a non-empty string",
    ),
    (
        "import",
        with_fields("import", config="path=x.csv"),
        "import 'i1': field 'config' must be a table/object",
    ),
    (
        "task",
        with_fields("task", progress=150),
        "task 't1': field 'progress' must be a number from 0 to 100",
    ),
    (
        "task",
        with_fields("task", progress=True),
        "task 't1': field 'progress' must be a number from 0 to 100",
    ),
    (
        "task",
        with_fields("task", created="yesterday"),
        "task 't1': field 'created' must be an ISO 8601 date and time",
    ),
    (
        "task",
        with_fields("task", status="done"),
        "task 't1': field 'status' must be one of pending, running, finished, failed, cancelled",
    ),
]


@pytest.mark.parametrize(("kind", "data", "message"), INVALID)
def test_validation_errors_name_id_and_field(kind: str, data: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        definition_type(kind).from_dict(data)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_definitions_round_trip(kind: str) -> None:
    cls = definition_type(kind)
    definition = cls.from_dict(VALID[kind], strict=True)
    assert cls.kind == kind
    assert cls.from_dict(definition.to_dict(), strict=True) == definition


def test_defaults_and_normalisation() -> None:
    segment = Segment.from_dict(
        {"id": "a", "name": "Big Spenders!", "condition": "profile@traits.a == 1"})
    assert segment.machine_name == "big-spenders!"  # Tracardi: only spaces become dashes
    assert segment.enabled is True and segment.event_type == ()
    trigger = WorkflowTrigger.from_dict(VALID["workflow-trigger"])
    assert trigger.dispatch_target() == "webhook:https://example.com/h"
    assert trigger.event_type == "segment-added" and trigger.enabled is True
    live = LiveSegment.from_dict(with_fields("live-segment", operation=None))
    assert live.operation == "add" and live.query is None
    assert live.schedule == LiveSchedule(every="1h")
    assert "query" not in live.to_dict() and "workflow" not in live.to_dict()
    task = Task.from_dict(with_fields("task", created=datetime(2024, 3, 1, 10)))
    assert task.created == datetime(2024, 3, 1, 10, tzinfo=UTC)
    mapping = EventToProfile.from_dict(VALID["event-to-profile"])
    assert mapping.condition is None and mapping.items[0].op == "equals"
    assert mapping.to_dict()["items"] == VALID["event-to-profile"]["items"]


def test_strict_mode_rejects_unknown_fields_only_when_asked() -> None:
    typo = with_fields("segment", conditon="x")
    with pytest.raises(InvalidInput, match="segment 'vip': field 'conditon' is not a known"):
        Segment.from_dict(typo, strict=True)
    assert Segment.from_dict(typo).id == "vip"  # documents stored by Tracardi may have more


def test_kind_names_accept_underscores() -> None:
    assert definition_type("event_to_profile") is EventToProfile
    assert definition_type("event_type") is definition_type("event-type") is EventTypeMapping
    assert set(DEFINITION_TYPES) == set(VALID)
    with pytest.raises(InvalidInput, match="unknown definition kind 'segments'"):
        definition_type("segments")


def test_parse_definitions_reports_every_error_and_returns_nothing() -> None:
    document = {
        "segment": [VALID["segment"], with_fields("segment", id="bad", condition=None)],
        "event_to_profile": [with_fields("event-to-profile", items=[])],
        "task": [VALID["task"], VALID["task"]],
        "nonsense": [],
    }
    with pytest.raises(InvalidInput) as caught:
        parse_definitions(document)
    lines = str(caught.value).splitlines()
    assert lines == [
        "segment 'bad': field 'condition' must be a non-empty string",
        "event-to-profile 'm1': field 'items' must be a non-empty list of {event, op, profile}",
        "task 't1': field 'id' is used twice",
        "unknown definition kind 'nonsense'; expected one of segment, live-segment, "
        "event-to-profile, event-type, workflow-trigger, import, task",
    ]
    assert len(parse_definitions({"segment": [VALID["segment"]]})) == 1
