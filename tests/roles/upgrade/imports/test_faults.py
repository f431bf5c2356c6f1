"""Imports in real daemon processes with no licence (upgrade needs none): ``kill -9``
mid-import and a Redis restart mid-import, each finished with exact counts and no row
imported twice; poisoned job messages acknowledged without blocking the queue."""

from __future__ import annotations

import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan

from tests.faults.scenarios import private_redis
from tests.fleet import UnlicensedFleet, running, unlicensed_fleet, wait_for
from tracardi_daemon.config.settings import Settings, TracardiSettings
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import UPGRADE_QUEUE
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import ImportConfig
from tracardi_daemon.model.indices import install
from tracardi_daemon.model.naming import alias_name
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.jobs import queue_task
from tracardi_daemon.roles.upgrade.imports.job import IMPORT_TASK, import_params
from tracardi_daemon.roles.upgrade.imports.targets import imported_id

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

ROWS = 6000
SETTINGS = """
[queue]
visibility_timeout_s = 1.0
[upgrade]
lease_s = 2.0
poll_interval_s = 0.05
# the test's files are in its temporary directory
import_dirs = ["{tmp}"]
""".replace("{tmp}", tempfile.gettempdir())


@pytest.fixture
def fleet(prefix: str, elastic_client: Elasticsearch,
          redis_client: RedisClient) -> Iterator[UnlicensedFleet]:
    with unlicensed_fleet(prefix, SETTINGS) as started:
        yield started


def _submit(client: RedisClient, es: Elasticsearch, prefix: str,
            tmp_path: Path) -> tuple[TaskStore, str]:
    settings = Settings(tracardi=TracardiSettings(tenant=prefix))
    install(es, settings)
    path = tmp_path / "rows.csv"
    # every 500th row is bad (a short row): failures must be counted once, too
    path.write_text("customer,n\n" + "".join(
        f"c{n}\n" if n % 500 == 0 else f"c{n},{n}\n" for n in range(ROWS)), encoding="utf-8")
    DefinitionStore(es, settings).upsert_many([ImportConfig.from_dict({
        "id": "rows", "name": "Rows", "source": "csv",
        "config": {"path": str(path), "target": "events", "event_type": "row",
                   "event_source": "file", "key": "customer", "batch": 100}})])
    tasks = TaskStore(client, es, settings)
    queue = WorkQueue(client, prefix, UPGRADE_QUEUE)
    # poison first: a message naming no task, and one naming a task that does not exist
    queue.enqueue({"task": "wrong field"})
    queue.enqueue({"task_id": "no-such-task"})
    record = queue_task(tasks, queue, IMPORT_TASK, "fault test", import_params("rows"))
    return tasks, record.id


def _check(es: Elasticsearch, client: RedisClient, prefix: str, tasks: TaskStore,
           task_id: str) -> None:
    [dead] = WorkQueue(client, prefix, UPGRADE_QUEUE).list_dead()
    assert "'task_id' must name a task" in dead.reason
    record = tasks.get(task_id)
    assert record is not None and record.status == "finished", record
    bad = ROWS // 500
    assert (record.done, record.failed, record.total) == (ROWS - bad, bad, ROWS)
    alias = alias_name(TracardiSettings(tenant=prefix), "event")
    es.indices.refresh(index=alias)
    ids = [hit["_id"] for hit in scan(es, index=alias, query={"_source": False})]
    assert len(ids) == len(set(ids)), "an event stored twice"
    assert set(ids) == {imported_id("rows", f"c{n}") for n in range(ROWS) if n % 500}


def test_kill_9_mid_import_then_another_daemon_resumes_with_exact_counts(
        fleet: UnlicensedFleet, elastic_client: Elasticsearch, redis_client: RedisClient,
        prefix: str, tmp_path: Path) -> None:
    tasks, task_id = _submit(redis_client, elastic_client, prefix, tmp_path)
    first = fleet.start(["upgrade"])
    first.wait_health(running("upgrade"))
    wait_for(lambda: (r := tasks.get(task_id)) is not None and r.done >= 1000, 60,
             "the first batches")
    first.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    first.proc.wait(10)  # type: ignore[union-attr]
    killed_at = tasks.get(task_id)
    assert killed_at is not None and killed_at.status == "running"
    assert killed_at.done < ROWS - ROWS // 500  # killed mid-import, not after it
    fleet.start(["upgrade"])
    wait_for(lambda: (r := tasks.get(task_id)) is not None and r.terminal, 60, "the takeover")
    _check(elastic_client, redis_client, prefix, tasks, task_id)


def test_a_redis_restart_mid_import_loses_and_doubles_nothing(
        fleet: UnlicensedFleet, elastic_client: Elasticsearch, prefix: str, tmp_path: Path) -> None:
    with private_redis() as server:
        client = redis.Redis(port=server.port)
        tasks, task_id = _submit(client, elastic_client, prefix, tmp_path)
        daemon = fleet.start(["upgrade"], redis_port=server.port)
        wait_for(lambda: (r := tasks.get(task_id)) is not None and r.done >= 1000, 60,
                 "the first batches")
        server.stop()
        time.sleep(1.0)
        server.start()
        wait_for(lambda: (r := tasks.get(task_id)) is not None and r.terminal, 90,
                 "the import to finish")
        _check(elastic_client, client, prefix, tasks, task_id)
        assert daemon.proc is not None and daemon.proc.poll() is None
