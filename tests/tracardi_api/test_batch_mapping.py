"""Beside Tracardi 0.8.2's own API: events tracked through /track before a mapping exists,
the mapping then made through /event-to-profile as its GUI makes it, and the daemon's batch
mapping job over Tracardi's stored events; the profile, read through GET /profile, has
the mapped trait."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import RoleStarter, start_role
from tests.tracardi_api.api import ApiClient, ApiService, unique, wait_for
from tracardi_daemon.config.settings import MappingSettings, Settings, TracardiSettings
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import MAPPING_QUEUE
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import EventToProfile
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.model.tracardi_names import Layout
from tracardi_daemon.roles.mapping.jobs import JobSpec, submit
from tracardi_daemon.roles.mapping.role import MappingRole

__all__ = ["start_role"]
pytestmark = [pytest.mark.tracardi_api, pytest.mark.timeout(900)]

DB_VERSION = "0820"


@dataclass
class Created:
    """What a test made in Tracardi, removed again at its end (one API serves one tenant,
    so tests keep apart by unique ids instead of a tenant each)."""

    sources: list[str] = field(default_factory=list)
    mappings: list[str] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    live_segments: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)


@pytest.fixture
def created(tracardi: ApiClient, settings: Settings,
            elastic_client: Elasticsearch) -> Iterator[Created]:
    made = Created()
    yield made
    remove_created(tracardi, settings, elastic_client, made)


def remove_created(tracardi: ApiClient, settings: Settings, elastic_client: Elasticsearch,
                   made: Created) -> None:
    for path, ids in (("/segment/live", made.live_segments), ("/segment", made.segments),
                      ("/event-to-profile", made.mappings), ("/event-source", made.sources),
                      ("/profile", made.profiles)):
        for thing_id in ids:
            tracardi.delete(f"{path}/{thing_id}")
    # Tracardi's API has no way to delete events: by id, from its event alias
    alias = Layout.configured(settings.tracardi).alias("tracardi-event")
    for profile_id in made.profiles:
        hits = elastic_client.search(index=alias, query={"term": {"profile.id": profile_id}},
                                     size=100, source=False)["hits"]["hits"]
        for hit in hits:
            elastic_client.options(ignore_status=404).delete(index=hit["_index"],
                                                             id=hit["_id"])


@pytest.fixture
def settings(tracardi_service: ApiService) -> Settings:
    return Settings(
        tracardi=TracardiSettings(tenant=tracardi_service.tenant, db_version=DB_VERSION,
                                  layout="tracardi-0.8"),
        mapping=MappingSettings(live=False, poll_interval_s=0.05))



def events_stored(elastic: Elasticsearch, settings: Settings, profile_id: str,
                  count: int) -> bool | None:
    """True once ``count`` events of the profile are searchable (the event index
    refreshes every 10 s), else None."""
    alias = Layout.configured(settings.tracardi).alias("tracardi-event")
    found = elastic.count(index=alias, query={"term": {"profile.id": profile_id}})["count"]
    return True if found >= count else None


def profile_with(tracardi: ApiClient, profile_id: str, path: tuple[str, ...],
                 value: object) -> dict[str, Any] | None:
    """The profile as GET /profile gives it, once ``path`` holds ``value``."""
    answer = tracardi.profile(profile_id)
    if answer.status_code != 200:
        return None
    body: dict[str, Any] = answer.json()
    document: Any = body
    for key in path:
        document = document.get(key) if isinstance(document, dict) else None
    return body if document == value else None


def plan_mapping(tracardi: ApiClient, elastic: Elasticsearch, settings: Settings,
                 event_type: str, created: Created) -> EventToProfile:
    """A mapping of ``properties.plan`` to ``traits.plan`` saved through the API as its GUI
    saves it, then read back as the daemon reads Tracardi's definitions."""
    mapping_id = unique("etp")
    tracardi.save("/event-to-profile", {
        "id": mapping_id, "name": f"Plan from {event_type}",
        "event_type": {"id": event_type, "name": event_type}, "enabled": True, "config": {},
        "event_to_profile": [{"event": {"value": "properties.plan", "ref": True}, "op": 0,
                              "profile": {"value": "traits.plan", "ref": True}}]})
    created.mappings.append(mapping_id)
    store = DefinitionStore(elastic, settings)
    try:
        definition = store.get(EventToProfile, mapping_id)
    finally:
        store.close()
    assert definition is not None, f"{mapping_id} not readable where {settings.tracardi.layout} " \
                                   "keeps it"
    return definition


def run_job(start: RoleStarter, settings: Settings, redis: RedisClient,
            elastic: Elasticsearch, definition: EventToProfile, profile_id: str) -> TaskRecord:
    role, ctx = start(MappingRole, settings)
    tasks = TaskStore(redis, elastic, settings)
    # only this test's profile: the tenant's events of earlier runs are not this job's
    record = submit(tasks, WorkQueue(redis, settings.tracardi.tenant, MAPPING_QUEUE),
                    JobSpec((definition,), query=f'profile.id:"{profile_id}"'),
                    f"map {definition.id}")
    for _ in range(2000):
        role.step(ctx.clock())
        current = tasks.get(record.id)
        assert current is not None
        if current.terminal:
            return current
    raise AssertionError(f"mapping job {record.id} did not end")


def test_batch_mapping_over_events_tracardi_stored(
        tracardi: ApiClient, settings: Settings, created: Created, start_role: RoleStarter,
        redis_client: RedisClient, elastic_client: Elasticsearch) -> None:
    source_id, event_type = unique("src"), unique("purchase")
    tracardi.add_rest_source(source_id)
    created.sources.append(source_id)
    session_id = unique("session")
    profile_id = tracardi.track(source_id, session_id, [
        {"type": event_type, "properties": {"plan": "gold", "amount": 10}}])
    created.profiles.append(profile_id)
    assert tracardi.track(source_id, session_id, [
        {"type": event_type, "properties": {"plan": "gold", "amount": 20}}],
        profile_id=profile_id) == profile_id
    wait_for(lambda: True if tracardi.profile(profile_id).status_code == 200 else None,
             f"GET /profile/{profile_id} answering 200")
    assert "plan" not in tracardi.profile(profile_id).json().get("traits", {})

    # the mapping, made after the events, as Tracardi's GUI saves it
    definition = plan_mapping(tracardi, elastic_client, settings, event_type, created)
    wait_for(lambda: events_stored(elastic_client, settings, profile_id, 2),
             "the two tracked events searchable")

    ended = run_job(start_role, settings, redis_client, elastic_client, definition, profile_id)
    assert (ended.status, ended.failed) == ("finished", 0), ended
    profile = wait_for(lambda: profile_with(tracardi, profile_id, ("traits", "plan"), "gold"),
                       f"GET /profile/{profile_id} with traits.plan = gold")
    assert profile["id"] == profile_id
