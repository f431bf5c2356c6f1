"""Layout tracardi-0.9, end to end: definitions Tracardi 0.9 keeps in MySQL (mapping,
event type, segment-add trigger) and segments in the daemon's own store drive the mapping,
segmentation and trigger roles against a real installation's strict 0.9 mappings; a
profile in an older quarter is changed where it lives; a row changed in MySQL is applied
within ``definitions.refresh_s``; job and pass progress lands in Tracardi's ``task`` table;
and nothing any role writes is refused by a strict mapping."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import RoleStarter, start_role
from tests.receivers import ScriptedServer, http_server
from tests.roles.upgrade.imports.mysql_fixtures import mysql_database
from tests.tracardi_layouts import DEFAULT_PARTITIONING, partition_suffix
from tests.tracardi_layouts import documents as docs
from tests.tracardi_layouts.chain import (
    MACHINE_NAME,
    PROFILE_ID,
    Roles,
    add_event,
    assert_accepted_as_it_is,
    assert_batch_results,
    assert_nothing_failed,
    posts,
    put,
    put_batch_profiles,
    roles,
    run_batch_paths,
    stored,
)
from tests.tracardi_layouts.install import (
    DEFAULT_PARTITION_MONTH,
    TracardiInstall,
    TracardiTables,
    install_tracardi_elastic,
)
from tests.tracardi_layouts.test_tracardi_09_definitions import (
    event_type_row,
    insert,
    mapping_row,
    tables,
    task_rows,
    trigger_row,
)
from tracardi_daemon.config.settings import (
    DefinitionsSettings,
    DispatchSettings,
    MappingSettings,
    MysqlSettings,
    QueueSettings,
    SegmentationSettings,
    Settings,
    TracardiSettings,
)
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.naming import alias_name, base_index_name
from tracardi_daemon.model.segment_definitions import LiveSegment, Segment

__all__ = ["http_server", "mysql_database", "roles", "start_role", "tables"]

VERSION = "09x"
REFRESH_S = 0.5
SEGMENT = "Gold customers"
SOURCE_ID = "segment-events"


@pytest.fixture
def tracardi(elastic_client: Elasticsearch, prefix: str) -> Iterator[TracardiInstall]:
    """An installation with two quarterly profile partitions, the older one first, and
    the event partition of now (where Tracardi puts a new event)."""
    now = datetime.now(UTC)
    profile, event = (DEFAULT_PARTITIONING[VERSION][kind] for kind in ("profile", "event"))
    install = install_tracardi_elastic(elastic_client, VERSION, prefix, partitions={
        "profile": [partition_suffix(profile, *DEFAULT_PARTITION_MONTH),
                    partition_suffix(profile, now.year, now.month)],
        "event": [partition_suffix(event, now.year, now.month)]})
    yield install
    install.drop()


@pytest.fixture
def settings(tracardi: TracardiInstall, tables: TracardiTables,
             http_server: ScriptedServer) -> Settings:
    address = tables.address
    return Settings(
        # a Tracardi rule's workflow start goes to the tracker of the configured API
        tracardi=TracardiSettings(tenant=tracardi.tenant, db_version=VERSION,
                                  layout="tracardi-0.9", api_url=http_server.url),
        mysql=MysqlSettings(host=address["host"], port=address["port"],
                            username=address["user"], password=address["password"],
                            database=address["database"]),
        # the fixture's events were stored as Tracardi stores them, but mapped by no
        # collector: the tail applies every item
        mapping=MappingSettings(live=True, live_start="earliest", batch_size=50,
                                collector_mapped=False,
                                poll_interval_s=0.01, recheck_every_s=0.01, lease_s=5.0),
        segmentation=SegmentationSettings(batch_size=50, poll_interval_s=0.01, lease_s=5.0),
        queue=QueueSettings(visibility_timeout_s=1.0, poll_interval_s=0.05, batch_size=10,
                            retry_backoff_initial_s=0.05, retry_backoff_max_s=0.1),
        dispatch=DispatchSettings(max_attempts=2, retry_backoff_initial_s=0.05,
                                  retry_backoff_max_s=0.1, connect_timeout_s=0.5,
                                  read_timeout_s=2.0, total_timeout_s=3.0),
        definitions=DefinitionsSettings(refresh_s=REFRESH_S))


@pytest.fixture
def store(elastic_client: Elasticsearch, settings: Settings) -> Iterator[DefinitionStore]:
    definitions = DefinitionStore(elastic_client, settings)
    yield definitions
    definitions.close()


def put_mapping(tables: TracardiTables, tenant: str, plan_path: str = "traits.plan") -> None:
    """The mapping row as Tracardi's GUI saves it (again, under its id, when edited)."""
    insert(tables, "event_to_profile_mapping", tenant, mapping_row("etp-purchase", "purchase", [
        ("properties.plan", 0, plan_path),
        ("properties.email", 0, "data.contact.email.main"),
        ("properties.name", 1, "data.pii.firstname"),  # the profile has one: kept
        ("properties.tags", 2, "traits.tags")]))


def segment(condition: str = 'profile@traits.plan == "gold"') -> Segment:
    return Segment.from_dict(docs.segment_document(SEGMENT, condition,
                                                   event_types=("purchase",)))


def install_definitions(tables: TracardiTables, store: DefinitionStore, tenant: str) -> None:
    put_mapping(tables, tenant)
    insert(tables, "event_mapping", tenant,
           event_type_row("purchase", {"properties.plan": "plan"}))
    insert(tables, "workflow_trigger", tenant, {
        **trigger_row("rule-gold", source_id=SOURCE_ID), "name": f"On {SEGMENT}",
        "segment_id": MACHINE_NAME, "segment_name": SEGMENT, "flow_id": "wf-gold",
        "flow_name": "Gold welcome"})
    # no segment table in Tracardi 0.9: the daemon's own store, as `definitions apply` does
    store.upsert_many([segment()])


def test_the_daemons_own_segment_index_is_apart_from_tracardis(
        tracardi: TracardiInstall, settings: Settings, store: DefinitionStore) -> None:
    """Install creates nothing beside Tracardi 0.9: the first write of a segment creates
    the daemon's own index, whose names no name of Tracardi's can take."""
    tenant = tracardi.tenant
    alias = alias_name(settings.tracardi, "segment")
    assert (alias, base_index_name(settings.tracardi, "segment")) == (
        f"{tenant}.daemon-segment", f"{VERSION}.{tenant}.daemon-segment")
    assert not tracardi.elastic.indices.exists_alias(name=alias)
    assert store.list(Segment) == []  # nothing yet, no index yet

    store.upsert_many([segment()])
    store.upsert_many([segment('profile@traits.plan == "silver"')])  # the index exists now
    [saved] = store.list(Segment)
    assert (saved.machine_name, saved.condition) == (
        MACHINE_NAME, 'profile@traits.plan == "silver"')
    assert list(tracardi.elastic.indices.get_alias(name=alias).body) == [
        f"{VERSION}.{tenant}.daemon-segment"]
    assert not tracardi.elastic.indices.exists(index=f"{VERSION}.{tenant}.tracardi-segment")


def test_tracardis_definitions_drive_mapping_segmentation_and_trigger(
        tracardi: TracardiInstall, tables: TracardiTables, store: DefinitionStore,
        settings: Settings, roles: Roles, http_server: ScriptedServer) -> None:
    older, current = tracardi.indices["profile"].indices
    install_definitions(tables, store, tracardi.tenant)
    put(tracardi, "profile", docs.profile_document(VERSION, PROFILE_ID, traits={"tags": ["a"]}),
        index=older)
    event_index = add_event(tracardi, "ev-1", plan="gold", email="gold@example.com",
                            name="Bob", tags=["b"])

    roles.run_until(lambda: len(posts(http_server)) == 1)

    # mapped and segmented in place, in the older quarter
    profile = stored(tracardi, older, PROFILE_ID)
    assert profile["traits"] == {"tags": ["a", "b"], "plan": "gold"}
    assert profile["data"]["contact"]["email"]["main"] == "gold@example.com"
    assert profile["data"]["pii"]["firstname"] == "Ada"
    assert profile["segments"] == [MACHINE_NAME]
    assert profile["metadata"]["time"]["segmentation"]
    assert set(profile["metadata"]["fields"]) >= {"traits.plan", "traits.tags"}
    assert not tracardi.elastic.exists(index=current, id=PROFILE_ID)
    # the event type's index schema wrote the event's traits
    assert stored(tracardi, event_index, "ev-1")["traits"] == {"plan": "gold"}

    # the trigger row's workflow start went to Tracardi's tracker, from the row's source
    [body] = posts(http_server)
    assert body["source"] == {"id": SOURCE_ID}
    assert body["profile"] == {"id": PROFILE_ID}
    [event] = body["events"]
    assert event["type"] == "segment-added"
    assert event["properties"]["workflow"] == {"id": "wf-gold", "name": "Gold welcome"}
    assert event["properties"]["segment"]["machine_name"] == MACHINE_NAME
    assert event["properties"]["trigger"] == {"id": "rule-gold"}

    assert_nothing_failed(settings, roles, http_server)
    assert_accepted_as_it_is(tracardi, older, PROFILE_ID)
    assert_accepted_as_it_is(tracardi, event_index, "ev-1")


def test_a_row_changed_in_mysql_applies_within_refresh(
        tracardi: TracardiInstall, tables: TracardiTables, store: DefinitionStore,
        settings: Settings, roles: Roles, http_server: ScriptedServer) -> None:
    older = tracardi.indices["profile"].indices[0]
    install_definitions(tables, store, tracardi.tenant)
    put(tracardi, "profile", docs.profile_document(VERSION, PROFILE_ID), index=older)
    add_event(tracardi, "ev-1", plan="gold")
    roles.run_until(lambda: len(posts(http_server)) == 1)

    # Tracardi's GUI saves the mapping row again; the segment is changed in the daemon
    put_mapping(tables, tracardi.tenant, "traits.tier")
    store.upsert_many([segment('profile@traits.tier == "gold"')])
    changed_at = time.monotonic()
    roles.run_until(lambda: time.monotonic() - changed_at > REFRESH_S)  # the roles step on
    add_event(tracardi, "ev-2", plan="silver")
    roles.run_until(lambda: stored(tracardi, older, PROFILE_ID)["traits"].get("tier")
                    == "silver")
    # mapped to the new path; the changed condition no longer holds: the segment left
    assert stored(tracardi, older, PROFILE_ID)["traits"]["plan"] == "gold"
    roles.run_until(lambda: stored(tracardi, older, PROFILE_ID)["segments"] == [])

    # and holds again for the next purchase: the profile re-enters, the rule fires again
    add_event(tracardi, "ev-3", plan="gold")
    roles.run_until(lambda: len(posts(http_server)) == 2)
    assert stored(tracardi, older, PROFILE_ID)["segments"] == [MACHINE_NAME]
    assert_nothing_failed(settings, roles, http_server)
    assert_accepted_as_it_is(tracardi, older, PROFILE_ID)


def live_segment(live_id: str, condition: str, segment_id: str) -> LiveSegment:
    return LiveSegment.from_dict({"id": live_id, "name": f"Live {live_id}",
                                  "type": "condition", "condition": condition,
                                  "segment": {"id": segment_id, "name": segment_id}})


def test_a_mapping_job_and_a_live_segment_pass_report_to_tracardis_task_table(
        tracardi: TracardiInstall, tables: TracardiTables, store: DefinitionStore,
        settings: Settings, start_role: RoleStarter, http_server: ScriptedServer) -> None:
    """The batch paths: a mapping job and passes of the daemon's live segments, each
    with its row in Tracardi's task table; profiles in both quarters. ``stats`` is
    flattened and new trait strings analysed text in Tracardi's mapping: those
    conditions go to Python."""
    older, current = tracardi.indices["profile"].indices
    install_definitions(tables, store, tracardi.tenant)
    store.upsert_many([live_segment("ls-returning", "profile@stats.visits > 3", "returning"),
                       live_segment("ls-top", 'profile@traits.level == "Top Tier"', "top-tier")])
    put_batch_profiles(tracardi, older, current)
    event_index = add_event(tracardi, "ev-1", plan="gold", tags=["b"])
    roles, task_ids = run_batch_paths(start_role, settings, tracardi, http_server)
    assert_batch_results(tracardi, older, current, event_index)
    rows = task_rows(tables)
    for task_id in task_ids:
        row = rows[task_id]
        assert (row["status"], row["progress"], row["tenant"], row["production"]) == (
            "done", 100.0, settings.tracardi.tenant, 0)
    assert_nothing_failed(settings, roles, http_server)
