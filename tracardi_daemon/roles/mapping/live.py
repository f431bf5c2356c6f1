"""The mapping role's live tail: follows the event index (every partition, through the
alias) in ``(metadata.time.insert, id)`` order from a durable checkpoint, under a leader
lease so that one daemon of many does it.

Exactly once, also for events that become visible late: an event is applied by the
forward read (after the cursor) or, if it appeared behind the cursor within
``mapping.late_arrival_s`` of its insert time, by the look-back read; the ids applied
within that window are kept in a sorted set, so neither read applies one twice. Each
batch is recorded as an intent before its writes and committed after them, both fenced
by the lease: a batch interrupted by a crash is finished by the next leader under the
same batch id, which the profiles it already reached carry (see ``mapping_batch``).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.infra.lease import Lease
from tracardi_daemon.infra.redis import RedisClient, redis_errors, text
from tracardi_daemon.infra.scan import Hit, Scan
from tracardi_daemon.model.naming import alias_name
from tracardi_daemon.roles.mapping.batch import BatchApplier, BatchOutcome, load_events
from tracardi_daemon.roles.mapping.keys import live_applied_key, live_state_key
from tracardi_daemon.roles.mapping.rules import MappingRules

log = logging.getLogger(__name__)

LIVE_SORT = ({"metadata.time.insert": "asc"}, {"id": "asc"})
LIVE_STREAM = "live"
# applied ids are kept this much longer than the look-back needs: clock skew between
# the collector that stamped the insert time and this daemon
_APPLIED_MARGIN_MS = 60_000


@dataclass
class _State:
    epoch: str
    seq: int
    cursor: list[Any] | None  # sort values of the last event read forward
    intent: dict[str, Any] | None

    @classmethod
    def read(cls, raw: dict[str, str]) -> _State | None:
        if not raw.get("epoch"):
            return None
        return cls(raw["epoch"], int(raw.get("seq", "0")),
                   json.loads(raw["cursor"]) if raw.get("cursor") else None,
                   json.loads(raw["intent"]) if raw.get("intent") else None)


class LiveTail:
    """One leader's view of the tail; owned by one role thread."""

    def __init__(self, redis: RedisClient, settings: Settings, applier: BatchApplier, *,
                 rules: Callable[[], MappingRules], lease: Lease,
                 clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._settings = settings.mapping
        self._applier = applier
        self._rules = rules
        self._lease = lease
        self._clock = clock
        self._elastic = applier.elastic
        tenant = settings.tracardi.tenant
        self._state_key = live_state_key(tenant)
        self._applied_key = live_applied_key(tenant)
        self._alias = alias_name(settings.tracardi, "event")
        self._state: _State | None = None
        self._token: int | None = None
        self._forward: Scan | None = None
        self._forward_query: dict[str, Any] | None = None
        self._lookback: Scan | None = None
        self._next_lookback = 0.0
        self.lag_s: float | None = None

    def close(self) -> None:
        for scan in (self._forward, self._lookback):
            if scan is not None:
                scan.close()
        self._forward = self._lookback = None
        self._state = None

    def step(self) -> BatchOutcome | None:
        """One batch of work if this daemon leads the tail and there is any; None when
        idle (or not the leader)."""
        if not self._lease.ensure():
            self.close()
            return None
        if self._state is None or self._token != self._lease.token:
            self.close()
            self._state = self._load_state()
            self._token = self._lease.token
        state = self._state
        if state.intent is not None:
            return self._recover(state)
        rules = self._rules()
        if not rules.event_types:
            return None
        query = _query(rules, None)
        if self._lookback is not None:
            return self._lookback_batch(state, rules)
        outcome = self._forward_batch(state, rules, query)
        if outcome is None and self._clock() >= self._next_lookback:
            self._next_lookback = self._clock() + self._settings.recheck_every_s
            self._start_lookback(state, rules)
            return self._lookback_batch(state, rules) if self._lookback else None
        return outcome

    # ------------------------------------------------------------- state

    def _load_state(self) -> _State:
        with redis_errors(f"read {self._state_key}"):
            raw = {text(k): text(v) for k, v in self._redis.hgetall(self._state_key).items()}
        state = _State.read(raw)
        if state is not None:
            log.info("leading the live mapping tail from %s (batch %d)", state.cursor,
                     state.seq)
            return state
        start_ms = int(self._clock() * 1000)
        cursor = None if self._settings.live_start == "earliest" else [start_ms, ""]
        state = _State(uuid.uuid4().hex[:12], 0, cursor, None)
        self._write({"epoch": state.epoch, "seq": "0", "cursor": json.dumps(cursor)
                     if cursor else ""})
        log.info("live mapping tail starts %s", "at the earliest event" if cursor is None
                 else "now (the look-back covers the late-arrival window)")
        return state

    def _write(self, fields: dict[str, str], *extra: tuple[str, ...]) -> None:
        command = ("HSET", self._state_key, *[x for pair in fields.items() for x in pair])
        if not self._lease.fenced().execute([command, *extra]):
            self.close()
            raise LeaseLost("lost the live mapping lease; another daemon leads the tail")

    # ------------------------------------------------------------- reading

    def _forward_batch(self, state: _State, rules: MappingRules,
                       query: dict[str, Any]) -> BatchOutcome | None:
        if self._forward is None or query != self._forward_query:
            if self._forward is not None:
                self._forward.close()
            self._forward = Scan(self._elastic, self._alias, query=query, sort=LIVE_SORT,
                                 batch_size=self._settings.batch_size, after=state.cursor)
            self._forward_query = query
        hits = self._forward.next_batch()
        if len(hits) < self._settings.batch_size:
            # caught up: the next read opens a new point in time that sees newer events
            self._forward.close()
            self._forward = None
        if not hits:
            self.lag_s = 0.0
            return None
        outcome = self._run(state, rules, hits, cursor=hits[-1].sort)
        self.lag_s = max(0.0, self._clock() - hits[-1].sort[0] / 1000.0)
        return outcome

    def _start_lookback(self, state: _State, rules: MappingRules) -> None:
        if state.cursor is None or self._settings.late_arrival_s <= 0:
            return
        since_ms = int((self._clock() - self._settings.late_arrival_s) * 1000)
        query = _query(rules, (since_ms, state.cursor[0]))
        self._lookback = Scan(self._elastic, self._alias, query=query, sort=LIVE_SORT,
                              batch_size=self._settings.batch_size, source=False)

    def _lookback_batch(self, state: _State, rules: MappingRules) -> BatchOutcome | None:
        """Apply the next page of the look-back that holds events not applied yet; None
        once the look-back is done without finding any."""
        assert self._lookback is not None
        while hits := self._lookback.next_batch():
            missing = self._not_applied(hits)
            if missing:
                log.info("applying %d event(s) that became visible late", len(missing))
                return self._run(state, rules, load_events(self._elastic, missing),
                                 cursor=None)
        self._lookback.close()
        self._lookback = None
        return None

    def _not_applied(self, hits: Sequence[Hit]) -> list[Hit]:
        with redis_errors(f"read {self._applied_key}"):
            scores = self._redis.zmscore(self._applied_key, [hit.id for hit in hits])
        return [hit for hit, score in zip(hits, scores, strict=True) if score is None]

    # ------------------------------------------------------------- applying

    def _run(self, state: _State, rules: MappingRules, hits: Sequence[Hit],
             cursor: list[Any] | None) -> BatchOutcome:
        todo = self._not_applied(hits) if cursor is not None else list(hits)
        if not todo:
            self._commit(state, [], cursor)
            return BatchOutcome(events=0)
        state.seq += 1
        batch_id = f"{LIVE_STREAM}-{state.epoch}-{state.seq}"
        intent = {"batch": batch_id,
                  "events": [[hit.index, hit.id, _insert_ms(hit)] for hit in todo],
                  "cursor": cursor}
        self._write({"seq": str(state.seq), "intent": json.dumps(intent)})
        state.intent = intent
        outcome = self._applier.apply(todo, rules, batch_id)
        self._commit(state, todo, cursor)
        return outcome

    def _recover(self, state: _State) -> BatchOutcome:
        intent = state.intent
        assert intent is not None
        applied = [Hit(i, e, {}, [ms], None, None) for i, e, ms in intent["events"]]
        outcome = self._applier.apply(load_events(self._elastic, applied), self._rules(),
                                      str(intent["batch"]))
        self._commit(state, applied, intent.get("cursor"))
        # said once it is done: during an outage every retry would say it again
        log.warning("finished live mapping batch %s (%d events) left by a stopped leader",
                    intent["batch"], len(intent["events"]))
        return outcome

    def _commit(self, state: _State, applied: Sequence[Hit],
                cursor: list[Any] | None) -> None:
        extra: list[tuple[str, ...]] = [("HDEL", self._state_key, "intent")]
        if applied:
            members = [x for hit in applied for x in (str(_insert_ms(hit)), hit.id)]
            extra.append(("ZADD", self._applied_key, *members))
        forget_before = int((self._clock() - self._settings.late_arrival_s) * 1000) \
            - _APPLIED_MARGIN_MS
        extra.append(("ZREMRANGEBYSCORE", self._applied_key, "-inf", f"({forget_before}"))
        fields = {"seq": str(state.seq)}
        if cursor is not None:
            fields["cursor"] = json.dumps(cursor)
            state.cursor = cursor
        self._write(fields, *extra)
        state.intent = None


class LeaseLost(Exception):
    """This daemon no longer leads the duty; the step ends and another daemon goes on."""


def _insert_ms(hit: Hit) -> int:
    if hit.sort:
        return int(hit.sort[0])
    raise ValueError(f"event {hit.id!r} has no insert time to order it by")


def _query(rules: MappingRules, between_ms: tuple[int, int] | None) -> dict[str, Any]:
    # an event without an insert time would sort after every other one and carry the
    # cursor past all events to come: the tail leaves those to batch jobs
    filters: list[dict[str, Any]] = [{"terms": {"type": rules.event_types}},
                                     {"exists": {"field": "metadata.time.insert"}}]
    if between_ms is not None:
        filters.append({"range": {"metadata.time.insert": {
            "gte": between_ms[0], "lte": between_ms[1], "format": "epoch_millis"}}})
    return {"bool": {"filter": filters}}
