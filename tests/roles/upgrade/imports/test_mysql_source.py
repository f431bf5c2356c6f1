"""The MySQL/MariaDB import source against the real MariaDB of ``scripts/services``."""

from __future__ import annotations

import base64
import gc
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tests.receivers import LOOPBACK_ALLOWED, free_port
from tests.roles.upgrade.imports.mysql_fixtures import mysql_connection, mysql_database  # noqa: F401
from tracardi_daemon.errors import BackendError, BackendUnavailable, InvalidInput
from tracardi_daemon.infra.outbound import OutboundPolicy
from tracardi_daemon.roles.upgrade.imports.mysql_source import MysqlSource, open_mysql_source
from tracardi_daemon.roles.upgrade.imports.remote_access import RemoteAccess
from tracardi_daemon.roles.upgrade.imports.rows import Row, Source

Database = dict[str, Any]


def execute(database: Database, *statements: str) -> None:
    with mysql_connection(database) as connection, connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def insert(database: Database, table: str, rows: Sequence[Sequence[Any]]) -> None:
    marks = ", ".join(["%s"] * len(rows[0]))
    with mysql_connection(database) as connection, connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO `{table}` VALUES ({marks})", rows)


def read_all(source: Source, limit: int = 1000) -> list[Row]:
    rows: list[Row] = []
    try:
        while batch := source.read(limit):
            rows += batch
    finally:
        source.close()
    return rows


# the test MariaDB listens on loopback, closed by default
LOCAL = RemoteAccess(OutboundPolicy(LOOPBACK_ALLOWED))


def table_source(database: Database, table: str, position: Mapping[str, Any] | None = None,
                 **config: Any) -> Source:
    return open_mysql_source("mysql-table", {**database, "table": table, **config}, position,
                             LOCAL)


def query_source(database: Database, query: str, position: Mapping[str, Any] | None = None,
                 **config: Any) -> Source:
    return open_mysql_source("mysql-query", {**database, "query": query, **config}, position,
                             LOCAL)


def checkpointed(position: Mapping[str, Any]) -> dict[str, Any]:
    """The position as a checkpoint gives it back: through JSON."""
    result: dict[str, Any] = json.loads(json.dumps(position))
    return result


@pytest.fixture
def database(mysql_database: Database) -> Database:  # noqa: F811 - the fixture imported above
    return mysql_database


# ---------------------------------------------------------------- tables


def test_a_table_is_read_in_primary_key_order_batch_by_batch(database: Database) -> None:
    execute(database, "CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(40))")
    # inserted out of order: the key, not the insertion, decides the order
    insert(database, "people", [((i * 7919) % 2500 + 1, f"p{(i * 7919) % 2500 + 1}")
                                      for i in range(2500)])
    source = table_source(database, "people")
    assert source.total() == 2500
    batches = []
    while batch := source.read(1000):
        batches.append(batch)
    assert [len(batch) for batch in batches] == [1000, 1000, 500]
    rows = [row for batch in batches for row in batch]
    assert [row.number for row in rows] == list(range(1, 2501))
    assert [row.key for row in rows] == [str(i) for i in range(1, 2501)]
    assert rows[41].data == {"id": 42, "name": "p42"}
    assert json.loads(rows[41].raw) == {"id": 42, "name": "p42"}
    assert source.position == {"after": [2500], "read": 2500}
    assert source.read(1000) == []
    source.close()
    source.close()  # twice is fine


def test_a_composite_primary_key_orders_the_rows_and_makes_their_keys(
        database: Database) -> None:
    execute(database, "CREATE TABLE visits (site VARCHAR(10), seq INT, pages INT,"
                            " PRIMARY KEY (site, seq))")
    insert(database, "visits", [("b", 1, 10), ("a", 2, 20), ("a", 10, 30), ("a", 1, 40)])
    source = table_source(database, "visits")
    rows = source.read(3)
    assert [row.key for row in rows] == ["a:1", "a:2", "a:10"]
    assert source.position == {"after": ["a", 10], "read": 3}
    assert [(row.key, row.number) for row in read_all(source)] == [("b:1", 4)]


def test_reading_on_from_every_position_equals_one_uninterrupted_read(
        database: Database) -> None:
    # a key of types JSON has none for: they go back to the server as the same values
    execute(database, "CREATE TABLE events (at DATETIME(6), tag VARBINARY(4),"
                            " amount DECIMAL(6,2), PRIMARY KEY (at, tag, amount))")
    insert(database, "events", [
        (f"2024-05-0{1 + i % 3} 10:00:00.00000{i % 2}", bytes([0xFF, i % 4]), f"{i % 5}.25")
        for i in range(23)])
    whole = read_all(table_source(database, "events"), limit=5)
    assert len(whole) == 23
    source = table_source(database, "events")
    positions = [checkpointed(source.position)]
    while source.read(1):
        positions.append(checkpointed(source.position))
    source.close()
    assert len(positions) == 24
    for done, position in enumerate(positions):
        assert read_all(table_source(database, "events", position), limit=4) \
            == whole[done:], f"resumed after {done} rows"


def test_a_table_named_with_its_database(database: Database) -> None:
    execute(database, "CREATE TABLE t1 (id INT PRIMARY KEY)", "INSERT INTO t1 VALUES (1)")
    name = f"{database['database']}.t1"
    assert [row.key for row in read_all(table_source(database, name))] == ["1"]


def test_a_table_without_a_primary_key_needs_config_key(database: Database) -> None:
    execute(database, "CREATE TABLE plain (code VARCHAR(10), n INT)")
    insert(database, "plain", [("c", 3), ("a", 1), ("b", 2)])
    with pytest.raises(InvalidInput, match=r"table plain has no primary key: set config\.key"):
        table_source(database, "plain")
    rows = read_all(table_source(database, "plain", key="code"))
    assert [(row.number, row.key, row.data) for row in rows] == [
        (1, "a", {"code": "a", "n": 1}), (2, "b", {"code": "b", "n": 2}),
        (3, "c", {"code": "c", "n": 3})]
    with pytest.raises(InvalidInput, match=r"config\.key: table plain has no column 'missing'"):
        table_source(database, "plain", key="missing")


def test_a_key_that_is_null_or_repeats_fails_its_row(database: Database) -> None:
    execute(database, "CREATE TABLE plain (code INT, n INT)")
    insert(database, "plain", [(2, 1), (None, 2), (1, 3), (2, 4), (3, 5)])
    rows = read_all(table_source(database, "plain", key="code"))
    failures = [(row.number, row.failure.column, row.failure.reason.split(":")[0])
                for row in rows if row.failure is not None]
    # NULL sorts first; the second 2 is not read past the first on a resume
    assert failures == [(1, "code", "the key column is NULL"), (4, "code", "the key (2,) repeats")]
    assert [row.key for row in rows if row.failure is None] == ["1", "2", "3"]


# ---------------------------------------------------------------- queries


def test_a_query_is_streamed_as_written_and_resumed_by_skipping_rows_read(
        database: Database) -> None:
    execute(database, "CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(40))")
    insert(database, "people", [(i, f"p{i}") for i in range(1, 31)])
    # a % of its own and a comment at the end: run (and counted) as written
    query = "SELECT name, id * 10 AS score FROM people WHERE id % 3 = 0 ORDER BY id DESC -- x"
    source = query_source(database, query, key="name")
    assert source.total() == 10
    first = source.read(4)
    assert [(row.number, row.key, row.data) for row in first[:2]] == [
        (1, "p30", {"name": "p30", "score": 300}), (2, "p27", {"name": "p27", "score": 270})]
    assert source.position == {"read": 4}
    source.close()
    rest = read_all(query_source(database, query, checkpointed({"read": 4}), key="name"))
    assert [(row.number, row.key) for row in rest] == [
        (5, "p18"), (6, "p15"), (7, "p12"), (8, "p9"), (9, "p6"), (10, "p3")]
    assert read_all(query_source(database, query, {"read": 10})) == []


def test_a_query_without_key_numbers_its_rows(database: Database) -> None:
    source = query_source(database, "SELECT 'x' AS a UNION ALL SELECT 'y';")
    assert source.total() == 2
    rows = read_all(source)
    assert [(row.number, row.key, row.data) for row in rows] == [
        (1, "1", {"a": "x"}), (2, "2", {"a": "y"})]
    with pytest.raises(InvalidInput,
                       match=r"config\.key: query 'SELECT 1 AS a' has no column 'id'"):
        query_source(database, "SELECT 1 AS a", key="id")


def test_the_count_failing_leaves_the_total_unknown(database: Database) -> None:
    execute(database, "CREATE TABLE a (id INT PRIMARY KEY)", "INSERT INTO a VALUES (1)")
    # a derived table refuses the same column name twice; the query itself runs
    source = query_source(database, "SELECT x.id, y.id FROM a x JOIN a y ORDER BY 1")
    assert source.total() is None
    assert [row.data for row in read_all(source)] == [{"id": 1, "y.id": 1}]


def test_an_import_only_reads(database: Database) -> None:
    execute(database, "CREATE TABLE a (id INT PRIMARY KEY)", "INSERT INTO a VALUES (1)")
    with pytest.raises(BackendError, match=r"query 'DELETE FROM a' on .*READ ONLY"):
        query_source(database, "DELETE FROM a")
    assert [row.key for row in read_all(table_source(database, "a"))] == ["1"]


# ---------------------------------------------------------------- values


def test_values_are_made_ready_for_json(database: Database) -> None:
    execute(database, """CREATE TABLE v (id INT PRIMARY KEY, at DATETIME(3), day DATE,
        spent TIME, price DECIMAL(8,2), whole DECIMAL(8,0), ratio DOUBLE, text VARCHAR(20),
        utf8 VARBINARY(20), raw BLOB, flags BIT(4), note VARCHAR(10))""")
    insert(database, "v", [(1, "2024-02-29 23:59:58.125", "2024-02-29", "-36:05:07",
                                  "19.90", "7", 0.5, "żółw", "żółw".encode(), b"\xff\xfe\x00",
                                  b"\x0b", None)])
    [row] = read_all(table_source(database, "v"))
    expected = {"id": 1, "at": "2024-02-29T23:59:58.125000", "day": "2024-02-29",
                "spent": "-36:05:07", "price": 19.9, "whole": 7, "ratio": 0.5, "text": "żółw",
                "utf8": "żółw", "raw": base64.b64encode(b"\xff\xfe\x00").decode(),
                "flags": 11}
    assert row.data == expected  # NULL leaves the key out
    assert isinstance(row.data["whole"], int) and isinstance(row.data["price"], float)
    assert json.loads(row.raw) == {**expected, "note": None}


# ---------------------------------------------------------------- errors


def test_bad_credentials_are_a_backend_error_that_never_shows_the_password(
        database: Database) -> None:
    password = "Wr0ng-pa55word"
    with pytest.raises(BackendError) as caught:
        table_source({**database, "password": password}, "anything")
    assert "Access denied" in str(caught.value)
    for text in (str(caught.value), repr(caught.value), caught.value.detail):
        assert password not in text
    assert caught.value.__cause__ is None


def test_the_password_is_not_in_the_sources_repr(database: Database) -> None:
    execute(database, "CREATE TABLE a (id INT PRIMARY KEY)")
    source = table_source(database, "a")
    assert database["password"] not in repr(source)
    assert repr(source).startswith("MysqlSource(table a on 127.0.0.1:")
    source.close()


def test_unknown_database_table_or_syntax_is_a_backend_error(database: Database) -> None:
    with pytest.raises(BackendError, match=r"table missing on .*: Table '.*missing' doesn't exist"):
        table_source(database, "missing")
    with pytest.raises(BackendError, match="Unknown database 'no_such_db'"):
        table_source({**database, "database": "no_such_db"}, "a")
    with pytest.raises(BackendError, match=r"query 'SELEKT \* FROM a' on .*SQL syntax"):
        query_source(database, "SELEKT * FROM a")


def test_an_unreachable_server_is_unavailable(database: Database) -> None:
    port = free_port()
    # one message for a closed, silent or foreign port: it tells nothing of what listens
    with pytest.raises(BackendUnavailable, match=rf"could not connect to the source at "
                                                 rf"127\.0\.0\.1:{port}, or it is not a MySQL"):
        table_source({**database, "port": port}, "a", connect_timeout_s=2)


def test_a_lost_connection_is_unavailable_and_the_next_read_goes_on(
        database: Database) -> None:
    execute(database, "CREATE TABLE big (id INT PRIMARY KEY, payload TEXT)")
    # more than the socket buffers hold, so that the server is still sending when killed
    insert(database, "big", [(i, "x" * 4000) for i in range(1, 5001)])
    source = table_source(database, "big")
    rows = source.read(10)
    [session] = other_sessions(database)
    execute(database, f"KILL {session}")
    with pytest.raises(BackendUnavailable, match=r"table big on .*Lost connection"):
        while batch := source.read(500):
            rows += batch
    rows += read_all(source, 500)
    assert [row.number for row in rows] == list(range(1, 5001))
    assert [row.key for row in rows] == [str(i) for i in range(1, 5001)]


def other_sessions(database: Database) -> list[int]:
    """The server's sessions in the test's database, but the one asking."""
    with mysql_connection(database) as admin, admin.cursor() as cursor:
        cursor.execute("SELECT ID FROM information_schema.PROCESSLIST"
                       " WHERE DB = %s AND ID <> CONNECTION_ID()", (database["database"],))
        return [int(row[0]) for row in cursor.fetchall()]


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_closing_in_the_middle_ends_the_query_without_reading_the_rest(
        database: Database) -> None:
    execute(database, "CREATE TABLE big (id INT PRIMARY KEY, payload TEXT)")
    insert(database, "big", [(i, "x" * 1000) for i in range(1, 2001)])
    source = table_source(database, "big")
    assert len(source.read(10)) == 10
    source.close()
    source.close()
    assert source.read(10) == []
    dropped = table_source(database, "big")  # never closed: dropped is enough
    assert len(dropped.read(10)) == 10
    del source, dropped
    gc.collect()  # PyMySQL's cursor and result would read what is left when collected
    deadline = time.monotonic() + 5
    while other_sessions(database) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert other_sessions(database) == []


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(("kind", "changes", "message"), [
    ("mysql-table", {"table": None}, "config.table is required for a mysql-table import"),
    ("mysql-query", {"query": None}, "config.query is required for a mysql-query import"),
    ("mysql-query", {"query": "  ;  "}, "config.query is empty"),
    ("mysql-table", {"database": None}, "config.database is required for a mysql import"),
    ("mysql-table", {"table": "a.b.c"}, "config.table must be name or database.name"),
    ("mysql-table", {"table": "a`; DROP TABLE b"}, "config.table must be a name of letters"),
    ("mysql-table", {"table": 7}, "config.table must be a non-empty string"),
    ("mysql-table", {"key": "id, name"}, "config.key must be a name of letters"),
    ("mysql-table", {"port": 70000}, "config.port must be a port number"),
    ("mysql-table", {"port": True}, "config.port must be a port number"),
    ("mysql-table", {"host": ""}, "config.host must be a host name"),
    ("mysql-table", {"user": 5}, "config.user must be a string"),
    ("mysql-table", {"password": 5}, "config.password must be a string"),
    ("mysql-table", {"connect_timeout_s": 0}, "config.connect_timeout_s must be a number"),
    ("mysql-csv", {}, "unknown mysql source kind 'mysql-csv'"),
])
def test_config_errors_name_the_key(database: Database, kind: str,
                                    changes: dict[str, Any], message: str) -> None:
    config = {**database, "table": "a", "query": "SELECT 1", **changes}
    config = {name: value for name, value in config.items() if value is not None}
    with pytest.raises(InvalidInput, match=message.replace(".", r"\.")):
        open_mysql_source(kind, config, None)


def test_keys_of_other_parts_of_the_import_are_left_alone(database: Database) -> None:
    execute(database, "CREATE TABLE a (id INT PRIMARY KEY)", "INSERT INTO a VALUES (5)")
    source = table_source({**database, "port": str(database["port"])}, "a",
                          target="profiles", batch=100, fields={"id": "id"}, delimiter=";")
    assert [row.key for row in read_all(source)] == ["5"]


def test_a_position_that_does_not_fit_the_key_is_refused(database: Database) -> None:
    execute(database, "CREATE TABLE a (id INT PRIMARY KEY)")
    with pytest.raises(InvalidInput, match="does not fit a key of 1 column"):
        table_source(database, "a", {"after": ["x", 1], "read": 1})


def test_a_source_reads_a_table_or_a_query(database: Database) -> None:
    with pytest.raises(InvalidInput, match="a table or a query"):
        MysqlSource(database, table="a", query="SELECT 1")
