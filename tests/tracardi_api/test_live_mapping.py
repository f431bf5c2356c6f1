"""Beside Tracardi 0.8.2's own API: an event-to-profile mapping made through
/event-to-profile, which Tracardi's collector applies inline at /track, and the daemon's
live mapping tail over the same events. Nothing the collector applied is applied again
(an operator's correction made through Tracardi's API after the collector shows a second
application), and a ``0`` the collector skips (it copies only truthy values) is applied
by the daemon, unless a newer write of the field exists."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import RoleStarter, start_role
from tests.tracardi_api.api import ApiClient, ApiService, unique, wait_for
from tests.tracardi_api.state import fresh, live_tail_keys
from tests.tracardi_api.test_batch_mapping import Created, events_stored, remove_created
from tracardi_daemon.config.settings import (
    DefinitionsSettings,
    MappingSettings,
    Settings,
    TracardiSettings,
)
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.roles.mapping.role import MappingRole

__all__ = ["start_role"]
pytestmark = [pytest.mark.tracardi_api, pytest.mark.timeout(900)]

# one trait name each for every run: a new name per run would grow the shared mapping
TAGS, SCORE, LATER = "live_tags", "live_score", "live_later"
# the event index refreshes every 10 s: the tail sees an event that much later
TAIL_WAIT_S = 90.0


@pytest.fixture
def settings(tracardi_service: ApiService) -> Settings:
    return Settings(
        tracardi=TracardiSettings(tenant=tracardi_service.tenant, db_version="0820",
                                  layout="tracardi-0.8"),
        mapping=MappingSettings(live=True, live_start="now", poll_interval_s=0.05,
                                recheck_every_s=1.0),
        definitions=DefinitionsSettings(refresh_s=0.5))


@pytest.fixture
def created(tracardi: ApiClient, settings: Settings, redis_client: RedisClient,
            elastic_client: Elasticsearch) -> Iterator[Created]:
    made = Created()
    with fresh(redis_client, live_tail_keys(settings.tracardi.tenant)):
        yield made
    remove_created(tracardi, settings, elastic_client, made)


def profile(tracardi: ApiClient, profile_id: str) -> dict[str, Any] | None:
    """The profile as GET /profile gives it (``traits`` always an object), or None."""
    answer = tracardi.profile(profile_id)
    if answer.status_code != 200:
        return None
    found: dict[str, Any] = answer.json()
    found["traits"] = found.get("traits") or {}
    return found


def test_the_live_tail_applies_only_what_the_collector_skipped(
        tracardi: ApiClient, settings: Settings, created: Created, start_role: RoleStarter,
        elastic_client: Elasticsearch) -> None:
    source_id, event_type = unique("src"), unique("visit")
    tracardi.add_rest_source(source_id)
    created.sources.append(source_id)
    mapping_id = unique("etp")
    tracardi.save("/event-to-profile", {
        "id": mapping_id, "name": f"Visits of {event_type}",
        "event_type": {"id": event_type, "name": event_type}, "enabled": True, "config": {},
        "event_to_profile": [
            {"event": {"value": "properties.tag", "ref": True}, "op": 2,
             "profile": {"value": f"traits.{TAGS}", "ref": True}},
            {"event": {"value": "properties.score", "ref": True}, "op": 0,
             "profile": {"value": f"traits.{SCORE}", "ref": True}},
            {"event": {"value": "properties.later", "ref": True}, "op": 0,
             "profile": {"value": f"traits.{LATER}", "ref": True}}]})
    created.mappings.append(mapping_id)

    session_id = unique("session")
    # the collector skips the first event's 0 and the second's: score = 0 is older than
    # the 5 that follows it (the 5 stays), later = 0 newer than the 7 before it (0 wins)
    profile_id = tracardi.track(source_id, session_id, [
        {"type": event_type, "properties": {"tag": "a", "score": 0, "later": 7}}])
    created.profiles.append(profile_id)
    assert tracardi.track(source_id, session_id, [
        {"type": event_type, "properties": {"tag": "b", "score": 5, "later": 0}}],
        profile_id=profile_id) == profile_id
    # what the collector did on its own: both tags, the truthy values
    inline = wait_for(lambda: found if (found := profile(tracardi, profile_id)) is not None
                      and found["traits"].get(TAGS) == ["a", "b"] else None,
                      f"GET /profile/{profile_id} with the collector's {TAGS}")
    assert (inline["traits"].get(SCORE), inline["traits"].get(LATER)) == (5, 7), inline
    # an operator then corrects the profile through Tracardi's API: what the collector
    # applied must not come back when the daemon maps the same events
    inline["traits"].update({TAGS: ["b"], SCORE: 6})
    inline.pop("_meta", None)
    tracardi.post("/profiles/import", [inline])
    wait_for(lambda: True if (found := profile(tracardi, profile_id)) is not None
             and found["traits"].get(SCORE) == 6 else None, "the corrected profile")
    wait_for(lambda: events_stored(elastic_client, settings, profile_id, 2),
             "the two tracked events searchable", timeout_s=TAIL_WAIT_S)

    # the tail starts now; its look-back covers the events of the last minute
    role, ctx = start_role(MappingRole, settings)

    def tail_applied() -> dict[str, Any] | None:
        role.step(ctx.clock())
        found = profile(tracardi, profile_id)
        return found if found is not None and found["traits"].get(LATER) == 0 else None

    mapped = wait_for(tail_applied, f"the tail applying {LATER} = 0 to {profile_id}",
                      timeout_s=TAIL_WAIT_S)["traits"]
    assert (mapped.get(TAGS), mapped.get(SCORE)) == (["b"], 6), f"applied twice: {mapped}"
