"""Layout tracardi-0.9, end to end through the upgrade role: an import stored in
Tracardi's MySQL ``import`` table runs, posts its rows to the collector, and its
progress is in Tracardi's ``task`` table."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from elasticsearch import Elasticsearch, helpers

from tests.conftest import RoleStarter, start_role, step_until_ended
from tests.receivers import LOOPBACK_ALLOWED, ScriptedServer, http_server
from tests.roles.upgrade.imports.mysql_fixtures import mysql_database
from tests.tracardi_layouts.install import TracardiTables
from tests.tracardi_layouts.test_tracardi_09_definitions import (
    account,
    insert,
    settings,
    tables,
    task_rows,
)
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import UPGRADE_QUEUE
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.jobs import queue_task
from tracardi_daemon.roles.upgrade.imports.job import IMPORT_TASK, import_params
from tracardi_daemon.roles.upgrade.role import UpgradeRole

__all__ = ["account", "http_server", "mysql_database", "settings", "start_role", "tables"]

ELASTIC_IMPORTER = ("tracardi.process_engine.import_service.elastic_index_importer."
                    "ElasticIndexImporter")
ROWS = 25


def test_an_import_stored_in_tracardis_table_runs_and_reports_in_its_task_table(
        tables: TracardiTables, settings: Settings, prefix: str, redis_client: RedisClient,
        elastic_client: Elasticsearch, start_role: RoleStarter,
        http_server: ScriptedServer) -> None:
    settings = replace(settings, outbound=LOOPBACK_ALLOWED)  # the collector is on loopback
    source = f"{prefix}-crm"
    helpers.bulk(elastic_client, ({"_index": source, "_id": f"c{n}",
                                   "_source": {"id": f"c{n}", "score": n}}
                                  for n in range(ROWS)), refresh=True)
    row: dict[str, Any] = {
        "id": "crm", "name": "CRM rows", "description": "", "module": ELASTIC_IMPORTER,
        "config": json.dumps({"index": {"id": source, "name": source}, "batch": 10}),
        "enabled": True, "transitional": False, "api_url": http_server.url,
        "event_source_id": "import-source", "event_source_name": "Import source",
        "event_type": "crm-row"}
    insert(tables, "import", prefix, row)
    tasks = TaskStore(redis_client, elastic_client, settings)
    record = queue_task(tasks, WorkQueue(redis_client, settings.tracardi.tenant, UPGRADE_QUEUE),
                        IMPORT_TASK, "import crm", import_params("crm"))
    role, ctx = start_role(UpgradeRole, settings)
    ended = step_until_ended(role, ctx, tasks, record.id)
    assert (ended.status, ended.done, ended.failed) == ("finished", ROWS, 0)
    assert len(http_server.received) == ROWS
    assert {request.path for request in http_server.received} == \
        {"/collect/crm-row/import-source"}
    stored = task_rows(tables)[record.id]
    assert (stored["type"], stored["status"], stored["progress"], stored["tenant"]) == \
        ("import", "done", 100.0, prefix)
