"""A MySQL or MariaDB table or query as an import source, streamed with a server-side
cursor: a table in primary-key order, resumed after the last key read; a query as written,
resumed by skipping the rows already read (so it needs a stable order: an ORDER BY on
unique columns)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import pymysql
from pymysql.connections import Connection
from pymysql.constants import FIELD_TYPE
from pymysql.cursors import SSDictCursor

from tracardi_daemon.errors import DaemonError, InvalidInput
from tracardi_daemon.infra.mysql_errors import converted
from tracardi_daemon.roles.upgrade.imports.mysql_connect import connect_args, connected
from tracardi_daemon.roles.upgrade.imports.mysql_values import json_ready, restored_after, saved
from tracardi_daemon.roles.upgrade.imports.remote_access import RemoteAccess
from tracardi_daemon.roles.upgrade.imports.rows import Row, RowFailure, Source, cut_raw

log = logging.getLogger(__name__)

KINDS = ("mysql-table", "mysql-query")
_IDENTIFIER = re.compile(r"[A-Za-z0-9_$]+")
_SKIP_BATCH = 1000  # rows skipped at a time when a query resumes
_QUERY_SHOWN = 60  # characters of a query that name it in messages


class MysqlSource:
    """The rows of ``table`` (``name`` or ``database.name``) in the order of its primary
    key, or of ``key`` (a unique, non-null column); or the rows of ``query`` in the order
    it gives them, with the ``key`` column (optional) as each row's key.

    ``connection`` holds ``host``, ``port``, ``user``, ``password``, ``database`` and
    ``connect_timeout_s``. Sessions are read-only: a query that writes is refused.
    """

    def __init__(self, connection: Mapping[str, Any], *, table: str | None = None,
                 query: str | None = None, key: str | None = None,
                 position: Mapping[str, Any] | None = None,
                 access: RemoteAccess | None = None) -> None:
        self._connection: Connection[Any] | None = None
        self._cursor: SSDictCursor | None = None
        if (table is None) == (query is None):
            raise InvalidInput("a mysql source reads a table or a query: give exactly one")
        access = access or RemoteAccess()
        self._connect_args = connect_args(connection, access)
        self._password = str(self._connect_args["password"])
        self._address = (f"{self._connect_args['host']}:{self._connect_args['port']}/"
                         f"{self._connect_args['database']}")
        self._table = _table_parts(table) if table is not None else None
        self._query = query.strip().rstrip(";").rstrip() if query is not None else None
        if self._query is not None and not self._query:
            raise InvalidInput("config.query is empty")
        self._what = (f"table {table}" if table is not None
                      else f"query {_shortened(self._query or '')!r}")
        if key is not None and self._table is not None:
            _identifier(key, "config.key")
        self._key = key
        self._read = int((position or {}).get("read", 0))
        self._after: tuple[Any, ...] | None = None
        self._key_columns: tuple[str, ...] = (key,) if key is not None else ()
        self._bit_columns: frozenset[str] = frozenset()
        self._ended = False
        self._total: int | None = None
        self._counted = False
        # the host is checked once the definition's values are: their errors come first
        access.check("MySQL", str(self._connect_args["host"]), int(self._connect_args["port"]))
        try:
            if self._table is not None:
                self._key_columns = self._table_key()
                self._after = restored_after(position, len(self._key_columns))
                if self._after is None:  # no key read yet: the table is read from its start
                    self._read = 0
            self._open_stream()
        except BaseException:
            self._drop_connection()
            raise

    def __del__(self) -> None:
        # a source dropped unclosed: PyMySQL's own finalizers would read the rest of the
        # result, or fail on a connection collected before them
        self._drop_connection()

    def __repr__(self) -> str:
        return f"MysqlSource({self._what} on {self._address}, read {self._read})"

    # ------------------------------------------------------------ the stream

    def _connect(self) -> Connection[Any]:
        connection = connected(self._connect_args)
        try:
            with connection.cursor() as cursor:
                # an import only reads: a query that would write is refused by the server
                cursor.execute("SET SESSION TRANSACTION READ ONLY")
        except BaseException:
            connection.close()
            raise
        return connection

    def _table_key(self) -> tuple[str, ...]:
        """The columns that order the table (the primary key's, else ``key``), after
        checking that the table can be read."""
        assert self._table is not None
        schema, name = self._table
        with self._errors():
            connection = self._connection = self._connect()
            with connection.cursor() as cursor:
                cursor.execute(self._table_sql("*", " LIMIT 0"))
                description: Sequence[Sequence[Any]] = cursor.description or ()
                columns = [str(column[0]) for column in description]
                if self._key is not None:
                    if self._key not in columns:
                        raise InvalidInput(f"config.key: {self._what} has no column "
                                           f"{self._key!r}")
                    return (self._key,)
                cursor.execute(
                    "SELECT COLUMN_NAME FROM information_schema.STATISTICS"
                    " WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s"
                    " AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX", (schema, name))
                found = tuple(str(row[0]) for row in cursor.fetchall())
        if not found:
            raise InvalidInput(f"{self._what} has no primary key: set config.key to a "
                               "unique, non-null column to read it in order")
        return found

    def _select(self) -> tuple[str, list[Any] | None]:
        """The statement and its parameters: None runs it as it is (PyMySQL formats a
        statement with % when given parameters, and a query may hold a % of its own)."""
        if self._table is None:
            assert self._query is not None
            return self._query, None
        order = ", ".join(f"`{column}`" for column in self._key_columns)
        if self._after is None:
            return self._table_sql("*", f" ORDER BY {order}"), None
        marks = ", ".join(["%s"] * len(self._after))
        return (self._table_sql("*", f" WHERE ({order}) > ({marks}) ORDER BY {order}"),
                list(self._after))

    def _table_sql(self, columns: str, rest: str = "") -> str:
        assert self._table is not None
        # the names are checked against _IDENTIFIER and quoted; values go as parameters
        return f"SELECT {columns} FROM {_quoted(self._table)}{rest}"  # noqa: S608

    def _open_stream(self) -> SSDictCursor:
        """The server-side cursor, (re)started at the position: after the last key read,
        or past the rows of the query read before."""
        if self._cursor is not None:
            return self._cursor
        with self._errors():
            if self._connection is None:
                self._connection = self._connect()
            self._cursor = self._connection.cursor(SSDictCursor)
            sql, parameters = self._select()
            self._cursor.execute(sql, parameters)
            description: Sequence[Sequence[Any]] = self._cursor.description or ()
            names = {str(column[0]) for column in description}
            if self._key is not None and self._key not in names:
                raise InvalidInput(f"config.key: {self._what} has no column {self._key!r}")
            self._bit_columns = frozenset(str(column[0]) for column in description
                                          if column[1] == FIELD_TYPE.BIT)
            if self._table is None:
                self._skip(self._cursor, self._read)
            return self._cursor

    @staticmethod
    def _skip(cursor: SSDictCursor, count: int) -> None:
        while count > 0:
            skipped = len(cursor.fetchmany(min(count, _SKIP_BATCH)))
            if not skipped:
                return
            count -= skipped

    def _drop_connection(self) -> None:
        """Closes the connection without reading the rest of a result: closing it is
        what stops the query at the server."""
        if self._cursor is not None:
            _abandon(self._cursor)
            self._cursor = None
        if self._connection is not None:
            with suppress(pymysql.err.Error):
                self._connection.close()
            self._connection = None

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Any failure drops the connection (a read after it starts again at the position);
        PyMySQL's errors become the daemon's."""
        try:
            yield
        except pymysql.err.Error as exc:
            self._drop_connection()
            raise self._converted(exc) from None
        except BaseException:
            self._drop_connection()
            raise

    def _converted(self, exc: pymysql.err.Error) -> DaemonError:
        return converted(exc, self._what, self._address, self._password)

    # ------------------------------------------------------------ the Source protocol

    def total(self) -> int | None:
        """The table's or the query's row count, counted once on a connection of its
        own; None when the count fails (the import goes on without it)."""
        if self._counted:
            return self._total
        self._counted = True
        # the query is the user's own, run as they wrote it (a comment at its end stops
        # at the line break)
        sql = (self._table_sql("COUNT(*)") if self._table is not None
               else f"SELECT COUNT(*) FROM (\n{self._query}\n) AS q")  # noqa: S608
        try:
            connection = self._connect()
            try:
                with connection.cursor() as cursor:
                    cursor.execute(sql)
                    found = cursor.fetchone()
            finally:
                connection.close()
        except pymysql.err.Error as exc:
            log.warning("cannot count the rows: %s", self._converted(exc))
            return None
        self._total = int(found[0]) if found else None
        return self._total

    def read(self, limit: int) -> list[Row]:
        if limit < 1:
            raise ValueError(f"limit must be 1 or more, not {limit}")
        if self._ended:
            return []
        cursor = self._open_stream()
        with self._errors():
            fetched = cursor.fetchmany(limit)
        rows = [self._row(values) for values in fetched]
        if len(fetched) < limit:  # the result's end: nothing left to read, a cheap close
            self._ended = True
            with self._errors():
                cursor.close()
            self._drop_connection()
        return rows

    @property
    def position(self) -> dict[str, Any]:
        if self._table is None:
            return {"read": self._read}
        after = None if self._after is None else [saved(value) for value in self._after]
        return {"after": after, "read": self._read}

    def close(self) -> None:
        self._drop_connection()
        self._ended = True

    # ------------------------------------------------------------ rows

    def _row(self, values: dict[str, Any]) -> Row:
        self._read += 1
        number = self._read
        shown = {name: self._ready(name, value) for name, value in values.items()}
        data = {name: value for name, value in shown.items() if value is not None}
        raw = cut_raw(json.dumps(shown, default=str))
        if not self._key_columns:
            return Row(number, str(number), data, raw)
        key_values = tuple(values.get(column) for column in self._key_columns)
        if any(value is None for value in key_values):
            return Row(number, str(number), None, raw, RowFailure(
                "the key column is NULL: config.key must name a column that is never NULL",
                self._key_columns[0]))
        if self._table is not None:
            if key_values == self._after:
                return Row(number, str(number), None, raw, RowFailure(
                    f"the key {key_values!r} repeats: config.key must name a unique column",
                    self._key_columns[0]))
            self._after = key_values
        key = ":".join(str(json_ready(value)) for value in key_values)
        return Row(number, key, data, raw)

    def _ready(self, name: str, value: Any) -> Any:
        if name in self._bit_columns and isinstance(value, bytes):
            return int.from_bytes(value, "big")
        return json_ready(value)


def _abandon(cursor: SSDictCursor) -> None:
    """Forgets the rest of the cursor's result without reading it. The protocol cannot
    stop a result, so PyMySQL reads it to its end when the cursor or its result is closed
    or collected, however long that takes, or fails on a connection already closed."""
    result = getattr(cursor, "_result", None)
    if result is not None:
        result.unbuffered_active = False
    cursor.connection = None  # type: ignore[assignment]


# ---------------------------------------------------------------- values


# ---------------------------------------------------------------- names


def _identifier(name: Any, field: str) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise InvalidInput(f"{field} must be a name of letters, digits, _ and $, "
                           f"not {name!r}")
    return name


def _table_parts(table: Any) -> tuple[str | None, str]:
    """``name`` or ``database.name``, checked: (database or None, name)."""
    if not isinstance(table, str) or not table:
        raise InvalidInput("config.table must be a table name or database.table")
    parts = table.split(".")
    if len(parts) > 2:
        raise InvalidInput(f"config.table must be name or database.name, not {table!r}")
    names = [_identifier(part, "config.table") for part in parts]
    return (names[0], names[1]) if len(names) == 2 else (None, names[0])


def _quoted(table: tuple[str | None, str]) -> str:
    schema, name = table
    return f"`{schema}`.`{name}`" if schema else f"`{name}`"


def _shortened(query: str) -> str:
    text = " ".join(query.split())
    return text if len(text) <= _QUERY_SHOWN else text[:_QUERY_SHOWN] + "…"


# ---------------------------------------------------------------- config


def _optional_text(config: Mapping[str, Any], key: str) -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"config.{key} must be a non-empty string, not {value!r}")
    return value


def open_mysql_source(kind: str, config: Mapping[str, Any],
                      position: Mapping[str, Any] | None,
                      access: RemoteAccess | None = None) -> Source:
    """The source of a ``mysql-table`` or ``mysql-query`` import from its config table:
    ``host`` (127.0.0.1), ``port`` (3306), ``user``, ``password``, ``database``
    (required), ``table`` (mysql-table: ``name`` or ``database.name``) or ``query``
    (mysql-query; give it an ORDER BY on unique columns, or a resumed import may skip or
    repeat rows), ``key`` (a column: the row key, and a table's order instead of its
    primary key), ``connect_timeout_s`` (10). An invalid value is an ``InvalidInput``
    naming its key; keys of other parts of the import are left alone."""
    key = _optional_text(config, "key")
    if kind == "mysql-table":
        table = _optional_text(config, "table")
        if table is None:
            raise InvalidInput("config.table is required for a mysql-table import: the "
                               "table to read, name or database.name")
        return MysqlSource(config, table=table, key=key, position=position, access=access)
    if kind == "mysql-query":
        query = _optional_text(config, "query")
        if query is None:
            raise InvalidInput("config.query is required for a mysql-query import: the "
                               "SELECT to read")
        return MysqlSource(config, query=query, key=key, position=position, access=access)
    raise InvalidInput(f"unknown mysql source kind {kind!r}; expected one of "
                       f"{', '.join(KINDS)}")
