"""Fixtures of the mapping tests: a tenant with installed indices in the real
Elasticsearch, profiles and events written where Tracardi would write them, and the
mapping role started against the real Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import start_role
from tracardi_daemon.config.settings import (
    DefinitionsSettings,
    MappingSettings,
    Settings,
    TracardiSettings,
)
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import Definition, definition_type
from tracardi_daemon.model.indices import fetch, install
from tracardi_daemon.model.naming import index_name
from tracardi_daemon.roles.base import RoleContext

__all__ = ["World", "start_role", "world"]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@dataclass
class World:
    """One tenant's indices, and what a test writes into them."""

    es: Elasticsearch
    redis: RedisClient
    settings: Settings

    def define(self, **kinds: Sequence[dict[str, Any]]) -> list[Definition]:
        """Store definitions given as ``event_to_profile=[{...}], event_type=[...]``."""
        parsed = [definition_type(kind).from_dict(raw) for kind, items in kinds.items()
                  for raw in items]
        DefinitionStore(self.es, self.settings).upsert_many(parsed)
        return parsed

    def add_profile(self, profile_id: str, when: datetime | None = None,
                    **fields: Any) -> str:
        """A profile in the partition of ``when`` (default now); returns the index."""
        moment = when or datetime.now(UTC)
        install(self.es, self.settings, now=moment)
        index = index_name(self.settings.tracardi, "profile", moment)
        self.es.index(index=index, id=profile_id, refresh=True,
                      document={"id": profile_id, "metadata": {"time": {"insert": iso(moment)}},
                                **fields})
        return index

    def add_profiles(self, profiles: Sequence[dict[str, Any]],
                     when: datetime | None = None) -> str:
        """Many profiles (each with its ``id``) in one bulk request, in the partition of
        ``when``; returns the index."""
        moment = when or datetime.now(UTC)
        install(self.es, self.settings, now=moment)
        index = index_name(self.settings.tracardi, "profile", moment)
        operations: list[dict[str, Any]] = []
        for profile in profiles:
            operations += [{"index": {"_index": index, "_id": profile["id"]}},
                           {"metadata": {"time": {"insert": iso(moment)}}, **profile}]
        reply = self.es.bulk(operations=operations, refresh=True)
        assert not reply["errors"], reply
        return index

    def add_events(self, events: Sequence[dict[str, Any]]) -> list[str]:
        """Index events (each ``{type, profile, properties, insert: datetime, ...}``) in
        the partition of their insert time; returns their ids."""
        operations: list[dict[str, Any]] = []
        ids = []
        partitions: set[str] = set()
        for raw in events:
            event = dict(raw)
            insert: datetime = event.pop("insert", datetime.now(UTC))
            event_id = event.pop("id", uuid.uuid4().hex)
            profile = event.pop("profile", None)
            index = index_name(self.settings.tracardi, "event", insert)
            if index not in partitions:
                install(self.es, self.settings, now=insert)
                partitions.add(index)
            document = {"id": event_id, "metadata": {"time": {"insert": iso(insert),
                                                              "create": iso(insert)}},
                        **({"profile": {"id": profile}} if profile else {}), **event}
            operations += [{"index": {"_index": index, "_id": event_id}}, document]
            ids.append(event_id)
        reply = self.es.bulk(operations=operations, refresh=True)
        assert not reply["errors"], reply
        return ids

    def profile(self, profile_id: str) -> dict[str, Any]:
        stored = fetch(self.es, self.settings, "profile", profile_id)
        assert stored is not None, f"no profile {profile_id}"
        return stored.source

    def event(self, event_id: str) -> dict[str, Any]:
        stored = fetch(self.es, self.settings, "event", event_id)
        assert stored is not None, f"no event {event_id}"
        return stored.source


@pytest.fixture
def mapping_settings(prefix: str) -> Settings:
    return Settings(
        tracardi=TracardiSettings(tenant=prefix),
        mapping=MappingSettings(live=True, live_start="earliest", batch_size=50,
                                poll_interval_s=0.01, recheck_every_s=0.01, lease_s=5.0),
        definitions=DefinitionsSettings(refresh_s=0.01))


@pytest.fixture
def world(elastic_client: Elasticsearch, redis_client: RedisClient,
          mapping_settings: Settings) -> Iterator[World]:
    install(elastic_client, mapping_settings)
    yield World(elastic_client, redis_client, mapping_settings)


def run_until_idle(role: Any, ctx: RoleContext, max_steps: int = 500) -> int:
    """Step until two steps in a row find no work; returns the steps that did work."""
    busy, idle = 0, 0
    for _ in range(max_steps):
        if role.step(ctx.clock()):
            busy, idle = busy + 1, 0
        else:
            idle += 1
            if idle >= 2:
                return busy
    raise AssertionError(f"the role was still busy after {max_steps} steps")


def settings_with(settings: Settings, **mapping: Any) -> Settings:
    return replace(settings, mapping=replace(settings.mapping, **mapping))


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)
