"""What the migration tests share: their settings and indices, submitting a plan, and
stepping the role until its task ends."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import step_until_ended
from tests.tracardi_layouts.plan_targets import create_plan_targets
from tracardi_daemon.cli.migrate import choose_plan
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


def submit(redis: RedisClient, es: Elasticsearch, settings: Settings, plan: Plan, *,
           install_targets: bool = True, **options: Any) -> TaskRecord:
    """The plan queued; a Tracardi target installed first, as Tracardi's /install would
    (unless ``install_targets`` is False: the daemon refuses a missing one)."""
    if install_targets:
        install_plan_targets(es, plan, settings)
    tasks = TaskStore(redis, es, settings)
    return queue_task(tasks, WorkQueue(redis, settings.tracardi.tenant, UPGRADE_QUEUE),
                      MIGRATION_TASK, "test migration", migration_params(plan, **options))


def install_plan_targets(es: Elasticsearch, plan: Plan, settings: Settings) -> None:
    target = plan.target_layout(settings.tracardi)  # the job's, for the plan as queued
    if target.style == "tracardi":
        create_plan_targets(es, plan, target)


def install_cli_targets(es: Elasticsearch, plan_file: Path, from_tenant: str,
                        tenant: str) -> None:
    """The targets ``migrate plan|run --plan FILE --from-tenant F`` writes into with
    TENANT_NAME=``tenant``, installed as Tracardi's /install would."""
    plan = choose_plan(None, str(plan_file), from_tenant)
    assert plan.target is not None
    target = replace(plan.target, tenant=tenant)
    create_plan_targets(es, replace(plan, target=target), target)


def run_to_end(role: Any, ctx: Any, tasks: TaskStore, task_id: str,
               seen: list[int] | None = None) -> TaskRecord:
    return step_until_ended(role, ctx, tasks, task_id, steps=2000, seen=seen)
