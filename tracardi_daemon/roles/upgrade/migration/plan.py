"""Migration plans: which indices to copy from one layout to another, how documents
change on the way, in the daemon's TOML/JSON form (Tracardi's plan files are read by
``tracardi_plan``, files by ``plan_files``).

The daemon's form (TOML shown; JSON is the same object)::

    from = {version = "08x", tenant = "01506", production = false, style = "tracardi"}
    to = {version = "0820"}          # absent: the daemon's configured layout

    [[step]]
    id = "profile"
    index = "tracardi-profile"       # Tracardi's logical name
    target_index = "tracardi-profile"  # optional, default index
    multi = true                     # partitioned
    collapse = "quarter"             # optional: quarter, year or target
    worker = "user_reindex_071"      # optional: a Tracardi 0.7.1 worker, before painless
    transforms = [{op = "move", from = "data.contact.email", to = "data.contact.email.main"}]

Nothing here talks to Elasticsearch: ``resolve_targets`` maps index names the runner
listed to the names they are copied to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from tracardi_daemon.config.settings import Settings, TracardiSettings
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.model.definition_reader import Reader
from tracardi_daemon.model.tracardi_names import (
    LOGICAL_NAME,
    PARTITIONINGS,
    STYLES,
    Layout,
    check_daemon_name,
    coarser,
    format_suffix,
    read_partition,
    tracardi_tenant,
)
from tracardi_daemon.painless import Script, compile_script
from tracardi_daemon.roles.upgrade.migration.tracardi_workers import WORKERS
from tracardi_daemon.roles.upgrade.migration.transforms import Transform, parse_transforms

# quarter/year: collapse into that partitioning; target: into the target layout's
COLLAPSES: tuple[str, ...] = ("quarter", "year", "target")
_PLAN_FIELDS = ("from", "to", "step")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Step:
    """One index (or every partition of one partitioned index) to copy."""

    id: str
    index: str  # Tracardi's logical name in the source layout, e.g. "tracardi-profile"
    multi: bool = False
    static: bool = False
    asynchronous: bool = False
    collapse: str | None = None
    transforms: tuple[Transform, ...] = ()
    target_index: str | None = None  # the logical name in the target; None = index
    production: bool | None = None  # overrides both layouts' mode; None = theirs
    # a painless script run on every document by the daemon's interpreter, compiled when
    # the step is made: a construct it does not support refuses the plan, not a document
    painless: str | None = None
    script: Script | None = field(default=None, compare=False, repr=False)
    # a Tracardi 0.7.1 worker (tracardi_workers.WORKERS) converting each document before
    # the script runs
    worker: str | None = None

    def __post_init__(self) -> None:
        if self.painless is not None and self.script is None:
            object.__setattr__(self, "script", compile_script(
                self.painless, f"step {self.id!r}: painless script"))

    @property
    def target_name(self) -> str:
        return self.target_index or self.index

    def source_pattern(self, source: Layout) -> str:
        """What to list in the source cluster: the index, or a pattern of partitions."""
        layout = _mode(source, self.production)
        if self.multi:
            return layout.partition_pattern(self.index)
        return layout.index(self.index, static=self.static)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"id": self.id, "index": self.index, "multi": self.multi,
                                  "static": self.static, "asynchronous": self.asynchronous}
        for key in ("target_index", "production", "collapse", "painless", "worker"):
            if getattr(self, key) is not None:
                result[key] = getattr(self, key)
        if self.transforms:
            result["transforms"] = [transform.to_dict() for transform in self.transforms]
        return result


@dataclass(frozen=True)
class Plan:
    source: Layout
    target: Layout | None  # None: the daemon's configured layout
    steps: tuple[Step, ...]
    # False: the target's tenant is Tracardi's default for its version only because the
    # plan names none; the configured tenant (TENANT_NAME) or --to-tenant replaces it
    # (not part of what the plan does: a queued plan always names its target's tenant)
    target_tenant_named: bool = field(default=True, compare=False)

    def for_target_tenant(self, to_tenant: str | None, settings: Settings) -> Plan:
        """The plan writing into ``to_tenant`` if given, else into the configured tenant
        (``tracardi.tenant``, ``TENANT_NAME``) when the plan names no target tenant:
        Tracardi's own migration fills the tenant of the installation that runs it."""
        if self.target is None:
            return self
        if to_tenant is None and (self.target_tenant_named
                                  or "tracardi.tenant" not in settings.given):
            return self
        tenant = to_tenant if to_tenant is not None else settings.tracardi.tenant
        return replace(self, target=replace(self.target, tenant=tenant),
                       target_tenant_named=True)

    def target_layout(self, tracardi: TracardiSettings) -> Layout:
        return self.target if self.target is not None else Layout.from_settings(tracardi)

    def to_dict(self) -> dict[str, Any]:
        """The daemon's form, JSON-ready: what a task record's params hold."""
        result: dict[str, Any] = {"from": _layout_dict(self.source)}
        if self.target is not None:
            result["to"] = _layout_dict(self.target)
        result["step"] = [step.to_dict() for step in self.steps]
        return result

    @classmethod
    def from_dict(cls, data: object) -> Plan:
        """Validate the daemon's form; InvalidInput names the step id and the field."""
        if not isinstance(data, Mapping):
            raise InvalidInput(f"plan: must be a table/object with {', '.join(_PLAN_FIELDS)}")
        unknown = sorted(set(data) - set(_PLAN_FIELDS))
        if unknown:
            raise InvalidInput(f"plan: field {unknown[0]!r} is not a known field "
                               f"({', '.join(_PLAN_FIELDS)})")
        source = _read_layout(data.get("from"), "from")
        to = data.get("to")
        target = None if to is None else _read_layout(to, "to")
        named = not isinstance(to, Mapping) or to.get("tenant") is not None
        raw_steps = data.get("step")
        if not isinstance(raw_steps, list) or not raw_steps:
            raise InvalidInput("plan: field 'step' must be a non-empty list ([[step]])")
        return checked(cls(source, target, tuple(
            _read_step(number, raw) for number, raw in enumerate(raw_steps)), named))


def _layout_dict(layout: Layout) -> dict[str, Any]:
    result: dict[str, Any] = {"version": layout.version, "tenant": layout.tenant,
                              "production": layout.production, "style": layout.style}
    if layout.partitioning is not None:
        result["partitioning"] = layout.partitioning
    return result


def _mode(layout: Layout, production: bool | None) -> Layout:
    return layout if production is None else replace(layout, production=production)


def _logical(reader: Reader, field: str, example: str) -> str:
    value = reader.string(field)
    if not LOGICAL_NAME.match(value):
        reader.fail(field, f"must be lower case letters, digits, '-' and '_' (such as "
                           f"{example!r}), got {value!r}")
    return value


def _read_layout(raw: object, field: str) -> Layout:
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"plan: field {field!r} must be a table/object with version, "
                           "tenant, production and style")
    reader = Reader("plan", raw, strict=True)
    reader.id = field  # errors read "plan 'from': field 'version' ..."
    if "id" in raw:
        reader.fail("id", "is not a known field")
    version = _logical(reader, "version", "08x")
    style = reader.choice("style", STYLES, "tracardi")
    if raw.get("tenant") is None and style == "daemon":
        reader.fail("tenant", "is required for a daemon layout")
    tenant = (_logical(reader, "tenant", "01506") if raw.get("tenant") is not None
              else tracardi_tenant(version))
    partitioning = None
    if raw.get("partitioning") is not None:
        if style != "daemon":
            reader.fail("partitioning", "is for daemon layouts only (Tracardi partitions "
                                        "each index differently)")
        partitioning = reader.choice("partitioning", PARTITIONINGS)
    production = reader.boolean("production", False)
    reader.ignore("partitioning")
    reader.finish()
    return Layout(version, tenant, production, "daemon" if style == "daemon" else "tracardi",
                  partitioning)


def _read_step(number: int, raw: object) -> Step:
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"plan: field 'step[{number}]' must be a table/object")
    reader = Reader("step", raw, strict=True)
    ident = reader.string("id")
    reader.ignore("transforms")
    step = Step(
        id=ident,
        index=_logical(reader, "index", "tracardi-profile"),
        multi=reader.boolean("multi", False),
        static=reader.boolean("static", False),
        asynchronous=reader.boolean("asynchronous", False),
        collapse=_optional(reader, "collapse", lambda: reader.choice("collapse", COLLAPSES)),
        transforms=parse_transforms(reader.data.get("transforms"), f"step {ident!r}"),
        target_index=_optional(reader, "target_index",
                               lambda: _logical(reader, "target_index", "tracardi-profile")),
        production=_optional(reader, "production", lambda: reader.boolean("production", False)),
        painless=reader.optional_string("painless") or None,
        worker=_optional(reader, "worker", lambda: reader.choice("worker", WORKERS)),
    )
    reader.finish()
    return step


def _optional(reader: Reader, field: str, read: Callable[[], _T]) -> _T | None:
    """``read()`` when ``field`` is given, None when it is absent."""
    reader.ignore(field)
    return None if reader.data.get(field) is None else read()


def _step_fail(step: Step, field: str, problem: str) -> InvalidInput:
    return InvalidInput(f"step {step.id!r}: field '{field}' {problem}")


def _check_step(step: Step, plan: Plan) -> None:
    if step.static and step.multi:
        raise _step_fail(step, "static", "cannot be combined with multi")
    if step.collapse is not None and not step.multi:
        raise _step_fail(step, "collapse", "is for partitioned (multi) indices only")
    if step.painless is not None and step.transforms:
        raise _step_fail(step, "painless", "cannot be combined with transforms")
    if step.worker is not None and step.transforms:
        raise _step_fail(step, "worker", "cannot be combined with transforms")
    daemon_target = plan.target is None or plan.target.style == "daemon"
    if step.collapse == "target" and not daemon_target:
        raise _step_fail(step, "collapse", "'target' needs a daemon target layout")
    if step.collapse == "target" and plan.target and plan.target.partitioning is None:
        raise _step_fail(step, "collapse", "'target' needs the target layout's "
                                           "partitioning: set to.partitioning")
    checks = [("index", step.index, plan.source.style == "daemon"),
              ("target_index" if step.target_index else "index", step.target_name,
               daemon_target)]
    for field_name, name, daemon in checks:
        problem = check_daemon_name(name, multi=step.multi, static=step.static)
        if daemon and problem is not None:
            raise _step_fail(step, field_name, problem)


def checked(plan: Plan) -> Plan:
    """``plan`` once its steps are checked against each other and its layouts."""
    seen: dict[str, int] = {}
    for number, step in enumerate(plan.steps):
        if step.id in seen:
            raise _step_fail(step, "id", f"is not unique: steps {seen[step.id]} and "
                                         f"{number} share it")
        seen[step.id] = number
        _check_step(step, plan)
    return plan


def resolve_targets(step: Step, source_index_names: list[str], source: Layout,
                    target: Layout) -> list[tuple[str, str]]:
    """(source index, target index) for the indices of ``step`` among the listed names,
    oldest partition first; several partitions may collapse into one target. A single
    index absent from the list yields nothing (the runner reports it)."""
    source, target = _mode(source, step.production), _mode(target, step.production)
    if not step.multi:
        name = source.index(step.index, static=step.static)
        present = name in source_index_names
        return [(name, target.index(step.target_name, static=step.static))] if present else []
    collapse = target.partitioning if step.collapse == "target" else step.collapse
    if step.collapse == "target" and collapse is None:
        raise _step_fail(step, "collapse", "'target' needs the target layout's partitioning")
    pattern, base = source.partition_regex(step.index), target.index(step.target_name)
    found: list[tuple[tuple[int, int, int], str, str]] = []
    for name in source_index_names:
        match = pattern.match(name)
        if match is None:
            continue
        try:
            part = read_partition(match["suffix"])
        except InvalidInput as exc:
            raise _step_fail(step, "index", f"partition {name!r}: {exc}") from exc
        suffix = format_suffix(target.style, part.year, coarser(part.kind, collapse),
                               month=part.month, quarter=part.quarter)
        order = (part.year, part.quarter or 0, part.month or 0)
        found.append((order, name, f"{base}-{suffix}"))
    return [(name, target_name) for _, name, target_name in sorted(found)]
