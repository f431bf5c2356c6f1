"""The enabled mapping definitions, compiled for one batch, and how they change one event
and one profile. The op semantics live in ``model/mapping_ops.py``; this module decides
which definitions apply to an event and keeps each event's changes all-or-nothing.

Order, as in Tracardi: an event type's ``index_schema`` first copies properties to the
event's own traits (so a mapping may read ``traits.*``), then every enabled
event-to-profile definition of the event's type, in the order of their ids, each when
its condition holds for the event, the profile as the earlier events left it, and the
event's session.

Beside Tracardi's collector (the live tail in a Tracardi layout) an event it collected was
mapped at /track already: only the items it skipped are applied (``collector.py``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tracardi_daemon.model.definitions import EventToProfile, EventTypeMapping, MappingItem
from tracardi_daemon.model.mapping_ops import (
    MISSING,
    MappingConflict,
    apply_op,
    is_copyable,
    read_path,
)
from tracardi_daemon.roles.mapping.collector import (
    applied_by_collector,
    collected,
    newer_write,
)
from tracardi_daemon.tql import TqlError
from tracardi_daemon.tql.evaluate import Predicate
from tracardi_daemon.tql.values import Clock

_SESSION_REFERENCE = re.compile(r"(?i)\bsession@")
# ops whose event value is copied (and skipped when missing, null or blank)
_COPY_OPS = frozenset({"equals", "equals_if_not_exists", "append"})


class EventFailure(Exception):
    """An event that cannot be applied: it goes to the dead letters with this detail."""

    def __init__(self, reason: str, definition_id: str | None = None,
                 item: Mapping[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.definition_id = definition_id
        self.item = dict(item) if item is not None else None


@dataclass(frozen=True)
class _Compiled:
    definition: EventToProfile
    accepts: Predicate | None  # None: no condition


class MappingRules:
    """Enabled definitions by event type. Build one per batch: conditions that read the
    clock get the batch's time. ``beside_collector``: the events Tracardi's collector
    stored were mapped by it; apply to them only what it skipped."""

    def __init__(self, mappings: Sequence[EventToProfile],
                 event_types: Sequence[EventTypeMapping], clock: Clock | None = None, *,
                 beside_collector: bool = False) -> None:
        self._beside_collector = beside_collector
        self._profile_rules: dict[str, list[_Compiled]] = {}
        for definition in sorted(mappings, key=lambda d: d.id):
            if not definition.enabled:
                continue
            try:
                compiled = definition.compiled
            except TqlError as exc:  # validated when applied; stored by another tool
                raise EventFailure(f"condition does not compile: {exc}",
                                   definition.id) from exc
            accepts = None if compiled is None else compiled.predicate(clock)
            self._profile_rules.setdefault(definition.event_type.id, []).append(
                _Compiled(definition, accepts))
        self._event_types = {e.event_type: e for e in event_types if e.enabled}
        self._session_types = {
            event_type for event_type, rules in self._profile_rules.items()
            if any(_SESSION_REFERENCE.search(r.definition.condition or "") for r in rules)}

    @property
    def event_types(self) -> list[str]:
        """Event types some definition applies to; other events are not read at all."""
        return sorted(set(self._profile_rules) | set(self._event_types))

    def applies_to_profile(self, event: Mapping[str, Any]) -> bool:
        return str(event.get("type")) in self._profile_rules

    def needs_session(self, event: Mapping[str, Any]) -> bool:
        return str(event.get("type")) in self._session_types

    def event_update(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Apply the event type's index_schema, journey and tags to ``event`` in place;
        returns the partial document to write to the event, or None if nothing changed."""
        mapping = self._event_types.get(str(event.get("type")))
        if mapping is None:
            return None
        update: dict[str, Any] = {}
        properties = event.get("properties")
        for property_path, trait_path in mapping.index_schema.items():
            value = read_path(properties, property_path) if isinstance(properties, Mapping) \
                else MISSING
            if not is_copyable(value):
                continue
            path = f"traits.{trait_path}"
            try:
                changed = apply_op(event, "equals", path, value)
            except MappingConflict as exc:
                raise EventFailure(exc.reason, mapping.id,
                                   {"property": property_path, "trait": trait_path}) from exc
            if changed:
                _set(update, path, value)
        if mapping.journey and read_path(event, "journey.state") != mapping.journey:
            event.setdefault("journey", {})["state"] = mapping.journey
            update["journey"] = {"state": mapping.journey}
        if mapping.tags:
            tags = event.setdefault("tags", {})
            values = list(tags.get("values") or [])
            added = [tag for tag in mapping.tags if tag not in values]
            if added:
                tags["values"] = values + added
                tags["count"] = len(tags["values"])
                update["tags"] = dict(tags)
        return update or None

    def apply_event(self, profile: dict[str, Any], event: Mapping[str, Any],
                    session: Mapping[str, Any] | None,
                    check: Callable[[str, Any], None] | None = None) -> list[str]:
        """Apply every definition of the event's type to ``profile`` in place; returns
        the profile paths written. All or nothing: on EventFailure the profile is as it
        was before this event. ``check(path, value)`` sees each value written and may
        refuse it with MappingConflict (e.g. one the index's mapping refuses)."""
        undo: list[tuple[str, Any]] = []
        written: list[str] = []
        documents = {"event": event, "profile": profile, "session": session or {}}
        after_collector = self._beside_collector and collected(event)
        try:
            for rule in self._profile_rules.get(str(event.get("type")), ()):
                if rule.accepts is not None and not _holds(rule, documents):
                    continue
                for number, item in enumerate(rule.definition.items):
                    try:
                        if after_collector and _collector_did(profile, event, item):
                            continue
                        if _apply_item(profile, event, item, undo):
                            written.append(item.profile)
                            if check is not None:
                                check(item.profile, read_path(profile, item.profile))
                    except MappingConflict as exc:
                        raise EventFailure(exc.reason, rule.definition.id,
                                           _describe(item, number)) from exc
        except EventFailure:
            for path, old in reversed(undo):
                _restore(profile, path, old)
            raise
        return written


def _holds(rule: _Compiled, documents: Mapping[str, Any]) -> bool:
    assert rule.accepts is not None
    try:
        return rule.accepts(documents)
    except (TqlError, TypeError, ValueError) as exc:
        raise EventFailure(f"condition failed: {exc}", rule.definition.id) from exc


def _collector_did(profile: Mapping[str, Any], event: Mapping[str, Any],
                   item: MappingItem) -> bool:
    """Whether the collector applied ``item`` at /track, or a later value it wrote to the
    field must stay: either way the daemon leaves the field alone."""
    return applied_by_collector(event, item) or newer_write(profile, event, item.profile)


def _apply_item(profile: dict[str, Any], event: Mapping[str, Any], item: MappingItem,
                undo: list[tuple[str, Any]]) -> bool:
    if item.event is None:
        value: Any = MISSING
    elif not item.event_ref:
        # a literal; a step of increment/decrement was checked to be a number on reading
        value = _number(item.event) if item.op in ("increment", "decrement") else item.event
    else:
        value = read_path(event, item.event)
        if item.op in _COPY_OPS and not is_copyable(value):
            return False  # missing, null, blank or empty: skipped, as Tracardi does
        if item.op in ("increment", "decrement") and (value is MISSING or value is None):
            return False  # no value in this event: nothing to count
    undo.append(_undo_point(profile, item.profile))
    return apply_op(profile, item.op, item.profile, value)  # unchanged if it raises


def _number(text: str) -> int | float:
    number = float(text)
    return int(number) if number.is_integer() and "." not in text else number


def _describe(item: MappingItem, number: int) -> dict[str, Any]:
    return {"number": number, "event": item.event, "op": item.op, "profile": item.profile}


def _undo_point(document: dict[str, Any], path: str) -> tuple[str, Any]:
    """What restores ``path``: the shortest prefix that does not exist yet (deleted on
    undo), or the value of the first prefix that is not an object, copied."""
    node = document
    keys = path.split(".")
    for depth, key in enumerate(keys):
        prefix = ".".join(keys[:depth + 1])
        if key not in node:
            return prefix, MISSING
        value = node[key]
        if depth == len(keys) - 1 or not isinstance(value, dict):
            return prefix, copy.deepcopy(value) if isinstance(value, list | dict) else value
        node = value
    return path, MISSING  # pragma: no cover - a path has at least one key


def _restore(document: dict[str, Any], path: str, old: Any) -> None:
    keys = path.split(".")
    node: Any = document
    for key in keys[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return
    if old is MISSING:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = old


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    node = document
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = copy.deepcopy(value)
