"""Layout tracardi-0.8: definitions read from a real Tracardi 0.8.1/0.8.2 installation's own
indices, in the shapes Tracardi stores; never written there; changes seen after refresh_s."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch, helpers

from tests.tracardi_layouts import documents as docs
from tests.tracardi_layouts.commands import run_cli
from tests.tracardi_layouts.install import TracardiInstall, install_tracardi_elastic
from tracardi_daemon.config.settings import DefinitionsSettings, Settings, TracardiSettings
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.model.definition_store import DefinitionCache, DefinitionStore
from tracardi_daemon.model.definitions import (
    EventToProfile,
    EventTypeMapping,
    ImportConfig,
    LiveSegment,
    MappingItem,
    Ref,
    Segment,
    WorkflowTrigger,
)

VERSIONS = ("08x", "0820")
REFRESH_S = 0.5
SHOP_IMPORT = {"source": {"id": "mysql-resource", "name": "Shop DB"}, "database_name": "shop",
               "table_name": "customers", "batch": 100}
MYSQL_IMPORTER = "tracardi.process_engine.import_service.mysql_table_importer.MySQLTableImporter"


@pytest.fixture(params=VERSIONS)
def tracardi(request: pytest.FixtureRequest, elastic_client: Elasticsearch,
             prefix: str) -> Iterator[TracardiInstall]:
    install = install_tracardi_elastic(elastic_client, request.param, prefix)
    yield install
    install.drop()


@pytest.fixture
def settings(tracardi: TracardiInstall) -> Settings:
    return Settings(tracardi=TracardiSettings(tenant=tracardi.tenant, db_version=tracardi.version,
                                              layout="tracardi-0.8"),
                    definitions=DefinitionsSettings(refresh_s=REFRESH_S))


def put(install: TracardiInstall, name: str, *documents: dict[str, Any]) -> None:
    """Index documents as Tracardi does: into its index, visible on return."""
    index = install.indices[name].write_index
    helpers.bulk(install.elastic, ({"_index": index, "_id": document["id"], "_source": document}
                                   for document in documents), refresh="wait_for")


def ids(definitions: list[Any]) -> list[str]:
    return [definition.id for definition in definitions]


def segment_rule(install: TracardiInstall, rule_id: str, *, source_id: str = "") -> dict[str, Any]:
    rule = docs.segment_add_rule_document(
        rule_id, segment_id="frequent-visitor", segment_name="Frequent visitor",
        flow_id="wf-welcome", flow_name="Welcome", version=install.version)
    rule["source"] = {"id": source_id, "name": "Segment events" if source_id else ""}
    return rule


def install_definitions(install: TracardiInstall) -> None:
    version = install.version
    put(install, "segment",
        docs.segment_document("Frequent visitor", "profile@stats.visits > 10",
                              event_types=("page-view",)),
        # a condition Tracardi stored that the daemon cannot parse
        {**docs.segment_document("Broken", "profile@stats.visits >"), "id": "segment-broken"})
    put(install, "live-segment",
        docs.live_segment_document("ls-returning", workflow_id="wf1", workflow_name="Seg",
                                   condition="profile@stats.visits > 3", segment="returning",
                                   version=version))
    put(install, "event_to_profile",
        docs.event_to_profile_document("etp1", "identify", [
            ("properties.email", 0, "data.contact.email.main"),
            ("properties.name", 1, "data.pii.firstname"),
            ("properties.tags", 2, "traits.tags")]))
    put(install, "event-management",
        docs.event_management_document("purchase",
                                       index_schema={"properties.value": "traits.value"}))
    collect = {**segment_rule(install, "rule-collect", source_id="web"), "type": "event-collect",
               "event_type": {"id": "page-view", "name": "Page view"}}
    put(install, "rule", segment_rule(install, "rule-welcome", source_id="segment-events"),
        segment_rule(install, "rule-gui-default"), collect)
    put(install, "import",
        docs.import_document("imp-shop", config=SHOP_IMPORT, module=MYSQL_IMPORTER),
        {**docs.import_document("imp-broken", config={}, module=MYSQL_IMPORTER),
         "config": "not base64 of anything"})


def test_each_kind_lists_what_tracardi_stored(tracardi: TracardiInstall, settings: Settings,
                                              caplog: pytest.LogCaptureFixture) -> None:
    install_definitions(tracardi)
    store = DefinitionStore(tracardi.elastic, settings)
    with caplog.at_level(logging.WARNING):
        segments = store.list(Segment)
        live = store.list(LiveSegment)
        mappings = store.list(EventToProfile)
        event_types = store.list(EventTypeMapping)
        triggers = store.list(WorkflowTrigger)
        imports = store.list(ImportConfig)

    assert ids(segments) == ["segment-frequent-visitor"]
    assert (segments[0].condition, segments[0].event_type, segments[0].machine_name) == (
        "profile@stats.visits > 10", ("page-view",), "frequent-visitor")
    assert [(item.type, item.condition, item.segment, item.workflow, item.operation)
            for item in live] == [("condition", "profile@stats.visits > 3",
                                   Ref("returning", "returning"), None, "add")]
    assert ids(mappings) == ["etp1"]
    assert mappings[0].event_type == Ref("identify", "identify")
    assert mappings[0].items == (
        MappingItem("properties.email", "equals", "data.contact.email.main"),
        MappingItem("properties.name", "equals_if_not_exists", "data.pii.firstname"),
        MappingItem("properties.tags", "append", "traits.tags"))
    assert [(item.id, item.index_schema) for item in event_types] == [
        ("purchase", {"value": "value"})]
    # the rule as Tracardi's GUI saves it (no source) runs its flow in Tracardi's engine
    assert sorted((item.id, item.type, item.segment, item.workflow, item.source_id,
                   item.dispatch_target()) for item in triggers) == [
        ("rule-gui-default", "segment-add", Ref("frequent-visitor", "Frequent visitor"),
         Ref("wf-welcome", "Welcome"), None, "flow:"),
        ("rule-welcome", "segment-add", Ref("frequent-visitor", "Frequent visitor"),
         Ref("wf-welcome", "Welcome"), "segment-events", "tracker:")]
    assert ids(imports) == ["imp-shop"]
    assert imports[0].source == "mysql-table"
    assert imports[0].config["database"] == "shop"
    assert imports[0].config["table"] == "customers"

    aliases = {name: index.alias for name, index in tracardi.indices.items()}
    warnings = [record.getMessage() for record in caplog.records]
    for alias, document_id, reason in [
            (aliases["segment"], "segment-broken", "field 'condition'"),
            (aliases["import"], "imp-broken", "not base64 of gzipped JSON")]:
        assert any(repr(document_id) in text and alias in text and reason in text
                   for text in warnings), document_id
    # an event-collect rule is not a trigger: skipped without a word
    assert not any("rule-collect" in text for text in warnings)
    assert len(warnings) == 2


def test_get_reads_one_document_in_tracardis_shape(tracardi: TracardiInstall,
                                                   settings: Settings) -> None:
    install_definitions(tracardi)
    store = DefinitionStore(tracardi.elastic, settings)
    trigger = store.get(WorkflowTrigger, "rule-welcome")
    assert trigger is not None and trigger.workflow == Ref("wf-welcome", "Welcome")
    assert store.get(WorkflowTrigger, "rule-collect") is None
    imported = store.get(ImportConfig, "imp-shop")
    assert imported is not None and imported.config["batch"] == 100
    with pytest.raises(InvalidInput, match="field 'config'"):
        store.get(ImportConfig, "imp-broken")


def test_every_page_is_read(tracardi: TracardiInstall, settings: Settings) -> None:
    put(tracardi, "segment", *(
        {**docs.segment_document(f"Segment {number:04d}", "profile@stats.visits > 1"),
         "id": f"s{number:04d}"} for number in range(1234)))
    assert len(DefinitionStore(tracardi.elastic, settings).list(Segment)) == 1234


def test_writes_are_refused_with_tracardis_index(tracardi: TracardiInstall,
                                                 settings: Settings) -> None:
    install_definitions(tracardi)
    store = DefinitionStore(tracardi.elastic, settings)
    segment = store.list(Segment)[0]
    alias = tracardi.indices["segment"].alias
    message = (f"definitions live in Tracardi's index {alias} in layout tracardi-0.8; "
               "change them in Tracardi")
    with pytest.raises(InvalidInput) as refused:
        store.upsert_many([segment])
    assert str(refused.value) == message
    with pytest.raises(InvalidInput, match=r"tracardi-rule in layout tracardi-0\.8"):
        store.delete(WorkflowTrigger, "rule-welcome")
    assert sorted(ids(store.list(WorkflowTrigger))) == ["rule-gui-default", "rule-welcome"]


@pytest.fixture
def config_file(tmp_path: Path, tracardi: TracardiInstall, elastic_url: str) -> Path:
    path = tmp_path / "daemon.toml"
    path.write_text(f'[tracardi]\ntenant = "{tracardi.tenant}"\n'
                    f'db_version = "{tracardi.version}"\nlayout = "tracardi-0.8"\n\n'
                    f'[elastic]\nhosts = ["{elastic_url}"]\n', encoding="utf-8")
    return path


def index_names(install: TracardiInstall) -> set[str]:
    return set(install.elastic.indices.get(index=f"*{install.tenant}*",
                                           expand_wildcards="all").body)


def test_definitions_commands_show_the_source_and_refuse_writes(
        tracardi: TracardiInstall, settings: Settings, config_file: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    install_definitions(tracardi)
    assert run_cli(config_file, "definitions", "list") == 0
    rows = [line.split()[:3] for line in capsys.readouterr().out.splitlines()]
    aliases = {name: index.alias for name, index in tracardi.indices.items()}
    assert rows[0] == ["KIND", "ID", "SOURCE"]
    assert sorted(rows[1:]) == sorted([
        ["segment", "segment-frequent-visitor", aliases["segment"]],
        ["live-segment", "ls-returning", aliases["live-segment"]],
        ["event-to-profile", "etp1", aliases["event_to_profile"]],
        ["event-type", "purchase", aliases["event-management"]],
        ["workflow-trigger", "rule-welcome", aliases["rule"]],
        ["workflow-trigger", "rule-gui-default", aliases["rule"]],
        ["import", "imp-shop", aliases["import"]]])

    definitions = tmp_path / "segments.toml"
    definitions.write_text('[[segment]]\nid = "vip"\nname = "VIP"\n'
                           'condition = "profile@stats.visits > 10"\n', encoding="utf-8")
    before = index_names(tracardi)
    assert run_cli(config_file, "definitions", "apply", str(definitions)) != 0
    assert f"Tracardi's index {aliases['segment']}" in capsys.readouterr().err
    # refused before anything was installed beside Tracardi's indices
    assert index_names(tracardi) == before
    assert run_cli(config_file, "definitions", "delete", "segment",
                   "segment-frequent-visitor") != 0
    assert "change them in Tracardi" in capsys.readouterr().err
    assert ids(DefinitionStore(tracardi.elastic, settings).list(Segment)) == [
        "segment-frequent-visitor"]


def test_a_change_made_in_tracardi_is_seen_after_refresh_s(tracardi: TracardiInstall,
                                                           settings: Settings) -> None:
    install_definitions(tracardi)
    now = [1000.0]
    store = DefinitionStore(tracardi.elastic, settings)
    cache = DefinitionCache(store, EventToProfile, settings.definitions.refresh_s,
                            clock=lambda: now[0])
    assert [item.op for item in cache.get_all()[0].items] == [
        "equals", "equals_if_not_exists", "append"]
    loaded = store.parsed
    now[0] += REFRESH_S  # unchanged in Tracardi's index: nothing is parsed again
    assert len(cache.get_all()[0].items) == 3 and store.parsed == loaded
    # edited in Tracardi's GUI: the same document, now one pair with op 2
    put(tracardi, "event_to_profile", docs.event_to_profile_document(
        "etp1", "identify", [("properties.email", 2, "traits.emails")]))
    now[0] += REFRESH_S / 2
    assert len(cache.get_all()[0].items) == 3
    now[0] += REFRESH_S / 2
    assert cache.get_all()[0].items == (MappingItem("properties.email", "append",
                                                    "traits.emails"),)
    assert store.parsed == loaded + 1
