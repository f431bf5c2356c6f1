"""Beside Tracardi 0.8.2's own API: a segment with a condition on a trait, made through
/segment; Tracardi's collector puts a profile in it (its post-event segmentation) and then,
applying an event-to-profile mapping made through its API, changes the trait so that the
profile no longer matches -- and keeps the segment, as Tracardi only adds. The daemon's
segmentation role, following Tracardi's profile saves, removes it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import RoleStarter, start_role
from tests.tracardi_api.api import ApiClient, ApiService, unique, wait_for
from tests.tracardi_api.state import follower_keys, fresh
from tests.tracardi_api.test_batch_mapping import Created, remove_created
from tracardi_daemon.config.settings import (
    DefinitionsSettings,
    SegmentationSettings,
    Settings,
    TracardiSettings,
)
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.roles.segmentation.role import SegmentationRole

__all__ = ["start_role"]
pytestmark = [pytest.mark.tracardi_api, pytest.mark.timeout(900)]

# one trait name for every run: a new name per run would grow the shared profile mapping
TRAIT = "follow_tier"


@pytest.fixture
def settings(tracardi_service: ApiService) -> Settings:
    return Settings(
        tracardi=TracardiSettings(tenant=tracardi_service.tenant, db_version="0820",
                                  layout="tracardi-0.8"),
        # a short look-back: the API's tenant is shared, other tests' saves are not ours
        segmentation=SegmentationSettings(poll_interval_s=0.05, follow_late_arrival_s=30.0,
                                          follow_recheck_every_s=1.0),
        definitions=DefinitionsSettings(refresh_s=0.5))


@pytest.fixture
def made(tracardi: ApiClient, settings: Settings, redis_client: RedisClient,
         elastic_client: Elasticsearch) -> Iterator[Created]:
    things = Created()
    with fresh(redis_client, follower_keys(settings.tracardi.tenant)):
        yield things
    remove_created(tracardi, settings, elastic_client, things)


def profile_state(tracardi: ApiClient, profile_id: str) -> tuple[Any, list[str]] | None:
    """(the trait, the segments) as GET /profile gives them; None before it answers."""
    answer = tracardi.profile(profile_id)
    if answer.status_code != 200:
        return None
    body = answer.json()
    return body.get("traits", {}).get(TRAIT), list(body.get("segments") or [])


def test_a_profile_tracardis_collector_changed_leaves_the_segment(
        tracardi: ApiClient, settings: Settings, made: Created, start_role: RoleStarter) -> None:
    source_id, event_type = unique("src"), unique("tier")
    tracardi.add_rest_source(source_id)
    made.sources.append(source_id)
    mapping_id = unique("etp")
    tracardi.post("/event-to-profile", {
        "id": mapping_id, "name": f"Tier from {event_type}",
        "event_type": {"id": event_type, "name": event_type}, "enabled": True, "config": {},
        "event_to_profile": [{"event": {"value": "properties.tier", "ref": True}, "op": 0,
                              "profile": {"value": f"traits.{TRAIT}", "ref": True}}]})
    made.mappings.append(mapping_id)
    segment_id, segment_name = str(uuid.uuid4()), unique("gold")
    machine_name = segment_name.lower()
    tracardi.post("/segment", {"id": segment_id, "name": segment_name, "description": "",
                               "eventType": [event_type], "enabled": True,
                               "condition": f'profile@traits.{TRAIT} == "gold"'})
    made.segments.append(segment_id)

    session_id = unique("session")
    profile_id = tracardi.track(source_id, session_id,
                                [{"type": event_type, "properties": {"tier": "gold"}}])
    made.profiles.append(profile_id)
    # Tracardi's collector mapped the trait and put the profile in the segment itself
    wait_for(lambda: True if profile_state(tracardi, profile_id) == ("gold", [machine_name])
             else None, f"{profile_id} gold and in {machine_name}")
    assert tracardi.track(source_id, session_id,
                          [{"type": event_type, "properties": {"tier": "silver"}}],
                          profile_id=profile_id) == profile_id
    # ... and then changed it so that it no longer matches, keeping the segment
    wait_for(lambda: True if profile_state(tracardi, profile_id) == ("silver", [machine_name])
             else None, f"{profile_id} silver, still in {machine_name}")

    role, ctx = start_role(SegmentationRole, settings)

    def segment_left() -> bool | None:
        role.step(ctx.clock())
        state = profile_state(tracardi, profile_id)
        return True if state is not None and machine_name not in state[1] else None

    wait_for(segment_left, f"the daemon removing {machine_name} from {profile_id}",
             timeout_s=60.0)
    assert profile_state(tracardi, profile_id) == ("silver", [])
