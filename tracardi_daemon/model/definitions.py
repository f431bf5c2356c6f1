"""Typed definitions the roles read: segments, live segments, event-to-profile mappings,
workflow triggers, imports and tasks, validated from dicts and written back as dicts."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, NoReturn, Self

from tracardi_daemon.errors import InvalidInput

LIVE_SEGMENT_TYPES = ("condition", "query", "workflow")
LIVE_SEGMENT_OPERATIONS = ("add", "remove", "sync")
MAPPING_OPERATIONS = ("equals", "equals_if_not_exists", "append")
TRIGGER_TYPES = ("segment-add", "segment-remove")
TARGET_TYPES = ("tracker", "webhook", "stream")
TASK_STATUSES = ("pending", "running", "finished", "failed", "cancelled")

# a dotted path such as "properties.email" or "data.contact.email.main"
_PATH = re.compile(r"^[^\s.]+(\.[^\s.]+)*$")


class _Reader:
    """Reads the fields of one raw definition; every error names kind, id and field."""

    def __init__(self, kind: str, data: object) -> None:
        self.kind = kind
        if not isinstance(data, Mapping):
            raise InvalidInput(f"{kind}: a definition must be a table/object, "
                               f"got {type(data).__name__}")
        self.data: Mapping[str, Any] = data
        raw_id = data.get("id")
        self.id = raw_id if isinstance(raw_id, str) and raw_id.strip() else None
        self.read: set[str] = set()

    def fail(self, field: str, problem: str) -> NoReturn:
        who = f"{self.kind} {self.id!r}" if self.id else f"{self.kind} (without id)"
        raise InvalidInput(f"{who}: field '{field}' {problem}")

    def _get(self, field: str) -> Any:
        self.read.add(field)
        return self.data.get(field)

    def string(self, field: str) -> str:
        value = self._get(field)
        if not isinstance(value, str) or not value.strip():
            self.fail(field, "must be a non-empty string")
        return value

    def optional_string(self, field: str, default: str = "") -> str:
        value = self._get(field)
        if value is None:
            return default
        if not isinstance(value, str):
            self.fail(field, "must be a string")
        return value

    def boolean(self, field: str, default: bool) -> bool:
        value = self._get(field)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(field, "must be true or false")
        return value

    def choice(self, field: str, options: tuple[str, ...], default: str | None = None) -> str:
        value = self._get(field)
        if value is None and default is not None:
            return default
        if value not in options:
            self.fail(field, f"must be one of {', '.join(options)}, got {value!r}")
        return str(value)

    def string_list(self, field: str) -> tuple[str, ...]:
        value = self._get(field)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(
                isinstance(item, str) and item.strip() for item in value):
            self.fail(field, "must be a list of non-empty strings")
        return tuple(value)

    def ref(self, field: str) -> Ref:
        value = self._get(field)
        if not isinstance(value, Mapping) or not isinstance(value.get("id"), str) \
                or not value["id"].strip() or not isinstance(value.get("name", ""), str):
            self.fail(field, "must be a table/object with a non-empty string 'id' and a "
                             "string 'name'")
        return Ref(id=value["id"], name=value.get("name", ""))

    def optional_ref(self, field: str) -> Ref | None:
        return None if self.data.get(field) is None else self.ref(field)

    def table(self, field: str) -> dict[str, Any]:
        value = self._get(field)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(field, "must be a table/object")
        return dict(value)

    def number(self, field: str, default: float, low: float, high: float) -> float:
        value = self._get(field)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not low <= value <= high:
            self.fail(field, f"must be a number from {low:g} to {high:g}")
        return float(value)

    def timestamp(self, field: str) -> datetime:
        value = self._get(field)
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                self.fail(field, f"must be an ISO 8601 date and time, got {value!r}")
        if not isinstance(value, datetime):
            self.fail(field, "must be an ISO 8601 date and time")
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def finish(self, strict: bool) -> None:
        """In strict mode (files a person wrote) an unknown field is a typo, so an error;
        documents read back from Elasticsearch may carry Tracardi's own extra fields."""
        unknown = sorted(set(self.data) - self.read - {"id"})
        if strict and unknown:
            self.fail(unknown[0], "is not a known field")


def _plain(value: Any) -> Any:
    """JSON-ready form: dataclasses to dicts (None fields left out), tuples to lists."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)
                if getattr(value, f.name) is not None}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class Ref:
    """A reference to another object by id, with its name for people."""

    id: str
    name: str = ""


@dataclass(frozen=True)
class Definition:
    """What every definition has; ``kind`` is also the index kind it is stored in."""

    kind: ClassVar[str] = ""
    id: str
    name: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, strict: bool = False) -> Self:
        """Validate ``data``; InvalidInput names the kind, the id and the bad field."""
        reader = _Reader(cls.kind, data)
        definition = cls._read(reader)
        reader.finish(strict)
        return definition

    @classmethod
    def _read(cls, reader: _Reader) -> Self:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = _plain(self)
        return plain


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
    def _read(cls, reader: _Reader) -> Self:
        name = reader.string("name")
        return cls(
            id=reader.string("id"), name=name,
            description=reader.optional_string("description"),
            event_type=reader.string_list("event_type"),
            condition=reader.string("condition"),
            enabled=reader.boolean("enabled", True),
            machine_name=reader.optional_string("machine_name") or machine_name(name))


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
    def _read(cls, reader: _Reader) -> Self:
        kind = reader.choice("type", LIVE_SEGMENT_TYPES)
        condition = reader.string("condition") if kind == "condition" else None
        query = reader.table("query") if kind == "query" else None
        if kind == "query" and not query:
            reader.fail("query", "must be a non-empty Elasticsearch query object")
        workflow = reader.ref("workflow") if kind == "workflow" else None
        segment = reader.optional_ref("segment") if kind == "workflow" \
            else reader.ref("segment")
        return cls(
            id=reader.string("id"), name=reader.string("name"),
            enabled=reader.boolean("enabled", True), type=kind, condition=condition,
            query=query, workflow=workflow, segment=segment,
            operation=reader.choice("operation", LIVE_SEGMENT_OPERATIONS, "add"))


@dataclass(frozen=True)
class MappingItem:
    """Copy the value at ``event`` (a dotted path in the event) to ``profile``."""

    event: str
    op: str
    profile: str


def _read_items(reader: _Reader) -> tuple[MappingItem, ...]:
    raw = reader.data.get("items")
    reader.read.add("items")
    if not isinstance(raw, list) or not raw:
        reader.fail("items", "must be a non-empty list of {event, op, profile}")
    items = []
    for number, item in enumerate(raw):
        where = f"items[{number}]"
        if not isinstance(item, Mapping):
            reader.fail(where, "must be a table/object with event, op and profile")
        for path_field in ("event", "profile"):
            path = item.get(path_field)
            if not isinstance(path, str) or not _PATH.match(path):
                reader.fail(f"{where}.{path_field}", "must be a dotted path such as "
                            "'properties.email'")
        if item.get("op") not in MAPPING_OPERATIONS:
            reader.fail(f"{where}.op", f"must be one of {', '.join(MAPPING_OPERATIONS)}, "
                                       f"got {item.get('op')!r}")
        unknown = sorted(set(item) - {"event", "op", "profile"})
        if unknown:
            reader.fail(f"{where}.{unknown[0]}", "is not a known field")
        items.append(MappingItem(item["event"], item["op"], item["profile"]))
    return tuple(items)


@dataclass(frozen=True)
class EventToProfile(Definition):
    kind: ClassVar[str] = "event-to-profile"
    event_type: Ref
    enabled: bool
    condition: str | None  # TQL over the event; None = every event of the type
    items: tuple[MappingItem, ...]

    @classmethod
    def _read(cls, reader: _Reader) -> Self:
        has_condition = reader.data.get("condition") is not None
        return cls(
            id=reader.string("id"), name=reader.string("name"),
            event_type=reader.ref("event_type"), enabled=reader.boolean("enabled", True),
            condition=reader.string("condition") if has_condition else None,
            items=_read_items(reader))


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
    def _read(cls, reader: _Reader) -> Self:
        raw_target = reader.data.get("target", "tracker")
        # "webhook" is shorthand for {"type": "webhook"}
        target = {"type": raw_target} if isinstance(raw_target, str) else reader.table("target")
        reader.read.add("target")
        if target.get("type") not in TARGET_TYPES:
            reader.fail("target.type", f"must be one of {', '.join(TARGET_TYPES)}, "
                                       f"got {target.get('type')!r}")
        if target["type"] == "webhook" and not re.match(r"^https?://\S+$",
                                                        str(target.get("url", ""))):
            reader.fail("target.url", "must be an http:// or https:// URL for a webhook")
        if target["type"] == "stream" and not (isinstance(target.get("stream"), str)
                                               and target["stream"].strip()):
            reader.fail("target.stream", "must be a non-empty stream name")
        return cls(
            id=reader.string("id"), name=reader.string("name"),
            type=reader.choice("type", TRIGGER_TYPES), segment=reader.ref("segment"),
            workflow=reader.ref("workflow"), target=target)


@dataclass(frozen=True)
class ImportConfig(Definition):
    kind: ClassVar[str] = "import"
    description: str
    source: str  # csv, elasticsearch, ...: the upgrade role decides what it supports
    config: dict[str, Any]
    enabled: bool

    @classmethod
    def _read(cls, reader: _Reader) -> Self:
        return cls(
            id=reader.string("id"), name=reader.string("name"),
            description=reader.optional_string("description"),
            source=reader.string("source"), config=reader.table("config"),
            enabled=reader.boolean("enabled", True))


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
    def _read(cls, reader: _Reader) -> Self:
        return cls(
            id=reader.string("id"), name=reader.string("name"), type=reader.string("type"),
            status=reader.choice("status", TASK_STATUSES, "pending"),
            progress=reader.number("progress", 0.0, 0.0, 100.0),
            created=reader.timestamp("created"), params=reader.table("params"))


DEFINITION_TYPES: dict[str, type[Definition]] = {
    cls.kind: cls
    for cls in (Segment, LiveSegment, EventToProfile, WorkflowTrigger, ImportConfig, Task)
}


def definition_type(kind: str) -> type[Definition]:
    """The class of a kind; ``event_to_profile`` is accepted for ``event-to-profile``
    (TOML table names read better with underscores)."""
    try:
        return DEFINITION_TYPES[kind.replace("_", "-")]
    except KeyError:
        raise InvalidInput(f"unknown definition kind {kind!r}; expected one of "
                           f"{', '.join(DEFINITION_TYPES)}") from None


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


def _parse_entries(cls: type[Definition], entries: Iterable[Any], strict: bool,
                   errors: list[str]) -> list[Definition]:
    parsed = []
    for entry in entries:
        try:
            parsed.append(cls.from_dict(entry, strict=strict))
        except InvalidInput as exc:
            errors.append(str(exc))
    return parsed
