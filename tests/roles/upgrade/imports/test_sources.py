"""Imports from an Elasticsearch index past the 10,000-document window, with credentials
that never reach Redis, the task index or the logs; and the tracker target, which
counts every non-2xx answer of the collector as a failed row."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.receivers import ScriptedServer, http_server
from tests.roles.upgrade.imports.conftest import ImportWorld
from tests.roles.upgrade.imports.mysql_fixtures import mysql_connection, mysql_database
from tracardi_daemon.infra.redis import text
from tracardi_daemon.model.naming import alias_name
from tracardi_daemon.roles.upgrade.imports.targets import imported_id

__all__ = ["http_server", "mysql_database"]

DOCUMENTS = 25_000
PASSWORD = "import-secret-7fq2"


def _seed_source(es: Elasticsearch, index: str, documents: int) -> None:
    es.indices.create(index=index, mappings={"properties": {"id": {"type": "keyword"}}},
                      settings={"number_of_shards": 2})
    for start in range(0, documents, 5000):
        operations: list[dict[str, Any]] = []
        for number in range(start, min(documents, start + 5000)):
            operations += [{"index": {"_index": index, "_id": f"d{number}"}},
                           {"id": f"d{number}", "n": number, "tag": "even" if number % 2 == 0
                            else "odd"}]
        assert not es.bulk(operations=operations)["errors"]
    es.indices.refresh(index=index)


def _dump_redis(world: ImportWorld) -> str:
    """Every value of every key of the tenant, as text."""
    tenant = world.settings.tracardi.tenant
    parts = []
    for raw_key in world.redis.scan_iter(match=f"*{tenant}*", count=1000):
        key = text(raw_key)
        kind = text(world.redis.type(key))
        if kind == "string":
            parts.append(text(world.redis.get(key) or b""))
        elif kind == "hash":
            parts.append(json.dumps({text(k): text(v)
                                     for k, v in world.redis.hgetall(key).items()}))
        elif kind == "list":
            parts += [text(item) for item in world.redis.lrange(key, 0, -1)]
        elif kind == "zset":
            parts += [text(item) for item in world.redis.zrange(key, 0, -1)]
        elif kind == "set":
            parts += [text(item) for item in world.redis.smembers(key)]
        elif kind == "stream":
            parts += [json.dumps({text(k): text(v) for k, v in fields.items()})
                      for _, fields in world.redis.xrange(key)]
        parts.append(key)
    return "\n".join(parts)


def test_an_elasticsearch_index_past_the_window_with_credentials_kept_out_of_sight(
        world: ImportWorld, elastic_url: str, caplog: pytest.LogCaptureFixture) -> None:
    source = f"{world.settings.tracardi.tenant}-remote-source"
    _seed_source(world.es, source, DOCUMENTS)
    try:
        world.define("remote", "elasticsearch", index=source, hosts=[elastic_url],
                     username="reader", password=PASSWORD, target="events",
                     event_type="legacy", event_source="old-cluster", batch=1000)
        # the daemon's own loggers at their most talkative (it keeps the clients'
        # loggers, which print request bodies at DEBUG, at WARNING: logs.py)
        with caplog.at_level(logging.DEBUG, logger="tracardi_daemon"):
            record = world.run("remote")
        assert (record.status, record.total, record.done, record.failed) == (
            "finished", DOCUMENTS, DOCUMENTS, 0)
        events = world.documents("event")  # fails on any id stored twice
        assert len(events) == DOCUMENTS
        last = events[imported_id("remote", f"d{DOCUMENTS - 1}")]
        assert last["properties"] == {"id": f"d{DOCUMENTS - 1}", "n": DOCUMENTS - 1,
                                      "tag": "odd"}
        assert PASSWORD not in _dump_redis(world)
        assert PASSWORD not in caplog.text
        assert record.params == {"definition": "remote", "dry_run": False,
                                 "max_failed_rows": None}
        task_index = alias_name(world.settings.tracardi, "task")
        world.es.indices.refresh(index=task_index)
        mirrored = world.es.search(index=task_index, query={"ids": {"values": [record.id]}})
        assert mirrored["hits"]["hits"] and PASSWORD not in json.dumps(mirrored.body)
    finally:
        world.es.indices.delete(index=source, ignore_unavailable=True)


def test_an_index_without_a_sortable_id_is_refused_naming_the_option(
        world: ImportWorld) -> None:
    source = f"{world.settings.tracardi.tenant}-no-id"
    world.es.index(index=source, document={"name": "x"}, refresh=True)
    try:
        world.define("noid", "elasticsearch", index=source, target="events",
                     event_type="x", event_source="y")
        record = world.run("noid")
        assert record.status == "failed" and "config.sort_field" in (record.last_error or "")
        world.define("byname", "elasticsearch", index=source, target="events",
                     event_type="x", event_source="y", sort_field="name.keyword")
        assert world.run("byname").done == 1
    finally:
        world.es.indices.delete(index=source, ignore_unavailable=True)


def test_the_tracker_target_posts_each_row_and_counts_a_500_as_failed(
        world: ImportWorld, tmp_path: Path, http_server: ScriptedServer) -> None:
    http_server.replies = [(500, '{"detail": "boom"}')]
    path = tmp_path / "visits.csv"
    path.write_text("page,visits\n" + "".join(f"/p{n},{n}\n" for n in range(20)),
                    encoding="utf-8")
    world.define("visits", "csv", path=str(path), target="tracker", event_type="page-view",
                 event_source="import-bridge", api_url=http_server.url, concurrency=4,
                 batch=7)
    record = world.run("visits")
    assert (record.status, record.done, record.failed) == ("finished", 19, 1)
    [failed] = world.failures(record.id)
    assert failed.reason == 'the collector answered 500: {"detail": "boom"}'
    assert {request.path for request in http_server.received} == {
        "/collect/page-view/import-bridge"}
    bodies = sorted((request.json() for request in http_server.received),
                    key=lambda body: body["visits"])
    assert bodies == [{"page": f"/p{n}", "visits": n} for n in range(20)]
    assert world.documents("event") == {}  # the collector stores them, not the import


def test_an_unreachable_collector_fails_rows_not_the_daemon(
        world: ImportWorld, tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("a\n1\n2\n", encoding="utf-8")
    world.define("nowhere", "csv", path=str(path), target="tracker", event_type="t",
                 event_source="s", api_url="http://127.0.0.1:9", timeout_s=2)
    record = world.run("nowhere")
    assert (record.status, record.done, record.failed) == ("finished", 0, 2)
    assert all(failed.reason.startswith("not sent to the collector")
               for failed in world.failures(record.id))


def test_a_mysql_table_into_profiles_with_its_password_kept_out_of_sight(
        world: ImportWorld, mysql_database: dict[str, Any],
        caplog: pytest.LogCaptureFixture) -> None:
    reader = {**mysql_database, "user": f"r{world.settings.tracardi.tenant[-10:]}",
              "password": "mysql-secret-4kd9"}
    with mysql_connection(mysql_database) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE customers (id INT PRIMARY KEY, email VARCHAR(80), "
                       "joined DATETIME, spent DECIMAL(8,2), note TEXT NULL)")
        cursor.executemany("INSERT INTO customers VALUES (%s, %s, %s, %s, %s)", [
            (n, f"c{n}@example.com", f"2024-01-{1 + n % 28:02d} 10:00:00", n * 1.5,
             None if n % 2 else "regular") for n in range(1, 1201)])
        # an account of the import's own, so that its password is a string found nowhere
        cursor.execute("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s",
                       (reader["user"], reader["password"]))
        cursor.execute(f"GRANT SELECT ON `{mysql_database['database']}`.* TO %s@'127.0.0.1'",
                       (reader["user"],))
    try:
        world.define("shop", "mysql-table", **reader, table="customers", batch=500,
                     target="profiles", key="id",
                     fields={"email": "data.contact.email.main", "spent": "traits.spent",
                             "joined": "traits.joined", "note": "traits.note"})
        with caplog.at_level(logging.DEBUG, logger="tracardi_daemon"):
            record = world.run("shop")
            # a wrong password fails the task, naming the cause but not the password
            world.define("denied", "mysql-table", **{**reader, "password": "wrong-pw-93"},
                         table="customers", target="events", event_type="x",
                         event_source="y")
            denied = world.run("denied")
    finally:
        with mysql_connection(mysql_database) as connection, connection.cursor() as cursor:
            cursor.execute("DROP USER %s@'127.0.0.1'", (reader["user"],))
    assert (record.status, record.total, record.done, record.failed) == (
        "finished", 1200, 1200, 0)
    profiles = world.documents("profile")
    assert len(profiles) == 1200
    assert profiles["7"]["traits"] == {"spent": 10.5, "joined": "2024-01-08T10:00:00"}
    assert profiles["8"]["traits"]["note"] == "regular"
    assert denied.status == "failed" and "Access denied" in (denied.last_error or "")
    for secret in (reader["password"], "wrong-pw-93"):
        assert secret not in _dump_redis(world)
        assert secret not in caplog.text
