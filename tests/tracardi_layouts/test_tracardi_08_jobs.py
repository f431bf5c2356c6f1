"""Layout tracardi-0.8, end to end through the upgrade role: an import stored the way
Tracardi stores it (tracardi-import, config as base64 of gzipped JSON) runs, posts its
rows to the collector, and its progress is in Tracardi's own tracardi-task index; so is
a migration's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch, helpers

from tests.conftest import RoleStarter, start_role, step_until_ended
from tests.receivers import LOOPBACK_ALLOWED, ScriptedServer, http_server
from tests.tracardi_layouts import documents as docs
from tests.tracardi_layouts.install import TracardiInstall, install_tracardi_elastic
from tests.tracardi_layouts.plan_targets import create_plan_targets
from tracardi_daemon.config.settings import Settings, TracardiSettings, UpgradeSettings
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import UPGRADE_QUEUE
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.jobs import queue_task
from tracardi_daemon.roles.upgrade.imports.job import IMPORT_TASK, import_params
from tracardi_daemon.roles.upgrade.migration.job import MIGRATION_TASK, migration_params
from tracardi_daemon.roles.upgrade.migration.plan_files import load_plan
from tracardi_daemon.roles.upgrade.role import UpgradeRole

__all__ = ["http_server", "start_role"]

ELASTIC_IMPORTER = ("tracardi.process_engine.import_service.elastic_index_importer."
                    "ElasticIndexImporter")
ROWS = 30


@pytest.fixture
def tracardi(elastic_client: Elasticsearch, prefix: str) -> Iterator[TracardiInstall]:
    install = install_tracardi_elastic(elastic_client, "08x", prefix)
    yield install
    install.drop()


@pytest.fixture
def settings(tracardi: TracardiInstall) -> Settings:
    return Settings(
        tracardi=TracardiSettings(tenant=tracardi.tenant, db_version=tracardi.version,
                                  layout="tracardi-0.8"),
        upgrade=UpgradeSettings(batch_size=10, poll_interval_s=0.01, lease_s=5.0),
        outbound=LOOPBACK_ALLOWED)  # the collector the imports post to listens on loopback


def _run(start_role: RoleStarter, settings: Settings, redis: RedisClient,
         elastic: Elasticsearch, record: TaskRecord) -> TaskRecord:
    role, ctx = start_role(UpgradeRole, settings)
    tasks = TaskStore(redis, elastic, settings)
    return step_until_ended(role, ctx, tasks, record.id)


def _tracardi_task(tracardi: TracardiInstall, task_id: str) -> dict[str, object]:
    alias = tracardi.indices["task"].alias
    tracardi.elastic.indices.refresh(index=alias)
    found: dict[str, object] = tracardi.elastic.get(index=alias, id=task_id)["_source"]
    return found


def test_an_import_stored_in_tracardis_shape_runs_and_reports_in_tracardi_task(
        tracardi: TracardiInstall, settings: Settings, redis_client: RedisClient,
        start_role: RoleStarter, http_server: ScriptedServer, prefix: str) -> None:
    source = f"{prefix}-crm"
    helpers.bulk(tracardi.elastic, ({"_index": source, "_id": f"c{n}",
                                     "_source": {"id": f"c{n}", "score": n}}
                                    for n in range(ROWS)), refresh=True)
    stored = docs.import_document("crm", config={"index": {"id": source, "name": source},
                                                 "batch": 10},
                                  module=ELASTIC_IMPORTER, event_type="crm-row")
    tracardi.elastic.index(index=tracardi.indices["import"].write_index, id="crm",
                           document={**stored, "api_url": http_server.url}, refresh=True)
    tasks = TaskStore(redis_client, tracardi.elastic, settings)
    record = queue_task(tasks, WorkQueue(redis_client, settings.tracardi.tenant, UPGRADE_QUEUE),
                        IMPORT_TASK, "import crm", import_params("crm"))
    ended = _run(start_role, settings, redis_client, tracardi.elastic, record)
    assert (ended.status, ended.done, ended.failed) == ("finished", ROWS, 0)
    assert len(http_server.received) == ROWS
    assert {request.path for request in http_server.received} == \
        {"/collect/crm-row/import-source"}
    task = _tracardi_task(tracardi, record.id)
    assert (task["type"], task["status"], task["progress"], task["task_id"]) == \
        ("import", "done", 100.0, record.id)
    assert set(task) <= {"id", "task_id", "name", "type", "status", "progress", "params",
                         "timestamp", "event_type"}


def test_a_migrations_progress_is_in_tracardi_task(
        tracardi: TracardiInstall, settings: Settings, redis_client: RedisClient,
        start_role: RoleStarter, tmp_path: Path, prefix: str) -> None:
    source = f"08x.{prefix}old.tracardi-segment"
    tracardi.elastic.indices.create(index=source,
                                    mappings={"properties": {"id": {"type": "keyword"}}})
    helpers.bulk(tracardi.elastic, ({"_index": source, "_id": f"s{n}",
                                     "_source": {"id": f"s{n}", "name": f"S{n}"}}
                                    for n in range(ROWS)), refresh=True)
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(f'''
from = {{version = "08x", tenant = "{prefix}old", style = "tracardi"}}
to = {{version = "08x", tenant = "{prefix}new", style = "tracardi"}}
[[step]]
id = "segments"
index = "tracardi-segment"
''')
    plan = load_plan(plan_file)
    assert plan.target is not None
    create_plan_targets(tracardi.elastic, plan, plan.target)  # as Tracardi's /install would
    tasks = TaskStore(redis_client, tracardi.elastic, settings)
    record = queue_task(tasks, WorkQueue(redis_client, settings.tracardi.tenant, UPGRADE_QUEUE),
                        MIGRATION_TASK, "copy segments", migration_params(plan))
    try:
        ended = _run(start_role, settings, redis_client, tracardi.elastic, record)
        assert (ended.status, ended.done) == ("finished", ROWS)
        task = _tracardi_task(tracardi, record.id)
        assert (task["type"], task["status"], task["progress"]) == ("upgrade", "done", 100.0)
        assert task["params"]["plan"]["step"][0]["id"] == "segments"  # type: ignore[index]
    finally:
        tracardi.elastic.options(ignore_status=404).indices.delete(
            index=f"08x.{prefix}old.*,08x.{prefix}new.*")


