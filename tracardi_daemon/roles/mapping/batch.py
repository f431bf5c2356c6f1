"""One batch of events applied to their profiles and to themselves, with each profile
written once, in its own partition, whatever number of its events the batch holds.

Exactly once: every written profile carries the id of the last batch of each stream
(the live tail, each job) that changed it, in ``metadata.aux.mapping_batches``. A batch
taken over after a crash is run again under the same id, and a profile that already
carries that id is not changed again; a writer that loses a race (409) reloads the
profile and sees the id too.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.infra.bulk import BulkAction, BulkWriter
from tracardi_daemon.infra.deadletters import add_dead_letter
from tracardi_daemon.infra.elastic import mget_documents
from tracardi_daemon.infra.queues import MAPPING_QUEUE
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.infra.scan import Hit
from tracardi_daemon.model.field_conflicts import IndexMappings
from tracardi_daemon.model.mapping_ops import MISSING, read_path
from tracardi_daemon.model.naming import alias_name
from tracardi_daemon.model.profiles import (
    LoadedProfile,
    ProfileStore,
    Rewrite,
    Saved,
    load_by_ids,
)
from tracardi_daemon.roles.mapping.refusals import (
    MAX_REFUSED_ROUNDS,
    RefusedProfiles,
    refusal_reason,
)
from tracardi_daemon.roles.mapping.rules import EventFailure, MappingRules

log = logging.getLogger(__name__)

MARKER_FIELD = "mapping_batches"  # inside metadata.aux
MAX_MARKERS = 8  # streams remembered per profile: the live tail and recent jobs
SAMPLE_SIZE = 10  # changes a dry run shows


@dataclass
class BatchOutcome:
    events: int = 0  # read
    applied: int = 0  # applied to a profile or to the event itself
    skipped: int = 0  # nothing to apply (no definition, no profile, no value)
    failed: int = 0  # dead-lettered
    profiles_written: int = 0
    events_updated: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)  # dry run only


@dataclass
class _ProfileResult:
    fields: dict[str, str] = field(default_factory=dict)  # path -> event id
    already: bool = False  # this batch had already been written to it


@dataclass
class _Event:
    hit: Hit
    source: dict[str, Any]

    @property
    def profile_id(self) -> str | None:
        profile = self.source.get("profile")
        value = profile.get("id") if isinstance(profile, Mapping) else None
        return value if isinstance(value, str) and value else None

    @property
    def order(self) -> tuple[str, str, str]:
        time = self.source.get("metadata", {}).get("time", {})
        insert = str(time.get("insert") or "")
        return str(time.get("create") or insert), insert, self.hit.id


@dataclass
class _Run:
    """One batch being applied: what every step of it reads and adds to."""

    rules: MappingRules
    batch_id: str
    now: str  # ISO time written to metadata.time.update and metadata.fields
    by_profile: dict[str, list[_Event]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[tuple[_Event, EventFailure]] = field(default_factory=list)
    outcome: BatchOutcome = field(default_factory=BatchOutcome)


class BatchApplier:
    """Applies batches for one stream of batches (``stream``: "live" or a job's id)."""

    def __init__(self, elastic: Elasticsearch, redis: RedisClient, settings: Settings, *,
                 writer: BulkWriter, profiles: ProfileStore, stream: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._elastic = elastic
        self._redis = redis
        self._settings = settings
        self._writer = writer
        self._profiles = profiles
        self._stream = stream
        self._clock = clock
        self._session_alias = alias_name(settings.tracardi, "session")

    @property
    def elastic(self) -> Elasticsearch:
        return self._elastic

    def apply(self, hits: Sequence[Hit], rules: MappingRules, batch_id: str, *,
              dry_run: bool = False) -> BatchOutcome:
        run = _Run(rules, batch_id, self._clock().isoformat(),
                   outcome=BatchOutcome(events=len(hits)))
        # the hits are this batch's own: applying an event type changes them in place
        events = [_Event(hit, hit.source) for hit in hits]
        updates = self._event_updates(events, run)
        failed_early = {event.hit.id for event, _ in run.failures}
        for event in events:
            if event.profile_id and rules.applies_to_profile(event.source) \
                    and event.hit.id not in failed_early:
                run.by_profile.setdefault(event.profile_id, []).append(event)
        for group in run.by_profile.values():
            group.sort(key=lambda e: e.order)
        run.sessions = self._sessions(events, rules)
        if dry_run:
            self._dry_run(run)
        else:
            if updates:
                self._write_event_updates(updates, run, events)
            self._dead_letter(run.failures)  # so far only failures of the events' own part
            self._write_profiles(run)
        failed_ids = {event.hit.id for event, _ in run.failures}
        relevant = set(updates) | {e.hit.id for group in run.by_profile.values() for e in group}
        outcome = run.outcome
        outcome.failed = len(failed_ids)
        outcome.applied = len(relevant - failed_ids)
        outcome.skipped = outcome.events - outcome.applied - outcome.failed
        outcome.events_updated = len(set(updates) - failed_ids)
        return outcome

    # ------------------------------------------------------------------ events

    def _event_updates(self, events: list[_Event], run: _Run) -> dict[str, BulkAction]:
        updates: dict[str, BulkAction] = {}
        for event in events:
            try:
                partial = run.rules.event_update(event.source)
            except EventFailure as failure:
                run.failures.append((event, failure))
                continue
            if partial:
                updates[event.hit.id] = BulkAction("update", event.hit.index, event.hit.id,
                                                   partial, key=event.hit.id)
        return updates

    def _write_event_updates(self, updates: dict[str, BulkAction], run: _Run,
                             events: list[_Event]) -> None:
        by_id = {event.hit.id: event for event in events}
        mappings = IndexMappings(self._elastic)  # read only if a write is refused
        for item in self._writer.write(list(updates.values())):
            if not item.ok:
                why = item.error if item.refused_field is None else refusal_reason(
                    mappings, item.action.index, item.refused_field, item.action.document,
                    item.error)
                # its profile mappings still apply: they do not read what failed here
                run.failures.append((by_id[item.action.id], EventFailure(
                    f"traits not written to the event: {why}")))

    def _sessions(self, events: list[_Event], rules: MappingRules) -> dict[str, dict[str, Any]]:
        ids = {str(e.source.get("session", {}).get("id")) for e in events
               if rules.needs_session(e.source) and e.source.get("session", {}).get("id")}
        loaded = load_by_ids(self._elastic, self._session_alias, ids)
        return {session_id: doc.source for session_id, doc in loaded.items()}

    # ---------------------------------------------------------------- profiles

    @staticmethod
    def _change(profile: dict[str, Any], events: list[_Event], run: _Run,
                failures: list[tuple[_Event, EventFailure]],
                check: Callable[[str, Any], None] | None = None) -> _ProfileResult:
        result = _ProfileResult()
        now = run.now
        for event in events:
            session = run.sessions.get(str(event.source.get("session", {}).get("id")))
            try:
                written = run.rules.apply_event(profile, event.source, session, check)
            except EventFailure as failure:
                failures.append((event, failure))
                continue
            for path in written:
                result.fields[path] = event.hit.id
        if result.fields:
            metadata = profile.setdefault("metadata", {})
            metadata.setdefault("time", {})["update"] = now
            recorded = metadata.setdefault("fields", {})
            for path, event_id in result.fields.items():
                recorded[path] = [now, event_id]
        return result

    def _write_profiles(self, run: _Run) -> None:
        by_profile, batch_id = run.by_profile, run.batch_id
        round_failures: list[tuple[_Event, EventFailure]] = []
        recorded: set[str] = set()  # events dead-lettered: once each, whatever the rounds
        refused = RefusedProfiles(self._elastic)

        def change(loaded: LoadedProfile) -> Rewrite[_ProfileResult]:
            profile = loaded.source  # freshly loaded for this round: changed in place
            aux = profile.setdefault("metadata", {}).setdefault("aux", {})
            markers = aux.get(MARKER_FIELD) if isinstance(aux, dict) else None
            if isinstance(markers, dict) and markers.get(self._stream) == batch_id:
                return Rewrite(None, _ProfileResult(already=True))
            result = self._change(profile, by_profile[loaded.id], run, round_failures,
                                  refused.check(loaded.id))
            if not result.fields:
                return Rewrite(None, result)
            _mark(profile, self._stream, batch_id)
            return Rewrite(profile, result)

        def before_write() -> None:
            # dead letters go out before the profiles they belong to are written: a
            # crash in between repeats a dead letter rather than losing one
            fresh = list({e.hit.id: (e, f) for e, f in round_failures
                          if e.hit.id not in recorded}.values())
            self._dead_letter(fresh)
            recorded.update(e.hit.id for e, _ in fresh)
            run.failures.extend(fresh)
            round_failures.clear()

        saved = self._save_profiles(list(by_profile), change, before_write, refused)
        changed = self._settle(saved, run, recorded, refused)
        self._profiles.settle((c["profile_id"], c["index"]) for c in changed)
        self._profiles.announce_changed(changed, source="mapping")

    def _settle(self, saved: list[Saved[_ProfileResult]], run: _Run, recorded: set[str],
                refused: RefusedProfiles) -> list[dict[str, Any]]:
        """Dead-letter the events of profiles not written (but for those dead-lettered
        already); returns the changes to announce."""
        changed: list[dict[str, Any]] = []
        late_failures: list[tuple[_Event, EventFailure]] = []
        for entry in saved:
            group = run.by_profile[entry.profile_id]
            events = [e for e in group if e.hit.id not in recorded]
            if entry.status == "missing":
                late_failures += [(e, EventFailure(f"profile {entry.profile_id!r} not found"))
                                  for e in events]
            elif entry.status == "failed":
                refusal = refused.reason(entry.profile_id) if entry.refused_field else None
                why = refusal or entry.error
                late_failures += [(e, EventFailure(f"profile not written: {why}"))
                                  for e in events]
            elif entry.status == "written" or (entry.result and entry.result.already):
                run.outcome.profiles_written += entry.status == "written"
                fields = sorted(entry.result.fields) if entry.result else []
                # segmentation re-evaluates the segments of these event types only
                types = sorted({str(e.source.get("type")) for e in group})
                changed.append({"profile_id": entry.profile_id, "index": entry.index,
                                "fields": fields, "event_types": types})
        self._dead_letter(late_failures)
        run.failures.extend(late_failures)
        return changed

    def _save_profiles(self, ids: list[str],
                       change: Callable[[LoadedProfile], Rewrite[_ProfileResult]],
                       before_write: Callable[[], None],
                       refused: RefusedProfiles) -> list[Saved[_ProfileResult]]:
        """Write the profiles; those refused for their mapping are written again, each
        round without the events whose values the index refuses (see mapping_refusals)."""
        attempts = self._settings.mapping.max_conflict_retries + 1
        latest = self._profiles.update_many(ids, change, attempts, before_write=before_write)
        saved: dict[str, Saved[_ProfileResult]] = {}
        for _ in range(MAX_REFUSED_ROUNDS):
            saved.update((entry.profile_id, entry) for entry in latest)
            again = [entry.profile_id for entry in latest if refused.record(entry)]
            if not again:
                break
            log.info("%d profile(s) refused for their index mapping; writing them again "
                     "without the events whose values conflict", len(again))
            latest = self._profiles.update_many(again, change, attempts,
                                                before_write=before_write)
        else:
            saved.update((entry.profile_id, entry) for entry in latest)
        return list(saved.values())

    def _dry_run(self, run: _Run) -> None:
        loaded = self._profiles.load_many(run.by_profile)
        outcome = run.outcome
        for profile_id, events in run.by_profile.items():
            stored = loaded.get(profile_id)
            if stored is None:
                run.failures += [(e, EventFailure(f"profile {profile_id!r} not found"))
                             for e in events]
                continue
            profile = copy.deepcopy(stored.source)
            result = self._change(profile, events, run, run.failures)
            if result.fields and len(outcome.samples) < SAMPLE_SIZE:
                outcome.samples.append({
                    "profile_id": profile_id, "index": stored.location.index,
                    "changes": {path: {"before": _read(stored.source, path),
                                       "after": _read(profile, path)}
                                for path in sorted(result.fields)}})

    def _dead_letter(self, failures: Sequence[tuple[_Event, EventFailure]]) -> None:
        tenant = self._settings.tracardi.tenant
        for event, failure in failures:
            payload = {"event_id": event.hit.id, "event_index": event.hit.index,
                       "event_type": event.source.get("type"),
                       "profile_id": event.profile_id, "definition_id": failure.definition_id,
                       "item": failure.item, "stream": self._stream}
            add_dead_letter(self._redis, tenant, MAPPING_QUEUE, payload=payload,
                            reason=failure.reason, attempts=1,
                            extra={"event_id": event.hit.id,
                                   "definition_id": failure.definition_id or "",
                                   "item": json.dumps(failure.item) if failure.item else ""})


def load_events(client: Elasticsearch, refs: Sequence[Hit]) -> list[Hit]:
    """``refs`` (index and id, sort values kept) with their sources, read in real time;
    events deleted meanwhile are left out."""
    docs = mget_documents(client, [{"_index": ref.index, "_id": ref.id} for ref in refs],
                          "load events")
    return [Hit(ref.index, ref.id, doc["_source"], ref.sort, None, None)
            for ref, doc in zip(refs, docs, strict=True) if doc.get("found")]


def _mark(profile: dict[str, Any], stream: str, batch_id: str) -> None:
    aux = profile["metadata"]["aux"]
    markers = aux.get(MARKER_FIELD) if isinstance(aux.get(MARKER_FIELD), dict) else {}
    markers.pop(stream, None)
    markers[stream] = batch_id  # newest last; the oldest streams are forgotten
    aux[MARKER_FIELD] = dict(list(markers.items())[-MAX_MARKERS:])


def _read(document: Mapping[str, Any], path: str) -> Any:
    value = read_path(document, path)
    return None if value is MISSING else value
