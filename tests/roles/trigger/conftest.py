"""Fixtures for the trigger tests: workflow-triggers stored in the real Elasticsearch,
segment changes on the real Redis, the trigger and dispatch roles started against both,
and a real local HTTP receiver."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import start_role
from tests.receivers import LOOPBACK_ALLOWED, ScriptedServer, http_server
from tracardi_daemon.config.settings import (
    DefinitionsSettings,
    DispatchSettings,
    QueueSettings,
    Settings,
    TracardiSettings,
)
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import SEGMENT_CHANGES_QUEUE
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import WorkflowTrigger
from tracardi_daemon.model.indices import install
from tracardi_daemon.roles.base import RoleContext
from tracardi_daemon.roles.dispatch.role import DispatchRole
from tracardi_daemon.roles.trigger.role import TriggerRole

__all__ = ["World", "http_server", "start_role"]

AT = "2030-01-01T09:00:00+00:00"


@pytest.fixture
def settings(prefix: str, http_server: ScriptedServer) -> Settings:
    return Settings(
        # tracker targets without a URL go to the receiver's /track
        tracardi=TracardiSettings(tenant=prefix, api_url=http_server.url),
        outbound=LOOPBACK_ALLOWED,
        queue=QueueSettings(visibility_timeout_s=0.6, poll_interval_s=0.05, batch_size=10,
                            retry_backoff_initial_s=0.05, retry_backoff_max_s=0.1),
        dispatch=DispatchSettings(max_attempts=3, retry_backoff_initial_s=0.05,
                                  retry_backoff_max_s=0.1, connect_timeout_s=0.5,
                                  read_timeout_s=2.0, total_timeout_s=3.0),
        definitions=DefinitionsSettings(refresh_s=0.0))


def trigger_doc(trigger_id: str, *, target: Any, type: str = "segment-add",
                segment: tuple[str, str] = ("seg-vip", "VIP customers"),
                **extra: Any) -> dict[str, Any]:
    """A workflow-trigger as Tracardi stores it."""
    return {"id": trigger_id, "name": f"Trigger {trigger_id}", "type": type,
            "segment": {"id": segment[0], "name": segment[1]},
            "workflow": {"id": f"wf-{trigger_id}", "name": f"Workflow {trigger_id}"},
            "target": target, **extra}


def change_message(change_id: str = "change-1", *, profile_id: str = "p-1",
                   segment: str = "vip-customers", segment_id: str | None = "seg-vip",
                   change: str = "add") -> dict[str, Any]:
    return {"id": change_id, "profile_id": profile_id, "segment": segment,
            "segment_id": segment_id, "change": change, "at": AT, "cause": "test"}


@dataclass
class World:
    """The tenant's indices installed; triggers and changes put in, roles stepped."""

    es: Elasticsearch
    redis: RedisClient
    settings: Settings
    starter: Callable[..., tuple[Any, RoleContext]]
    receiver: ScriptedServer

    def store_triggers(self, *docs: dict[str, Any]) -> None:
        DefinitionStore(self.es, self.settings).upsert_many(
            [WorkflowTrigger.from_dict(doc) for doc in docs])

    def send(self, *messages: dict[str, Any]) -> None:
        self.changes().enqueue_many(list(messages))

    def changes(self) -> WorkQueue:
        return WorkQueue(self.redis, self.settings.tracardi.tenant, SEGMENT_CHANGES_QUEUE)

    def trigger_role(self) -> tuple[TriggerRole, RoleContext]:
        role, ctx = self.starter(TriggerRole, self.settings)
        return role, ctx

    def dispatch_role(self) -> tuple[DispatchRole, RoleContext]:
        role, ctx = self.starter(DispatchRole, self.settings)
        return role, ctx

    def stream(self, name: str) -> list[dict[str, str]]:
        entries = self.redis.xrange(f"{self.settings.tracardi.tenant}:{name}")
        return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


@pytest.fixture
def world(elastic_client: Elasticsearch, redis_client: RedisClient, settings: Settings,
          start_role: Callable[..., tuple[Any, RoleContext]],
          http_server: ScriptedServer) -> Iterator[World]:
    install(elastic_client, settings)
    yield World(elastic_client, redis_client, settings, start_role, http_server)


def run_until(roles: list[Any], predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Step every role in turn until ``predicate`` holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        for role in roles:
            role.step(time.time())


def run_for(roles: list[Any], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for role in roles:
            role.step(time.time())
