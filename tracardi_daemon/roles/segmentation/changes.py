"""Profiles' segments written, and the transitions that made them announced exactly
once on the ``segment-changes`` queue, also when the writer dies in between.

A transition is what changes the durable record of the profile's segments (``members``),
not what changes its document: a segment another writer erased and the daemon puts back
is written again and announced never; one Tracardi added is recorded and announced once.

Before the profiles of a batch are written, each one's candidate transitions are
recorded as an intent (a hash in the queue's own hash tag) under the batch's token, and
the token goes into the profile (``metadata.aux.segmentation_token``) with the new
segments, in the same write. After the write, the profiles are made visible to searches
and dropped from Tracardi's cache; then one script filters the transitions against the
record, adds them to the queue, moves the record and deletes the intent. An intent left
behind by a writer that died is settled by the leader's sweep once it is older than
``segmentation.intent_stale_s``: if the profile carries its token the write happened and
the transitions go out, otherwise it is dropped. Change ids are stable
(``token:profile:segment:change``), so a transition announced twice is still one change
to the trigger role.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.infra.queues import SEGMENT_CHANGES_QUEUE, work_queue
from tracardi_daemon.infra.redis import RedisClient, redis_errors, text
from tracardi_daemon.model.profiles import LoadedProfile, ProfileStore, Rewrite
from tracardi_daemon.roles.segmentation.keys import intent_field, intent_key
from tracardi_daemon.roles.segmentation.members import MARKER, Announcement, Memberships

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentRef:
    machine_name: str  # the value in profile.segments
    segment_id: str | None  # the definition it comes from


@dataclass(frozen=True)
class Decision:
    """What the profile's document needs (``add``, ``remove``) and, for the record, the
    segments decided that need no write: held and present (``keep``), not held and
    absent (``absent``)."""

    add: tuple[SegmentRef, ...] = ()
    remove: tuple[SegmentRef, ...] = ()
    keep: tuple[SegmentRef, ...] = ()
    absent: tuple[SegmentRef, ...] = ()


@dataclass
class ChangeOutcome:
    profiles: int = 0  # looked at
    written: int = 0
    added: int = 0
    removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (profile id, reason)
    samples: list[dict[str, Any]] = field(default_factory=list)  # dry run


@dataclass(frozen=True)
class Proposal:
    """A profile's candidate transitions (against the record read before the batch) and
    the record's seed, for ``Memberships.announce``."""

    transitions: list[dict[str, Any]]
    seed: list[str] | None


class SegmentChanges:
    """Applies segment decisions to profiles; shared by the incremental path and the
    passes of one role thread."""

    def __init__(self, redis: RedisClient, settings: Settings, profiles: ProfileStore,
                 clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._profiles = profiles
        self._max_attempts = settings.segmentation.max_conflict_retries + 1
        self._stale_s = settings.segmentation.intent_stale_s
        self._clock = clock
        tenant = settings.tracardi.tenant
        self._queue = work_queue(redis, tenant, SEGMENT_CHANGES_QUEUE, settings)
        self._intent_key = intent_key(tenant)
        self.members = Memberships(redis, tenant, self._queue, clock)

    def apply(self, ids: Iterable[str], decide: Callable[[LoadedProfile], Decision],
              cause: str, *, preloaded: Mapping[str, LoadedProfile] | None = None,
              dry_run: bool = False, sample_size: int = 10) -> ChangeOutcome:
        """Decide and write every profile of ``ids``; announce what changed the record."""
        token = uuid.uuid4().hex
        now = datetime.fromtimestamp(self._clock(), UTC).isoformat()
        wanted = list(ids)
        view = self.members.view(wanted)
        outcome = ChangeOutcome(profiles=len(wanted))
        intents: dict[str, str] = {}

        def change(loaded: LoadedProfile) -> Rewrite[Proposal]:
            decision = decide(loaded)
            held, seed = view.held(loaded.id, loaded.source)
            proposal = Proposal(_candidates(decision, held, token, loaded.id,
                                             now=now, cause=cause), seed)
            if not decision.add and not decision.remove:
                return Rewrite(None, proposal)  # the document stays; the record may move
            current = list(loaded.source.get("segments") or [])
            dropped = {ref.machine_name for ref in decision.remove}
            segments = [name for name in current if name not in dropped]
            segments += [ref.machine_name for ref in decision.add
                         if ref.machine_name not in segments]
            if dry_run:
                if len(outcome.samples) < sample_size:
                    outcome.samples.append({"profile_id": loaded.id, "before": current,
                                            "after": segments})
                return Rewrite(None, proposal)
            intents[intent_field(loaded.id, token)] = json.dumps(
                {"at": self._clock(), "profile_id": loaded.id, "token": token,
                 "transitions": proposal.transitions, "seed": seed})
            document = {"segments": segments, "metadata": {
                "time": {"segmentation": now}, "aux": {MARKER: token}}}
            return Rewrite(document, proposal, partial=True)

        def record_intents() -> None:
            if intents:
                with redis_errors(f"record segment changes in {self._intent_key}"):
                    self._redis.hset(self._intent_key, mapping=cast(Any, dict(intents)))
                intents.clear()

        saved = self._profiles.update_many(wanted, change, self._max_attempts,
                                           before_write=record_intents, preloaded=preloaded)
        written = [entry for entry in saved if entry.status == "written"]
        outcome.failed = [(e.profile_id, e.error or "not written") for e in saved
                          if e.status == "failed"]
        outcome.written = len(written)
        if dry_run:
            for entry in saved:
                for item in entry.result.transitions if entry.result else []:
                    outcome.added += item["change"] == "add"
                    outcome.removed += item["change"] == "remove"
            return outcome
        # visible to Tracardi's searches and out of its cache before anyone is told
        self._profiles.settle((e.profile_id, e.index) for e in written)
        items = [Announcement(e.profile_id, e.result.transitions, e.result.seed, token)
                 for e in written if e.result is not None]
        items += [Announcement(e.profile_id, e.result.transitions, e.result.seed)
                  for e in saved if e.status == "unchanged" and e.result is not None
                  and e.result.transitions]
        outcome.added, outcome.removed = self.members.announce(items)
        self._forget_unwritten(token, [e.profile_id for e in saved
                                       if e.status not in ("written", "unchanged")
                                       and e.result is not None])
        return outcome

    def _forget_unwritten(self, token: str, profile_ids: Sequence[str]) -> None:
        if profile_ids:
            with redis_errors(f"drop segment change intents in {self._intent_key}"):
                self._redis.hdel(self._intent_key,
                                 *[intent_field(p, token) for p in profile_ids])

    def sweep(self, older_than_s: float | None = None) -> int:
        """Settle the intents of writers that died; returns the transitions announced.
        Run by one daemon at a time (the pass scheduler's leader)."""
        with redis_errors(f"read {self._intent_key}"):
            raw = {text(k): text(v) for k, v in self._redis.hgetall(self._intent_key).items()}
        cutoff = self._clock() - (self._stale_s if older_than_s is None else older_than_s)
        intents = {key: json.loads(value) for key, value in raw.items()}
        stale = {key: intent for key, intent in intents.items()
                 if intent.get("at", 0) < cutoff}
        if not stale:
            return 0
        loaded = self._profiles.load_many({intent["profile_id"] for intent in stale.values()})
        announce: list[Announcement] = []
        drop: list[str] = []
        for key, intent in stale.items():
            profile = loaded.get(intent["profile_id"])
            aux = ((profile.source.get("metadata") or {}).get("aux") or {}) if profile else {}
            if isinstance(aux, dict) and aux.get(MARKER) == intent["token"]:
                announce.append(Announcement(intent["profile_id"], intent["transitions"],
                                             intent.get("seed"), intent["token"]))
            else:
                drop.append(key)
        if announce:
            self._profiles.settle((a.profile_id, None) for a in announce)
        count = sum(self.members.announce(announce))
        if drop:
            with redis_errors(f"drop segment change intents in {self._intent_key}"):
                self._redis.hdel(self._intent_key, *drop)
        if count:
            log.warning("announced %d segment change(s) left by a writer that stopped", count)
        return count


def _candidates(decision: Decision, held: frozenset[str], token: str, profile_id: str, *,
                now: str, cause: str) -> list[dict[str, Any]]:
    """The transitions that would change the record read before the batch: an add the
    record already holds is a segment put back, not an entry (the script checks again
    against the record as it is when it runs)."""
    adds = [ref for ref in (*decision.add, *decision.keep) if ref.machine_name not in held]
    removes = [ref for ref in (*decision.remove, *decision.absent) if ref.machine_name in held]
    return [_transition(token, profile_id, ref, kind, at=now, cause=cause)
            for kind, refs in (("add", adds), ("remove", removes)) for ref in refs]


def _transition(token: str, profile_id: str, ref: SegmentRef, change: str, *, at: str,
                cause: str) -> dict[str, Any]:
    return {"id": f"{token}:{profile_id}:{ref.machine_name}:{change}",
            "profile_id": profile_id, "segment": ref.machine_name,
            "segment_id": ref.segment_id, "change": change, "at": at, "cause": cause}
