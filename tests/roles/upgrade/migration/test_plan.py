"""Migration plans: the daemon's form, Tracardi's plan files, shipped plans, round trips
and the source -> target index names of a step."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tracardi_daemon.config.settings import TracardiSettings
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.model.tracardi_names import Layout
from tracardi_daemon.roles.upgrade.migration.plan import Plan, Step, resolve_targets
from tracardi_daemon.roles.upgrade.migration.plan_files import (
    load_plan,
    shipped_plan,
    shipped_plans,
)
from tracardi_daemon.roles.upgrade.migration.tracardi_plan import read_tracardi_plan
from tracardi_daemon.roles.upgrade.migration.transforms import Move, apply_all

PLAN_TOML = """
from = {version = "08x"}
to = {version = "0820", tenant = "acme", production = true}

[[step]]
id = "profile"
index = "tracardi-profile"
multi = true
collapse = "quarter"
asynchronous = true
transforms = [
    {op = "move", from = "data.contact.email", to = "data.contact.email.main"},
    {op = "convert", path = "metadata.time.insert", to = "date"},
]

[[step]]
id = "bridge"
index = "tracardi-bridge"
static = true
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def daemon_plan(**step: Any) -> dict[str, Any]:
    return {"from": {"version": "0820"}, "step": [{"id": "s", **step}]}


def test_the_daemons_toml_form(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, "plan.toml", PLAN_TOML))
    assert plan.source == Layout("08x", "01506")
    assert plan.target == Layout("0820", "acme", production=True)
    profile, bridge = plan.steps
    assert profile.id == "profile" and profile.multi and profile.asynchronous
    assert profile.collapse == "quarter" and profile.painless is None
    assert profile.transforms[0] == Move("data.contact.email", "data.contact.email.main")
    assert bridge == Step(id="bridge", index="tracardi-bridge", static=True)


def test_absent_target_is_the_daemons_layout() -> None:
    plan = Plan.from_dict(daemon_plan(index="tracardi-segment"))
    assert plan.target is None
    settings = TracardiSettings(tenant="acme", db_version="100")
    assert plan.target_layout(settings) == Layout.from_settings(settings)


def test_round_trip_is_json() -> None:
    plan = Plan.from_dict({
        "from": {"version": "08x", "production": True},
        "to": {"version": "100", "tenant": "acme", "style": "daemon", "partitioning": "year"},
        "step": [
            {"id": "p", "index": "tracardi-profile", "multi": True, "collapse": "target",
             "transforms": [{"op": "set", "path": "data.anonymous", "value": None}]},
            {"id": "m", "index": "tracardi-event_to_profile",
             "target_index": "tracardi-event-to-profile", "production": False},
        ],
    })
    stored = json.loads(json.dumps(plan.to_dict()))
    assert Plan.from_dict(stored) == plan
    assert stored["to"]["partitioning"] == "year"


@pytest.mark.parametrize(("plan", "message"), [
    (daemon_plan(index="tracardi-x", collapse="month", multi=True),
     "step 's': field 'collapse' must be one of quarter, year, target, got 'month'"),
    (daemon_plan(index="tracardi-x", collapse="quarter"),
     "step 's': field 'collapse' is for partitioned (multi) indices only"),
    (daemon_plan(index="Tracardi X"), "step 's': field 'index' must be lower case"),
    (daemon_plan(index="tracardi-x", multi="yes"),
     "step 's': field 'multi' must be true or false"),
    (daemon_plan(index="tracardi-x", mutli=True), "step 's': field 'mutli' is not a known"),
    (daemon_plan(index="tracardi-x", static=True, multi=True),
     "step 's': field 'static' cannot be combined with multi"),
    (daemon_plan(index="tracardi-x", painless="ctx._source.a = 1;", transforms=[
        {"op": "delete", "path": "a"}]), "step 's': field 'painless' cannot be combined"),
    (daemon_plan(index="tracardi-x", transforms=[{"op": "delete", "path": "a"},
                                                 {"op": "move", "from": "a", "to": ""}]),
     "step 's': field 'transforms[1].to' must be a dotted path"),
    ({"from": {"version": "0820"}, "step": [{"index": "tracardi-x"}]},
     "step (without id): field 'id' must be a non-empty string"),
    ({"from": {"version": "0820"}, "step": [{"id": "a", "index": "tracardi-segment"},
                                            {"id": "a", "index": "tracardi-segment"}]},
     "step 'a': field 'id' is not unique: steps 0 and 1 share it"),
    # the target is the daemon: only its kinds, partitioned as it partitions them
    (daemon_plan(index="tracardi-flow"),
     "step 's': field 'index' must be one of the daemon's indices"),
    (daemon_plan(index="tracardi-profile"),
     "step 's': field 'index' 'tracardi-profile' is partitioned in the daemon"),
    (daemon_plan(index="tracardi-rule", target_index="tracardi-workflow-trigger", multi=True),
     "step 's': field 'target_index' 'tracardi-workflow-trigger' is a single index"),
    ({"from": {"version": "0820"}, "to": {"version": "09x"},
      "step": [{"id": "s", "index": "tracardi-profile", "multi": True, "collapse": "target"}]},
     "step 's': field 'collapse' 'target' needs a daemon target layout"),
    ({"from": {"version": "0820"}, "to": {"version": "1", "tenant": "t", "style": "daemon"},
      "step": [{"id": "s", "index": "tracardi-profile", "multi": True, "collapse": "target"}]},
     "step 's': field 'collapse' 'target' needs the target layout's partitioning"),
    ({"from": {"tenant": "x"}, "step": []}, "plan 'from': field 'version' must be"),
    ({"from": {"version": "08x", "style": "old"}, "step": []},
     "plan 'from': field 'style' must be one of tracardi, daemon, got 'old'"),
    ({"from": {"version": "08x", "partitioning": "month"}, "step": []},
     "plan 'from': field 'partitioning' is for daemon layouts only"),
    ({"from": {"version": "08x", "tennant": "x"}, "step": []},
     "plan 'from': field 'tennant' is not a known field"),
    ({"from": {"version": "08x"}, "step": []}, "plan: field 'step' must be a non-empty list"),
    ({"from": {"version": "08x"}, "step": ["profile"]},
     "plan: field 'step[0]' must be a table/object"),
    ({"from": {"version": "100", "style": "daemon"}, "step": []},
     "plan 'from': field 'tenant' is required for a daemon layout"),
    ({"from": {"version": "08x"}, "steps": []}, "plan: field 'steps' is not a known field"),
    ({"step": []}, "plan: field 'from' must be a table/object"),
])
def test_errors_name_the_step_and_field(plan: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Plan.from_dict(plan)
    assert str(caught.value).startswith(message), str(caught.value)


# Tracardi's plan files

# Tracardi 0.8.2's profile script (08x_to_0820.json)
PROFILE_0820 = """Map row = new HashMap();
String x = null;
String y = null;
if(ctx._source.data!=null && ctx._source.data.contact!=null) {
  x=  ctx._source.data.contact.email ?: "";
  y = ctx._source.data.contact.phone ?: "";
}

row.putAll(ctx._source);

if (row.data == null) {
    row.data = new HashMap();
}

if (row.data.contact == null) {
    row.data.contact = new HashMap();
}

row.data.contact.email = new HashMap();
row.data.contact.phone = new HashMap();

if(x != null) row.data.contact.email.main = x;
if(y != null) row.data.contact.phone.main = y;

row.data.anonymous = null;
if(ctx._source.data.pii.name!=null) row.data.pii.display_name = ctx._source.data.pii.name;
row.data.devices.other = ctx._source.data.devices.names;
try { row.data.devices.remove("names"); } catch(Exception e) {}
try { row.data.pii.remove("name"); } catch(Exception e) {}

ctx._source = [:];
ctx._source.putAll(row);"""
OTHER_SCRIPT = "ctx._source.remove('traits');"


def tracardi_entry(ident: str, index: str, *, multi: bool = False,
                   script: str | None = None, worker: str = "reindex",
                   **extra: Any) -> dict[str, Any]:
    copy_index = {"from_index": index, "to_index": index, "multi": multi, "script": script}
    copy_index.update(extra.pop("copy_index", {}))
    return {"id": ident, "copy_index": copy_index, "worker": worker, "conflicts": None,
            "asynchronous": True, **extra}


TRACARDI_PLAN: list[Any] = [
    "Added indices: ; removed indices: ",
    tracardi_entry("864d5521", "tracardi-profile", multi=True, script=PROFILE_0820,
                   worker="reindex_to_one_index",
                   params={"partitioning": "quarter", "replace": "(\\d{4}-\\d+)$"},
                   conflicts=[{"name": "data.metrics.custom", "old_type": "flattened",
                               "new_type": "object"}]),
    tracardi_entry("845b5f68", "tracardi-event-reshaping",
                   script='Map row = new HashMap();\nrow.putAll(ctx._source);\n'
                          'row.remove("mapping");\nctx._source = [:];\nctx._source.putAll(row);'),
    tracardi_entry("0fd59b15", "tracardi-flow", script=OTHER_SCRIPT,
                   wait_for_completion=True),
    "Production",
    tracardi_entry("0fd59b15", "tracardi-flow", copy_index={"production": True}),
    tracardi_entry("aa11", "tracardi-bridge", copy_index={"static": True}),
    tracardi_entry("bb22", "tracardi-validator", copy_index={"to_index": "tracardi-validation"}),
]


def test_read_tracardi_plan() -> None:
    plan = read_tracardi_plan(TRACARDI_PLAN, "08x", "0820")
    assert plan.source == Layout("08x", "01506") and plan.target == Layout("0820", "ffe49")
    profile, reshaping, flow, flow_prod, bridge, renamed = plan.steps
    # every script is kept and compiled for the daemon's interpreter, none translated
    assert profile.painless == PROFILE_0820 and profile.transforms == ()
    assert profile.collapse == "quarter" and profile.multi and profile.script is not None
    assert reshaping.painless is not None and 'row.remove("mapping")' in reshaping.painless
    assert reshaping.transforms == () and reshaping.script is not None
    assert flow.painless == OTHER_SCRIPT and flow.transforms == ()
    # the plan lists the production copy too: this one copies staging alone
    assert flow.id == "0fd59b15" and flow.production is False
    assert flow_prod.id == "0fd59b15-prod" and flow_prod.production is True
    assert bridge.static and bridge.index == "tracardi-bridge"
    assert renamed.target_name == "tracardi-validation"
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_a_script_the_interpreter_refuses_refuses_the_plan_naming_step_and_place(
        tmp_path: Path) -> None:
    script = "Map row = new HashMap();\nwhile (true) {}"
    entries = [*TRACARDI_PLAN, tracardi_entry("c0ffee", "tracardi-rule", script=script)]
    path = write(tmp_path, "080_to_08x.json", json.dumps(entries))
    with pytest.raises(InvalidInput) as caught:
        load_plan(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: tracardi plan 080_to_08x: step 'c0ffee': painless "
                              "script: line 2, column 1: "), message
    assert "while loop" in message.split("column 1: ", 1)[1]
    # the daemon's own form compiles its script as it is read too
    with pytest.raises(InvalidInput, match=r"step 's': painless script: line 1, column 1"):
        Plan.from_dict(daemon_plan(index="tracardi-x", painless="ctx._source.x = ;"))


def test_a_painless_step_round_trips_with_its_compiled_script() -> None:
    plan = Plan.from_dict(daemon_plan(index="tracardi-segment", painless="ctx._source.x = 1;"))
    [step] = plan.steps
    assert step.script is not None and step.script.source == "ctx._source.x = 1;"
    again = Plan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan and again.steps[0].script is not None


def test_read_tracardi_plan_with_tenants() -> None:
    plan = read_tracardi_plan(TRACARDI_PLAN, "08x", "0820", from_tenant="old",
                              to_tenant="new")
    assert (plan.source.tenant, plan.target and plan.target.tenant) == ("old", "new")


def test_copy_to_mysql_is_refused_naming_id_and_worker() -> None:
    entries = [*TRACARDI_PLAN, tracardi_entry("d3ad", "tracardi-rule", worker="copy_to_mysql",
                                              params={"mysql": "rule"})]
    with pytest.raises(InvalidInput) as caught:
        read_tracardi_plan(entries, "0820", "09x")
    assert str(caught.value).startswith(
        "tracardi step 'd3ad': field 'worker' 'copy_to_mysql' is not supported")


@pytest.mark.parametrize(("entry", "message"), [
    (tracardi_entry("e1", "tracardi-profile", multi=True, worker="reindex_to_one_index"),
     "tracardi step 'e1': field 'params.partitioning' must be one of month, quarter, year"),
    (tracardi_entry("e2", "tracardi-flow", copy_index={"multi": "no"}),
     "tracardi step 'e2': field 'copy_index.multi' must be true or false"),
    (tracardi_entry("e3", "tracardi flow"),
     "tracardi step 'e3': field 'copy_index.from_index' must be a logical index name"),
    (tracardi_entry("e4", "tracardi-flow", copy_index={"script": 5}),
     "tracardi step 'e4': field 'copy_index.script' must be a painless script"),
    (7, "tracardi plan entry 0: must be an object or a comment string"),
])
def test_tracardi_plan_errors(entry: object, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        read_tracardi_plan([entry], "08x", "0820")
    assert str(caught.value).startswith(message), str(caught.value)


def test_load_a_tracardi_file_takes_versions_from_its_name(tmp_path: Path) -> None:
    path = write(tmp_path, "08x_to_0820.json", json.dumps(TRACARDI_PLAN))
    plan = load_plan(path)
    assert (plan.source.version, plan.target and plan.target.version) == ("08x", "0820")
    other = write(tmp_path, "upgrade.json", json.dumps(TRACARDI_PLAN))
    assert load_plan(other, from_version="0820", to_version="09x").source.tenant == "ffe49"
    needs = re.escape("upgrade.json: a Tracardi plan needs from and to")
    with pytest.raises(InvalidInput, match=needs):
        load_plan(other)


def test_load_a_json_object_and_file_errors(tmp_path: Path) -> None:
    plan = Plan.from_dict(daemon_plan(index="tracardi-segment"))
    assert load_plan(write(tmp_path, "p.json", json.dumps(plan.to_dict()))) == plan
    with pytest.raises(InvalidInput, match=r"p\.toml: not valid TOML"):
        load_plan(write(tmp_path, "p.toml", "from = {"))
    with pytest.raises(InvalidInput, match=r"p\.yaml: a plan must be a \.toml or \.json"):
        load_plan(write(tmp_path, "p.yaml", "{}"))
    with pytest.raises(InvalidInput, match="cannot read the plan"):
        load_plan(tmp_path / "missing.toml")
    with pytest.raises(InvalidInput, match=r"bad\.json: step 's': field 'multi'"):
        load_plan(write(tmp_path, "bad.json",
                        json.dumps(daemon_plan(index="tracardi-segment", multi=1))))


# shipped plans


def test_shipped_plans_load() -> None:
    assert shipped_plans() == ["08x_to_0820", "tracardi_to_daemon"]
    for name in shipped_plans():
        plan = load_plan(shipped_plan(name))
        assert Plan.from_dict(plan.to_dict()) == plan
        assert all(step.painless is None for step in plan.steps)
    with pytest.raises(InvalidInput, match="no shipped plan 'x'; shipped: 08x_to_0820"):
        shipped_plan("x")


def test_the_08x_to_0820_plan() -> None:
    plan = load_plan(shipped_plan("08x_to_0820.toml"))
    assert plan.source == Layout("08x", "01506") and plan.target == Layout("0820", "ffe49")
    steps = {step.id: step for step in plan.steps}
    profile = steps["profile"]
    assert profile.multi and profile.collapse == "quarter"
    doc = {"data": {"contact": {"email": "a@b.c", "phone": "12"}, "pii": {"name": "Ann"},
                    "devices": {"names": ["x"]}}}
    assert apply_all(doc, profile.transforms) == {
        "data": {"contact": {"email": {"main": "a@b.c"}, "phone": {"main": "12"}},
                 "pii": {"display_name": "Ann"}, "devices": {"other": ["x"]}}}
    assert steps["event"].multi and steps["session"].multi
    for name in ("segment", "live-segment", "event_to_profile", "rule", "flow", "resource",
                 "source", "import", "task", "event-management", "version"):
        assert steps[name].index == f"tracardi-{name}" and not steps[name].multi
        assert steps[name].transforms == ()


def test_the_tracardi_to_daemon_plan() -> None:
    plan = load_plan(shipped_plan("tracardi_to_daemon"))
    assert plan.target is None
    names = {step.index: step.target_name for step in plan.steps}
    assert names == {
        "tracardi-profile": "tracardi-profile", "tracardi-event": "tracardi-event",
        "tracardi-session": "tracardi-session", "tracardi-segment": "tracardi-segment",
        "tracardi-event_to_profile": "tracardi-event-to-profile",
        "tracardi-event-management": "tracardi-event-type",
    }
    settings = TracardiSettings(tenant="acme", db_version="100", partitioning="quarter")
    profile = plan.steps[0]
    listed = ["0820.ffe49.tracardi-profile-2024-1", "0820.ffe49.tracardi-profile-2024-2"]
    assert resolve_targets(profile, listed, plan.source, plan.target_layout(settings)) == [
        ("0820.ffe49.tracardi-profile-2024-1", "100.acme.tracardi-profile-2024-q1"),
        ("0820.ffe49.tracardi-profile-2024-2", "100.acme.tracardi-profile-2024-q1"),
    ]


# source -> target names

SOURCE = Layout("08x", "01506")
TARGET = Layout("0820", "ffe49")
LISTED = [
    "08x.01506.tracardi-profile-2024-4", "08x.01506.tracardi-profile-2023-12",
    "08x.01506.tracardi-profile-2024-1", "08x.01506.tracardi-profile-2024-3",
    "08x.01506.tracardi-profile-2024-q3", "08x.01506.tracardi-profile-2022-year",
    "prod-08x.01506.tracardi-profile-2024-1", "08x.01506.tracardi-profile",
    "08x.01506.tracardi-segment", "static-08x.01506.tracardi-bridge",
]


def test_resolve_collapses_months_into_quarters() -> None:
    step = Step(id="p", index="tracardi-profile", multi=True, collapse="quarter")
    assert resolve_targets(step, LISTED, SOURCE, TARGET) == [
        ("08x.01506.tracardi-profile-2022-year", "0820.ffe49.tracardi-profile-2022-year"),
        ("08x.01506.tracardi-profile-2023-12", "0820.ffe49.tracardi-profile-2023-q4"),
        ("08x.01506.tracardi-profile-2024-1", "0820.ffe49.tracardi-profile-2024-q1"),
        ("08x.01506.tracardi-profile-2024-3", "0820.ffe49.tracardi-profile-2024-q1"),
        ("08x.01506.tracardi-profile-2024-4", "0820.ffe49.tracardi-profile-2024-q2"),
        ("08x.01506.tracardi-profile-2024-q3", "0820.ffe49.tracardi-profile-2024-q3"),
    ]


def test_resolve_without_collapse_keeps_each_partition() -> None:
    step = Step(id="p", index="tracardi-profile", multi=True)
    pairs = dict(resolve_targets(step, LISTED, SOURCE, TARGET))
    assert pairs["08x.01506.tracardi-profile-2024-3"] == "0820.ffe49.tracardi-profile-2024-3"
    assert len(pairs) == 6


def test_resolve_into_the_daemons_style() -> None:
    step = Step(id="p", index="tracardi-profile", multi=True)
    daemon = Layout("100", "acme", style="daemon", partitioning="month")
    pairs = dict(resolve_targets(step, LISTED, SOURCE, daemon))
    assert pairs["08x.01506.tracardi-profile-2024-3"] == "100.acme.tracardi-profile-2024-03"
    assert pairs["08x.01506.tracardi-profile-2022-year"] == "100.acme.tracardi-profile-2022"
    # collapse = target: into the daemon's partitioning, never finer than the source
    to_target = Step(id="p", index="tracardi-profile", multi=True, collapse="target")
    pairs = dict(resolve_targets(to_target, LISTED, SOURCE, daemon))
    assert pairs["08x.01506.tracardi-profile-2024-q3"] == "100.acme.tracardi-profile-2024-q3"
    yearly = Layout("100", "acme", style="daemon", partitioning="year")
    assert set(dict(resolve_targets(to_target, LISTED, SOURCE, yearly)).values()) == {
        "100.acme.tracardi-profile-2022", "100.acme.tracardi-profile-2023",
        "100.acme.tracardi-profile-2024"}
    with pytest.raises(InvalidInput, match="step 'p': field 'collapse'"):
        resolve_targets(to_target, LISTED, SOURCE, Layout("100", "acme", style="daemon"))


def test_resolve_single_static_and_production() -> None:
    segment = Step(id="s", index="tracardi-segment")
    assert resolve_targets(segment, LISTED, SOURCE, TARGET) == [
        ("08x.01506.tracardi-segment", "0820.ffe49.tracardi-segment")]
    assert resolve_targets(Step(id="f", index="tracardi-flow"), LISTED, SOURCE, TARGET) == []
    bridge = Step(id="b", index="tracardi-bridge", static=True)
    assert resolve_targets(bridge, LISTED, SOURCE, TARGET) == [
        ("static-08x.01506.tracardi-bridge", "static-0820.ffe49.tracardi-bridge")]
    production = Step(id="p", index="tracardi-profile", multi=True, production=True,
                      target_index="tracardi-customer")
    assert resolve_targets(production, LISTED, SOURCE, TARGET) == [
        ("prod-08x.01506.tracardi-profile-2024-1", "prod-0820.ffe49.tracardi-customer-2024-1")]


def test_resolve_refuses_a_partition_it_cannot_read() -> None:
    step = Step(id="e", index="tracardi-event", multi=True)
    with pytest.raises(InvalidInput, match=re.escape(
            "step 'e': field 'index' partition '08x.01506.tracardi-event-2024-35'")):
        resolve_targets(step, ["08x.01506.tracardi-event-2024-35"], SOURCE, TARGET)


def test_step_source_pattern() -> None:
    assert Step(id="s", index="tracardi-segment").source_pattern(SOURCE) == (
        "08x.01506.tracardi-segment")
    pattern = Step(id="p", index="tracardi-profile", multi=True,
                   production=True).source_pattern(SOURCE)
    assert pattern.split(",")[0] == "prod-08x.01506.tracardi-profile-0*"
