"""Where each definition kind is read from: the daemon's own alias, or Tracardi's own
index (layout ``tracardi-0.8``) or MySQL table (``tracardi-0.9``), read-only, with what a
document or row stored there needs before the kind's parser reads it (the parsers take
most of Tracardi's shapes; a 0.9 row is first turned into the 0.8 document).

Task records are the exception: beside Tracardi the daemon writes its jobs' progress
into Tracardi's ``tracardi-task`` index or ``task`` table, in the shape Tracardi's GUI
reads (``id, name, task_id, type, status, progress, params, timestamp``), so that an
import or a migration shows there. Segments and live segments have no 0.9 table in
Tracardi's open source: in ``tracardi-0.9`` they stay in the daemon's own indices, named
apart from Tracardi's (naming.py) and created on the first write."""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.model import mysql_definitions as rows
from tracardi_daemon.model.naming import alias_name, configured_layout

TRACARDI_08 = "tracardi-0.8"
TRACARDI_09 = "tracardi-0.9"
TRACARDI_08_INDICES: dict[str, str] = {
    "segment": "tracardi-segment",
    "live-segment": "tracardi-live-segment",
    "event-to-profile": "tracardi-event_to_profile",
    "event-type": "tracardi-event-management",
    "workflow-trigger": "tracardi-rule",
    "import": "tracardi-import",
}
TRACARDI_09_TABLES: dict[str, str] = {
    "event-to-profile": "event_to_profile_mapping",
    "event-type": "event_mapping",
    "workflow-trigger": "workflow_trigger",
    "import": "import",
    "task": "task",
}
# only segment-add rules start a workflow on a segment change; the others (event-collect)
# start one per collected event, which is Tracardi's own work
_TRACARDI_TYPES: dict[str, tuple[str, str]] = {"workflow-trigger": ("type", "segment-add")}

Adapt = Callable[[Mapping[str, Any]], dict[str, Any]]


def _unchanged(document: Mapping[str, Any]) -> dict[str, Any]:
    return dict(document)


@dataclass(frozen=True)
class DefinitionSource:
    """The alias a kind is read through, or the MySQL ``table`` (of ``database``)
    instead; ``only`` = (field, value) a document must hold to be of the kind; ``adapt``
    turns a stored document or row into what the parser reads, and ``export`` a
    definition's document into what the index or table takes."""

    alias: str
    read_only: bool = False
    only: tuple[str, str] | None = None
    adapt: Adapt = _unchanged
    export: Adapt = _unchanged
    table: str | None = None
    database: str = ""

    @property
    def location(self) -> str:
        """Where the definitions are, as ``definitions list`` shows it."""
        return self.alias if self.table is None else f"mysql:{self.database}.{self.table}"

    def query(self) -> dict[str, Any]:
        if self.only is None:
            return {"match_all": {}}
        field, value = self.only
        return {"term": {field: value}}

    def holds(self, document: Mapping[str, Any]) -> bool:
        return self.only is None or document.get(self.only[0]) == self.only[1]

    def refuse_writes(self) -> None:
        if not self.read_only:
            return
        if self.table is None:
            where = f"index {self.alias} in layout {TRACARDI_08}"
        else:
            where = f"MySQL table {self.database}.{self.table} in layout {TRACARDI_09}"
        raise InvalidInput(f"definitions live in Tracardi's {where}; change them in Tracardi")


def definition_source(settings: Settings, kind: str) -> DefinitionSource:
    """Where ``kind`` is read and written in the configured layout."""
    tracardi = settings.tracardi
    if tracardi.layout == TRACARDI_09 and kind in TRACARDI_09_TABLES:
        adapt, export = _TRACARDI_09_ROWS[kind]
        return DefinitionSource(alias="", read_only=kind != "task",
                                only=_TRACARDI_TYPES.get(kind), adapt=adapt, export=export,
                                table=TRACARDI_09_TABLES[kind],
                                database=settings.mysql.database)
    if tracardi.layout != TRACARDI_08:
        return DefinitionSource(alias_name(tracardi, kind))
    if kind == "task":  # the same alias name as the daemon's, in Tracardi's shape
        return DefinitionSource(alias=alias_name(tracardi, kind), adapt=_task_from_tracardi,
                                export=_task_to_tracardi)
    if kind not in TRACARDI_08_INDICES:
        return DefinitionSource(alias_name(tracardi, kind))
    alias = configured_layout(tracardi).alias(TRACARDI_08_INDICES[kind])
    return DefinitionSource(alias=alias, read_only=True,
                            only=_TRACARDI_TYPES.get(kind),
                            adapt=_ADAPTERS.get(kind, _unchanged))


def _live_segment(document: Mapping[str, Any]) -> dict[str, Any]:
    """Tracardi names the segment by a plain string, keeps ``workflow`` on every type
    and stores a missing operation as null."""
    adapted = dict(document)
    segment = adapted.get("segment")
    if isinstance(segment, str):
        adapted["segment"] = {"id": segment, "name": segment} if segment.strip() else None
    if adapted.get("type") != "workflow":
        adapted.pop("workflow", None)
    if adapted.get("operation") is None:
        adapted.pop("operation", None)
    return adapted


def _import(document: Mapping[str, Any]) -> dict[str, Any]:
    """0.8 stores an import's ``config`` as base64 of gzipped JSON."""
    adapted = dict(document)
    encoded = adapted.get("config")
    if isinstance(encoded, str):
        adapted["config"] = decode_import_config(encoded, str(adapted.get("id")))
    return adapted


def decode_import_config(encoded: str, import_id: str) -> dict[str, Any]:
    try:
        config = json.loads(gzip.decompress(base64.b64decode(encoded, validate=True)))
    except (binascii.Error, OSError, EOFError, zlib.error, UnicodeDecodeError,
            ValueError) as exc:
        raise InvalidInput(f"import {import_id!r}: field 'config' is not base64 of gzipped "
                           f"JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise InvalidInput(f"import {import_id!r}: field 'config' must hold a JSON object, "
                           f"got {type(config).__name__}")
    return config


# the daemon's task statuses and the ones Tracardi's API and GUI use
_TASK_STATUS_TO_TRACARDI = {"pending": "pending", "running": "running", "finished": "done",
                            "failed": "error", "cancelled": "cancelled"}
_TASK_STATUS_FROM_TRACARDI = {**{tracardi: daemon for daemon, tracardi in
                                 _TASK_STATUS_TO_TRACARDI.items()},
                              "progress": "running"}  # Tracardi's 0.8 worker: PROGRESS


def _task_to_tracardi(document: Mapping[str, Any]) -> dict[str, Any]:
    """A task record in the fields of Tracardi's strict ``tracardi-task`` mapping."""
    return {"id": document["id"], "task_id": document["id"], "name": document["name"],
            "type": document["type"],
            "status": _TASK_STATUS_TO_TRACARDI.get(document["status"], document["status"]),
            "progress": document["progress"], "params": document["params"],
            "timestamp": document["created"]}


def _task_from_tracardi(document: Mapping[str, Any]) -> dict[str, Any]:
    """A task of Tracardi's index (the daemon's own or one Tracardi wrote) as the task
    parser reads it."""
    status = str(document.get("status") or "pending")
    return {"id": document.get("id"), "name": document.get("name") or "",
            "type": document.get("type") or "", "progress": document.get("progress") or 0.0,
            "status": _TASK_STATUS_FROM_TRACARDI.get(status.lower(), status),
            "params": document.get("params") or {}, "created": document.get("timestamp")}


_ADAPTERS: dict[str, Adapt] = {"live-segment": _live_segment, "import": _import}


def _task_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return _task_from_tracardi(rows.task_document(row))


def _task_to_row(document: Mapping[str, Any]) -> dict[str, Any]:
    return rows.task_row(_task_to_tracardi(document))


# (adapt, export) of each 0.9 table: a row read becomes the 0.8 document
_TRACARDI_09_ROWS: dict[str, tuple[Adapt, Adapt]] = {
    "event-to-profile": (rows.event_to_profile_document, _unchanged),
    "event-type": (rows.event_type_document, _unchanged),
    "workflow-trigger": (rows.workflow_trigger_document, _unchanged),
    "import": (rows.import_document, _unchanged),
    "task": (_task_from_row, _task_to_row),
}
