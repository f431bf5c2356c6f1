"""Definitions in their Elasticsearch indices (bulk upsert, list, get, delete), and the
time-based cache the roles read them through."""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar, cast, overload

from elasticsearch import Elasticsearch, NotFoundError

from tracardi_daemon.errors import BackendError, DaemonError, InvalidInput
from tracardi_daemon.infra.elastic import elastic_errors
from tracardi_daemon.model.definitions import Definition, definition_type
from tracardi_daemon.model.naming import alias_name
from tracardi_daemon.settings import Settings

log = logging.getLogger(__name__)

D = TypeVar("D", bound=Definition)

PAGE_SIZE = 500


def _definition_class(kind: str | type[Definition]) -> type[Definition]:
    return definition_type(kind) if isinstance(kind, str) else kind


def _parse_hits(cls: type[Definition], hits: Sequence[dict[str, Any]]) -> list[Definition]:
    parsed = []
    for hit in hits:
        try:
            parsed.append(cls.from_dict({"id": hit["_id"], **hit["_source"]}))
        except InvalidInput as exc:
            log.warning("skipping invalid stored definition: %s", exc)
    return parsed


class DefinitionStore:
    """Reads and writes definitions through each kind's alias.

    Writes set ``require_alias``: without installed indices a write fails instead of
    auto-creating an index with a guessed mapping.
    """

    def __init__(self, client: Elasticsearch, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    def _alias(self, cls: type[Definition]) -> str:
        return alias_name(self._settings.tracardi, cls.kind)

    def upsert_many(self, definitions: Sequence[Definition], *,
                    wait_for_refresh: bool = True) -> int:
        """Write all definitions in one bulk request, visible to searches on return
        unless ``wait_for_refresh`` is False (a record written often, such as a task's
        progress, must not wait up to a second for the next refresh)."""
        if not definitions:
            return 0
        operations: list[dict[str, Any]] = []
        for definition in definitions:
            operations.append({"index": {"_index": self._alias(type(definition)),
                                         "_id": definition.id}})
            operations.append(definition.to_dict())
        with elastic_errors("write definitions"):
            response = self._client.bulk(
                operations=operations, refresh="wait_for" if wait_for_refresh else False,
                require_alias=True)
        failed = [
            f"{item['index'].get('_id')}: {item['index']['error'].get('reason')}"
            for item in response["items"] if "error" in item["index"]
        ]
        if failed:
            raise BackendError("elasticsearch", "definitions not written: " + "; ".join(failed))
        return len(definitions)

    @overload
    def list(self, kind: type[D]) -> builtins.list[D]: ...

    @overload
    def list(self, kind: str) -> builtins.list[Definition]: ...

    def list(self, kind: str | type[Definition]) -> builtins.list[Any]:
        """Every valid definition of a kind, by id. An invalid stored document (written
        by hand or by another tool) is skipped with a warning, so it cannot hide the
        others; no index yet means no definitions."""
        cls = _definition_class(kind)
        found: builtins.list[Definition] = []
        search_after: builtins.list[Any] | None = None
        while True:
            with elastic_errors(f"list {cls.kind} definitions"):
                try:
                    response = self._client.search(
                        index=self._alias(cls), size=PAGE_SIZE, sort=[{"id": "asc"}],
                        search_after=search_after, query={"match_all": {}})
                except NotFoundError:
                    return []
            hits = response["hits"]["hits"]
            found.extend(_parse_hits(cls, hits))
            if len(hits) < PAGE_SIZE:
                return found
            search_after = hits[-1]["sort"]

    @overload
    def get(self, kind: type[D], definition_id: str) -> D | None: ...

    @overload
    def get(self, kind: str, definition_id: str) -> Definition | None: ...

    def get(self, kind: str | type[Definition], definition_id: str) -> Any:
        """One definition, or None; an invalid stored document raises InvalidInput."""
        cls = _definition_class(kind)
        with elastic_errors(f"read {cls.kind} {definition_id!r}"):
            try:
                response = self._client.get(index=self._alias(cls), id=definition_id)
            except NotFoundError:
                return None
        return cls.from_dict({"id": response["_id"], **response["_source"]})

    def delete(self, kind: str | type[Definition], definition_id: str) -> bool:
        """Delete one definition; False if there was none."""
        cls = _definition_class(kind)
        with elastic_errors(f"delete {cls.kind} {definition_id!r}"):
            try:
                self._client.delete(index=self._alias(cls), id=definition_id,
                                    refresh="wait_for")
            except NotFoundError:
                return False
        return True


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
        self._loaded_at = 0.0

    def get_all(self) -> list[D]:
        now = self._clock()
        if self._items is not None and now - self._loaded_at < self._refresh_s:
            return list(self._items)
        try:
            items = cast("list[D]", self._store.list(self._kind))
        except DaemonError as exc:
            if self._items is None:
                raise
            log.warning("refreshing %s definitions failed, keeping %d cached ones: %s",
                        self._kind.kind, len(self._items), exc)
            self._loaded_at = now
            return list(self._items)
        self._items, self._loaded_at = items, now
        return list(items)

    def invalidate(self) -> None:
        """Re-read on the next ``get_all()`` (after this process changed definitions)."""
        self._loaded_at = float("-inf")
