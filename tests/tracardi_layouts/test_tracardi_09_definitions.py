"""Layout tracardi-0.9: definitions read from Tracardi 0.9's MySQL tables (rows as Tracardi
stores them, of the configured tenant and mode only), never written there, changes seen
after refresh_s; task records upserted into Tracardi's task table; credentials never shown."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pymysql
import pytest
from elasticsearch import Elasticsearch
from redis import Redis

from tests.roles.upgrade.imports.mysql_fixtures import MYSQL_URL, mysql_connection, mysql_database
from tests.tracardi_layouts.commands import run_cli
from tests.tracardi_layouts.install import TracardiTables, install_tracardi_mysql
from tracardi_daemon.config.settings import (
    DefinitionsSettings,
    MysqlSettings,
    Settings,
    TracardiSettings,
)
from tracardi_daemon.errors import BackendError, BackendUnavailable, InvalidInput
from tracardi_daemon.model.definition_store import DefinitionCache, DefinitionStore
from tracardi_daemon.model.definitions import (
    EventToProfile,
    EventTypeMapping,
    ImportConfig,
    MappingItem,
    Ref,
    Segment,
    Task,
    WorkflowTrigger,
)
from tracardi_daemon.model.tasks.store import TaskStore

__all__ = ["mysql_database"]  # the fixture, used by name

REFRESH_S = 0.5
MYSQL_IMPORTER = "tracardi.process_engine.import_service.mysql_table_importer.MySQLTableImporter"
SHOP_IMPORT = {"source": {"id": "mysql-resource", "name": "Shop DB"}, "database_name": "shop",
               "table_name": "customers", "batch": 100}
INSERTED = datetime(2024, 3, 28, 10, 15, 0)


@pytest.fixture
def tables(mysql_database: dict[str, Any]) -> Iterator[TracardiTables]:
    installed = install_tracardi_mysql(MYSQL_URL, mysql_database["database"])
    yield installed
    installed.drop()


@pytest.fixture
def account(tables: TracardiTables, prefix: str) -> Iterator[dict[str, Any]]:
    """A user of its own with a password found nowhere else, allowed on the tables."""
    user, password = prefix, f"pw-{uuid.uuid4().hex}"
    database = tables.address["database"]
    with mysql_connection() as connection, connection.cursor() as cursor:
        cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        cursor.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO %s@'%%'", (user,))
    yield {**tables.address, "user": user, "password": password}
    with mysql_connection() as connection, connection.cursor() as cursor:
        cursor.execute("DROP USER IF EXISTS %s@'%%'", (user,))


def make_settings(address: dict[str, Any], tenant: str, **mysql: Any) -> Settings:
    return Settings(
        tracardi=TracardiSettings(tenant=tenant, db_version="09x", layout="tracardi-0.9"),
        mysql=MysqlSettings(**{"host": address["host"], "port": address["port"],
                               "username": address["user"], "password": address["password"],
                               "database": address["database"], **mysql}),
        definitions=DefinitionsSettings(refresh_s=REFRESH_S))


@pytest.fixture
def settings(account: dict[str, Any], prefix: str) -> Settings:
    return make_settings(account, prefix)


@pytest.fixture
def store(elastic_client: Elasticsearch, settings: Settings) -> Iterator[DefinitionStore]:
    definitions = DefinitionStore(elastic_client, settings)
    yield definitions
    definitions.close()


def insert(tables: TracardiTables, table: str, tenant: str, *rows: dict[str, Any],
           production: bool = False) -> None:
    """Insert or replace rows as Tracardi writes them: JSON columns as JSON text."""
    with tables.connect() as connection, connection.cursor() as cursor:
        for row in rows:
            values = {**row, "tenant": tenant, "production": production}
            names = ", ".join(f"`{name}`" for name in values)
            cursor.execute(f"REPLACE INTO `{table}` ({names}) VALUES "
                           f"({', '.join(['%s'] * len(values))})", list(values.values()))


def mapping_row(mapping_id: str, event_type: str,
                pairs: list[tuple[str, int, str]]) -> dict[str, Any]:
    return {"id": mapping_id, "name": f"{event_type} to profile",
            "description": "No description provided", "event_type_id": event_type,
            "event_type_name": event_type, "tags": "identity,contact", "enabled": True,
            "config": json.dumps({}),
            "event_to_profile": json.dumps([
                {"event": {"value": event_path, "ref": True}, "op": operation,
                 "profile": {"value": profile_path, "ref": True}}
                for event_path, operation, profile_path in pairs])}


def event_type_row(event_type: str, index_schema: Any) -> dict[str, Any]:
    return {"id": event_type, "name": event_type, "description": "No description provided",
            "event_type": event_type, "tags": "", "journey": None, "enabled": True,
            "index_schema": json.dumps(index_schema)}


def trigger_row(rule_id: str, *, source_id: str | None = "segment-events",
                trigger_type: str = "segment-add") -> dict[str, Any]:
    return {"id": rule_id, "name": "On Frequent visitor", "type": trigger_type,
            "description": "No description provided", "metadata_time_insert": INSERTED,
            "event_type_id": "", "event_type_name": "", "flow_id": "wf-welcome",
            "flow_name": "Welcome", "segment_id": "frequent-visitor",
            "segment_name": "Frequent visitor", "source_id": source_id,
            "source_name": "Segment events" if source_id else "", "properties": "null",
            "enabled": True, "tags": "General"}


def import_row(import_id: str, module: str = MYSQL_IMPORTER) -> dict[str, Any]:
    return {"id": import_id, "name": f"Import {import_id}", "description": "",
            "module": module, "config": json.dumps(SHOP_IMPORT), "enabled": True,
            "transitional": False, "api_url": "http://localhost:8686",
            "event_source_id": "import-source", "event_source_name": "Import source",
            "event_type": "imported"}


def install_definitions(tables: TracardiTables, tenant: str) -> None:
    insert(tables, "event_to_profile_mapping", tenant,
           mapping_row("etp1", "identify", [("properties.email", 0, "data.contact.email.main"),
                                            ("properties.name", 1, "data.pii.firstname"),
                                            ("properties.tags", 2, "traits.tags")]),
           # no pair with both values: the parser refuses it
           mapping_row("etp-empty", "identify", [("properties.email", 0, "")]))
    insert(tables, "event_mapping", tenant,
           event_type_row("purchase", {"properties.value": "traits.value"}),
           event_type_row("schema-list", ["not", "a", "table"]))
    insert(tables, "workflow_trigger", tenant, trigger_row("rule-welcome"),
           trigger_row("rule-gui-default", source_id=None),
           {**trigger_row("rule-collect", source_id="web"), "type": "event-collect",
            "event_type_id": "page-view", "event_type_name": "Page view"})
    insert(tables, "import", tenant, import_row("imp-shop"),
           import_row("imp-unknown", module="some.module.Unknown"))
    # the same ids for another tenant, and for this tenant's production mode
    other = "other-" + tenant
    insert(tables, "event_to_profile_mapping", other,
           mapping_row("etp-other", "identify", [("properties.email", 0, "traits.other")]))
    insert(tables, "event_to_profile_mapping", tenant,
           mapping_row("etp-production", "identify", [("properties.email", 0, "traits.p")]),
           production=True)
    insert(tables, "event_mapping", other, event_type_row("other-type", {}))
    insert(tables, "workflow_trigger", other, trigger_row("rule-other"))
    insert(tables, "import", other, import_row("imp-other"))


def ids(definitions: list[Any]) -> list[str]:
    return [definition.id for definition in definitions]


def test_each_kind_lists_what_tracardi_stored_for_the_tenant(
        tables: TracardiTables, store: DefinitionStore, prefix: str,
        caplog: pytest.LogCaptureFixture) -> None:
    install_definitions(tables, prefix)
    with caplog.at_level(logging.WARNING):
        mappings = store.list(EventToProfile)
        event_types = store.list(EventTypeMapping)
        triggers = store.list(WorkflowTrigger)
        imports = store.list(ImportConfig)

    assert ids(mappings) == ["etp1"]
    assert mappings[0].event_type == Ref("identify", "identify")
    assert mappings[0].enabled is True
    assert mappings[0].items == (
        MappingItem("properties.email", "equals", "data.contact.email.main"),
        MappingItem("properties.name", "equals_if_not_exists", "data.pii.firstname"),
        MappingItem("properties.tags", "append", "traits.tags"))
    assert [(item.id, item.index_schema, item.tags) for item in event_types] == [
        ("purchase", {"value": "value"}, ())]
    # the rule as Tracardi's GUI saves it (no source) runs its flow in Tracardi's engine
    assert sorted((item.id, item.type, item.segment, item.workflow, item.source_id,
                   item.dispatch_target()) for item in triggers) == [
        ("rule-gui-default", "segment-add", Ref("frequent-visitor", "Frequent visitor"),
         Ref("wf-welcome", "Welcome"), None, "flow:"),
        ("rule-welcome", "segment-add", Ref("frequent-visitor", "Frequent visitor"),
         Ref("wf-welcome", "Welcome"), "segment-events", "tracker:")]
    assert ids(imports) == ["imp-shop"]
    assert (imports[0].source, imports[0].config["database"], imports[0].config["table"],
            imports[0].config["batch"]) == ("mysql-table", "shop", "customers", 100)

    database = tables.address["database"]
    warnings = [record.getMessage() for record in caplog.records]
    for table, row_id, reason in [
            ("event_to_profile_mapping", "etp-empty", "field 'event_to_profile'"),
            ("event_mapping", "schema-list", "column 'index_schema' must hold a JSON dict"),
            ("import", "imp-unknown", "field 'module'")]:
        assert any(repr(row_id) in text and f"mysql:{database}.{table}" in text
                   and reason in text for text in warnings), row_id
    # an event-collect rule is not a trigger: not read at all
    assert not any("rule-collect" in text for text in warnings)
    assert len(warnings) == 3


def test_production_mode_reads_its_own_rows(tables: TracardiTables, account: dict[str, Any],
                                            elastic_client: Elasticsearch, prefix: str) -> None:
    install_definitions(tables, prefix)
    settings = make_settings(account, prefix)
    production = Settings(tracardi=TracardiSettings(tenant=prefix, db_version="09x",
                                                    layout="tracardi-0.9", production=True),
                          mysql=settings.mysql)
    store = DefinitionStore(elastic_client, production)
    assert ids(store.list(EventToProfile)) == ["etp-production"]
    assert store.get(EventToProfile, "etp1") is None
    store.close()


def test_get_reads_one_row(tables: TracardiTables, store: DefinitionStore, prefix: str) -> None:
    install_definitions(tables, prefix)
    trigger = store.get(WorkflowTrigger, "rule-welcome")
    assert trigger is not None and trigger.workflow == Ref("wf-welcome", "Welcome")
    assert store.get(WorkflowTrigger, "rule-collect") is None
    assert store.get(WorkflowTrigger, "rule-other") is None  # another tenant's
    imported = store.get(ImportConfig, "imp-shop")
    assert imported is not None and imported.config["batch"] == 100
    with pytest.raises(InvalidInput, match="field 'module'"):
        store.get(ImportConfig, "imp-unknown")


def test_writes_are_refused_naming_the_table(tables: TracardiTables, store: DefinitionStore,
                                             settings: Settings, prefix: str) -> None:
    install_definitions(tables, prefix)
    mapping = store.list(EventToProfile)[0]
    database = tables.address["database"]
    with pytest.raises(InvalidInput) as refused:
        store.upsert_many([mapping])
    assert str(refused.value) == (
        f"definitions live in Tracardi's MySQL table {database}.event_to_profile_mapping in "
        "layout tracardi-0.9; change them in Tracardi")
    with pytest.raises(InvalidInput, match=rf"{database}\.workflow_trigger in layout"):
        store.delete(WorkflowTrigger, "rule-welcome")
    assert sorted(ids(store.list(WorkflowTrigger))) == ["rule-gui-default", "rule-welcome"]
    # segments have no table in Tracardi 0.9: they stay in the daemon's own store
    segments = store.source(Segment)
    assert segments.table is None and not segments.read_only
    assert not segments.location.startswith("mysql:")


def test_a_change_made_in_tracardi_is_seen_after_refresh_s(
        tables: TracardiTables, store: DefinitionStore, settings: Settings, prefix: str) -> None:
    install_definitions(tables, prefix)
    now = [1000.0]
    cache = DefinitionCache(store, EventToProfile, settings.definitions.refresh_s,
                            clock=lambda: now[0])
    assert len(cache.get_all()[0].items) == 3
    loaded = store.parsed
    now[0] += REFRESH_S  # unchanged rows: nothing is parsed again
    assert len(cache.get_all()[0].items) == 3 and store.parsed == loaded
    # edited in Tracardi's GUI: the same row, now one pair with op 2
    insert(tables, "event_to_profile_mapping", prefix,
           mapping_row("etp1", "identify", [("properties.email", 2, "traits.emails")]))
    now[0] += REFRESH_S / 2
    assert len(cache.get_all()[0].items) == 3
    now[0] += REFRESH_S / 2
    assert cache.get_all()[0].items == (MappingItem("properties.email", "append",
                                                    "traits.emails"),)
    assert store.parsed == loaded + 1


def task_rows(tables: TracardiTables) -> dict[str, dict[str, Any]]:
    with tables.connect() as connection, connection.cursor(pymysql.cursors.DictCursor) as cursor:
        cursor.execute("SELECT * FROM task")
        return {row["id"]: row for row in cursor.fetchall()}


def test_a_jobs_progress_lands_in_tracardis_task_table(
        tables: TracardiTables, store: DefinitionStore, settings: Settings, prefix: str,
        redis_client: Redis, elastic_client: Elasticsearch) -> None:
    # every progress mirrored, not one per 2 s
    tasks = TaskStore(redis_client, elastic_client, settings, mirror_every_s=0.0)
    record = tasks.create("import", "customers from the shop", {"definition": "shop"})
    assert task_rows(tables)[record.id]["status"] == "pending"
    assert tasks.start(record.id, "me")
    assert tasks.progress(record.id, done=40, total=100)
    row = task_rows(tables)[record.id]
    assert (row["status"], row["progress"]) == ("running", 40.0)
    assert tasks.finish(record.id, "finished")
    failing = tasks.create("import", "orders", {"definition": "orders"})
    assert tasks.start(failing.id, "me")
    assert tasks.finish(failing.id, "failed", error="the shop database is gone")

    rows = task_rows(tables)
    assert set(rows) == {record.id, failing.id}
    row = rows[record.id]
    assert (row["task_id"], row["name"], row["type"], row["status"], row["progress"],
            row["tenant"], row["production"]) == (
        record.id, "customers from the shop", "import", "done", 100.0, prefix, 0)
    assert isinstance(row["timestamp"], datetime)
    assert json.loads(row["params"])["definition"] == "shop"
    assert (rows[failing.id]["status"], rows[failing.id]["message"]) == (
        "error", "the shop database is gone")

    # read back as tasks, beside one that Tracardi wrote (and another tenant's, unseen)
    insert(tables, "task", prefix, {"id": "tracardi-1", "timestamp": INSERTED,
                                    "status": "done", "name": "upgrade", "type": "upgrade",
                                    "progress": 100.0, "task_id": "tracardi-1",
                                    "params": "{}", "message": None})
    insert(tables, "task", "other-" + prefix, {"id": "other-1", "status": "done",
                                               "name": "upgrade", "type": "upgrade",
                                               "timestamp": INSERTED})
    found = {task.id: task for task in store.list(Task)}
    assert set(found) == {record.id, failing.id, "tracardi-1"}
    assert (found[record.id].status, found[record.id].progress) == ("finished", 100.0)
    assert found[failing.id].status == "failed"
    assert found["tracardi-1"].status == "finished"


def write_config(path: Path, settings: Settings, elastic_url: str, password: str) -> Path:
    mysql = settings.mysql
    path.write_text(f'[tracardi]\ntenant = "{settings.tracardi.tenant}"\n'
                    'db_version = "09x"\nlayout = "tracardi-0.9"\n\n'
                    f'[elastic]\nhosts = ["{elastic_url}"]\n\n'
                    f'[mysql]\nhost = "{mysql.host}"\nport = {mysql.port}\n'
                    f'username = "{mysql.username}"\npassword = "{password}"\n'
                    f'database = "{mysql.database}"\n', encoding="utf-8")
    return path


def test_definitions_list_shows_the_table_and_never_the_password(
        tables: TracardiTables, settings: Settings, prefix: str, elastic_url: str,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    install_definitions(tables, prefix)
    password = settings.mysql.password
    assert password
    config = write_config(tmp_path / "daemon.toml", settings, elastic_url, password)
    assert run_cli(config, "definitions", "list") == 0
    shown = capsys.readouterr()
    assert password not in shown.out + shown.err
    rows = [line.split()[:3] for line in shown.out.splitlines()]
    database = tables.address["database"]
    assert rows[0] == ["KIND", "ID", "SOURCE"]
    assert sorted(rows[1:]) == sorted([
        ["event-to-profile", "etp1", f"mysql:{database}.event_to_profile_mapping"],
        ["event-type", "purchase", f"mysql:{database}.event_mapping"],
        ["workflow-trigger", "rule-welcome", f"mysql:{database}.workflow_trigger"],
        ["workflow-trigger", "rule-gui-default", f"mysql:{database}.workflow_trigger"],
        ["import", "imp-shop", f"mysql:{database}.import"]])

    wrong = write_config(tmp_path / "wrong.toml", settings, elastic_url, password + "-wrong")
    assert run_cli(wrong, "definitions", "list", "event-to-profile") != 0
    shown = capsys.readouterr()
    assert "mysql error" in shown.err and password not in shown.out + shown.err


def test_backend_errors_mask_the_password(account: dict[str, Any], prefix: str,
                                          elastic_client: Elasticsearch) -> None:
    password = account["password"]
    refused = DefinitionStore(elastic_client,
                              make_settings({**account, "password": password + "x"}, prefix))
    with pytest.raises(BackendError) as denied:
        refused.list(EventToProfile)
    assert "Access denied" in str(denied.value) and password not in str(denied.value)
    # nothing listens on port 1
    unreachable = DefinitionStore(elastic_client, make_settings(
        {**account, "port": 1}, prefix, connect_timeout_s=2.0))
    with pytest.raises(BackendUnavailable) as down:
        unreachable.list(EventToProfile)
    assert password not in str(down.value)


def test_a_connection_the_server_closed_is_opened_again(
        tables: TracardiTables, store: DefinitionStore, account: dict[str, Any],
        prefix: str) -> None:
    install_definitions(tables, prefix)
    assert ids(store.list(EventToProfile)) == ["etp1"]
    # as after the server's wait_timeout or a restart: the store's connection is gone
    with mysql_connection() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s",
                       (account["user"],))
        sessions = [row[0] for row in cursor.fetchall()]
        assert sessions
        for session in sessions:
            cursor.execute(f"KILL {int(session)}")
    assert ids(store.list(EventToProfile)) == ["etp1"]
