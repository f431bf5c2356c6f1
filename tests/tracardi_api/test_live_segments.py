"""Beside Tracardi 0.8.2's own API: live segments of type condition, made through
/segment/live as its GUI makes them (operations add, remove and sync; 0.8.2 has no query
type: its strict index has no field for one), run by the daemon's segmentation role, one
pass each, over profiles made through /track. The passes change only their own segments:
the segment Tracardi's collector added for its own (post-event) segment and a value in
``segments`` that no definition owns are kept."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import RoleStarter, start_role
from tests.tracardi_api.api import ApiClient, ApiService, unique, wait_for
from tests.tracardi_api.test_batch_mapping import Created, remove_created
from tracardi_daemon.config.settings import (
    DefinitionsSettings,
    SegmentationSettings,
    Settings,
    TracardiSettings,
)
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.segmentation.role import SegmentationRole

__all__ = ["start_role"]
pytestmark = [pytest.mark.tracardi_api, pytest.mark.timeout(900)]

TIER = "live_seg_tier"  # one trait name for every run (the shared profile mapping)


@pytest.fixture
def settings(tracardi_service: ApiService) -> Settings:
    return Settings(
        tracardi=TracardiSettings(tenant=tracardi_service.tenant, db_version="0820",
                                  layout="tracardi-0.8"),
        # the passes alone: the follower of Tracardi's saves is another test's subject
        segmentation=SegmentationSettings(poll_interval_s=0.05, follow_tracardi=False),
        definitions=DefinitionsSettings(refresh_s=0.5))


@pytest.fixture
def made(tracardi: ApiClient, settings: Settings,
         elastic_client: Elasticsearch) -> Iterator[Created]:
    things = Created()
    yield things
    remove_created(tracardi, settings, elastic_client, things)


def segments_of(tracardi: ApiClient, profile_id: str) -> set[str] | None:
    answer = tracardi.profile(profile_id)
    return set(answer.json().get("segments") or []) if answer.status_code == 200 else None


def live_segment(tracardi: ApiClient, made: Created, operation: str, segment: str,
                 condition: str) -> str:
    """A condition live segment as the GUI saves it: the segment by name, an empty
    workflow (every type carries one)."""
    live_id = str(uuid.uuid4())
    tracardi.save("/segment/live", {
        "id": live_id, "name": f"{operation} {segment}", "description": "", "enabled": True,
        "type": "condition", "operation": operation, "condition": condition,
        "segment": segment, "workflow": {"id": "", "name": ""}})
    made.live_segments.append(live_id)
    return live_id


def test_live_segment_passes_keep_what_is_not_theirs(
        tracardi: ApiClient, settings: Settings, made: Created, start_role: RoleStarter,
        redis_client: RedisClient, elastic_client: Elasticsearch) -> None:
    source_id, event_type, token = unique("src"), unique("tier"), unique("run")
    gold, silver = f"{token}-gold", f"{token}-silver"
    tracardi.add_rest_source(source_id)
    made.sources.append(source_id)
    mapping_id = unique("etp")
    tracardi.save("/event-to-profile", {
        "id": mapping_id, "name": f"Tier of {event_type}",
        "event_type": {"id": event_type, "name": event_type}, "enabled": True, "config": {},
        "event_to_profile": [
            {"event": {"value": "properties.tier", "ref": True}, "op": 0,
             "profile": {"value": f"traits.{TIER}", "ref": True}},
            # a value in segments that no segment definition owns
            {"event": {"value": "properties.badge", "ref": True}, "op": 2,
             "profile": {"value": "segments", "ref": True}}]})
    made.mappings.append(mapping_id)
    # Tracardi's own post-event segment, added by its collector
    own_id, own = str(uuid.uuid4()), unique("own")
    tracardi.post("/segment", {"id": own_id, "name": own, "description": "",
                               "eventType": [event_type], "enabled": True,
                               "condition": f'profile@traits.{TIER} == "{gold}"'})
    made.segments.append(own_id)
    added, removed, synced, foreign = (unique("add"), unique("remove"), unique("sync"),
                                       unique("foreign"))

    def track(tier: str, badges: list[str]) -> str:
        session_id = unique("session")
        profile_id = tracardi.track(source_id, session_id, [
            {"type": event_type, "properties": {"tier": tier, "badge": badges[0]}}])
        made.profiles.append(profile_id)
        for badge in badges[1:]:
            assert tracardi.track(source_id, session_id, [
                {"type": event_type, "properties": {"badge": badge}}],
                profile_id=profile_id) == profile_id
        return profile_id

    # gold: in Tracardi's own segment, a foreign value, and the synced segment it leaves
    first = track(gold, [foreign, synced])
    # silver: in the segment the remove live segment takes away
    second = track(silver, [removed])
    for profile_id, expected in ((first, {own, foreign, synced}), (second, {removed})):
        wait_for(lambda p=profile_id, e=expected: True if segments_of(tracardi, p) == e
                 else None, f"{profile_id} in {sorted(expected)} by Tracardi's collector")

    is_gold = f'profile@traits.{TIER} == "{gold}"'
    is_silver = f'profile@traits.{TIER} == "{silver}"'
    keys = [f"live-segment:{live_segment(tracardi, made, operation, name, condition)}"
            for operation, name, condition in (("add", added, is_gold),
                                               ("remove", removed, is_gold),
                                               ("sync", synced, is_silver))]
    role, ctx = start_role(SegmentationRole, settings)
    tasks = TaskStore(redis_client, elastic_client, settings)

    def queued(key: str) -> str | None:
        role.step(ctx.clock())  # reads the definitions until the live segment is there
        return role.queue_pass(key)

    task_ids = [wait_for(lambda k=key: queued(k), f"a pass of {key} queued")
                for key in keys]

    def passes_done() -> bool | None:
        role.step(ctx.clock())
        records = [tasks.get(task_id) for task_id in task_ids]
        return True if all(r is not None and r.terminal for r in records) else None

    wait_for(passes_done, "the three passes finished", timeout_s=120.0)
    for task_id in task_ids:
        record = tasks.get(task_id)
        assert record is not None and (record.status, record.failed) == ("finished", 0), \
            record
    wait_for(lambda: True if segments_of(tracardi, first) == {own, foreign, added}
             else None, f"{first} in {own}, {foreign} and {added} after the passes")
    wait_for(lambda: True if segments_of(tracardi, second) == {synced} else None,
             f"{second} in {synced} only after the passes")
