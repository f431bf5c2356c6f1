"""What the migration tests share: their settings and indices, submitting a plan, and
stepping the role until its task ends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import step_until_ended
from tracardi_daemon.config.settings import Settings, TracardiSettings, UpgradeSettings
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import UPGRADE_QUEUE
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.indices import install
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.jobs import queue_task
from tracardi_daemon.roles.upgrade.migration.job import MIGRATION_TASK, migration_params
from tracardi_daemon.roles.upgrade.migration.plan import Plan


@pytest.fixture
def settings(prefix: str) -> Settings:
    return Settings(tracardi=TracardiSettings(tenant=prefix),
                    upgrade=UpgradeSettings(batch_size=25, poll_interval_s=0.01, lease_s=5.0))


@pytest.fixture
def es(elastic_client: Elasticsearch, settings: Settings) -> Iterator[Elasticsearch]:
    install(elastic_client, settings)
    yield elastic_client


def submit(redis: RedisClient, es: Elasticsearch, settings: Settings, plan: Plan,
           **options: Any) -> TaskRecord:
    tasks = TaskStore(redis, es, settings)
    return queue_task(tasks, WorkQueue(redis, settings.tracardi.tenant, UPGRADE_QUEUE),
                      MIGRATION_TASK, "test migration", migration_params(plan, **options))


def run_to_end(role: Any, ctx: Any, tasks: TaskStore, task_id: str,
               seen: list[int] | None = None) -> TaskRecord:
    return step_until_ended(role, ctx, tasks, task_id, steps=2000, seen=seen)
