"""The durable record of each profile's segments, kept in Redis beside the
``segment-changes`` queue: what the daemon last announced a profile to be in. A
transition is announced only when it changes this record, never because the profile
document says otherwise: a segment another writer erased (Tracardi saving a copy it
read before the daemon's write) and the daemon put back is not a new entry, and a
segment Tracardi's collector added is one, announced once.

The record starts when the daemon first keeps it (``since``, in the state hash). A
profile inserted before then has no record until the daemon first changes or seeds it,
and until the leader's seed scan has read every profile (``seeded``) such a profile is
taken to be in the segments its document holds; once seeded, a profile without a
record is in none.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from tracardi_daemon.infra.elastic import elastic_errors
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queue_base import load_script, queue_key
from tracardi_daemon.infra.queues import SEGMENT_CHANGES_QUEUE
from tracardi_daemon.infra.redis import RedisClient, redis_errors, text
from tracardi_daemon.model.mapping_ops import read_path
from tracardi_daemon.model.stored_time import stored_time
from tracardi_daemon.roles.segmentation.keys import (
    intent_field,
    intent_key,
    members_key,
    members_state_key,
)

log = logging.getLogger(__name__)

SEED_BATCH = 1000
MARKER = "segmentation_token"  # inside metadata.aux: the batch that last wrote segments


@dataclass(frozen=True)
class Announcement:
    """One profile's candidate transitions for the record to filter."""

    profile_id: str
    transitions: list[dict[str, Any]]
    seed: list[str] | None  # the record's start when the profile has none (None: empty)
    token: str | None = None  # the intent this settles (a profile write), if any


@dataclass(frozen=True)
class MemberView:
    """What the record says of a batch of profiles, read before they are decided."""

    records: Mapping[str, frozenset[str] | None]
    since: float  # epoch seconds
    seeded: bool

    def held(self, profile_id: str, source: Mapping[str, Any]) -> tuple[frozenset[str],
                                                                      list[str] | None]:
        """The segments the profile is in by the record, and the seed to send with its
        announcement (the document's segments while it is adopted, else None)."""
        record = self.records.get(profile_id)
        if record is not None:
            return record, None
        if self.seeded or _inserted_at(source) >= self.since:
            return frozenset(), None
        adopted = sorted({str(s) for s in source.get("segments") or []})
        return frozenset(adopted), adopted


class Memberships:
    """Reads the record, announces through it, and seeds it."""

    def __init__(self, redis: RedisClient, tenant: str, queue: WorkQueue,
                 clock: Callable[[], float]) -> None:
        self._redis = redis
        self._queue = queue  # the segment-changes queue: its entries' format
        self._stream = queue_key(tenant, SEGMENT_CHANGES_QUEUE)
        self._key = members_key(tenant)
        self._state = members_state_key(tenant)
        self._intents = intent_key(tenant)
        self._clock = clock
        self._since: float | None = None
        self._seeded = False
        self._announce = load_script(redis, "member_announce.lua")
        self._seed = load_script(redis, "member_seed.lua")

    @property
    def seeded(self) -> bool:
        """Whether this daemon saw the seed scan end (it is read again until then)."""
        return self._seeded

    def view(self, ids: Sequence[str]) -> MemberView:
        with redis_errors(f"read segment memberships in {self._key}"):
            pipe = self._redis.pipeline(transaction=False)
            if self._since is None:
                pipe.hsetnx(self._state, "since", repr(self._clock()))
                pipe.hget(self._state, "since")
            if not self._seeded:
                pipe.hget(self._state, "seeded")
            if ids:
                pipe.hmget(self._key, list(ids))
            replies = list(pipe.execute())
        if self._since is None:
            self._since = float(text(replies[1]))
            replies = replies[2:]
        if not self._seeded:
            self._seeded = replies.pop(0) is not None
        raw = replies[0] if ids else []
        records = {pid: (frozenset(json.loads(text(value))) if value is not None else None)
                   for pid, value in zip(ids, raw, strict=True)}
        return MemberView(records, self._since, self._seeded)

    def announce(self, items: Iterable[Announcement]) -> tuple[int, int]:
        """Each item's transitions that change the record, onto the queue, and its
        intent (if any) deleted, in one script; returns (adds, removes) announced."""
        args: list[Any] = []
        for item in items:
            args += [item.profile_id,
                     intent_field(item.profile_id, item.token) if item.token else "",
                     json.dumps(item.seed) if item.seed is not None else "",
                     len(item.transitions)]
            for transition in item.transitions:
                fields = [part for pair in self._queue.entry_fields(transition).items()
                          for part in pair]
                args += [transition["segment"], transition["change"], len(fields), *fields]
        if not args:
            return 0, 0
        with redis_errors(f"announce segment changes on {self._stream}"):
            adds, removes = self._announce(keys=[self._stream, self._intents, self._key],
                                           args=args)
        return int(adds), int(removes)

    def seed_step(self, elastic: Any, alias: str) -> bool:
        """One batch of the seed scan over the profile index (leader only); True while
        there is more to read. Resumes from its cursor after a takeover."""
        with redis_errors(f"read {self._state}"):
            state = {text(k): text(v) for k, v in self._redis.hgetall(self._state).items()}
        if "seeded" in state:
            self._seeded = True
            return False
        cursor = json.loads(state["cursor"]) if "cursor" in state else None
        body: dict[str, Any] = {"query": {"exists": {"field": "segments"}},
                                "sort": [{"id": "asc"}], "size": SEED_BATCH,
                                "_source": ["segments", f"metadata.aux.{MARKER}"]}
        if cursor is not None:
            body["search_after"] = cursor
        with elastic_errors(f"seed segment memberships from {alias}"):
            hits = elastic.search(index=alias, body=body)["hits"]["hits"]
        args: list[str] = []
        for hit in hits:
            source = hit.get("_source") or {}
            aux = (source.get("metadata") or {}).get("aux") or {}
            token = aux.get(MARKER) if isinstance(aux, dict) else None
            segments = sorted({str(s) for s in source.get("segments") or []})
            args += [hit["_id"], json.dumps(segments),
                     intent_field(hit["_id"], token) if isinstance(token, str) else ""]
        with redis_errors(f"seed segment memberships in {self._key}"):
            if args:
                self._seed(keys=[self._key, self._intents], args=args)
            if len(hits) < SEED_BATCH:
                self._redis.hset(self._state, "seeded", repr(self._clock()))
                self._seeded = True
                log.info("segment memberships seeded from %s", alias)
                return False
            self._redis.hset(self._state, "cursor", json.dumps(hits[-1]["sort"]))
        return True

    def records(self, ids: Sequence[str]) -> dict[str, list[str] | None]:
        """The record of each profile (None: none kept), as the script left it."""
        with redis_errors(f"read {self._key}"):
            raw = cast(list[Any], self._redis.hmget(self._key, list(ids))) if ids else []
        return {pid: (json.loads(text(v)) if v is not None else None)
                for pid, v in zip(ids, raw, strict=True)}



def _inserted_at(source: Mapping[str, Any]) -> float:
    """The profile's ``metadata.time.insert`` in epoch seconds; 0 when unknown (so a
    profile of unknown age is taken as older than the record)."""
    inserted = stored_time(read_path(source, "metadata.time.insert"))
    return inserted.timestamp() if inserted is not None else 0.0
