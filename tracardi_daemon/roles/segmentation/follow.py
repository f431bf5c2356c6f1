"""Following the profiles Tracardi changes (its collector, its workflows, its API): the
profile index in ``(metadata.time.update, id)`` order from a durable checkpoint, under a
leader lease, each changed profile queued on ``profile-changed`` for re-evaluation.

Why the profile index and not the event tail: Tracardi stamps ``metadata.time.update``
when its mappings, workflows or API change a profile's data, with or without an event,
and its profile index refreshes every second (its event indices every 10 s).

Nothing is lost at the boundary: a batch is announced before the cursor moves past it
(a crash in between announces it again, and a re-evaluation is idempotent), ties in the
update time are ordered by id, and a save that becomes visible behind the cursor
(refresh, clock skew between writers) within ``segmentation.follow_late_arrival_s`` is
found by the look-back; the versions announced within that window are kept in a sorted
set so that none is announced twice.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.infra.lease import Lease
from tracardi_daemon.infra.redis import RedisClient, redis_errors, text
from tracardi_daemon.infra.scan import Hit, search_page
from tracardi_daemon.model.naming import alias_name
from tracardi_daemon.roles.segmentation.client import profile_changed
from tracardi_daemon.roles.segmentation.keys import follow_seen_key, follow_state_key

log = logging.getLogger(__name__)

FOLLOW_SORT = ({"metadata.time.update": "asc"}, {"id": "asc"})
FOLLOW_SOURCE = "tracardi"
# announced versions are kept this much longer than the look-back needs
_SEEN_MARGIN_MS = 60_000


@dataclass(frozen=True)
class _Lookback:
    """A look-back under way: its range query and the last page's end."""

    query: dict[str, Any]
    after: list[Any] | None


class FollowLeaseLost(Exception):
    """This daemon no longer leads the follower; another daemon goes on from the
    checkpoint."""


class ProfileFollower:
    """One leader's view of Tracardi's profile changes; owned by one role thread."""

    def __init__(self, redis: RedisClient, elastic: Elasticsearch, settings: Settings, *,
                 lease: Lease, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._elastic = elastic
        self._settings = settings.segmentation
        self._tenant = settings.tracardi.tenant
        self._lease = lease
        self._clock = clock
        self._state_key = follow_state_key(self._tenant)
        self._seen_key = follow_seen_key(self._tenant)
        self._alias = alias_name(settings.tracardi, "profile")
        self._cursor: list[Any] | None = None
        self._token: int | None = None
        self._lookback: _Lookback | None = None
        self._next_lookback = 0.0

    def close(self) -> None:
        self._lookback = None
        self._cursor = None
        self._token = None

    def release(self) -> None:
        """Hand the lead to another daemon (at shutdown)."""
        self._lease.release()

    def step(self) -> int | None:
        """Announce one batch of changed profiles; the number announced, or None when
        there was nothing to read (or this daemon does not lead the follower)."""
        if not self._lease.ensure():
            self.close()
            return None
        if self._cursor is None or self._token != self._lease.token:
            self.close()
            self._cursor = self._load_cursor()
            self._token = self._lease.token
        if self._lookback is not None:
            return self._lookback_batch()
        announced = self._forward_batch(self._cursor)
        if announced is None and self._clock() >= self._next_lookback:
            self._next_lookback = self._clock() + self._settings.follow_recheck_every_s
            self._start_lookback(self._cursor)
            return self._lookback_batch() if self._lookback is not None else None
        return announced

    def _load_cursor(self) -> list[Any]:
        with redis_errors(f"read {self._state_key}"):
            raw = self._redis.hget(self._state_key, "cursor")
        if raw is not None:
            cursor: list[Any] = json.loads(text(raw))
            log.info("following Tracardi's profile changes from %s", cursor)
            return cursor
        # a first start: from now, the look-back covers the late-arrival window before it
        cursor = [int(self._clock() * 1000), ""]
        self._write(("HSET", self._state_key, "cursor", json.dumps(cursor)))
        log.info("following Tracardi's profile changes from now")
        return cursor

    def _write(self, *commands: tuple[str, ...]) -> None:
        if not self._lease.fenced().execute(list(commands)):
            self.close()
            raise FollowLeaseLost("lost the segmentation-follow lease; another daemon "
                                  "follows Tracardi's profile changes")

    # ------------------------------------------------------------- reading

    def _forward_batch(self, cursor: list[Any]) -> int | None:
        # one plain search a step: an idle follower costs one request per poll
        hits = self._page(_query(None), cursor)
        if not hits:
            return None
        return self._announce(hits, cursor=list(hits[-1].sort))

    def _page(self, query: dict[str, Any], after: list[Any] | None) -> list[Hit]:
        return search_page(self._elastic, self._alias, query=query, sort=FOLLOW_SORT,
                           size=self._settings.batch_size, after=after)

    def _start_lookback(self, cursor: list[Any]) -> None:
        if self._settings.follow_late_arrival_s <= 0:
            return
        since_ms = int((self._clock() - self._settings.follow_late_arrival_s) * 1000)
        self._lookback = _Lookback(_query((since_ms, cursor[0])), None)

    def _lookback_batch(self) -> int | None:
        """Announce the next page of the look-back that holds versions not announced
        yet; None once the look-back is done without finding any."""
        assert self._lookback is not None
        while hits := self._page(self._lookback.query, self._lookback.after):
            self._lookback = _Lookback(self._lookback.query, list(hits[-1].sort))
            missing = self._not_seen(hits)
            if missing:
                log.info("re-evaluating %d profile(s) whose change became visible late",
                         len({hit.id for hit in missing}))
                return self._announce(missing, cursor=None)
        self._lookback = None
        return None

    def _not_seen(self, hits: Sequence[Hit]) -> list[Hit]:
        with redis_errors(f"read {self._seen_key}"):
            scores = self._redis.zmscore(self._seen_key, [_version(hit) for hit in hits])
        return [hit for hit, score in zip(hits, scores, strict=True) if score is None]

    # ------------------------------------------------------------- announcing

    def _announce(self, hits: Sequence[Hit], cursor: list[Any] | None) -> int:
        """Queue the profiles, then record them (and move the cursor): a crash between
        the two announces them again, never not at all."""
        profile_ids = sorted({hit.id for hit in hits})
        profile_changed(self._redis, self._tenant, profile_ids, source=FOLLOW_SOURCE)
        members = [x for hit in hits for x in (str(_update_ms(hit)), _version(hit))]
        forget_before = int((self._clock() - self._settings.follow_late_arrival_s) * 1000) \
            - _SEEN_MARGIN_MS
        commands: list[tuple[str, ...]] = [
            ("ZADD", self._seen_key, *members),
            ("ZREMRANGEBYSCORE", self._seen_key, "-inf", f"({forget_before}")]
        if cursor is not None:
            commands.append(("HSET", self._state_key, "cursor", json.dumps(cursor)))
        self._write(*commands)
        if cursor is not None:
            self._cursor = cursor
        return len(profile_ids)


def _update_ms(hit: Hit) -> int:
    if hit.sort:
        return int(hit.sort[0])
    raise ValueError(f"profile {hit.id!r} has no update time to order it by")


def _version(hit: Hit) -> str:
    # one save of one profile: the same profile saved again is a new version
    return f"{hit.id}@{_update_ms(hit)}"


def _query(between_ms: tuple[int, int] | None) -> dict[str, Any]:
    # a profile without an update time would sort after every other one and carry the
    # cursor past all saves to come
    filters: list[dict[str, Any]] = [{"exists": {"field": "metadata.time.update"}}]
    if between_ms is not None:
        filters.append({"range": {"metadata.time.update": {
            "gte": between_ms[0], "lte": between_ms[1], "format": "epoch_millis"}}})
    return {"bool": {"filter": filters}}
