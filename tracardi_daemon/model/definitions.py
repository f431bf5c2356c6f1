"""Typed definitions the roles read, validated from dicts and written back as dicts:
imports and tasks here; the registry of every kind and file parsing. Segments, live
segments and triggers live in ``segment_definitions``, event-to-profile and event-type in
``mapping_definitions``; both are re-exported here."""

from __future__ import annotations

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
from tracardi_daemon.model.segment_definitions import (
    LIVE_SEGMENT_OPERATIONS,
    LIVE_SEGMENT_TYPES,
    MACHINE_NAME_MAX,
    TARGET_TYPES,
    TRIGGER_EVENT_TYPES,
    TRIGGER_TYPES,
    LiveSchedule,
    LiveSegment,
    Segment,
    WorkflowTarget,
    WorkflowTrigger,
    machine_name,
)
from tracardi_daemon.tql.limits import prefix, short

__all__ = [
    "DEFINITION_TYPES",
    "LIVE_SEGMENT_OPERATIONS",
    "LIVE_SEGMENT_TYPES",
    "MACHINE_NAME_MAX",
    "MAPPING_OPERATIONS",
    "PROFILE_ROOTS",
    "TARGET_TYPES",
    "TASK_STATUSES",
    "TRIGGER_EVENT_TYPES",
    "TRIGGER_TYPES",
    "Definition",
    "EventToProfile",
    "EventTypeMapping",
    "ImportConfig",
    "LiveSchedule",
    "LiveSegment",
    "MappingItem",
    "Ref",
    "Segment",
    "Task",
    "WorkflowTarget",
    "WorkflowTrigger",
    "check_counts",
    "definition_type",
    "machine_name",
    "parse_definitions",
]

TASK_STATUSES = ("pending", "running", "finished", "failed", "cancelled")


@dataclass(frozen=True)
class ImportConfig(Definition):
    kind: ClassVar[str] = "import"
    description: str
    source: str  # csv, elasticsearch, ...: the upgrade role decides what it supports
    config: dict[str, Any]
    enabled: bool

    @classmethod
    def _read(cls, reader: Reader) -> Self:
        """The daemon's shape (``source``, ``config``), or Tracardi's (``module``, with
        ``event_type``, ``event_source`` and ``api_url`` beside ``config``); the config
        is checked as a job would read it."""
        from tracardi_daemon.model.import_spec import from_tracardi, read_spec

        if "source" not in reader.data and "module" in reader.data:
            reader.ignore("module", "config", "event_type", "event_source", "api_url",
                          "transitional")
            source, config = from_tracardi(reader.data)
        else:
            source, config = reader.string("source"), reader.table("config")
        definition = cls(
            id=reader.string("id"),
            name=reader.string("name"),
            description=reader.optional_string("description"),
            source=source,
            config=config,
            enabled=reader.boolean("enabled", True),
        )
        read_spec(definition.id, definition.name, definition.source, definition.config)
        return definition


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
            f"unknown definition kind {short(kind)}; expected one of {', '.join(DEFINITION_TYPES)}"
        ) from None


def check_counts(document: Mapping[str, Any], max_per_kind: int) -> None:
    """Refuse a document with more than ``max_per_kind`` definitions of a kind, before
    any of them is parsed (each condition costs a parse)."""
    for kind, entries in document.items():
        if isinstance(entries, list) and len(entries) > max_per_kind:
            raise InvalidInput(f"{prefix(str(kind))}: {len(entries):,} definitions, more "
                               f"than definitions.max_per_kind ({max_per_kind:,})")


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
                errors.append(f"{cls.kind} {short(definition.id)}: field 'id' is used twice")
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
