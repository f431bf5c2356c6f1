"""The ``trigger`` role: reads segment transitions from the ``segment-changes`` queue and
starts the workflows of the matching workflow-triggers by handing one delivery per
trigger and transition to the dispatch queue, whose senders (the ``dispatch`` role)
deliver it.

Each delivery is added with ``enqueue_once`` under a key derived from the trigger and
the change, and the change is acked only after its deliveries are queued: a change
redelivered after a crash or a takeover starts no workflow twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.delivery import delivery
from tracardi_daemon.infra.dispatch_targets import TargetKind
from tracardi_daemon.infra.queue import Message
from tracardi_daemon.infra.queues import DISPATCH_QUEUE, SEGMENT_CHANGES_QUEUE, work_queue
from tracardi_daemon.model.definition_store import DefinitionCache, DefinitionStore
from tracardi_daemon.model.definitions import TRIGGER_EVENT_TYPES, WorkflowTrigger, machine_name
from tracardi_daemon.roles.base import BaseRole, RoleContext

# how long a delivery's key is remembered: a change redelivered later than this (a dead
# letter requeued after a week) starts its workflows again
ONCE_TTL_S = 7 * 86400.0
# how long a consume waits for changes; bounds how soon a stop is noticed
POLL_S = 0.5
# how often the queue's lag is measured for health
STATS_EVERY_S = 5.0
# the trigger type that a change fires
TRIGGER_TYPE_OF_CHANGE = {"add": "segment-add", "remove": "segment-remove"}


@dataclass(frozen=True)
class SegmentChange:
    """One message of the ``segment-changes`` queue: a profile entered or left a segment."""

    id: str  # stable across redeliveries: part of every delivery's key
    profile_id: str
    segment: str  # the segment's machine name, as in profile.segments
    segment_id: str | None
    change: str  # add or remove
    at: str  # ISO 8601, as the producer wrote it
    cause: str

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> SegmentChange:
        """InvalidInput names the first field that is wrong."""
        change = payload.get("change")
        if change not in TRIGGER_TYPE_OF_CHANGE:
            raise InvalidInput(f"field 'change' must be add or remove, got {change!r}")
        at = _required(payload, "at")
        try:
            datetime.fromisoformat(at)
        except ValueError:
            raise InvalidInput(f"field 'at' must be an ISO 8601 time, got {at!r}") from None
        segment_id = payload.get("segment_id")
        if segment_id is not None and not (isinstance(segment_id, str) and segment_id):
            raise InvalidInput(f"field 'segment_id' must be a non-empty string or null, "
                               f"got {segment_id!r}")
        cause = payload.get("cause", "")
        if not isinstance(cause, str):
            raise InvalidInput(f"field 'cause' must be a string, got {cause!r}")
        return cls(id=_required(payload, "id"), profile_id=_required(payload, "profile_id"),
                   segment=_required(payload, "segment"), segment_id=segment_id,
                   change=str(change), at=at, cause=cause)


def _required(payload: dict[str, Any], field: str) -> str:
    value = payload.get(field)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"field '{field}' must be a non-empty string, got {value!r}")
    return value


def matches(trigger: WorkflowTrigger, change: SegmentChange) -> bool:
    """An enabled trigger of the change's type on the change's segment, named by its
    definition id or by its machine name (a Tracardi rule's ``segment.id`` is the
    machine name, its ``segment.name`` a label)."""
    if not trigger.enabled or trigger.type != TRIGGER_TYPE_OF_CHANGE[change.change]:
        return False
    if change.segment_id is not None and trigger.segment.id == change.segment_id:
        return True
    return change.segment in (trigger.segment.id, machine_name(trigger.segment.name))


def delivery_key(trigger: WorkflowTrigger, change: SegmentChange) -> str:
    """The idempotency key of a trigger's delivery for one change: the same on every
    redelivery of the change, different for every other change."""
    parts = (trigger.id, change.profile_id, change.segment, change.change, change.id)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def trigger_payload(trigger: WorkflowTrigger, change: SegmentChange,
                    target: str) -> dict[str, Any]:
    """What is sent to ``target``: a Tracardi /track body for a tracker, the flow and
    profile to run it for for a flow target, else a JSON description of the trigger and
    the change."""
    segment = {"id": trigger.segment.id, "name": trigger.segment.name,
               "machine_name": change.segment}
    workflow = {"id": trigger.workflow.id, "name": trigger.workflow.name}
    if _kind(target) == TargetKind.FLOW:
        # the event the flow sees; Tracardi stores it under its internal source
        return {"flow_id": trigger.workflow.id, "profile_id": change.profile_id,
                "event_type": trigger.event_type or TRIGGER_EVENT_TYPES[trigger.type],
                "properties": {"segment": segment, "trigger": {"id": trigger.id},
                               "change": {"id": change.id, "at": change.at}}}
    if _kind(target) == TargetKind.TRACKER:
        # no session: Tracardi makes a temporary one for the workflow and does not save it
        return {"source": {"id": trigger.source_id}, "profile": {"id": change.profile_id},
                "events": [{"type": trigger.event_type or TRIGGER_EVENT_TYPES[trigger.type],
                            "properties": {"segment": segment, "workflow": workflow,
                                           "trigger": {"id": trigger.id},
                                           "change": {"id": change.id, "at": change.at}}}]}
    return {"trigger": {"id": trigger.id, "name": trigger.name}, "workflow": workflow,
            "segment": segment, "profile": {"id": change.profile_id},
            "change": {"id": change.id, "type": change.change, "at": change.at,
                       "cause": change.cause}}


def _kind(target: str) -> str:
    # a target that does not parse gets the plain JSON body; the dispatcher then
    # dead-letters the delivery with the reason
    return target.partition(":")[0].strip().lower()


class TriggerRole(BaseRole):
    """One trigger thread; several threads or daemons share the queue."""

    def _open(self, ctx: RoleContext) -> None:
        settings = ctx.settings
        queue = settings.queue
        self._changes = work_queue(ctx.redis, ctx.settings.tracardi.tenant, SEGMENT_CHANGES_QUEUE,
                                   ctx.settings)
        self._deliveries = work_queue(ctx.redis, ctx.settings.tracardi.tenant, DISPATCH_QUEUE,
                                      ctx.settings)
        self._triggers = DefinitionCache(DefinitionStore(ctx.elastic, settings),
                                         WorkflowTrigger, settings.definitions.refresh_s)
        self._consumer = ctx.consumer_name or ctx.name
        self._batch = max(1, queue.batch_size)
        self._poll_ms = int(min(POLL_S, queue.poll_interval_s) * 1000)
        self._next_stats = 0.0

    def step(self, now: float) -> bool:
        # read before consuming: a first load that fails holds no change
        triggers = self._triggers.get_all()
        messages = self._changes.consume(self._consumer, count=self._batch,
                                         block_ms=self._poll_ms)
        if messages:
            self._handle(messages, triggers)
        if now >= self._next_stats:
            stats = self._changes.stats()
            self.ctx.counters.queue_lag = stats.lag + stats.retrying
            self._next_stats = now + STATS_EVERY_S
        return bool(messages)

    # nothing to hand back: a step acks every change it took before it returns

    def _handle(self, messages: list[Message], triggers: list[WorkflowTrigger]) -> None:
        handled: list[str] = []
        items: list[tuple[dict[str, Any], str]] = []
        failed = 0
        for message in messages:
            try:
                change = SegmentChange.from_payload(message.payload)
            except InvalidInput as exc:
                if self._changes.dead_letter(message, f"invalid segment change: {exc}"):
                    failed += 1
                continue
            items += [self._delivery(trigger, change) for trigger in triggers
                      if matches(trigger, change)]
            handled.append(message.id)
        if items:
            added = self._deliveries.enqueue_once_many(items, ONCE_TTL_S)
            self.ctx.logger.debug("%d change(s) started %d workflow(s) (%d already started)",
                                  len(handled), sum(added), len(added) - sum(added))
        self._changes.ack(handled)  # after the deliveries are queued: at least once
        self.ctx.counters.add(processed=len(handled), failed=failed)

    @staticmethod
    def _delivery(trigger: WorkflowTrigger, change: SegmentChange) -> tuple[dict[str, Any], str]:
        target = trigger.dispatch_target()
        key = delivery_key(trigger, change)
        message = delivery(target, key, trigger_payload(trigger, change, target),
                           origin=f"trigger:{trigger.id}")
        return message, key


def trigger_factory() -> TriggerRole:
    """The ``trigger`` role's factory for the registry."""
    return TriggerRole()
