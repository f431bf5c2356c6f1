"""Migrations in real daemon processes, with no licence at all (upgrade needs none):
``kill -9`` mid-step and a Redis restart mid-step, each finished with no document lost
and none duplicated (ids compared)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis
from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan

from tests.faults.scenarios import private_redis
from tests.fleet import UnlicensedFleet, running, unlicensed_fleet, wait_for
from tests.roles.upgrade.migration.conftest import submit
from tracardi_daemon.cli.migrate import choose_plan
from tracardi_daemon.config.settings import Settings, TracardiSettings
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.indices import install
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.upgrade.migration.plan import Plan

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

PER_MONTH = 1500
SETTINGS = """
[queue]
visibility_timeout_s = 1.0
[upgrade]
batch_size = 100
lease_s = 2.0
poll_interval_s = 0.05
"""


@pytest.fixture
def fleet(prefix: str, elastic_client: Elasticsearch,
          redis_client: RedisClient) -> Iterator[UnlicensedFleet]:
    with unlicensed_fleet(prefix, SETTINGS) as started:
        yield started


def _seed(es: Elasticsearch, prefix: str) -> Plan:
    plan = choose_plan("08x", None, f"{prefix}src")
    for month in (1, 2):
        index = f"08x.{prefix}src.tracardi-profile-2024-{month}"
        es.indices.create(index=index, mappings={"properties": {"id": {"type": "keyword"}}})
        operations: list[dict[str, Any]] = []
        for number in range(PER_MONTH):
            doc_id = f"m{month}-{number}"
            operations += [{"index": {"_index": index, "_id": doc_id}},
                           {"id": doc_id, "data": {"contact": {"email": f"{doc_id}@x.io"}}}]
        es.bulk(operations=operations, refresh=True)
    return replace(plan, target=replace(plan.target, tenant=f"{prefix}dst"))  # type: ignore[arg-type]


def _ids(es: Elasticsearch, index: str) -> list[str]:
    es.indices.refresh(index=index)
    return sorted(hit["_id"] for hit in scan(es, index=index, query={"_source": False}))


def _submit(client: RedisClient, es: Elasticsearch, prefix: str, plan: Plan) -> tuple[
        TaskStore, str]:
    settings = Settings(tracardi=TracardiSettings(tenant=prefix))
    install(es, settings)  # the task index; a daemon would install it at its start
    tasks = TaskStore(client, es, settings)
    record = submit(client, es, settings, plan)
    return tasks, record.id


def _check(es: Elasticsearch, prefix: str, tasks: TaskStore, task_id: str) -> None:
    record = tasks.get(task_id)
    assert record is not None and record.status == "finished", record
    assert (record.done, record.failed) == (2 * PER_MONTH, 0)
    target = f"0820.{prefix}dst.tracardi-profile-2024-q1"
    assert _ids(es, target) == sorted(f"m{m}-{n}" for m in (1, 2) for n in range(PER_MONTH))
    assert es.get(index=target, id="m2-7")["_source"]["data"]["contact"]["email"] == {
        "main": "m2-7@x.io"}


def test_kill_9_mid_step_then_another_daemon_resumes_with_nothing_lost_or_doubled(
        fleet: UnlicensedFleet, elastic_client: Elasticsearch, redis_client: RedisClient,
        prefix: str) -> None:
    plan = _seed(elastic_client, prefix)
    tasks, task_id = _submit(redis_client, elastic_client, prefix, plan)
    first = fleet.start(["upgrade"])
    first.wait_health(running("upgrade"))  # no licence: upgrade runs anyway
    wait_for(lambda: (r := tasks.get(task_id)) is not None and r.done >= 400, 60,
             "the first batches")
    first.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    first.proc.wait(10)  # type: ignore[union-attr]
    killed_at = tasks.get(task_id)
    assert killed_at is not None and killed_at.status == "running"
    fleet.start(["upgrade"])
    wait_for(lambda: (r := tasks.get(task_id)) is not None and r.terminal, 60, "the takeover")
    _check(elastic_client, prefix, tasks, task_id)


def test_a_redis_restart_mid_step_loses_and_doubles_nothing(
        fleet: UnlicensedFleet, elastic_client: Elasticsearch, prefix: str) -> None:
    plan = _seed(elastic_client, prefix)
    with private_redis() as server:
        client = redis.Redis(port=server.port)
        tasks, task_id = _submit(client, elastic_client, prefix, plan)
        daemon = fleet.start(["upgrade"], redis_port=server.port)
        wait_for(lambda: (r := tasks.get(task_id)) is not None and r.done >= 400, 60,
                 "the first batches")
        server.stop()
        time.sleep(1.0)
        server.start()
        wait_for(lambda: (r := tasks.get(task_id)) is not None and r.terminal, 90,
                 "the migration to finish")
        _check(elastic_client, prefix, tasks, task_id)
        assert daemon.proc is not None and daemon.proc.poll() is None
