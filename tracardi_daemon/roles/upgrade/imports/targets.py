"""Where imported rows go. Each target takes a batch of good rows and returns the rows
it could not write, each with the reason; ``dry_run`` builds and checks everything and
writes nothing.

- ``events``: one event per row under a deterministic id (the definition and the row's
  key), written where it already is — a re-run overwrites instead of duplicating — or
  into the partition of the job's start time. The first run of a definition has no
  earlier events to look for (and a replay of its batches goes to the same partition):
  it skips the look-up.
- ``profiles``: the mapped columns merged into the profile the key column names (by id,
  or by the profile field ``match``), created when there is none, through the mapping
  role's write path: own partition, optimistic concurrency, cache entry deleted,
  ``profile-changed`` announced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.infra.bulk import BulkAction, BulkWriter
from tracardi_daemon.infra.elastic import search_whole
from tracardi_daemon.model.import_spec import ImportSpec
from tracardi_daemon.model.indices import install
from tracardi_daemon.model.mapping_ops import MappingConflict, apply_op, is_copyable
from tracardi_daemon.model.naming import alias_name, index_name
from tracardi_daemon.model.profiles import LoadedProfile, ProfileStore, Rewrite
from tracardi_daemon.roles.upgrade.imports.rows import Row, RowFailure

# deterministic ids of imported documents: a keyed hash of (definition id, row key),
# written like a UUID as Tracardi's ids are (a quarter of uuid5's cost)
_ID_KEY = b"tracardi-daemon import"
_MAX_CONFLICT_ROUNDS = 5

Failed = list[tuple[Row, RowFailure]]
# a profile's rows merged into a document, returning the paths written
_Merge = Callable[[dict[str, Any], list[Row]], set[str]]
_Change = Callable[[LoadedProfile], Rewrite[set[str]]]


class Target(Protocol):
    def write(self, rows: Sequence[Row]) -> Failed:
        """Write the rows (each has data); the ones not written, with the reason."""
        ...

    def close(self) -> None: ...


def imported_id(definition_id: str, key: str) -> str:
    """The id of what a row becomes: the same for the same definition and row key."""
    digest = hashlib.blake2b(f"{definition_id}\x1f{key}".encode(), digest_size=16,
                             key=_ID_KEY).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:]}"


def row_key(spec: ImportSpec, row: Row) -> str | RowFailure:
    """The row's identity: the ``key`` column's value when one is configured."""
    if spec.key is None:
        return row.key
    value = (row.data or {}).get(spec.key)
    if value is None or isinstance(value, (dict, list)) or str(value).strip() == "":
        return RowFailure(f"the key column {spec.key!r} is empty", spec.key)
    return str(value)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class EventsTarget:
    def __init__(self, spec: ImportSpec, elastic: Elasticsearch, writer: BulkWriter,
                 settings: Settings, *, insert_time: datetime, dry_run: bool,
                 look_up_earlier: bool = True) -> None:
        self._spec = spec
        self._look_up = look_up_earlier
        self._elastic = elastic
        self._writer = writer
        self._alias = alias_name(settings.tracardi, "event")
        self._index = index_name(settings.tracardi, "event", insert_time)
        self._time = _iso(insert_time)
        self._dry_run = dry_run
        if not dry_run:
            install(elastic, settings, now=insert_time)  # the partition of insert_time

    def event(self, row: Row, event_id: str) -> dict[str, Any] | RowFailure:
        data = row.data or {}
        profile_id: str | None = None
        if self._spec.profile_id is not None:
            value = data.get(self._spec.profile_id)
            if value is None or isinstance(value, (dict, list)) or not str(value).strip():
                return RowFailure("the profile id column is empty", self._spec.profile_id)
            profile_id = str(value)
        event: dict[str, Any] = {
            "id": event_id,
            "type": self._spec.event_type,
            "metadata": {
                "time": {"insert": self._time, "create": self._time},
                "status": "imported", "channel": "import", "profile_less": profile_id is None,
                "valid": True, "debug": False,
            },
            "source": {"id": self._spec.event_source},
            "properties": data,
            "tags": {"values": [], "count": 0},
            "context": {"import": {"id": self._spec.id, "row": row.number}},
        }
        if profile_id is not None:
            event["profile"] = {"id": profile_id}
        return event

    def write(self, rows: Sequence[Row]) -> Failed:
        failed: Failed = []
        events: dict[str, tuple[Row, dict[str, Any]]] = {}
        for row in rows:
            key = row_key(self._spec, row)
            if isinstance(key, RowFailure):
                failed.append((row, key))
                continue
            event_id = imported_id(self._spec.id, key)
            event = self.event(row, event_id)
            if isinstance(event, RowFailure):
                failed.append((row, event))
            else:
                events[event_id] = (row, event)  # a later row of the same key wins
        if self._dry_run or not events:
            return failed
        where = self._existing(list(events)) if self._look_up else {}
        actions = [BulkAction("index", where.get(event_id, self._index), event_id, event,
                              key=row)
                   for event_id, (row, event) in events.items()]
        for result in self._writer.write(actions):
            if not result.ok:
                failed.append((result.action.key, RowFailure(
                    f"rejected by Elasticsearch: {result.error}")))
        return failed

    def _existing(self, ids: list[str]) -> dict[str, str]:
        """The partitions holding events of these ids already (an earlier run's)."""
        hits = search_whole(self._elastic, f"look up imported events in {self._alias}",
                            index=self._alias, query={"ids": {"values": ids}},
                            size=len(ids), source=False,
                            ignore_unavailable=True)["hits"]["hits"]
        return {hit["_id"]: hit["_index"] for hit in hits}

    def close(self) -> None:
        pass


class ProfilesTarget:
    def __init__(self, spec: ImportSpec, elastic: Elasticsearch, writer: BulkWriter,
                 profiles: ProfileStore, settings: Settings, *, dry_run: bool) -> None:
        self._spec = spec
        self._elastic = elastic
        self._writer = writer
        self._profiles = profiles
        self._settings = settings
        self._alias = alias_name(settings.tracardi, "profile")
        self._dry_run = dry_run

    def write(self, rows: Sequence[Row]) -> Failed:
        failed: Failed = []
        by_key: dict[str, list[Row]] = {}
        for row in rows:
            key = row_key(self._spec, row)
            if isinstance(key, RowFailure):
                failed.append((row, key))
            else:
                by_key.setdefault(key, []).append(row)
        ids, ambiguous = self._profile_ids(list(by_key))
        for key, reason in ambiguous.items():
            failed += [(row, RowFailure(reason, self._spec.key)) for row in by_key.pop(key)]
        by_profile: dict[str, list[Row]] = {}
        for key, found in by_key.items():  # two keys may name one profile (a list field)
            by_profile.setdefault(ids[key], []).extend(found)
        # a row that conflicts with the profile fails alone; the profile's other rows land
        row_failures: dict[int, RowFailure] = {}

        def merge(document: dict[str, Any], profile_rows: list[Row]) -> set[str]:
            fields: set[str] = set()
            for row in profile_rows:
                if row.number in row_failures:
                    continue
                trial = _merged(self._spec, document, row)
                if isinstance(trial, RowFailure):
                    row_failures[row.number] = trial
                else:
                    document.clear()
                    document.update(trial[0])
                    fields |= trial[1]
            return fields

        def change(profile: LoadedProfile) -> Rewrite[set[str]]:
            document = dict(profile.source)
            touched = merge(document, by_profile[profile.id])
            # rows of one batch may write a value and then the old one back
            fields = {path for path in touched
                      if _read(document, path) != _read(profile.source, path)}
            return Rewrite(document if fields else None, fields)

        if self._dry_run:
            for profile_id, profile_rows in by_profile.items():
                merge({"id": profile_id}, profile_rows)
        else:
            failed += self._write(by_profile, change, merge)
        # a row is failed once: its own conflict, unless its whole profile failed
        counted = {row.number for row, _ in failed}
        failed += [(row, row_failures[row.number]) for found in by_profile.values()
                   for row in found if row.number in row_failures and row.number not in counted]
        return failed

    def _write(self, by_profile: dict[str, list[Row]], change: _Change,
               merge: _Merge) -> Failed:
        failed: Failed = []
        changed: list[dict[str, Any]] = []
        pending = set(by_profile)
        for _ in range(_MAX_CONFLICT_ROUNDS):
            if not pending:
                break
            loaded = self._profiles.load_many(pending)
            saved = self._profiles.update_many(set(loaded), change, _MAX_CONFLICT_ROUNDS,
                                               preloaded=loaded)
            for entry in saved:
                if entry.status == "written":
                    changed.append({"profile_id": entry.profile_id, "index": entry.index,
                                    "fields": sorted(entry.result or ())})
                elif entry.status in ("failed", "missing"):
                    reason = entry.error or "the profile was deleted while being imported"
                    failed += [(row, RowFailure(f"profile not written: {reason}"))
                               for row in by_profile[entry.profile_id]]
            created, pending = self._create(
                {pid: by_profile[pid] for pid in pending - set(loaded)}, merge, failed)
            changed += created
        for profile_id in pending:
            failed += [(row, RowFailure("profile changed concurrently too often"))
                       for row in by_profile[profile_id]]
        self._profiles.settle((c["profile_id"], c["index"]) for c in changed)
        self._profiles.announce_changed(changed, source="import")
        return failed

    def _create(self, new: dict[str, list[Row]], merge: _Merge,
                failed: Failed) -> tuple[list[dict[str, Any]], set[str]]:
        """Create the profiles that do not exist; those created meanwhile by someone else
        (409) come back to be merged."""
        now = datetime.now(UTC)
        index = index_name(self._settings.tracardi, "profile", now)
        actions: list[BulkAction] = []
        fields_of: dict[str, set[str]] = {}
        for profile_id, profile_rows in new.items():
            document: dict[str, Any] = {"id": profile_id, "metadata": {"time": {
                "insert": _iso(now), "create": _iso(now), "update": _iso(now)}}}
            fields_of[profile_id] = merge(document, profile_rows)
            if fields_of[profile_id]:
                actions.append(BulkAction("create", index, profile_id,
                                          self._profiles.fit(index, document)))
        created: list[dict[str, Any]] = []
        conflicting: set[str] = set()
        if actions:
            install(self._elastic, self._settings, now=now)
        for result in self._writer.write(actions):
            profile_id = result.action.id
            if result.ok:
                created.append({"profile_id": profile_id, "index": result.index,
                                "fields": sorted(fields_of[profile_id])})
            elif result.conflict:
                conflicting.add(profile_id)
            else:
                failed += [(row, RowFailure(f"profile not created: {result.error}"))
                           for row in new[profile_id]]
        return created, conflicting

    def _profile_ids(self, keys: list[str]) -> tuple[dict[str, str], dict[str, str]]:
        """Each key's profile id, and the keys that match several profiles (with why)."""
        if self._spec.match == "id":
            return {key: key for key in keys}, {}
        found: dict[str, set[str]] = {}
        if keys:
            hits = search_whole(
                self._elastic, f"find profiles by {self._spec.match}",
                index=self._alias, query={"terms": {self._spec.match: keys}},
                size=min(10_000, 2 * len(keys) + 10), source_includes=[self._spec.match],
                ignore_unavailable=True)["hits"]["hits"]
            for hit in hits:
                value = _read(hit["_source"], self._spec.match)
                for one in value if isinstance(value, list) else [value]:
                    found.setdefault(str(one), set()).add(hit["_id"])
        ids: dict[str, str] = {}
        ambiguous: dict[str, str] = {}
        for key in keys:
            matches = sorted(found.get(key, ()))
            if len(matches) > 1:
                ambiguous[key] = (f"{len(matches)} profiles have {self._spec.match} = "
                                  f"{key!r} ({', '.join(matches[:3])})")
            else:
                ids[key] = matches[0] if matches else imported_id(self._spec.id, key)
        return ids, ambiguous

    def close(self) -> None:
        pass


def _merged(spec: ImportSpec, document: Mapping[str, Any],
            row: Row) -> tuple[dict[str, Any], set[str]] | RowFailure:
    """The document with the row's mapped columns written over it, and the paths that
    changed; the row's failure when a path conflicts (the document is then unchanged)."""
    data = row.data or {}
    trial = _deep_copy(document)
    fields: set[str] = set()
    for column, path in spec.fields.items():
        value = data.get(column)
        if not is_copyable(value):
            continue
        try:
            if apply_op(trial, "equals", path, value):
                fields.add(path)
        except MappingConflict as exc:
            return RowFailure(f"{path}: {exc.reason}", column)
    return trial, fields


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_deep_copy(item) for item in value]
    return value


def _read(document: Mapping[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value
