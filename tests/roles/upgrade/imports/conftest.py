"""Fixtures of the import tests: a tenant with installed indices in the real
Elasticsearch, import definitions stored as ``definitions apply`` stores them, and the
upgrade role stepped against the real Redis until a job ends."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import RoleStarter, start_role
from tests.receivers import LOOPBACK_ALLOWED
from tracardi_daemon.config.settings import Settings, TracardiSettings, UpgradeSettings
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import UPGRADE_QUEUE
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import ImportConfig
from tracardi_daemon.model.indices import install
from tracardi_daemon.model.naming import alias_name
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.jobs import queue_task
from tracardi_daemon.roles.upgrade.imports.failures import FailedRow, FailureLog
from tracardi_daemon.roles.upgrade.imports.job import IMPORT_TASK, import_params
from tracardi_daemon.roles.upgrade.role import UpgradeRole

__all__ = ["ImportWorld", "start_role"]


@dataclass
class ImportWorld:
    es: Elasticsearch
    redis: RedisClient
    settings: Settings
    start_role: RoleStarter

    @property
    def tasks(self) -> TaskStore:
        return TaskStore(self.redis, self.es, self.settings)

    def define(self, definition_id: str, source: str, **config: Any) -> ImportConfig:
        definition = ImportConfig.from_dict({"id": definition_id, "name": f"{definition_id} import",
                                             "source": source, "config": config})
        DefinitionStore(self.es, self.settings).upsert_many([definition])
        return definition

    def submit(self, definition_id: str, **options: Any) -> TaskRecord:
        return queue_task(self.tasks, WorkQueue(self.redis, self.settings.tracardi.tenant,
                                                UPGRADE_QUEUE),
                          IMPORT_TASK, f"test import {definition_id}",
                          import_params(definition_id, **options))

    def run(self, definition_id: str, **options: Any) -> TaskRecord:
        """Submit an import and step a fresh upgrade role until it ends."""
        record = self.submit(definition_id, **options)
        role, ctx = self.start_role(UpgradeRole, self.settings)
        return self.finish(role, ctx, record.id)

    def finish(self, role: Any, ctx: Any, task_id: str, max_steps: int = 5000) -> TaskRecord:
        for _ in range(max_steps):
            role.step(ctx.clock())
            record = self.tasks.get(task_id)
            assert record is not None
            if record.terminal:
                return record
        raise AssertionError(f"import {task_id} did not end")

    def failures(self, task_id: str) -> list[FailedRow]:
        return FailureLog(self.redis, self.settings.tracardi.tenant, task_id).rows(0, 100_000)

    def documents(self, kind: str) -> dict[str, dict[str, Any]]:
        """Every document of ``kind`` (event, profile) of the tenant, by id."""
        alias = alias_name(self.settings.tracardi, kind)
        self.es.indices.refresh(index=alias)
        found: dict[str, dict[str, Any]] = {}
        for hit in _all_hits(self.es, alias):
            assert hit["_id"] not in found, f"{kind} {hit['_id']} stored twice"
            found[hit["_id"]] = hit["_source"]
        return found


def _all_hits(es: Elasticsearch, index: str) -> Iterator[dict[str, Any]]:
    after: list[Any] | None = None
    while True:
        page = es.search(index=index, size=5000, sort=[{"id": "asc"}, {"_index": "asc"}],
                         search_after=after, query={"match_all": {}})["hits"]["hits"]
        if not page:
            return
        yield from page
        after = page[-1]["sort"]


@pytest.fixture
def import_settings(prefix: str) -> Settings:
    # the test's files are in its temporary directory, its sources on loopback: both
    # closed by default, opened here as an operator would
    return Settings(tracardi=TracardiSettings(tenant=prefix), outbound=LOOPBACK_ALLOWED,
                    upgrade=UpgradeSettings(batch_size=100, poll_interval_s=0.01, lease_s=5.0,
                                            import_dirs=(tempfile.gettempdir(),)))


@pytest.fixture
def world(elastic_client: Elasticsearch, redis_client: RedisClient, import_settings: Settings,
          start_role: RoleStarter) -> Iterator[ImportWorld]:
    install(elastic_client, import_settings)
    yield ImportWorld(elastic_client, redis_client, import_settings, start_role)
