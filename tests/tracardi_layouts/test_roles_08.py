"""Layout tracardi-0.8, end to end: definitions Tracardi 0.8.1/0.8.2 stored in its own
indices drive the mapping, segmentation and trigger roles against a real installation's
strict mappings; a profile in an older partition is changed where it lives; a definition
changed in place is applied within ``definitions.refresh_s``; and nothing any role
writes is refused by a strict mapping (each written document is indexed again as it is)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import RoleStarter, start_role
from tests.receivers import ScriptedServer, http_server
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
    install_tracardi_elastic,
)
from tracardi_daemon.config.settings import (
    DefinitionsSettings,
    DispatchSettings,
    MappingSettings,
    QueueSettings,
    SegmentationSettings,
    Settings,
    TracardiSettings,
)

__all__ = ["http_server", "roles", "start_role"]

VERSIONS = ("08x", "0820")
REFRESH_S = 0.5
SEGMENT = "Gold customers"
SOURCE_ID = "segment-events"


def _email_path(version: str) -> str:
    # 0.8.2 made contact.email an object
    return "data.contact.email" if version == "08x" else "data.contact.email.main"


@pytest.fixture(params=VERSIONS)
def tracardi(request: pytest.FixtureRequest, elastic_client: Elasticsearch,
             prefix: str) -> Iterator[TracardiInstall]:
    """An installation with two profile partitions, the older one first, and the event
    partition of now (where Tracardi puts a new event)."""
    version: str = request.param
    now = datetime.now(UTC)
    profile, event = (DEFAULT_PARTITIONING[version][kind] for kind in ("profile", "event"))
    install = install_tracardi_elastic(elastic_client, version, prefix, partitions={
        "profile": [partition_suffix(profile, *DEFAULT_PARTITION_MONTH),
                    partition_suffix(profile, now.year, now.month)],
        "event": [partition_suffix(event, now.year, now.month)]})
    yield install
    install.drop()


@pytest.fixture
def settings(tracardi: TracardiInstall, http_server: ScriptedServer) -> Settings:
    return Settings(
        # a Tracardi rule's workflow start goes to the tracker of the configured API
        tracardi=TracardiSettings(tenant=tracardi.tenant, db_version=tracardi.version,
                                  layout="tracardi-0.8", api_url=http_server.url),
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


def mapping_document(version: str, plan_path: str = "traits.plan") -> dict[str, Any]:
    return docs.event_to_profile_document("etp-purchase", "purchase", [
        ("properties.plan", 0, plan_path),
        ("properties.email", 0, _email_path(version)),
        ("properties.name", 1, "data.pii.firstname"),  # the profile has one: kept
        ("properties.tags", 2, "traits.tags")])


def install_definitions(install: TracardiInstall) -> None:
    version = install.version
    put(install, "event_to_profile", mapping_document(version))
    put(install, "event-management",
        docs.event_management_document("purchase", index_schema={"properties.plan": "plan"}))
    put(install, "segment", docs.segment_document(SEGMENT, 'profile@traits.plan == "gold"',
                                                  event_types=("purchase",)))
    rule = docs.segment_add_rule_document(
        "rule-gold", segment_id=MACHINE_NAME, segment_name=SEGMENT, flow_id="wf-gold",
        flow_name="Gold welcome", version=version)
    rule["source"] = {"id": SOURCE_ID, "name": "Segment events"}
    put(install, "rule", rule)


def labelled_rule(install: TracardiInstall) -> dict[str, Any]:
    """A rule naming the segment by its machine name, with a label unlike its name."""
    rule = docs.segment_add_rule_document(
        "rule-labelled", segment_id=MACHINE_NAME, segment_name="Gold (all shops)",
        flow_id="wf-labelled", flow_name="Labelled", version=install.version)
    rule["source"] = {"id": SOURCE_ID, "name": "Segment events"}
    return rule


def test_tracardis_definitions_drive_mapping_segmentation_and_trigger(
        tracardi: TracardiInstall, settings: Settings, roles: Roles,
        http_server: ScriptedServer) -> None:
    version = tracardi.version
    older, current = tracardi.indices["profile"].indices
    install_definitions(tracardi)
    put(tracardi, "profile", docs.profile_document(version, PROFILE_ID, traits={"tags": ["a"]}),
        index=older)
    put(tracardi, "rule", labelled_rule(tracardi))
    # Tracardi took a name whose machine name profile.segments could not index (> 64)
    put(tracardi, "segment", docs.segment_document("Gold " * 14, 'profile@traits.plan == "gold"'))
    event_index = add_event(tracardi, "ev-1", plan="gold", email="gold@example.com",
                            name="Bob", tags=["b"])

    roles.run_until(lambda: len(posts(http_server)) == 2)

    # mapped and segmented in place, in the older partition
    profile = stored(tracardi, older, PROFILE_ID)
    assert profile["traits"] == {"tags": ["a", "b"], "plan": "gold"}
    email = profile["data"]["contact"]["email"]
    assert (email if version == "08x" else email["main"]) == "gold@example.com"
    assert profile["data"]["pii"]["firstname"] == "Ada"
    assert profile["segments"] == [MACHINE_NAME]
    assert all(len(segment) <= 64 for segment in profile["segments"])
    assert profile["metadata"]["time"]["segmentation"]
    assert not tracardi.elastic.exists(index=current, id=PROFILE_ID)
    if version == "08x":  # the daemon's extras that 0.8.1's mapping lacks were left out
        assert "fields" not in profile["metadata"]
        assert "create" not in profile["metadata"]["time"]
    else:
        assert set(profile["metadata"]["fields"]) >= {"traits.plan", "traits.tags"}
    # the event type's index schema wrote the event's traits
    assert stored(tracardi, event_index, "ev-1")["traits"] == {"plan": "gold"}

    # the rule's workflow start went to Tracardi's tracker, from the rule's source
    by_rule = {body["events"][0]["properties"]["trigger"]["id"]: body
               for body in posts(http_server)}
    assert sorted(by_rule) == ["rule-gold", "rule-labelled"]
    body = by_rule["rule-gold"]
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


def test_definitions_changed_in_place_apply_within_refresh(
        tracardi: TracardiInstall, settings: Settings, roles: Roles,
        http_server: ScriptedServer) -> None:
    older = tracardi.indices["profile"].indices[0]
    install_definitions(tracardi)
    put(tracardi, "profile", docs.profile_document(tracardi.version, PROFILE_ID), index=older)
    add_event(tracardi, "ev-1", plan="gold")
    roles.run_until(lambda: len(posts(http_server)) == 1)

    # Tracardi's GUI saves both definitions again under their ids
    segment = docs.segment_document(SEGMENT, 'profile@traits.tier == "gold"',
                                    event_types=("purchase",))
    put(tracardi, "event_to_profile", mapping_document(tracardi.version, "traits.tier"))
    put(tracardi, "segment", segment)
    changed_at = time.monotonic()
    roles.run_until(lambda: time.monotonic() - changed_at > REFRESH_S)  # the roles step on
    add_event(tracardi, "ev-2", plan="silver")
    roles.run_until(lambda: stored(tracardi, older, PROFILE_ID)["traits"].get("tier")
                    == "silver")
    # mapped to the new path; the changed condition no longer holds: the segment left
    profile = stored(tracardi, older, PROFILE_ID)
    assert profile["traits"]["plan"] == "gold"
    roles.run_until(lambda: stored(tracardi, older, PROFILE_ID)["segments"] == [])

    # and holds again for the next purchase: the profile re-enters, the rule fires again
    add_event(tracardi, "ev-3", plan="gold")
    roles.run_until(lambda: len(posts(http_server)) == 2)
    assert stored(tracardi, older, PROFILE_ID)["segments"] == [MACHINE_NAME]
    assert_nothing_failed(settings, roles, http_server)
    assert_accepted_as_it_is(tracardi, older, PROFILE_ID)


def test_a_mapping_job_and_a_live_segment_pass_write_what_the_mappings_accept(
        tracardi: TracardiInstall, settings: Settings, start_role: RoleStarter,
        http_server: ScriptedServer) -> None:
    """The batch paths: a mapping job and passes of Tracardi live segments, each with
    its task record in Tracardi's task index; profiles in both partitions. Tracardi maps
    ``stats`` as flattened (a numeric range cannot be searched) and new trait strings as
    analysed text (a term does not find "Top Tier"): those conditions go to Python."""
    version = tracardi.version
    older, current = tracardi.indices["profile"].indices
    install_definitions(tracardi)
    put(tracardi, "live-segment", docs.live_segment_document(
        "ls-returning", workflow_id="wf-none", workflow_name="None",
        condition="profile@stats.visits > 3", segment="returning", version=version),
        docs.live_segment_document(
        "ls-top", workflow_id="wf-none", workflow_name="None",
        condition='profile@traits.level == "Top Tier"', segment="top-tier", version=version))
    put_batch_profiles(tracardi, older, current)
    event_index = add_event(tracardi, "ev-1", plan="gold", tags=["b"])
    roles, task_ids = run_batch_paths(start_role, settings, tracardi, http_server)
    assert_batch_results(tracardi, older, current, event_index)
    task_index = tracardi.indices["task"].write_index
    tracardi.elastic.indices.refresh(index=task_index)
    for task_id in task_ids:
        assert stored(tracardi, task_index, task_id)["status"] == "done"
        assert_accepted_as_it_is(tracardi, task_index, task_id)
    assert_nothing_failed(settings, roles, http_server)
