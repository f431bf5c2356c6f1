"""Layout tracardi-0.8: an import stored the way Tracardi stores it names a resource
(``config.source``) in ``tracardi-resource``; the daemon connects with that resource's
credentials (test or production, as Tracardi's ``debug`` picks them), and a resource it
cannot use fails the import, named by id and name, never its password.

One Elasticsearch node serves here: the resource names it as ``localhost`` while the
daemon's own client uses ``127.0.0.1``, and the outbound policy tells the two apart."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from elasticsearch import Elasticsearch, helpers

from tests.conftest import RoleStarter, start_role, step_until_ended
from tests.receivers import LOOPBACK_ALLOWED, ScriptedServer, free_port, http_server
from tests.tracardi_layouts import documents as docs
from tests.tracardi_layouts.install import TracardiInstall, install_tracardi_elastic
from tracardi_daemon.config.settings import (
    OutboundSettings,
    QueueSettings,
    Settings,
    TracardiSettings,
    UpgradeSettings,
)
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import UPGRADE_QUEUE
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.jobs import queue_task
from tracardi_daemon.roles.upgrade.imports.job import IMPORT_TASK, import_params
from tracardi_daemon.roles.upgrade.role import UpgradeRole

__all__ = ["http_server", "start_role"]

ELASTIC_IMPORTER = ("tracardi.process_engine.import_service.elastic_index_importer."
                    "ElasticIndexImporter")
ROWS = 12
RESOURCE = {"id": "es-crm", "name": "CRM cluster"}
SECRET = f"pw-{uuid.uuid4().hex}"  # found nowhere else: must never show in an error


@pytest.fixture
def tracardi(elastic_client: Elasticsearch, prefix: str) -> Iterator[TracardiInstall]:
    install = install_tracardi_elastic(elastic_client, "0820", prefix)
    yield install
    install.drop()


@pytest.fixture
def settings(tracardi: TracardiInstall) -> Settings:
    return Settings(
        tracardi=TracardiSettings(tenant=tracardi.tenant, db_version=tracardi.version,
                                  layout="tracardi-0.8"),
        upgrade=UpgradeSettings(batch_size=10, poll_interval_s=0.01, lease_s=5.0,
                                source_connect_timeout_s=2.0),
        queue=QueueSettings(max_attempts=1),  # an unusable source fails at once
        outbound=LOOPBACK_ALLOWED)  # the collector and the resource's node are on loopback


@pytest.fixture
def source_index(tracardi: TracardiInstall, prefix: str) -> Iterator[str]:
    index = f"{prefix}-crm"
    helpers.bulk(tracardi.elastic, ({"_index": index, "_id": f"c{n}",
                                     "_source": {"id": f"c{n}", "score": n}}
                                    for n in range(ROWS)), refresh=True)
    yield index
    tracardi.elastic.options(ignore_status=404).indices.delete(index=index)


def elastic_credentials(url: str, port: int = 9200) -> dict[str, Any]:
    """Tracardi's Elasticsearch resource form: host, port and scheme apart."""
    return {"url": url, "port": port, "scheme": "http", "username": None, "password": None,
            "verify_certs": False}


def put_resource(tracardi: TracardiInstall, *, test: dict[str, Any],
                 production: dict[str, Any], enabled: bool = True) -> None:
    document = docs.resource_document(RESOURCE["id"], name=RESOURCE["name"],
                                      resource_type="elasticsearch", test=test,
                                      production=production, enabled=enabled,
                                      version=tracardi.version)
    tracardi.elastic.index(index=tracardi.indices["resource"].write_index, id=RESOURCE["id"],
                           document=document, refresh=True)


def put_import(tracardi: TracardiInstall, index: str, api_url: str) -> None:
    stored = docs.import_document("crm", config={"source": RESOURCE,
                                                 "index": {"id": index, "name": index},
                                                 "batch": 5},
                                  module=ELASTIC_IMPORTER, event_type="crm-row")
    tracardi.elastic.index(index=tracardi.indices["import"].write_index, id="crm",
                           document={**stored, "api_url": api_url}, refresh=True)


def run_import(start_role: RoleStarter, settings: Settings, redis: RedisClient,
               elastic: Elasticsearch, **options: Any) -> TaskRecord:
    tasks = TaskStore(redis, elastic, settings)
    record = queue_task(tasks, WorkQueue(redis, settings.tracardi.tenant, UPGRADE_QUEUE),
                        IMPORT_TASK, "import crm", import_params("crm", **options))
    role, ctx = start_role(UpgradeRole, settings)
    return step_until_ended(role, ctx, tasks, record.id)


def test_the_resources_test_credentials_are_read_in_a_debug_run_and_production_otherwise(
        tracardi: TracardiInstall, settings: Settings, source_index: str,
        redis_client: RedisClient, start_role: RoleStarter,
        http_server: ScriptedServer) -> None:
    closed = free_port()
    put_resource(tracardi, test=elastic_credentials("localhost"),
                 production={**elastic_credentials("127.0.0.1", closed),
                             "username": "elastic", "password": SECRET})
    put_import(tracardi, source_index, http_server.url)
    # not in production mode: Tracardi's context picks the test credentials
    ended = run_import(start_role, settings, redis_client, tracardi.elastic)
    assert (ended.status, ended.done, ended.failed) == ("finished", ROWS, 0)
    assert len(http_server.received) == ROWS

    # debug off: the production credentials, where nothing listens
    ended = run_import(start_role, settings, redis_client, tracardi.elastic, debug=False)
    error = ended.last_error or ""
    assert (ended.status, ended.done) == ("failed", 0), error
    assert "resource 'es-crm' (CRM cluster)" in error
    assert f"could not connect to the source at 127.0.0.1:{closed}" in error
    assert SECRET not in error
    assert len(http_server.received) == ROWS  # nothing more was posted


def test_production_mode_reads_the_production_credentials(
        tracardi: TracardiInstall, settings: Settings, source_index: str,
        redis_client: RedisClient, start_role: RoleStarter,
        http_server: ScriptedServer, elastic_client: Elasticsearch, prefix: str) -> None:
    production = install_tracardi_elastic(elastic_client, "0820", prefix, production=True)
    try:
        settings = replace(settings, tracardi=replace(settings.tracardi, production=True))
        closed = free_port()
        put_resource(production, test=elastic_credentials("127.0.0.1", closed),
                     production=elastic_credentials("localhost"))
        put_import(production, source_index, http_server.url)
        ended = run_import(start_role, settings, redis_client, production.elastic)
        assert (ended.status, ended.done) == ("finished", ROWS), ended.last_error
        ended = run_import(start_role, settings, redis_client, production.elastic, debug=True)
        assert ended.status == "failed"
        assert f"127.0.0.1:{closed}" in (ended.last_error or "")
    finally:
        production.drop()


def test_the_outbound_policy_applies_to_the_resources_host(
        tracardi: TracardiInstall, settings: Settings, source_index: str,
        redis_client: RedisClient, start_role: RoleStarter,
        http_server: ScriptedServer) -> None:
    put_resource(tracardi, test=elastic_credentials("localhost"),
                 production=elastic_credentials("localhost"))
    put_import(tracardi, source_index, http_server.url)
    # the daemon's own cluster (127.0.0.1) stays open; the resource's host is denied
    denied = replace(settings, outbound=OutboundSettings(allow=LOOPBACK_ALLOWED.allow,
                                                         deny=("localhost",)))
    ended = run_import(start_role, denied, redis_client, tracardi.elastic)
    error = ended.last_error or ""
    assert (ended.status, ended.done) == ("failed", 0)
    assert "resource 'es-crm' (CRM cluster)" in error and "localhost" in error
    assert "outbound" in error
    assert http_server.received == []


def test_a_missing_or_disabled_resource_fails_the_import_naming_it(
        tracardi: TracardiInstall, settings: Settings, source_index: str,
        redis_client: RedisClient, start_role: RoleStarter,
        http_server: ScriptedServer) -> None:
    put_import(tracardi, source_index, http_server.url)
    ended = run_import(start_role, settings, redis_client, tracardi.elastic)
    assert ended.status == "failed"
    assert "resource 'es-crm' (CRM cluster) does not exist in Tracardi" in (
        ended.last_error or "")
    put_resource(tracardi, test=elastic_credentials("localhost"),
                 production=elastic_credentials("localhost"), enabled=False)
    ended = run_import(start_role, settings, redis_client, tracardi.elastic)
    assert ended.status == "failed"
    assert "resource 'es-crm' (CRM cluster) is disabled" in (ended.last_error or "")
    assert http_server.received == []
