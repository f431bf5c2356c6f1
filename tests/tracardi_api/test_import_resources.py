"""Beside Tracardi 0.8.2's own API: an Elasticsearch resource and an
``elastic-index-importer`` made through ``POST /resource`` and ``POST /import`` as its
GUI makes them; the daemon's import connects with the resource's credentials — the
test set (the node as ``localhost``) in a debug run, the production set (a closed port)
otherwise, which fails the import naming the resource."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from elasticsearch import Elasticsearch, helpers

from tests.conftest import RoleStarter, start_role, step_until_ended
from tests.receivers import LOOPBACK_ALLOWED, ScriptedServer, free_port, http_server
from tests.tracardi_api.api import ApiClient, ApiService, unique
from tracardi_daemon.config.settings import (
    QueueSettings,
    Settings,
    TracardiSettings,
    UpgradeSettings,
)
from tracardi_daemon.infra.queues import UPGRADE_QUEUE, work_queue
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.model.tracardi_names import Layout
from tracardi_daemon.roles.jobs import queue_task
from tracardi_daemon.roles.upgrade.imports.job import IMPORT_TASK, import_params
from tracardi_daemon.roles.upgrade.role import UpgradeRole

__all__ = ["http_server", "start_role"]
pytestmark = [pytest.mark.tracardi_api, pytest.mark.timeout(300)]

ELASTIC_IMPORTER = "tracardi.process_engine.import.elastic_importer.ElasticIndexImporter"
ROWS = 9


@dataclass
class Made:
    resources: list[str] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    indices: list[str] = field(default_factory=list)


@pytest.fixture
def settings(tracardi_service: ApiService) -> Settings:
    return Settings(
        tracardi=TracardiSettings(tenant=tracardi_service.tenant, db_version="0820",
                                  layout="tracardi-0.8"),
        upgrade=UpgradeSettings(poll_interval_s=0.01, lease_s=5.0, source_connect_timeout_s=2.0),
        queue=QueueSettings(max_attempts=1),
        outbound=LOOPBACK_ALLOWED)  # the node and the collector listen on loopback


@pytest.fixture
def made(tracardi: ApiClient, elastic_client: Elasticsearch,
         settings: Settings) -> Iterator[Made]:
    things = Made()
    yield things
    remove_made(tracardi, settings, elastic_client, things)


def remove_made(tracardi: ApiClient, settings: Settings, elastic_client: Elasticsearch,
                things: Made) -> None:
    for import_id in things.imports:
        tracardi.delete(f"/import/{import_id}")
    for resource_id in things.resources:
        tracardi.delete(f"/resource/{resource_id}")
    tasks = Layout.configured(settings.tracardi).alias("tracardi-task")
    for task_id in things.tasks:  # the daemon's progress records in Tracardi's task index
        # 0.9 keeps tasks in MySQL (its rows may stay: their ids are unique), no index
        found = elastic_client.options(ignore_status=404).search(
            index=tasks, query={"ids": {"values": [task_id]}}, source=False)
        hits = found.get("hits", {}).get("hits", [])
        for hit in hits:
            elastic_client.options(ignore_status=404).delete(index=hit["_index"],
                                                             id=hit["_id"])
    for index in things.indices:
        elastic_client.options(ignore_status=404).indices.delete(index=index)



def es_form(url: str, port: int) -> dict[str, Any]:
    """The credentials Tracardi's Elasticsearch resource form holds."""
    return {"url": url, "port": port, "scheme": "http", "username": None, "password": None,
            "verify_certs": False}


def run_import(start_role: RoleStarter, settings: Settings, redis: RedisClient,
               elastic: Elasticsearch, import_id: str, made: Made, **options: Any) -> TaskRecord:
    tasks = TaskStore(redis, elastic, settings)
    queue = work_queue(redis, settings.tracardi.tenant, UPGRADE_QUEUE, settings)
    record = queue_task(tasks, queue, IMPORT_TASK, f"import {import_id}",
                        import_params(import_id, **options))
    made.tasks.append(record.id)
    role, ctx = start_role(UpgradeRole, settings)
    return step_until_ended(role, ctx, tasks, record.id)


def test_an_elastic_index_importer_made_through_tracardis_api_uses_its_resource(
        tracardi: ApiClient, settings: Settings, made: Made, elastic_client: Elasticsearch,
        redis_client: RedisClient, start_role: RoleStarter,
        http_server: ScriptedServer) -> None:
    index = unique("src")
    made.indices.append(index)
    helpers.bulk(elastic_client, ({"_index": index, "_id": f"r{n}",
                                   "_source": {"id": f"r{n}", "n": n}} for n in range(ROWS)),
                 refresh=True)
    resource_id, import_id, closed = unique("res"), unique("imp"), free_port()
    saved = tracardi.post("/resource", {
        "id": resource_id, "type": "elasticsearch", "name": "CRM cluster",
        "tags": ["elasticsearch"],
        "credentials": {"test": es_form("localhost", 9200),
                        "production": es_form("127.0.0.1", closed)}})
    assert saved["saved"] == 1, saved
    made.resources.append(resource_id)
    saved = tracardi.post("/import", {
        "id": import_id, "name": "CRM rows", "module": ELASTIC_IMPORTER,
        "config": {"source": {"id": resource_id, "name": "CRM cluster"},
                   "index": {"id": index, "name": index}, "batch": 4},
        "api_url": http_server.url, "event_source": {"id": "crm", "name": "CRM"},
        "event_type": "crm-row"})
    assert saved["saved"] == 1, saved
    made.imports.append(import_id)

    ended = run_import(start_role, settings, redis_client, elastic_client, import_id, made,
                       debug=True)
    assert (ended.status, ended.done, ended.failed) == ("finished", ROWS, 0), ended.last_error
    assert sorted(request.json()["n"] for request in http_server.received) == list(range(ROWS))

    ended = run_import(start_role, settings, redis_client, elastic_client, import_id, made,
                       debug=False)
    error = ended.last_error or ""
    assert (ended.status, ended.done) == ("failed", 0), error
    assert f"resource {resource_id!r} (CRM cluster)" in error
    assert f"127.0.0.1:{closed}" in error
    assert len(http_server.received) == ROWS
