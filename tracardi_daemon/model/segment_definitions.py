"""Segments, live segments and workflow triggers, read from the daemon's shape or from
Tracardi's stored JSON; every TQL condition is parsed and type-checked when read."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn, Self

from schedule import Job, ScheduleError, Scheduler

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.dispatch_targets import Target, TargetKind, parse_target
from tracardi_daemon.model.definition_reader import Definition, Reader, Ref
from tracardi_daemon.model.mapping_definitions import condition_schema
from tracardi_daemon.tql import Condition, TqlError
from tracardi_daemon.tql.limits import short

LIVE_SEGMENT_TYPES = ("condition", "query", "workflow")
LIVE_SEGMENT_OPERATIONS = ("add", "remove", "sync")
TRIGGER_TYPES = ("segment-add", "segment-remove")
TARGET_TYPES = tuple(kind.value for kind in TargetKind)
# profile.segments is a keyword with ignore_above 64: a longer name would not be indexed
MACHINE_NAME_MAX = 64
# the event type a tracker payload carries when a trigger names none
TRIGGER_EVENT_TYPES = {"segment-add": "segment-added", "segment-remove": "segment-removed"}
# a live segment scans profiles on every run: more often than this would overlap runs
MIN_EVERY_S = 60

_SEGMENT_EXTRAS = ("production", "running", "tags")
_RULE_EXTRAS = ("description", "properties", "metadata", "tags", "production", "running",
                "event")
# which live-segment fields belong to which types
_LIVE_FIELDS = {"condition": ("condition", "workflow"), "query": ("query",),
                "workflow": ("workflow",), "target": ("workflow",)}
_ADDRESS_KEYS = {TargetKind.TRACKER: "url", TargetKind.WEBHOOK: "url",
                 TargetKind.STREAM: "stream", TargetKind.FLOW: ""}
_TARGET_FORMS = ('a string "webhook:URL", "stream:NAME" or "flow:", or a table {type = '
                 '"tracker", source_id = "...", url = "..." (optional)}, {type = "webhook", '
                 'url = "..."}, {type = "stream", stream = "..."} or {type = "flow"}')
_EVERY = re.compile(r"([0-9]+)([smhd])")
_AT = re.compile(r"[0-9]{2}:[0-9]{2}")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def machine_name(name: str) -> str:
    """``"VIP customers"`` -> ``"vip-customers"``: Tracardi's rule (spaces to dashes, then
    lower case), the value written to ``profile.segments``."""
    return name.replace(" ", "-").lower()


def _indexed_length(text: str) -> int:
    # ignore_above counts UTF-16 code units (a Java string's length): an emoji counts 2
    return len(text.encode("utf-16-le")) // 2


def _condition(reader: Reader, field: str) -> str:
    text = reader.string(field)
    try:
        Condition(text, condition_schema())
    except TqlError as exc:
        reader.fail(field, f"is not a valid condition: {exc}")
    return text


@dataclass(frozen=True)
class Segment(Definition):
    """Profiles matching ``condition`` get ``machine_name`` in ``profile.segments``.

    Reads the daemon's shape and Tracardi's stored one (``eventType``); ``to_dict()``
    writes the daemon's.
    """

    kind: ClassVar[str] = "segment"
    description: str
    event_type: tuple[str, ...]  # events that trigger re-segmentation; empty = any
    condition: str  # TQL over the profile, type-checked on reading
    enabled: bool
    machine_name: str  # the value written to profile.segments

    @functools.cached_property
    def compiled(self) -> Condition:
        """The condition, parsed and type-checked once per object: a definitions refresh
        keeps the objects of unchanged segments, so they are not compiled again."""
        return Condition(self.condition, condition_schema())

    @property
    def uses_clock(self) -> bool:
        """Whether the condition reads now(): its result can change with time alone."""
        return self.compiled.uses_clock

    @classmethod
    def _read(cls, reader: Reader) -> Self:
        name = reader.string("name")
        reader.ignore(*_SEGMENT_EXTRAS)
        return cls(
            id=reader.string("id"),
            name=name,
            description=reader.optional_string("description"),
            event_type=_event_types(reader),
            condition=_condition(reader, "condition"),
            enabled=reader.boolean("enabled", True),
            machine_name=_machine_name(reader, name),
        )


def _event_types(reader: Reader) -> tuple[str, ...]:
    reader.ignore("eventType")
    if reader.data.get("eventType") is None:
        return reader.string_list("event_type")
    if reader.data.get("event_type") is not None:
        reader.fail("eventType", "cannot be combined with event_type (the same list in "
                                 "Tracardi's spelling)")
    return reader.string_list("eventType")


def _machine_name(reader: Reader, name: str) -> str:
    stored = reader.optional_string("machine_name")
    value = stored or machine_name(name)
    length = _indexed_length(value)
    if length > MACHINE_NAME_MAX:
        origin = "" if stored else " (made from name: shorten it or set machine_name)"
        reader.fail("machine_name", f"must be at most {MACHINE_NAME_MAX} characters, as "
                                    f"profile.segments ignores longer values; {short(value)} has "
                                    f"{length}{origin}")
    return value


@dataclass(frozen=True)
class WorkflowTarget:
    """Where a workflow start is dispatched (the dispatcher's ``kind:address``) and, for
    the tracker, the Tracardi event source its /track call names."""

    kind: TargetKind
    address: str  # URL or stream name; empty for the tracker = the configured API
    source_id: str | None = None

    def dispatch_target(self) -> str:
        return str(Target(self.kind, self.address))

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"type": self.kind.value}
        if self.address:
            result[_ADDRESS_KEYS[self.kind]] = self.address
        if self.source_id is not None:
            result["source_id"] = self.source_id
        return result


def _read_target(reader: Reader, source_id: str | None = None) -> WorkflowTarget:
    """The ``target`` field in string or table form; ``source_id`` is the tracker's source
    when the target names none (Tracardi's rules carry it in ``source``)."""
    raw = reader.data.get("target")
    reader.ignore("target")
    if isinstance(raw, str):
        if raw.strip().partition(":")[0].lower() == TargetKind.TRACKER and source_id is None:
            _missing_source_id(reader)
        try:
            target = parse_target(raw)
        except InvalidInput as exc:
            reader.fail("target", f"is not a dispatch target: {exc}")
        return WorkflowTarget(target.kind, target.address,
                              source_id if target.kind is TargetKind.TRACKER else None)
    if isinstance(raw, Mapping):
        return _target_table(reader, raw, source_id)
    verb = "is required and must be" if raw is None else "must be"
    reader.fail("target", f"{verb} {_TARGET_FORMS}")


def _missing_source_id(reader: Reader) -> NoReturn:
    reader.fail("target.source_id", "is required for a tracker target (the Tracardi event "
                                    'source of its /track call): write target as a table '
                                    '{type = "tracker", source_id = "...", url = "..." '
                                    "(optional, default the configured Tracardi API)}")


def _target_table(reader: Reader, raw: Mapping[str, Any],
                  source_id: str | None) -> WorkflowTarget:
    if raw.get("type") not in TARGET_TYPES:
        reader.fail("target.type",
                    f"must be one of {', '.join(TARGET_TYPES)}, got {short(raw.get('type'))}")
    kind = TargetKind(raw["type"])
    if kind is TargetKind.FLOW:
        reader.check_keys("target", raw, {"type"})
        return WorkflowTarget(kind, "")
    key = _ADDRESS_KEYS[kind]
    tracker = kind is TargetKind.TRACKER
    reader.check_keys("target", raw, {"type", key, "source_id"} if tracker else {"type", key})
    address = raw.get(key, "")
    if not isinstance(address, str) or (not tracker and not address.strip()):
        shape = "an http:// or https:// URL" if key == "url" else "a non-empty stream name"
        reader.fail(f"target.{key}", f"must be {shape} for a {kind.value} target")
    try:
        parse_target(f"{kind.value}:{address}")
    except InvalidInput as exc:
        reader.fail(f"target.{key}", f"is not valid: {exc}")
    if not tracker:
        return WorkflowTarget(kind, address)
    own = raw.get("source_id")
    if own is not None and not (isinstance(own, str) and own.strip()):
        reader.fail("target.source_id", "must be a non-empty string")
    if own is None and source_id is None:
        _missing_source_id(reader)
    return WorkflowTarget(kind, address, own or source_id)


@dataclass(frozen=True)
class LiveSchedule:
    """When a live segment runs: every ``every`` (``"15m"``; units s, m, h, d) or daily
    ``at`` ``"HH:MM"`` in the daemon's local time (what the ``schedule`` package uses)."""

    every: str | None = None
    at: str | None = None

    @property
    def interval_s(self) -> int | None:
        match = _EVERY.fullmatch(self.every or "")
        return None if match is None else int(match[1]) * _UNIT_S[match[2]]

    def register(self, scheduler: Scheduler, run: Callable[[], None]) -> Job:
        """Add a job calling ``run`` on this schedule to ``scheduler``."""
        if self.at is not None:
            daily: Job = scheduler.every(1).days.at(self.at).do(run)
            return daily
        if self.interval_s is None:
            raise InvalidInput(f"schedule: every {short(self.every)} is not a duration like '15m'")
        periodic: Job = scheduler.every(self.interval_s).seconds.do(run)
        return periodic


DEFAULT_SCHEDULE = LiveSchedule(every="1h")


def _read_schedule(reader: Reader) -> LiveSchedule:
    if reader.data.get("schedule") is None:
        reader.ignore("schedule")
        return DEFAULT_SCHEDULE
    table = reader.table("schedule")
    reader.check_keys("schedule", table, {"every", "at"})
    every, at = table.get("every"), table.get("at")
    if (every is None) == (at is None):
        reader.fail("schedule", 'must hold exactly one of every (such as "15m") and at '
                                '(such as "02:00")')
    if at is not None:
        if not isinstance(at, str) or not _AT.fullmatch(at):
            reader.fail("schedule.at",
                        f'must be a daily time HH:MM such as "02:00", got {short(at)}')
        return _checked(reader, "schedule.at", LiveSchedule(at=at),
                        "must be a time of day from 00:00 to 23:59")
    schedule = LiveSchedule(every=every) if isinstance(every, str) else LiveSchedule()
    interval_s = schedule.interval_s
    if interval_s is None:
        reader.fail("schedule.every", "must be a whole number and a unit s, m, h or d, such "
                                      f'as "15m", got {short(every)}')
    if interval_s < MIN_EVERY_S:
        reader.fail("schedule.every", f"must be at least 1 minute, got {short(every)}")
    return _checked(reader, "schedule.every", schedule, "must be a valid interval")


def _checked(reader: Reader, field: str, schedule: LiveSchedule, problem: str) -> LiveSchedule:
    # the job the role will register, built on a throwaway scheduler: its refusal is ours
    try:
        schedule.register(Scheduler(), lambda: None)
    except ScheduleError as exc:
        value = schedule.at if schedule.at is not None else schedule.every
        reader.fail(field, f"{problem}, got {short(value)} (the scheduler refused it: {exc})")
    return schedule


def _read_query(reader: Reader) -> str | dict[str, Any]:
    value = reader.data.get("query")
    reader.ignore("query")
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, Mapping) and value:
        return dict(value)
    reader.fail("query", "must be a Lucene query string (Tracardi's form) or a non-empty "
                         "Elasticsearch query object")


@dataclass(frozen=True)
class LiveSegment(Definition):
    """Segments profiles on a schedule: by a TQL ``condition``, by a ``query`` over the
    profile index (Lucene text or query DSL), or by starting a ``workflow`` at ``target``
    for each profile (the ``condition``, if any, choosing which)."""

    kind: ClassVar[str] = "live-segment"
    enabled: bool
    type: str
    condition: str | None
    query: str | dict[str, Any] | None
    workflow: Ref | None
    segment: Ref | None  # required unless the workflow decides the segment
    operation: str
    target: WorkflowTarget | None  # type workflow only
    schedule: LiveSchedule

    def schedule_job(self, scheduler: Scheduler, run: Callable[[], None]) -> Job:
        """Register ``run`` on ``scheduler`` at this live segment's schedule."""
        return self.schedule.register(scheduler, run)

    @classmethod
    def _read(cls, reader: Reader) -> Self:
        kind = reader.choice("type", LIVE_SEGMENT_TYPES)
        for field, types in _LIVE_FIELDS.items():
            if reader.data.get(field) is not None and kind not in types:
                reader.fail(field, f"is only for type {' or '.join(types)}, not {short(kind)}")
        workflow = kind == "workflow"
        with_condition = kind == "condition" or reader.data.get("condition") is not None
        return cls(
            id=reader.string("id"),
            name=reader.string("name"),
            enabled=reader.boolean("enabled", True),
            type=kind,
            condition=_condition(reader, "condition") if with_condition else None,
            query=_read_query(reader) if kind == "query" else None,
            workflow=reader.ref("workflow") if workflow else None,
            segment=reader.optional_ref("segment") if workflow else reader.ref("segment"),
            operation=reader.choice("operation", LIVE_SEGMENT_OPERATIONS, "add"),
            target=_read_target(reader) if workflow else None,
            schedule=_read_schedule(reader),
        )

    def to_dict(self) -> dict[str, Any]:
        result = super().to_dict()
        if self.target is not None:
            result["target"] = self.target.to_dict()
        return result


@dataclass(frozen=True)
class WorkflowTrigger(Definition):
    """Start ``workflow`` when a profile enters (segment-add) or leaves (segment-remove)
    ``segment``, by dispatching to ``target``.

    Reads the daemon's shape and Tracardi's rule (``flow`` for the workflow, the tracker
    source in ``source.id``); ``to_dict()`` writes the daemon's.
    """

    kind: ClassVar[str] = "workflow-trigger"
    type: str
    segment: Ref
    workflow: Ref
    target: WorkflowTarget
    event_type: str  # the event type of the tracker payload
    enabled: bool

    @property
    def source_id(self) -> str | None:
        """The Tracardi event source of a tracker target; None for other targets."""
        return self.target.source_id

    def dispatch_target(self) -> str:
        """The ``kind:address`` the dispatcher takes."""
        return self.target.dispatch_target()

    @classmethod
    def _read(cls, reader: Reader) -> Self:
        ident, name = reader.string("id"), reader.string("name")
        kind = reader.choice("type", TRIGGER_TYPES)
        rule = reader.data.get("flow") is not None
        workflow, target = _read_rule(reader) if rule else (reader.ref("workflow"),
                                                            _read_target(reader))
        raw_event_type = reader.data.get("event_type")
        if raw_event_type is None or (rule and isinstance(raw_event_type, Mapping)):
            # a rule's event_type is the collected event's {id, name}: not for segment rules
            reader.ignore("event_type")
            event_type = TRIGGER_EVENT_TYPES[kind]
        else:
            event_type = reader.string("event_type")
        return cls(
            id=ident,
            name=name,
            type=kind,
            segment=reader.ref("segment"),
            workflow=workflow,
            target=target,
            event_type=event_type,
            enabled=reader.boolean("enabled", True),
        )

    def to_dict(self) -> dict[str, Any]:
        result = super().to_dict()
        result["target"] = self.target.to_dict()
        return result


def _read_rule(reader: Reader) -> tuple[Ref, WorkflowTarget]:
    """Tracardi's rule: ``flow`` is the workflow; ``source.id`` is the tracker's source,
    and the target is the configured Tracardi API unless one is given."""
    if reader.data.get("workflow") is not None:
        reader.fail("flow", "cannot be combined with workflow (Tracardi's name for it)")
    reader.ignore(*_RULE_EXTRAS)
    workflow = reader.ref("flow")
    source = reader.table("source")
    reader.check_keys("source", source, {"id", "name"})
    source_id = source.get("id")
    if source_id is not None and not isinstance(source_id, str):
        reader.fail("source.id", "must be a string")
    source_id = source_id if source_id and source_id.strip() else None
    if reader.data.get("target") is not None:
        return workflow, _read_target(reader, source_id)
    if source_id is None:
        # what Tracardi's GUI saves: its rule engine cannot route a /track to this flow,
        # so the flow is run for the profile in Tracardi's own engine (the flow runner)
        return workflow, WorkflowTarget(TargetKind.FLOW, "")
    return workflow, WorkflowTarget(TargetKind.TRACKER, "", source_id)
