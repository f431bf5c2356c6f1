"""Segments, live segments and workflow triggers: Tracardi's stored shapes read to the same
objects as the daemon's, TQL conditions and schedules checked on reading (errors name the
field), dispatch targets, and documents that survive Elasticsearch and the CLI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import schedule
from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.dispatch_targets import TargetKind
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import (
    MACHINE_NAME_MAX,
    Definition,
    LiveSchedule,
    LiveSegment,
    Segment,
    WorkflowTarget,
    WorkflowTrigger,
    machine_name,
    parse_definitions,
)
from tracardi_daemon.model.indices import install
from tracardi_daemon.model.naming import alias_name

from .conftest import CliRunner

SEGMENT: dict[str, Any] = {
    "id": "vip",
    "name": "VIP customers",
    "description": "Frequent buyers",
    "event_type": ["purchase", "page-view"],
    "condition": "profile@stats.visits > 10",
}
LIVE: dict[str, Any] = {
    "id": "live-vip",
    "name": "Live VIP",
    "type": "condition",
    "condition": "profile@traits.orders >= 3",
    "segment": {"id": "vip", "name": "VIP"},
}
WORKFLOW_LIVE: dict[str, Any] = {
    "id": "live-wf",
    "name": "Workflow segmentation",
    "type": "workflow",
    "workflow": {"id": "wf-seg", "name": "Segmenter"},
    "target": "webhook:https://hooks.example.com/segment",
}
TRIGGER: dict[str, Any] = {
    "id": "welcome",
    "name": "Welcome VIPs",
    "type": "segment-add",
    "segment": {"id": "vip", "name": "VIP customers"},
    "workflow": {"id": "wf-1", "name": "Welcome"},
    "target": {"type": "tracker", "source_id": "segment-events"},
}
# what Tracardi's GUI posts to /rule for "Added Segment", with a source chosen
RULE: dict[str, Any] = {
    "id": "welcome",
    "name": "Welcome VIPs",
    "type": "segment-add",
    "segment": {"id": "vip", "name": "VIP customers"},
    "flow": {"id": "wf-1", "name": "Welcome"},
    "source": {"id": "segment-events", "name": "Segment events"},
    "event_type": {"id": "", "name": ""},
    "description": "",
    "tags": ["General"],
    "properties": [],
    "metadata": {"time": {"insert": "2024-03-01T10:00:00"}},
    "enabled": True,
}


def changed(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``data`` with fields replaced; a None value removes the field."""
    result = {**data, **changes}
    return {key: value for key, value in result.items() if value is not None}


def refused(cls: type[Definition], data: dict[str, Any], message: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        cls.from_dict(data, strict=True)
    assert str(caught.value).startswith(message), str(caught.value)
    return str(caught.value)


def round_trips(definition: Definition) -> None:
    assert type(definition).from_dict(definition.to_dict(), strict=True) == definition


# segments


def test_tracardi_segment_reads_as_the_daemon_shape() -> None:
    daemon = Segment.from_dict(SEGMENT, strict=True)
    tracardi = {
        **changed(SEGMENT, event_type=None),
        "eventType": ["purchase", "page-view"],
        "enabled": True,
        "machine_name": None,
        "production": False,
        "running": False,
        "tags": ["General"],
    }
    assert Segment.from_dict(tracardi, strict=True) == daemon
    assert daemon.machine_name == "vip-customers"
    assert daemon.event_type == ("purchase", "page-view")
    assert "eventType" not in daemon.to_dict()
    round_trips(daemon)
    refused(
        Segment,
        {**SEGMENT, "eventType": ["purchase"]},
        "segment 'vip': field 'eventType' cannot be combined with event_type",
    )


def test_machine_name_is_tracardis_rule_and_a_stored_one_wins() -> None:
    assert machine_name("Frequent visitor") == "frequent-visitor"
    assert machine_name("Big Spenders!") == "big-spenders!"  # only spaces change
    stored = Segment.from_dict({**SEGMENT, "machine_name": "vip"}, strict=True)
    assert stored.machine_name == "vip"
    round_trips(stored)


def test_machine_name_of_64_characters_is_the_limit() -> None:
    assert MACHINE_NAME_MAX == 64
    at_limit = Segment.from_dict(changed(SEGMENT, name="A" * 32 + " " + "b" * 31))
    assert len(at_limit.machine_name) == 64
    refused(
        Segment,
        changed(SEGMENT, name="a" * 65),
        "segment 'vip': field 'machine_name' must be at most 64 characters",
    )
    refused(
        Segment,
        changed(SEGMENT, machine_name="m" * 65),
        "segment 'vip': field 'machine_name' must be at most 64 characters",
    )
    # a long name is fine when a short machine name is stored
    assert Segment.from_dict(changed(SEGMENT, name="a" * 65, machine_name="m")).name == "a" * 65
    # Elasticsearch counts UTF-16 code units: an emoji is two
    assert Segment.from_dict(changed(SEGMENT, machine_name="\U0001f600" * 32)).id == "vip"
    refused(
        Segment,
        changed(SEGMENT, machine_name="\U0001f600" * 32 + "a"),
        "segment 'vip': field 'machine_name' must be at most 64 characters",
    )


@pytest.mark.parametrize(
    ("condition", "error"),
    [
        ("profile@stats.visits >", "line 1, column 23: unexpected end of the condition"),
        ("profile@metadata.time.insert > 5", "5 is not a date"),
        ("visits > 10", "line 1, column 1: unexpected 'visits'"),
    ],
)
def test_segment_condition_is_parsed_and_typed(condition: str, error: str) -> None:
    message = refused(
        Segment,
        changed(SEGMENT, condition=condition),
        "segment 'vip': field 'condition' is not a valid condition: ",
    )
    assert error in message


def test_uses_clock() -> None:
    old = Segment.from_dict(
        changed(SEGMENT, condition='profile@metadata.time.insert < now.offset("-30d")'))
    assert old.uses_clock is True
    assert Segment.from_dict(changed(SEGMENT, condition="profile@traits.a == 1")).uses_clock \
        is False


def test_tracardi_extras_are_accepted_only_on_segments() -> None:
    refused(LiveSegment, {**LIVE, "production": True},
            "live-segment 'live-vip': field 'production' is not a known field")


BAD_SEGMENTS_TOML = """
[[segment]]
id = "vip"
name = "VIP customers"
condition = "profile@stats.visits > 20"

[[segment]]
id = "broken"
name = "Broken"
condition = "profile@stats.visits >"
"""


def test_apply_with_one_bad_condition_writes_nothing(
    es: Elasticsearch,
    settings: Settings,
    run_cli: CliRunner,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = DefinitionStore(es, settings)
    good = tmp_path / "good.toml"
    good.write_text('[[segment]]\nid = "vip"\nname = "VIP customers"\n'
                    'condition = "profile@stats.visits > 10"\n', encoding="utf-8")
    assert run_cli("definitions", "apply", str(good)) == 0
    before = store.list(Segment)
    assert [segment.condition for segment in before] == ["profile@stats.visits > 10"]
    capsys.readouterr()

    bad = tmp_path / "bad.toml"
    bad.write_text(BAD_SEGMENTS_TOML, encoding="utf-8")
    assert run_cli("definitions", "apply", str(bad)) == 1
    err = capsys.readouterr().err
    assert "nothing applied" in err
    assert ("segment 'broken': field 'condition' is not a valid condition: line 1, column 23: "
            "unexpected end of the condition") in err
    assert store.list(Segment) == before  # the good segment of the file was not written
    assert store.get(Segment, "broken") is None


# live segments


@pytest.mark.parametrize(
    "query",
    ["traits.orders:>=3 AND NOT segments:churn", {"range": {"traits.orders": {"gte": 3}}}],
)
def test_live_segment_query_as_lucene_text_or_object(query: str | dict[str, Any]) -> None:
    data = changed(LIVE, type="query", condition=None, query=query)
    live = LiveSegment.from_dict(data, strict=True)
    assert live.query == query and live.condition is None
    round_trips(live)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"type": "query", "condition": None, "query": "  "}, "field 'query' must be a Lucene"),
        ({"type": "query", "condition": None, "query": []}, "field 'query' must be a Lucene"),
        ({"type": "query", "query": "a:b"}, "field 'condition' is only for type condition or "
                                           "workflow, not 'query'"),
        ({"query": "a:b"}, "field 'query' is only for type query, not 'condition'"),
        ({"target": "stream:x"}, "field 'target' is only for type workflow, not 'condition'"),
        ({"workflow": {"id": "w"}}, "field 'workflow' is only for type workflow"),
        ({"condition": None}, "field 'condition' must be a non-empty string"),
        ({"condition": "profile@traits.orders >= "}, "field 'condition' is not a valid "
                                                     "condition: line 1, column 25"),
        ({"segment": None}, "field 'segment' must be a table/object"),
        ({"operation": "toggle"}, "field 'operation' must be one of add, remove, sync"),
        ({"type": "code"}, "field 'type' must be one of condition, query, workflow"),
    ],
)
def test_live_segment_errors_name_the_field(changes: dict[str, Any], message: str) -> None:
    refused(LiveSegment, changed(LIVE, **changes), f"live-segment 'live-vip': {message}")


def test_workflow_live_segment_needs_a_target() -> None:
    refused(LiveSegment, changed(WORKFLOW_LIVE, target=None),
            "live-segment 'live-wf': field 'target' is required and must be a string "
            '"webhook:URL"')
    refused(LiveSegment, changed(WORKFLOW_LIVE, target="tracker:"),
            "live-segment 'live-wf': field 'target.source_id' is required for a tracker target")
    live = LiveSegment.from_dict(WORKFLOW_LIVE, strict=True)
    assert live.target == WorkflowTarget(TargetKind.WEBHOOK, "https://hooks.example.com/segment")
    assert live.condition is None and live.segment is None  # every profile, workflow decides
    assert live.operation == "add" and live.schedule == LiveSchedule(every="1h")
    round_trips(live)
    chosen = LiveSegment.from_dict(
        changed(WORKFLOW_LIVE, condition="profile@traits.orders > 0",
                segment={"id": "buyers"},
                target={"type": "tracker", "source_id": "seg", "url": "https://tracardi-api"}),
        strict=True)
    assert chosen.condition == "profile@traits.orders > 0"
    assert chosen.target is not None
    assert chosen.target.dispatch_target() == "tracker:https://tracardi-api"
    assert chosen.target.source_id == "seg"
    round_trips(chosen)


@pytest.mark.parametrize(
    ("table", "expected", "interval_s"),
    [
        ({"every": "15m"}, LiveSchedule(every="15m"), 900),
        ({"every": "1m"}, LiveSchedule(every="1m"), 60),
        ({"every": "90s"}, LiveSchedule(every="90s"), 90),
        ({"every": "2h"}, LiveSchedule(every="2h"), 7200),
        ({"every": "1d"}, LiveSchedule(every="1d"), 86400),
        ({"at": "02:00"}, LiveSchedule(at="02:00"), None),
        ({"at": "23:59"}, LiveSchedule(at="23:59"), None),
    ],
)
def test_schedule_forms(table: dict[str, str], expected: LiveSchedule,
                        interval_s: int | None) -> None:
    live = LiveSegment.from_dict({**LIVE, "schedule": table}, strict=True)
    assert live.schedule == expected and live.schedule.interval_s == interval_s
    assert live.to_dict()["schedule"] == table
    round_trips(live)

    scheduler = schedule.Scheduler()
    runs: list[str] = []
    job = live.schedule_job(scheduler, lambda: runs.append(live.id))
    assert scheduler.jobs == [job]
    if interval_s is None:
        assert (job.unit, job.interval, job.at_time.strftime("%H:%M")) == ("days", 1, table["at"])
    else:
        assert (job.unit, job.interval) == ("seconds", interval_s)
    job.run()
    assert runs == ["live-vip"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"every": "30s"}, "field 'schedule.every' must be at least 1 minute, got '30s'"),
        ({"every": "0m"}, "field 'schedule.every' must be at least 1 minute"),
        ({"every": "15"}, "field 'schedule.every' must be a whole number and a unit s, m, h"),
        ({"every": "1w"}, "field 'schedule.every' must be a whole number and a unit s, m, h"),
        ({"every": "1h30m"}, "field 'schedule.every' must be a whole number and a unit"),
        ({"every": 15}, "field 'schedule.every' must be a whole number and a unit"),
        ({"at": "2:00"}, "field 'schedule.at' must be a daily time HH:MM"),
        ({"at": "02:00:30"}, "field 'schedule.at' must be a daily time HH:MM"),
        # refused by the schedule package itself, as the role would be
        ({"at": "24:00"}, "field 'schedule.at' must be a time of day from 00:00 to 23:59, got "
                          "'24:00' (the scheduler refused it: Invalid number of hours"),
        ({"at": "12:60"}, "field 'schedule.at' must be a time of day from 00:00 to 23:59, got "
                          "'12:60' (the scheduler refused it: Invalid time format"),
        ({}, "field 'schedule' must hold exactly one of every"),
        ({"every": "1h", "at": "02:00"}, "field 'schedule' must hold exactly one of every"),
        ({"every": "1h", "cron": "* * * * *"}, "field 'schedule.cron' is not a known field"),
    ],
)
def test_bad_schedules_name_the_field(table: dict[str, Any], message: str) -> None:
    refused(LiveSegment, {**LIVE, "schedule": table}, f"live-segment 'live-vip': {message}")


def test_schedule_must_be_a_table() -> None:
    refused(LiveSegment, {**LIVE, "schedule": "15m"},
            "live-segment 'live-vip': field 'schedule' must be a table/object")


# workflow triggers


@pytest.mark.parametrize(
    ("target", "dispatch", "source_id"),
    [
        ("webhook:https://hooks.example.com/p?x=1", "webhook:https://hooks.example.com/p?x=1",
         None),
        ({"type": "webhook", "url": "https://hooks.example.com/p"},
         "webhook:https://hooks.example.com/p", None),
        ("stream:segment-changes", "stream:segment-changes", None),
        ({"type": "stream", "stream": "segment-changes"}, "stream:segment-changes", None),
        ({"type": "tracker", "source_id": "src-1"}, "tracker:", "src-1"),
        ({"type": "tracker", "source_id": "src-1", "url": "https://tracardi-api"},
         "tracker:https://tracardi-api", "src-1"),
    ],
)
def test_trigger_target_forms(target: str | dict[str, str], dispatch: str,
                              source_id: str | None) -> None:
    trigger = WorkflowTrigger.from_dict({**TRIGGER, "target": target}, strict=True)
    assert trigger.dispatch_target() == dispatch
    assert trigger.source_id == source_id
    round_trips(trigger)


def test_string_and_table_targets_read_the_same() -> None:
    def read(target: Any) -> WorkflowTrigger:
        return WorkflowTrigger.from_dict({**TRIGGER, "target": target}, strict=True)

    assert read("webhook:https://h.example.com/x") == read(
        {"type": "webhook", "url": "https://h.example.com/x"})
    assert read("stream:s1") == read({"type": "stream", "stream": "s1"})


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("tracker:", "field 'target.source_id' is required for a tracker target (the Tracardi "
                     'event source of its /track call): write target as a table {type = '
                     '"tracker"'),
        ("tracker:https://tracardi-api", "field 'target.source_id' is required for a tracker"),
        ("tracker", "field 'target.source_id' is required for a tracker"),
        ({"type": "tracker"}, "field 'target.source_id' is required for a tracker"),
        ({"type": "tracker", "source_id": " "}, "field 'target.source_id' must be a non-empty"),
        ({"type": "tracker", "source_id": "s", "url": "ftp://x"},
         "field 'target.url' is not valid: target 'tracker:ftp://x': URL 'ftp://x' must start "
         "with http:// or https://"),
        ("webhook:", "field 'target' is not a dispatch target: target 'webhook:': URL ''"),
        ("email:someone", "field 'target' is not a dispatch target: target 'email:someone': "
                          "unknown kind 'email'"),
        ("stream:has space", "field 'target' is not a dispatch target: target 'stream:has "
                             "space': stream name"),
        ({"type": "webhook"}, "field 'target.url' must be an http:// or https:// URL for a "
                              "webhook target"),
        ({"type": "webhook", "url": "https://h.example.com", "stream": "s"},
         "field 'target.stream' is not a known field"),
        ({"type": "stream", "stream": ""}, "field 'target.stream' must be a non-empty stream "
                                           "name for a stream target"),
        ({"type": "mail"}, "field 'target.type' must be one of tracker, webhook, stream, flow, got "
                           "'mail'"),
        (None, "field 'target' is required and must be a string"),
        (42, "field 'target' must be a string"),
    ],
)
def test_bad_trigger_targets_name_the_field(target: Any, message: str) -> None:
    refused(WorkflowTrigger, changed(TRIGGER, target=target),
            f"workflow-trigger 'welcome': {message}")


def test_webhook_credentials_are_masked_in_errors() -> None:
    message = refused(WorkflowTrigger, changed(TRIGGER, target="webhook:ftp://user:secret@h"),
                      "workflow-trigger 'welcome': field 'target'")
    assert "secret" not in message


def test_trigger_event_type_and_enabled() -> None:
    added = WorkflowTrigger.from_dict(TRIGGER, strict=True)
    assert (added.event_type, added.enabled) == ("segment-added", True)
    removed = WorkflowTrigger.from_dict(changed(TRIGGER, type="segment-remove"), strict=True)
    assert removed.event_type == "segment-removed"
    custom = WorkflowTrigger.from_dict(changed(TRIGGER, event_type="vip-joined", enabled=False),
                                       strict=True)
    assert (custom.event_type, custom.enabled) == ("vip-joined", False)
    round_trips(custom)
    refused(WorkflowTrigger, changed(TRIGGER, event_type={"id": "x"}),
            "workflow-trigger 'welcome': field 'event_type' must be a non-empty string")
    refused(WorkflowTrigger, changed(TRIGGER, type="segment-change"),
            "workflow-trigger 'welcome': field 'type' must be one of segment-add, "
            "segment-remove, got 'segment-change'")


def test_tracardi_rule_reads_as_the_daemon_shape() -> None:
    daemon = WorkflowTrigger.from_dict(TRIGGER, strict=True)
    rule = WorkflowTrigger.from_dict(RULE, strict=True)
    assert rule == daemon
    assert rule.dispatch_target() == "tracker:" and rule.source_id == "segment-events"
    assert rule.to_dict() == {**TRIGGER, "event_type": "segment-added", "enabled": True}
    round_trips(rule)
    # a target given with the rule wins; source.id fills in the tracker's source
    with_api = WorkflowTrigger.from_dict({**RULE, "target": "tracker:https://tracardi-api"})
    assert with_api.dispatch_target() == "tracker:https://tracardi-api"
    assert with_api.source_id == "segment-events"
    hooked = WorkflowTrigger.from_dict({**RULE, "target": "webhook:https://h.example.com"})
    assert hooked.source_id is None


@pytest.mark.parametrize("source", [{"id": "", "name": ""}, {"id": "  "}, None])
def test_a_gui_made_rule_without_source_runs_its_flow(source: Any) -> None:
    """Tracardi's GUI saves a segment rule with no event source: no /track could route
    to its flow, so the flow itself is the target (run in Tracardi's engine)."""
    rule = WorkflowTrigger.from_dict(changed(RULE, source=source), strict=True)
    assert rule.dispatch_target() == "flow:" and rule.source_id is None
    assert rule.target.to_dict() == {"type": "flow"}
    round_trips(rule)
    # a target given with the rule still wins
    hooked = WorkflowTrigger.from_dict({**changed(RULE, source=source),
                                        "target": "webhook:https://h.example.com"})
    assert hooked.dispatch_target() == "webhook:https://h.example.com"


def test_the_daemons_trigger_may_name_a_flow_target() -> None:
    for target in ("flow:", {"type": "flow"}):
        trigger = WorkflowTrigger.from_dict(changed(TRIGGER, target=target), strict=True)
        assert trigger.dispatch_target() == "flow:"
        round_trips(trigger)
    refused(WorkflowTrigger, changed(TRIGGER, target={"type": "flow", "url": "http://x"}),
            "workflow-trigger 'welcome': field 'target.url' is not a known field")
    refused(WorkflowTrigger, changed(TRIGGER, target="flow:somewhere"),
            "workflow-trigger 'welcome': field 'target' is not a dispatch target: target "
            "'flow:somewhere': a flow target has no address")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"source": {"id": 7}}, "field 'source.id' must be a string"),
        ({"type": "event-collect"}, "field 'type' must be one of segment-add, segment-remove, "
                                    "got 'event-collect'"),
        ({"type": None}, "field 'type' must be one of segment-add, segment-remove, got None"),
        ({"workflow": {"id": "wf-2"}}, "field 'flow' cannot be combined with workflow"),
        ({"flow": {"name": "no id"}}, "field 'flow' must be a table/object with a non-empty"),
    ],
)
def test_bad_tracardi_rules_name_the_field(changes: dict[str, Any], message: str) -> None:
    refused(WorkflowTrigger, changed(RULE, **changes), f"workflow-trigger 'welcome': {message}")


# the stored documents


def test_definitions_survive_elasticsearch(es: Elasticsearch, settings: Settings) -> None:
    install(es, settings)
    store = DefinitionStore(es, settings)
    document = {
        "segment": [SEGMENT],
        "live-segment": [
            LIVE,
            changed(LIVE, id="by-text", type="query", condition=None, query="traits.vip:true",
                    schedule={"at": "02:00"}),
            changed(LIVE, id="by-dsl", type="query", condition=None,
                    query={"term": {"traits.vip": True}}, schedule={"every": "15m"}),
            WORKFLOW_LIVE,
        ],
        "workflow-trigger": [TRIGGER, changed(RULE, id="from-rule")],
    }
    definitions = parse_definitions(document)
    assert store.upsert_many(definitions) == 7
    for definition in definitions:
        assert store.get(type(definition), definition.id) == definition
    mapping = es.indices.get_mapping(index=alias_name(settings.tracardi, "live-segment"))
    properties = next(iter(mapping.values()))["mappings"]["properties"]
    assert properties["query"] == properties["target"] == properties["schedule"] == {
        "type": "object", "enabled": False}


def test_errors_are_collected_per_definition() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_definitions({
            "segment": [SEGMENT, changed(SEGMENT, id="bad", condition="profile@stats.visits >")],
            "live_segment": [changed(WORKFLOW_LIVE, target=None)],
            "workflow_trigger": [changed(RULE, source={"id": 7})],
        })
    lines = str(caught.value).splitlines()
    assert [re.sub(r"'\s.*", "'", line) for line in lines] == [
        "segment 'bad': field 'condition'",
        "live-segment 'live-wf': field 'target'",
        "workflow-trigger 'welcome': field 'source.id'",
    ]
