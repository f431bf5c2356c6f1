"""Which segments a profile belongs to now: every enabled ``segment`` definition's
condition evaluated in Python against the profile, with one clock per batch.

Only segments the definitions own are added or removed; any other value in a profile's
``segments`` (written by Tracardi's workflows, say) is left alone. A segment whose
``event_type`` list is not empty is re-evaluated only for changes caused by one of those
event types, as Tracardi does; a change of unknown cause re-evaluates every segment.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tracardi_daemon.model.definitions import Segment
from tracardi_daemon.roles.segmentation.changes import Decision, SegmentRef
from tracardi_daemon.tql import TqlError
from tracardi_daemon.tql.evaluate import Predicate
from tracardi_daemon.tql.values import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentRule:
    segment: Segment
    accepts: Predicate

    @property
    def ref(self) -> SegmentRef:
        return SegmentRef(self.segment.machine_name, self.segment.id)


class SegmentRules:
    """The enabled segments, compiled once per batch (``now()`` is read from ``clock``
    when they are built)."""

    def __init__(self, segments: Sequence[Segment], clock: Clock | None = None) -> None:
        self.rules: list[SegmentRule] = []
        for segment in sorted(segments, key=lambda s: s.id):
            if not segment.enabled:
                continue
            try:
                condition = segment.compiled
            except TqlError as exc:  # checked when applied; stored by another tool
                log.warning("segment %r skipped: its condition does not compile: %s",
                            segment.id, exc)
                continue
            self.rules.append(SegmentRule(segment, condition.predicate(clock)))

    def decide(self, profile: Mapping[str, Any],
               event_types: Collection[str] | None = None) -> Decision:
        current = set(profile.get("segments") or [])
        documents = {"profile": profile}
        add: list[SegmentRef] = []
        remove: list[SegmentRef] = []
        keep: list[SegmentRef] = []
        absent: list[SegmentRef] = []
        for rule in self.rules:
            wanted = rule.segment.event_type
            if event_types is not None and wanted and not set(wanted) & set(event_types):
                continue
            try:
                holds = rule.accepts(documents)
            except (TqlError, TypeError, ValueError) as exc:
                log.warning("segment %r not evaluated for profile %r: %s", rule.segment.id,
                            profile.get("id"), exc)
                continue
            present = rule.segment.machine_name in current
            {(True, False): add, (False, True): remove, (True, True): keep,
             (False, False): absent}[(bool(holds), present)].append(rule.ref)
        return Decision(tuple(add), tuple(remove), tuple(keep), tuple(absent))
