"""Definitions in their Elasticsearch indices (bulk upsert, list, get, delete), and the
time-based cache the roles read them through. In layouts ``tracardi-0.8`` and
``tracardi-0.9`` most kinds are read from Tracardi's own indices or MySQL tables and
cannot be written (``tracardi_definitions``)."""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast, overload

from elasticsearch import Elasticsearch, NotFoundError

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import BackendError, BackendUnavailable, DaemonError, InvalidInput
from tracardi_daemon.infra.bulk import RETRY_LATER_STATUSES, BulkAction, BulkWriter
from tracardi_daemon.infra.elastic import elastic_errors
from tracardi_daemon.model.definitions import Definition, definition_type
from tracardi_daemon.model.indices import ensure_own_index
from tracardi_daemon.model.mysql_definitions import MysqlTables
from tracardi_daemon.model.naming import own_index_beside_tracardi
from tracardi_daemon.model.tracardi_definitions import DefinitionSource, definition_source
from tracardi_daemon.tql.limits import short

log = logging.getLogger(__name__)

D = TypeVar("D", bound=Definition)

PAGE_SIZE = 500
# hits of a listing without sources (id and version only) per request
VERSION_PAGE_SIZE = 5_000
MGET_CHUNK = 500


def _definition_class(kind: str | type[Definition]) -> type[Definition]:
    return definition_type(kind) if isinstance(kind, str) else kind


@dataclass(frozen=True)
class Versioned:
    """A stored definition as the last refresh saw it: its version (index, sequence
    number and primary term of its document, or its whole MySQL row, which has no
    change marker) and what it parsed to (None: invalid, skipped with a warning)."""

    version: object
    definition: Definition | None


class DefinitionStore:
    """Reads and writes definitions through each kind's alias, or its Tracardi 0.9
    MySQL table.

    Writes set ``require_alias``: without installed indices a write fails instead of
    auto-creating an index with a guessed mapping (beside Tracardi 0.9 the daemon's own
    segment indices are created, with their mapping, before the first write). Kinds read
    from Tracardi's indices or tables refuse writes with InvalidInput: Tracardi owns them.
    """

    def __init__(self, client: Elasticsearch, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        # connects on first use: a store outside layout tracardi-0.9 never does
        self._tables = MysqlTables(settings.mysql, settings.tracardi.tenant,
                                   settings.tracardi.production)
        self._own_indices: set[str] = set()  # own indices known to exist
        # stored documents and rows parsed into definitions: what a refresh saves
        self.parsed = 0

    def source(self, kind: str | type[Definition]) -> DefinitionSource:
        """Where definitions of ``kind`` are read from in the configured layout."""
        return definition_source(self._settings, _definition_class(kind).kind)

    def close(self) -> None:
        """Close the MySQL connection, if one is open (the next use opens another)."""
        self._tables.close()

    def check_writable(self, definitions: Sequence[Definition]) -> None:
        """InvalidInput naming Tracardi's index or table if any of them lives there."""
        for kind in dict.fromkeys(type(definition) for definition in definitions):
            self.source(kind).refuse_writes()

    def upsert_many(self, definitions: Sequence[Definition], *,
                    wait_for_refresh: bool = True) -> int:
        """Write all definitions in one bulk request (and those of a MySQL table in one
        upsert per table), visible to searches on return unless ``wait_for_refresh`` is
        False (a record written often, such as a task's progress, must not wait up to a
        second for the next refresh)."""
        if not definitions:
            return 0
        self.check_writable(definitions)
        actions: list[BulkAction] = []
        table_rows: dict[str, list[dict[str, Any]]] = {}
        for definition in definitions:
            source = self.source(type(definition))
            if source.table is not None:
                table_rows.setdefault(source.table, []).append(
                    source.export(definition.to_dict()))
                continue
            self._ensure_own_index(definition.kind)
            actions.append(BulkAction("index", source.alias, definition.id,
                                      source.export(definition.to_dict())))
        for table, rows in table_rows.items():
            self._tables.upsert(table, rows)
        if actions:
            self._bulk(actions, wait_for_refresh)
        return len(definitions)

    def _ensure_own_index(self, kind: str) -> None:
        """Beside Tracardi 0.9 the first write of segments creates the daemon's own index
        (install creates nothing in a Tracardi layout); checked once per store."""
        if kind in self._own_indices or not own_index_beside_tracardi(
                self._settings.tracardi, kind):
            return
        ensure_own_index(self._client, self._settings, kind)
        self._own_indices.add(kind)

    def _bulk(self, actions: Sequence[BulkAction], wait_for_refresh: bool) -> None:
        """Write through the bulk writer, which waits and resends what a busy or
        recovering cluster refuses for now (429, 503)."""
        writer = BulkWriter(self._client, refresh="wait_for" if wait_for_refresh else False,
                            require_alias=True)
        results = writer.write(actions)
        failed = [result for result in results if not result.ok]
        if not failed:
            return
        text = "definitions not written: " + "; ".join(
            f"{result.action.id}: {result.error}" for result in failed)
        if any(result.status in RETRY_LATER_STATUSES for result in failed):
            raise BackendUnavailable("elasticsearch", text)
        raise BackendError("elasticsearch", text)

    @overload
    def list(self, kind: type[D]) -> builtins.list[D]: ...

    @overload
    def list(self, kind: str) -> builtins.list[Definition]: ...

    def list(self, kind: str | type[Definition]) -> builtins.list[Any]:
        """Every valid definition of a kind, by id. An invalid stored document (written
        by hand or by another tool) is skipped with a warning, so it cannot hide the
        others; no index yet means no definitions."""
        cls = _definition_class(kind)
        source = self.source(cls)
        if source.table is not None:
            rows = self._tables.select(source.table, only=source.only)
            return self._parse_all(cls, source, ((str(row["id"]), row) for row in rows))
        found: builtins.list[Definition] = []
        search_after: builtins.list[Any] | None = None
        while True:
            with elastic_errors(f"list {cls.kind} definitions"):
                try:
                    # a partial list would read as deleted definitions (search_whole)
                    response = self._client.search(
                        allow_partial_search_results=False,
                        index=source.alias, size=PAGE_SIZE, sort=[{"id": "asc"}],
                        search_after=search_after, query=source.query())
                except NotFoundError:
                    return []
            hits = response["hits"]["hits"]
            found.extend(self._parse_all(cls, source,
                                         ((hit["_id"], hit["_source"]) for hit in hits)))
            if len(hits) < PAGE_SIZE:
                return found
            search_after = hits[-1]["sort"]

    @overload
    def get(self, kind: type[D], definition_id: str) -> D | None: ...

    @overload
    def get(self, kind: str, definition_id: str) -> Definition | None: ...

    def get(self, kind: str | type[Definition], definition_id: str) -> Any:
        """One definition, or None (also for a document of another kind in a shared
        index, such as a rule that is no trigger); an invalid stored document raises
        InvalidInput."""
        cls = _definition_class(kind)
        source = self.source(cls)
        if source.table is not None:
            rows = self._tables.select(source.table, only=source.only, row_id=definition_id)
            return self._parse(cls, source, str(rows[0]["id"]), rows[0]) if rows else None
        with elastic_errors(f"read {cls.kind} {short(definition_id)}"):
            try:
                response = self._client.get(index=source.alias, id=definition_id)
            except NotFoundError:
                return None
        if not source.holds(response["_source"]):
            return None
        return self._parse(cls, source, response["_id"], response["_source"])

    def delete(self, kind: str | type[Definition], definition_id: str) -> bool:
        """Delete one definition; False if there was none."""
        cls = _definition_class(kind)
        source = self.source(cls)
        source.refuse_writes()
        if source.table is not None:
            return self._tables.delete(source.table, definition_id)
        with elastic_errors(f"delete {cls.kind} {short(definition_id)}"):
            try:
                self._client.delete(index=source.alias, id=definition_id,
                                    refresh="wait_for")
            except NotFoundError:
                return False
        return True


    def refresh(self, kind: str | type[Definition],
                known: Mapping[str, Versioned]) -> dict[str, Versioned] | None:
        """The definitions of ``kind`` by id, parsing only those whose version differs
        from ``known`` (the last refresh's answer); None if nothing changed. In
        Elasticsearch the versions come from a listing without sources, so an unchanged
        definition costs its id and three numbers; a MySQL row is compared whole."""
        cls = _definition_class(kind)
        source = self.source(cls)
        if source.table is not None:
            rows = {str(row["id"]): row
                    for row in self._tables.select(source.table, only=source.only)}
            return self._changed(cls, source, known, rows, lambda ids: {
                row_id: (rows[row_id], rows[row_id]) for row_id in ids})
        versions = self._versions(cls, source)
        return self._changed(cls, source, known, versions,
                             lambda ids: self._documents(cls, source, ids, versions))

    def _changed(self, cls: type[Definition], source: DefinitionSource,
                 known: Mapping[str, Versioned], versions: Mapping[str, object],
                 fetch: Callable[[builtins.list[str]], dict[str, tuple[object, Any]]],
                 ) -> dict[str, Versioned] | None:
        changed = [item for item, version in versions.items()
                   if item not in known or known[item].version != version]
        if not changed and len(known) == len(versions):
            return None
        fetched = fetch(changed)
        result: dict[str, Versioned] = {}
        for item in versions:
            if item in fetched:
                version, document = fetched[item]
                result[item] = Versioned(version, self._parse_or_warn(cls, source, item,
                                                                      document))
            elif item in known and item not in changed:
                result[item] = known[item]
            # else deleted, or no longer of this kind, since it was listed
        return result

    def _versions(self, cls: type[Definition],
                  source: DefinitionSource) -> dict[str, object]:
        versions: dict[str, object] = {}
        search_after: builtins.list[Any] | None = None
        while True:
            with elastic_errors(f"list {cls.kind} definitions"):
                try:
                    # a partial list would read as deleted definitions (search_whole)
                    response = self._client.search(
                        allow_partial_search_results=False,
                        index=source.alias, size=VERSION_PAGE_SIZE, sort=[{"id": "asc"}],
                        search_after=search_after, query=source.query(), source=False,
                        seq_no_primary_term=True)
                except NotFoundError:
                    return {}
            hits = response["hits"]["hits"]
            versions.update((hit["_id"], _version(hit)) for hit in hits)
            if len(hits) < VERSION_PAGE_SIZE:
                return versions
            search_after = hits[-1]["sort"]

    def _documents(self, cls: type[Definition], source: DefinitionSource,
                   ids: builtins.list[str], versions: Mapping[str, object],
                   ) -> dict[str, tuple[object, Any]]:
        """The changed documents with their versions; one that is gone is left out, a
        per-document error is an error (never taken for absence)."""
        found: dict[str, tuple[object, Any]] = {}
        for start in range(0, len(ids), MGET_CHUNK):
            docs = [{"_index": cast("tuple[str, int, int]", versions[item])[0], "_id": item}
                    for item in ids[start:start + MGET_CHUNK]]
            with elastic_errors(f"read {cls.kind} definitions"):
                response = self._client.mget(docs=docs)
            for doc in response["docs"]:
                if "error" in doc:
                    raise BackendError("elasticsearch", f"{cls.kind} {short(doc['_id'])} "
                                       f"not read: {doc['error'].get('reason')}")
                if doc.get("found") and source.holds(doc["_source"]):
                    found[doc["_id"]] = (_version(doc), doc["_source"])
        return found

    def check_room(self, definitions: Sequence[Definition], max_per_kind: int) -> None:
        """InvalidInput if writing ``definitions`` would leave more than
        ``max_per_kind`` definitions of a kind (a stored one they replace counts once);
        reads the stored ids only."""
        for cls in dict.fromkeys(type(definition) for definition in definitions):
            ids = {d.id for d in definitions if type(d) is cls}
            source = self.source(cls)
            if source.table is not None:
                stored = {str(row["id"]) for row in
                          self._tables.select(source.table, only=source.only)}
            else:
                stored = set(self._versions(cls, source))
            total = len(stored | ids)
            if total > max_per_kind:
                raise InvalidInput(
                    f"{cls.kind}: {len(stored):,} stored and {len(ids - stored):,} new "
                    f"would make {total:,}, more than definitions.max_per_kind "
                    f"({max_per_kind:,})")

    def _parse(self, cls: type[Definition], source: DefinitionSource, document_id: str,
               document: Mapping[str, Any]) -> Definition:
        self.parsed += 1
        return cls.from_dict({"id": document_id, **source.adapt(document)})

    def _parse_or_warn(self, cls: type[Definition], source: DefinitionSource,
                       document_id: str, document: Mapping[str, Any]) -> Definition | None:
        try:
            return self._parse(cls, source, document_id, document)
        except InvalidInput as exc:
            log.warning("skipping invalid stored definition %s in %s: %s",
                        short(document_id), source.location, exc)
            return None

    def _parse_all(self, cls: type[Definition], source: DefinitionSource,
                   documents: Iterable[tuple[str, Mapping[str, Any]]],
                   ) -> builtins.list[Definition]:
        parsed = (self._parse_or_warn(cls, source, document_id, document)
                  for document_id, document in documents)
        return [definition for definition in parsed if definition is not None]


def _version(hit: Mapping[str, Any]) -> tuple[str, int, int]:
    # a document's version: its index (an alias may span several), sequence number and
    # primary term, which change with every write, including after a failover
    return (hit["_index"], hit["_seq_no"], hit["_primary_term"])


class DefinitionCache(Generic[D]):
    """The definitions of one kind, re-read when older than ``refresh_s``.

    It has no thread: a role calls ``get_all()`` from its step. A failed refresh keeps
    the previous list (and waits ``refresh_s`` before trying again); a failed first
    load raises, because an empty list would read as "no segments" and make a role
    remove every segment from every profile.
    """

    @overload
    def __init__(self: DefinitionCache[D], store: DefinitionStore, kind: type[D],
                 refresh_s: float, clock: Callable[[], float] = ...) -> None: ...

    @overload
    def __init__(self: DefinitionCache[Definition], store: DefinitionStore, kind: str,
                 refresh_s: float, clock: Callable[[], float] = ...) -> None: ...

    def __init__(self, store: DefinitionStore, kind: str | type[Definition],
                 refresh_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._kind = _definition_class(kind)
        self._refresh_s = refresh_s
        self._clock = clock
        self._items: list[D] | None = None
        # what the last refresh saw: unchanged definitions keep their parsed objects
        # (and what those compiled), so a refresh parses only what changed
        self._known: dict[str, Versioned] = {}
        self._loaded_at = 0.0

    def get_all(self) -> list[D]:
        now = self._clock()
        if self._items is not None and now - self._loaded_at < self._refresh_s:
            return list(self._items)
        try:
            known = self._store.refresh(self._kind, self._known)
        except DaemonError as exc:
            if self._items is None:
                raise
            log.warning("refreshing %s definitions failed, keeping %d cached ones: %s",
                        self._kind.kind, len(self._items), exc)
            self._loaded_at = now
            return list(self._items)
        if known is not None or self._items is None:
            self._known = self._known if known is None else known
            self._items = [cast("D", entry.definition) for entry in self._known.values()
                           if entry.definition is not None]
        self._loaded_at = now
        return list(self._items)

    def invalidate(self) -> None:
        """Re-read on the next ``get_all()`` (after this process changed definitions)."""
        self._loaded_at = float("-inf")
