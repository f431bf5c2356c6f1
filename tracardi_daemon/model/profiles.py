"""Profiles as the Elasticsearch-bound roles change them (DESIGN §10): loaded by id through
the alias in real time, each remembering the partition it lives in; written back there
through the bulk writer with optimistic concurrency, reloaded and re-changed when another
writer was faster; Tracardi's cache entry deleted; the change announced to segmentation.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.infra.bulk import BulkAction, BulkWriter
from tracardi_daemon.infra.elastic import elastic_errors, mget_documents
from tracardi_daemon.infra.queues import PROFILE_CHANGED_QUEUE, work_queue
from tracardi_daemon.infra.redis import RedisClient, redis_errors
from tracardi_daemon.model.indices import Location, alias_members
from tracardi_daemon.model.mapping_fit import MappingFit
from tracardi_daemon.model.naming import alias_name
from tracardi_daemon.model.tracardi_names import partition_order

# one multi-get carries at most this many (index, id) pairs
_MGET_CHUNK = 5000

T = TypeVar("T")


@dataclass(frozen=True)
class LoadedProfile:
    id: str
    location: Location  # the partition it lives in, and the numbers a write must match
    source: dict[str, Any]


@dataclass(frozen=True)
class Rewrite(Generic[T]):
    """What a change made of one profile: the new document (None: leave it) and what
    the caller wants back (e.g. which fields changed, which events failed)."""

    document: dict[str, Any] | None
    result: T
    # True: ``document`` holds only the fields to change (an update merged into the
    # stored profile), not the whole profile
    partial: bool = False


@dataclass(frozen=True)
class Saved(Generic[T]):
    profile_id: str
    status: Literal["written", "unchanged", "missing", "failed"]
    index: str | None  # where the profile lives
    result: T | None  # from the change that was written (or found nothing to do)
    error: str | None = None
    # "failed" because the index's mapping refuses this field's value (see infra.bulk)
    refused_field: str | None = None


def load_by_ids(client: Elasticsearch, alias: str,
                ids: Iterable[str]) -> dict[str, LoadedProfile]:
    """The documents that exist among ``ids`` in the indices of ``alias``, read in real
    time (a multi-get, not a search: a document written a moment ago is seen). One found
    in several partitions (Tracardi issue #638) is taken from the newest one."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    with elastic_errors(f"load documents from {alias}"):
        members = alias_members(client, alias)
    pairs = [{"_index": index, "_id": doc_id} for doc_id in wanted for index in members]
    # an unreadable partition raises rather than look like "no such document": the
    # caller would create a second copy in the current partition
    docs: list[dict[str, Any]] = []
    for start in range(0, len(pairs), _MGET_CHUNK):
        docs.extend(mget_documents(client, pairs[start:start + _MGET_CHUNK],
                                   f"load documents from {alias}"))
    loaded: dict[str, LoadedProfile] = {}
    for doc in docs:
        known = loaded.get(doc["_id"])
        if doc.get("found") and (known is None or partition_order(doc["_index"])
                                 > partition_order(known.location.index)):
            loaded[doc["_id"]] = LoadedProfile(
                doc["_id"], Location(doc["_index"], doc["_seq_no"], doc["_primary_term"]),
                doc["_source"])
    return loaded


def cache_key(tenant: str, production: bool, profile_id: str) -> str:
    """Tracardi's collector cache entry of a profile:
    ``<tenant>:profile:<p|t>:<first two characters if hex, else 00>:<id>``."""
    head = profile_id[:2]
    bucket = head if len(head) == 2 and all(c in string.hexdigits for c in head) else "00"
    return f"{tenant}:profile:{'p' if production else 't'}:{bucket}:{profile_id}"


class ProfileStore:
    """Loads, rewrites and saves profiles for one tenant; safe to share between threads
    only if the bulk writer is."""

    def __init__(self, elastic: Elasticsearch, redis: RedisClient, settings: Settings,
                 writer: BulkWriter) -> None:
        self._elastic = elastic
        self._redis = redis
        self._settings = settings
        self._writer = writer
        self._alias = alias_name(settings.tracardi, "profile")
        self._fit = MappingFit(elastic)  # no field a Tracardi 0.8.1 profile refuses
        self._changed = work_queue(redis, settings.tracardi.tenant, PROFILE_CHANGED_QUEUE)
        refresh = settings.tracardi.refresh_profile_writes
        self._refresh = settings.tracardi.layout != "daemon" if refresh is None else refresh

    def fit(self, index: str, document: Mapping[str, Any]) -> Mapping[str, Any]:
        """``document`` without the daemon's own extras that ``index`` refuses."""
        return self._fit.fit(index, document)

    def load_many(self, ids: Iterable[str]) -> dict[str, LoadedProfile]:
        """The profiles that exist among ``ids``, read in real time."""
        return load_by_ids(self._elastic, self._alias, ids)

    def update_many(self, ids: Iterable[str], change: Callable[[LoadedProfile], Rewrite[T]],
                    max_attempts: int,
                    before_write: Callable[[], None] | None = None,
                    preloaded: Mapping[str, LoadedProfile] | None = None) -> list[Saved[T]]:
        """Load, change and write back every profile of ``ids``, one bulk request per
        round. A profile another writer changed meanwhile (409) is reloaded and changed
        again, up to ``max_attempts`` rounds; then it is reported ``failed``.
        ``before_write`` runs in each round after the changes and before the write.
        ``preloaded`` (e.g. hits of a scan, with their seq_no) spares the first load:
        if one is stale, its write conflicts and the profile is reloaded."""
        outcomes: dict[str, Saved[T]] = {}
        pending = set(ids)
        for _ in range(max(1, max_attempts)):
            if not pending:
                break
            loaded = dict(preloaded) if preloaded is not None else self.load_many(pending)
            preloaded = None
            pending = self._update_round(pending, loaded, change, outcomes, before_write)
        for profile_id in pending:
            outcomes[profile_id] = Saved(
                profile_id, "failed", None, None,
                f"profile changed concurrently {max_attempts} times in a row")
        return list(outcomes.values())

    def _update_round(self, ids: set[str], loaded: Mapping[str, LoadedProfile],
                      change: Callable[[LoadedProfile], Rewrite[T]],
                      outcomes: dict[str, Saved[T]],
                      before_write: Callable[[], None] | None) -> set[str]:
        actions: list[BulkAction] = []
        results: dict[str, T] = {}
        for profile_id in ids:
            profile = loaded.get(profile_id)
            if profile is None:
                outcomes[profile_id] = Saved(profile_id, "missing", None, None)
                continue
            rewrite = change(profile)
            results[profile_id] = rewrite.result
            if rewrite.document is None:
                outcomes[profile_id] = Saved(profile_id, "unchanged", profile.location.index,
                                             rewrite.result)
                continue
            actions.append(BulkAction(
                "update" if rewrite.partial else "index", profile.location.index,
                profile_id, self.fit(profile.location.index, rewrite.document),
                if_seq_no=profile.location.seq_no,
                if_primary_term=profile.location.primary_term))
        if before_write is not None:
            before_write()
        conflicting: set[str] = set()
        for item in self._writer.write(actions):
            profile_id = item.action.id
            if item.ok:
                outcomes[profile_id] = Saved(profile_id, "written", item.action.index,
                                             results[profile_id])
            elif item.conflict:
                conflicting.add(profile_id)
            else:
                outcomes[profile_id] = Saved(profile_id, "failed", item.action.index,
                                             results[profile_id], item.error,
                                             item.refused_field)
        return conflicting

    def settle(self, written: Iterable[tuple[str, str | None]]) -> None:
        """After a write of (profile id, index) pairs, before anyone is told of it: the
        profiles visible to searches (Tracardi loads profiles by ``_search``, which sees
        a write only after a refresh) and out of Tracardi's cache. An index of None
        (written by a daemon that stopped) refreshes the whole profile alias."""
        pairs = list(written)
        self.make_visible({index or self._alias for _, index in pairs})
        self.forget_cached(profile_id for profile_id, _ in pairs)

    def make_visible(self, indices: Iterable[str]) -> None:
        """Refresh ``indices`` when ``tracardi.refresh_profile_writes`` says so (by
        default beside Tracardi): one refresh per written batch, not per profile."""
        names = sorted(indices)
        if not names or not self._refresh:
            return
        with elastic_errors(f"refresh {', '.join(names)}"):
            self._elastic.indices.refresh(index=",".join(names))

    def forget_cached(self, ids: Iterable[str]) -> None:
        """Delete Tracardi's cache entries of these profiles, so that the collector loads
        the written profile instead of writing its stale copy back."""
        tracardi = self._settings.tracardi
        keys = [cache_key(tracardi.tenant, tracardi.production, pid) for pid in ids]
        if not keys:
            return
        with redis_errors("delete profile cache entries"):
            pipe = self._redis.pipeline(transaction=False)
            for start in range(0, len(keys), 1000):
                pipe.delete(*keys[start:start + 1000])
            pipe.execute()

    def announce_changed(self, changes: Sequence[Mapping[str, Any]], source: str) -> None:
        """Put ``{profile_id, index, fields, source}`` on the profile-changed queue for
        the segmentation role; ``changes`` carry the first three."""
        if changes:
            self._changed.enqueue_many([{**change, "source": source} for change in changes])
