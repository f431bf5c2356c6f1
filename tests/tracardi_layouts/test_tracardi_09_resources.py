"""Layout tracardi-0.9: a ``mysql-table-importer`` stored in Tracardi's ``import`` table
names a row of its ``resource`` table; the rows are read with that resource's MySQL
credentials from a database (and with a user) other than the daemon's own, and a
resource where nothing listens fails the import with the resource named."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import RoleStarter, start_role, step_until_ended
from tests.receivers import LOOPBACK_ALLOWED, ScriptedServer, free_port, http_server
from tests.roles.upgrade.imports.mysql_fixtures import (
    mysql_address,
    mysql_connection,
    mysql_database,
)
from tests.tracardi_layouts import documents as docs
from tests.tracardi_layouts.install import TracardiTables
from tests.tracardi_layouts.test_tracardi_09_definitions import (
    account,
    insert,
    settings,
    tables,
)
from tracardi_daemon.config.settings import QueueSettings, Settings, UpgradeSettings
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import UPGRADE_QUEUE
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.jobs import queue_task
from tracardi_daemon.roles.upgrade.imports.job import IMPORT_TASK, import_params
from tracardi_daemon.roles.upgrade.role import UpgradeRole

__all__ = ["account", "http_server", "mysql_database", "settings", "start_role", "tables"]

MYSQL_IMPORTER = "tracardi.process_engine.import_service.mysql_table_importer.MySQLTableImporter"
ROWS = 7


@pytest.fixture
def shop() -> Iterator[dict[str, Any]]:
    """A database apart from Tracardi's, readable only by a user of its own."""
    name, user = f"shop{uuid.uuid4().hex[:10]}", f"u{uuid.uuid4().hex[:12]}"
    password = f"pw-{uuid.uuid4().hex}"
    with mysql_connection() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
        cursor.execute(f"CREATE TABLE `{name}`.customers (id INT PRIMARY KEY, email TEXT)")
        cursor.executemany(f"INSERT INTO `{name}`.customers VALUES (%s, %s)",
                           [(n, f"c{n}@example.com") for n in range(ROWS)])
        cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        cursor.execute(f"GRANT SELECT ON `{name}`.* TO %s@'%%'", (user,))
    try:
        yield {**mysql_address(), "database": name, "user": user, "password": password}
    finally:
        with mysql_connection() as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute("DROP USER IF EXISTS %s@'%%'", (user,))


def put(tables: TracardiTables, tenant: str, shop: dict[str, Any], credentials: dict[str, Any],
        api_url: str) -> None:
    """The resource and the import as Tracardi 0.9 writes them (credentials encoded as in
    0.8; the import's config as plain JSON)."""
    resource = docs.resource_document("shop-db", name="Shop DB", resource_type="mysql",
                                      test=credentials, production=credentials,
                                      version="09x")
    insert(tables, "resource", tenant, {**resource, "timestamp": "2024-03-05 10:00:00",
                                        "tags": "mysql", "groups": ""})
    config = {"source": {"id": "shop-db", "name": "Shop DB"},
              "database_name": {"id": shop["database"], "name": shop["database"]},
              "table_name": {"id": "customers", "name": "customers"}, "batch": 3}
    insert(tables, "import", tenant, {
        "id": "shop", "name": "Shop customers", "description": "", "module": MYSQL_IMPORTER,
        "config": json.dumps(config), "enabled": True, "transitional": False,
        "api_url": api_url, "event_source_id": "import-source",
        "event_source_name": "Import source", "event_type": "customer"})


def run_import(start_role: RoleStarter, settings: Settings, redis: RedisClient,
               elastic: Elasticsearch) -> TaskRecord:
    tasks = TaskStore(redis, elastic, settings)
    record = queue_task(tasks, WorkQueue(redis, settings.tracardi.tenant, UPGRADE_QUEUE),
                        IMPORT_TASK, "import shop", import_params("shop"))
    role, ctx = start_role(UpgradeRole, settings)
    return step_until_ended(role, ctx, tasks, record.id)


@pytest.fixture
def quick(settings: Settings) -> Settings:
    return replace(settings, outbound=LOOPBACK_ALLOWED, queue=QueueSettings(max_attempts=1),
                   upgrade=UpgradeSettings(poll_interval_s=0.01, lease_s=5.0,
                                           source_connect_timeout_s=2.0))


def test_a_mysql_import_reads_with_its_resources_credentials(
        tables: TracardiTables, quick: Settings, prefix: str, shop: dict[str, Any],
        redis_client: RedisClient, elastic_client: Elasticsearch, start_role: RoleStarter,
        http_server: ScriptedServer) -> None:
    assert quick.mysql.database != shop["database"] and quick.mysql.username != shop["user"]
    credentials = {"host": shop["host"], "port": shop["port"], "user": shop["user"],
                   "password": shop["password"]}
    put(tables, prefix, shop, credentials, http_server.url)
    ended = run_import(start_role, quick, redis_client, elastic_client)
    assert (ended.status, ended.done, ended.failed) == ("finished", ROWS, 0), ended.last_error
    posted = sorted(request.json()["email"] for request in http_server.received)
    assert posted == sorted(f"c{n}@example.com" for n in range(ROWS))


def test_a_mysql_resource_where_nothing_listens_fails_the_import_naming_it(
        tables: TracardiTables, quick: Settings, prefix: str, shop: dict[str, Any],
        redis_client: RedisClient, elastic_client: Elasticsearch, start_role: RoleStarter,
        http_server: ScriptedServer) -> None:
    closed = free_port()
    put(tables, prefix, shop, {"host": "127.0.0.1", "port": closed, "user": shop["user"],
                               "password": shop["password"]}, http_server.url)
    ended = run_import(start_role, quick, redis_client, elastic_client)
    error = ended.last_error or ""
    assert (ended.status, ended.done) == ("failed", 0)
    assert "resource 'shop-db' (Shop DB)" in error
    assert f"could not connect to the source at 127.0.0.1:{closed}" in error
    assert shop["password"] not in error
    assert http_server.received == []
