"""Typed definitions the roles read: segments, live segments, workflow triggers, imports
and tasks, validated from dicts and written back as dicts; the registry of every kind
(event-to-profile and event-type live in ``mapping_definitions``) and file parsing."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.model.definition_reader import Definition, Reader, Ref
from tracardi_daemon.model.mapping_definitions import (
    MAPPING_OPERATIONS,
    PROFILE_ROOTS,
    EventToProfile,
    EventTypeMapping,
    MappingItem,
)

__all__ = [
    "DEFINITION_TYPES",
    "LIVE_SEGMENT_OPERATIONS",
    "LIVE_SEGMENT_TYPES",
    "MAPPING_OPERATIONS",
    "PROFILE_ROOTS",
    "TARGET_TYPES",
    "TASK_STATUSES",
    "TRIGGER_TYPES",
    "Definition",
    "EventToProfile",
    "EventTypeMapping",
    "ImportConfig",
    "LiveSegment",
    "MappingItem",
    "Ref",
    "Segment",
    "Task",
    "WorkflowTrigger",
    "definition_type",
    "machine_name",
    "parse_definitions",
]

LIVE_SEGMENT_TYPES = ("condition", "query", "workflow")
LIVE_SEGMENT_OPERATIONS = ("add", "remove", "sync")
TRIGGER_TYPES = ("segment-add", "segment-remove")
TARGET_TYPES = ("tracker", "webhook", "stream")
TASK_STATUSES = ("pending", "running", "finished", "failed", "cancelled")


def machine_name(name: str) -> str:
    """``"VIP customers"`` -> ``"vip-customers"``: the name as a segment tag."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@dataclass(frozen=True)
class Segment(Definition):
    kind: ClassVar[str] = "segment"
    description: str
    event_type: tuple[str, ...]  # events that trigger re-segmentation; empty = any
    condition: str  # TQL, evaluated by the segmentation role
    enabled: bool
    machine_name: str  # the value written to profile.segments

    @classmethod
    def _read(cls, reader: Reader) -> Self:
        name = reader.string("name")
        return cls(
            id=reader.string("id"),
            name=name,
            description=reader.optional_string("description"),
            event_type=reader.string_list("event_type"),
            condition=reader.string("condition"),
            enabled=reader.boolean("enabled", True),
            machine_name=reader.optional_string("machine_name") or machine_name(name),
        )


@dataclass(frozen=True)
class LiveSegment(Definition):
    """Segments profiles continuously: by a TQL ``condition``, by an Elasticsearch
    ``query`` object over the profile index, or by running a ``workflow``."""

    kind: ClassVar[str] = "live-segment"
    enabled: bool
    type: str
    condition: str | None
    query: dict[str, Any] | None
    workflow: Ref | None
    segment: Ref | None  # required unless the workflow decides the segment
    operation: str

    @classmethod
    def _read(cls, reader: Reader) -> Self:
        kind = reader.choice("type", LIVE_SEGMENT_TYPES)
        condition = reader.string("condition") if kind == "condition" else None
        query = reader.table("query") if kind == "query" else None
        if kind == "query" and not query:
            reader.fail("query", "must be a non-empty Elasticsearch query object")
        workflow = reader.ref("workflow") if kind == "workflow" else None
        segment = reader.optional_ref("segment") if kind == "workflow" else reader.ref("segment")
        return cls(
            id=reader.string("id"),
            name=reader.string("name"),
            enabled=reader.boolean("enabled", True),
            type=kind,
            condition=condition,
            query=query,
            workflow=workflow,
            segment=segment,
            operation=reader.choice("operation", LIVE_SEGMENT_OPERATIONS, "add"),
        )


@dataclass(frozen=True)
class WorkflowTrigger(Definition):
    """Start ``workflow`` when a profile enters (segment-add) or leaves (segment-remove)
    ``segment``; ``target`` says where the start request is dispatched."""

    kind: ClassVar[str] = "workflow-trigger"
    type: str
    segment: Ref
    workflow: Ref
    target: dict[str, Any]  # {"type": tracker|webhook|stream, ...options}

    @classmethod
    def _read(cls, reader: Reader) -> Self:
        raw_target = reader.data.get("target", "tracker")
        # "webhook" is shorthand for {"type": "webhook"}
        target = {"type": raw_target} if isinstance(raw_target, str) else reader.table("target")
        reader.read.add("target")
        if target.get("type") not in TARGET_TYPES:
            reader.fail(
                "target.type",
                f"must be one of {', '.join(TARGET_TYPES)}, got {target.get('type')!r}",
            )
        if target["type"] == "webhook" and not re.match(
            r"^https?://\S+$", str(target.get("url", ""))
        ):
            reader.fail("target.url", "must be an http:// or https:// URL for a webhook")
        if target["type"] == "stream" and not (
            isinstance(target.get("stream"), str) and target["stream"].strip()
        ):
            reader.fail("target.stream", "must be a non-empty stream name")
        return cls(
            id=reader.string("id"),
            name=reader.string("name"),
            type=reader.choice("type", TRIGGER_TYPES),
            segment=reader.ref("segment"),
            workflow=reader.ref("workflow"),
            target=target,
        )


@dataclass(frozen=True)
class ImportConfig(Definition):
    kind: ClassVar[str] = "import"
    description: str
    source: str  # csv, elasticsearch, ...: the upgrade role decides what it supports
    config: dict[str, Any]
    enabled: bool

    @classmethod
    def _read(cls, reader: Reader) -> Self:
        return cls(
            id=reader.string("id"),
            name=reader.string("name"),
            description=reader.optional_string("description"),
            source=reader.string("source"),
            config=reader.table("config"),
            enabled=reader.boolean("enabled", True),
        )


@dataclass(frozen=True)
class Task(Definition):
    """A long job's record (import, reindex); live progress is mirrored from Redis."""

    kind: ClassVar[str] = "task"
    type: str
    status: str
    progress: float  # percent, 0 to 100
    created: datetime
    params: dict[str, Any]

    @classmethod
    def _read(cls, reader: Reader) -> Self:
        return cls(
            id=reader.string("id"),
            name=reader.string("name"),
            type=reader.string("type"),
            status=reader.choice("status", TASK_STATUSES, "pending"),
            progress=reader.number("progress", 0.0, 0.0, 100.0),
            created=reader.timestamp("created"),
            params=reader.table("params"),
        )


DEFINITION_TYPES: dict[str, type[Definition]] = {
    cls.kind: cls
    for cls in (
        Segment,
        LiveSegment,
        EventToProfile,
        EventTypeMapping,
        WorkflowTrigger,
        ImportConfig,
        Task,
    )
}


def definition_type(kind: str) -> type[Definition]:
    """The class of a kind; ``event_to_profile`` is accepted for ``event-to-profile``
    and ``event_type`` for ``event-type`` (TOML table names read better with
    underscores)."""
    try:
        return DEFINITION_TYPES[kind.replace("_", "-")]
    except KeyError:
        raise InvalidInput(
            f"unknown definition kind {kind!r}; expected one of {', '.join(DEFINITION_TYPES)}"
        ) from None


def parse_definitions(document: Mapping[str, Any], strict: bool = True) -> list[Definition]:
    """Every definition of a file's ``{kind: [definition, ...]}`` document.

    All of them are validated before any is returned; InvalidInput lists every error,
    one per line, so a file with one bad definition applies nothing.
    """
    definitions: list[Definition] = []
    errors: list[str] = []
    seen: set[tuple[str, str]] = set()
    for kind, entries in document.items():
        try:
            cls = definition_type(kind)
        except InvalidInput as exc:
            errors.append(str(exc))
            continue
        if not isinstance(entries, list):
            errors.append(f"{kind}: must be a list of definitions ([[{kind}]] in TOML)")
            continue
        for definition in _parse_entries(cls, entries, strict, errors):
            if (cls.kind, definition.id) in seen:
                errors.append(f"{cls.kind} {definition.id!r}: field 'id' is used twice")
            seen.add((cls.kind, definition.id))
            definitions.append(definition)
    if errors:
        raise InvalidInput("\n".join(errors))
    return definitions


def _parse_entries(
    cls: type[Definition], entries: Iterable[Any], strict: bool, errors: list[str]
) -> list[Definition]:
    parsed = []
    for entry in entries:
        try:
            parsed.append(cls.from_dict(entry, strict=strict))
        except InvalidInput as exc:
            errors.append(str(exc))
    return parsed
