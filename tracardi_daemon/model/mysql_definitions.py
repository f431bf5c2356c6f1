"""Tracardi 0.9's definition tables in MySQL: the rows of one tenant and mode
(``tenant``, ``production``), each turned into the document Tracardi 0.8 keeps in
Elasticsearch so that the same parsers read it; and the ``task`` row the daemon upserts."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any, TypeVar

import pymysql
from pymysql.connections import Connection
from pymysql.cursors import DictCursor

from tracardi_daemon.config.settings import MysqlSettings
from tracardi_daemon.errors import BackendUnavailable, DaemonError, InvalidInput
from tracardi_daemon.infra.mysql_errors import converted

T = TypeVar("T")
# a definition read or a task written is small: a slow answer is a sick server
_IO_TIMEOUT_S = 30
# column widths of Tracardi's task table (a longer value fails in strict SQL mode)
_TASK_NAME_MAX = 128
_TASK_TEXT_MAX = 64


class MysqlTables:
    """One tenant's rows of Tracardi's tables, through one connection opened on first
    use and shared under a lock; a connection the server dropped is opened again once.
    PyMySQL's errors become BackendUnavailable (no connection) or BackendError, with
    the password masked."""

    def __init__(self, settings: MysqlSettings, tenant: str, production: bool) -> None:
        self._settings = settings
        self._tenant = tenant
        self._production = production
        self._connection: Connection[DictCursor] | None = None
        self._lock = threading.Lock()

    def select(self, table: str, *, only: tuple[str, str] | None = None,
               row_id: str | None = None) -> list[dict[str, Any]]:
        """The tenant's rows of ``table`` by id; ``only`` = (column, value) they must hold."""
        conditions = ["`tenant` = %s", "`production` = %s"]
        values: list[Any] = [self._tenant, self._production]
        for column, value in [only] if only else []:
            conditions.append(f"`{column}` = %s")
            values.append(value)
        if row_id is not None:
            conditions.append("`id` = %s")
            values.append(row_id)
        # table and column names are the module's constants; values go as parameters
        sql = (f"SELECT * FROM `{table}` WHERE {' AND '.join(conditions)}"  # noqa: S608
               " ORDER BY `id`")

        def run(connection: Connection[DictCursor]) -> list[dict[str, Any]]:
            with connection.cursor() as cursor:
                cursor.execute(sql, values)
                return list(cursor.fetchall())

        return self._run(f"read {self.where(table)}", run)

    def upsert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert or replace rows by (id, tenant, production); idempotent, so a write
        cut off with its connection is sent again."""
        if not rows:
            return
        columns = [*rows[0], "tenant", "production"]
        names = ", ".join(f"`{column}`" for column in columns)
        marks = ", ".join(["%s"] * len(columns))
        updates = ", ".join(f"`{column}` = VALUES(`{column}`)" for column in rows[0])
        sql = (f"INSERT INTO `{table}` ({names}) VALUES ({marks})"  # noqa: S608
               f" ON DUPLICATE KEY UPDATE {updates}")
        values = [[*(row[column] for column in rows[0]), self._tenant, self._production]
                  for row in rows]

        def run(connection: Connection[DictCursor]) -> None:
            with connection.cursor() as cursor:
                cursor.executemany(sql, values)

        self._run(f"write {self.where(table)}", run)

    def delete(self, table: str, row_id: str) -> bool:
        """Delete the tenant's row; False if there was none."""
        sql = (f"DELETE FROM `{table}`"  # noqa: S608
               " WHERE `id` = %s AND `tenant` = %s AND `production` = %s")

        def run(connection: Connection[DictCursor]) -> bool:
            with connection.cursor() as cursor:
                return bool(cursor.execute(sql, (row_id, self._tenant, self._production)))

        return self._run(f"delete {row_id!r} from {self.where(table)}", run)

    def where(self, table: str) -> str:
        return f"{self._settings.database}.{table}"

    def close(self) -> None:
        with self._lock:
            self._drop()

    # ------------------------------------------------------------------ internals

    def _run(self, what: str, action: Callable[[Connection[DictCursor]], T]) -> T:
        with self._lock:
            reused = self._connection is not None
            try:
                with self._errors(what):
                    return action(self._connected())
            except BackendUnavailable:
                if not reused:
                    raise
            # the server may have closed the connection while it was idle: once more, anew
            with self._errors(what):
                return action(self._connected())

    def _connected(self) -> Connection[DictCursor]:
        if self._connection is None:
            settings = self._settings
            self._connection = pymysql.connect(
                host=settings.host, port=settings.port, user=settings.username,
                password=settings.password or "", database=settings.database,
                connect_timeout=settings.connect_timeout_s, read_timeout=_IO_TIMEOUT_S,
                write_timeout=_IO_TIMEOUT_S, charset="utf8mb4", autocommit=True,
                cursorclass=DictCursor)
        return self._connection

    def _drop(self) -> None:
        if self._connection is not None:
            with suppress(pymysql.err.Error):
                self._connection.close()
            self._connection = None

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except pymysql.err.Error as exc:
            converted = self._converted(what, exc)
            if isinstance(converted, BackendUnavailable):
                self._drop()
            raise converted from None
        except BaseException:
            self._drop()  # a result read part-way leaves the connection unusable
            raise

    def _converted(self, what: str, exc: pymysql.err.Error) -> DaemonError:
        return converted(exc, what, f"{self._settings.host}:{self._settings.port}",
                         self._settings.password)


# ---------------------------------------------------------------- rows as 0.8 documents


def _json(row: Mapping[str, Any], column: str, kind: type) -> Any:
    """A JSON column's value (MariaDB keeps JSON as text), of ``kind``; None if NULL."""
    value = row.get(column)
    if isinstance(value, bytes | str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InvalidInput(f"column {column!r} is not valid JSON: {exc}") from exc
    if value is not None and not isinstance(value, kind):
        raise InvalidInput(f"column {column!r} must hold a JSON {kind.__name__}, "
                           f"got {type(value).__name__}")
    return value


def _bool(row: Mapping[str, Any], column: str) -> bool | None:
    value = row.get(column)
    return None if value is None else bool(value)


def _tags(row: Mapping[str, Any]) -> list[str]:
    """Tracardi 0.9 joins a list of tags with commas."""
    return [tag.strip() for tag in str(row.get("tags") or "").split(",") if tag.strip()]


def _ref(row: Mapping[str, Any], prefix: str) -> dict[str, str]:
    return {"id": row.get(f"{prefix}_id") or "", "name": row.get(f"{prefix}_name") or ""}


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def event_to_profile_document(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row.get("name"), "description": row.get("description"),
            "event_type": _ref(row, "event_type"), "tags": _tags(row),
            "enabled": _bool(row, "enabled"), "config": _json(row, "config", dict) or {},
            "event_to_profile": _json(row, "event_to_profile", list)}


def event_type_document(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row.get("name"), "description": row.get("description"),
            "event_type": row.get("event_type"), "tags": _tags(row),
            "journey": row.get("journey"), "enabled": _bool(row, "enabled"),
            "index_schema": _json(row, "index_schema", dict) or {}}


def workflow_trigger_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """Tracardi's rule, its references flattened into ``<name>_id``/``<name>_name``."""
    return {"id": row["id"], "name": row.get("name"), "description": row.get("description"),
            "type": row.get("type"), "event_type": _ref(row, "event_type"),
            "flow": _ref(row, "flow"), "segment": _ref(row, "segment"),
            "source": _ref(row, "source"), "properties": _json(row, "properties", dict),
            "enabled": _bool(row, "enabled"), "tags": _tags(row),
            "metadata": {"time": {"insert": _iso(row.get("metadata_time_insert"))}}}


def import_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """0.9 keeps an import's ``config`` as plain JSON (0.8 encodes it)."""
    return {"id": row["id"], "name": row.get("name"), "description": row.get("description"),
            "module": row.get("module"), "config": _json(row, "config", dict) or {},
            "enabled": _bool(row, "enabled"), "transitional": _bool(row, "transitional"),
            "api_url": row.get("api_url"), "event_source": _ref(row, "event_source"),
            "event_type": row.get("event_type")}


def task_document(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row.get("name"), "type": row.get("type"),
            "status": row.get("status"), "progress": row.get("progress"),
            "task_id": row.get("task_id"), "params": _json(row, "params", dict) or {},
            "timestamp": row.get("timestamp"), "message": row.get("message")}


def task_row(document: Mapping[str, Any]) -> dict[str, Any]:
    """Tracardi's task document (``id, task_id, name, type, status, progress, params,
    timestamp``) as a row of its task table: ``message`` holds the job's last error."""
    created = datetime.fromisoformat(str(document["timestamp"]))
    if created.tzinfo is not None:
        created = created.astimezone(UTC).replace(tzinfo=None)  # DATETIME is naive UTC
    params = document.get("params") or {}
    live = params.get("live")
    last_error = live.get("last_error") if isinstance(live, Mapping) else None
    return {"id": document["id"], "timestamp": created,
            "status": str(document["status"])[:_TASK_TEXT_MAX],
            "name": str(document["name"])[:_TASK_NAME_MAX],
            "type": str(document["type"])[:_TASK_TEXT_MAX],
            "progress": document["progress"], "task_id": document["task_id"],
            "params": json.dumps(params, ensure_ascii=False, default=str),
            "message": last_error}
