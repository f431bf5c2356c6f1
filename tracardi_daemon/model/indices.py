"""Installing and inspecting the daemon's indices without ever changing an existing
mapping (an existing Tracardi installation's are only inspected: Tracardi owns them);
partition-aware reads and writes of documents."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from elasticsearch import (
    BadRequestError,
    ConflictError,
    Elasticsearch,
    NotFoundError,
)

from tracardi_daemon.config.settings import Settings, TracardiSettings
from tracardi_daemon.errors import BackendError, InvalidInput
from tracardi_daemon.infra.elastic import elastic_errors, mget_documents
from tracardi_daemon.model.mappings import Conflict, mapping_conflicts, mapping_for, settings_for
from tracardi_daemon.model.naming import (
    ALL_KINDS,
    DATA_KINDS,
    alias_name,
    base_index_name,
    index_name,
    own_index_beside_tracardi,
    owned_by_tracardi,
    partition_patterns,
    template_name,
)
from tracardi_daemon.model.tracardi_names import partition_order

log = logging.getLogger(__name__)

# Above the built-in templates (100), so a stray catch-all template cannot win.
TEMPLATE_PRIORITY = 200

# ------------------------------------------------------------------ reports

@dataclass(frozen=True)
class InstallReport:
    installed: tuple[str, ...]  # e.g. "index 100.t.tracardi-profile-2024-q1"
    conflicts: tuple[Conflict, ...]
    # why nothing was installed on purpose: the indices are Tracardi's
    refused: str | None = None

    @property
    def ok(self) -> bool:
        return not self.conflicts


@dataclass(frozen=True)
class KindStatus:
    kind: str
    alias: str
    template: str | None  # name of the installed index template, None if none/missing
    indices: tuple[str, ...]  # existing indices of the kind
    aliased: tuple[str, ...]  # those of them in the alias
    # what install would create; in a Tracardi layout what Tracardi's installation lacks
    missing: tuple[str, ...]
    conflicts: tuple[Conflict, ...]


@dataclass(frozen=True)
class StatusReport:
    kinds: tuple[KindStatus, ...]

    @property
    def conflicts(self) -> tuple[Conflict, ...]:
        return tuple(c for kind in self.kinds for c in kind.conflicts)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(m for kind in self.kinds for m in kind.missing)


# ------------------------------------------------------------- inspect and install

@dataclass(frozen=True)
class _Action:
    what: str  # "index template", "index" or "alias"
    kind: str
    name: str  # template or index name
    alias: str

    def describe(self) -> str:
        if self.what == "alias":
            return f"alias {self.alias} -> {self.name}"
        return f"{self.what} {self.name}"


def _template_body(tracardi: TracardiSettings, kind: str) -> dict[str, Any]:
    return {
        "index_patterns": partition_patterns(tracardi, kind),
        "priority": TEMPLATE_PRIORITY,
        "template": {"settings": settings_for(kind), "mappings": mapping_for(kind),
                     "aliases": {alias_name(tracardi, kind): {}}},
        "meta": {"managed_by": "tracardi-daemon"},
    }


def _live_template(client: Elasticsearch, name: str) -> dict[str, Any] | None:
    try:
        found = client.indices.get_index_template(name=name)
    except NotFoundError:
        return None
    templates = found.get("index_templates", [])
    return dict(templates[0]["index_template"]) if templates else None


def _inspect_kind(client: Elasticsearch, tracardi: TracardiSettings, kind: str,
                  now: datetime) -> tuple[KindStatus, list[_Action]]:
    alias = alias_name(tracardi, kind)
    wanted = mapping_for(kind)
    actions: list[_Action] = []
    conflicts: list[Conflict] = []
    template: str | None = None
    if kind in DATA_KINDS:
        template = base_index_name(tracardi, kind)
        live_template = _live_template(client, template)
        if live_template is None:
            actions.append(_Action("index template", kind, template, alias))
            template = None
        else:
            live_mapping = live_template.get("template", {}).get("mappings", {})
            conflicts += mapping_conflicts(f"index template {template}", live_mapping, wanted)
        pattern = ",".join(partition_patterns(tracardi, kind))
    else:
        pattern = base_index_name(tracardi, kind)
    live = client.indices.get(index=pattern, features=["aliases", "mappings"],
                              ignore_unavailable=True, allow_no_indices=True).body
    current = index_name(tracardi, kind, now)
    if current not in live:
        actions.append(_Action("index", kind, current, alias))
    for name in sorted(live):
        conflicts += mapping_conflicts(name, live[name].get("mappings", {}), wanted)
        if alias not in live[name].get("aliases", {}):
            actions.append(_Action("alias", kind, name, alias))
    status = KindStatus(
        kind=kind, alias=alias, template=template, indices=tuple(sorted(live)),
        aliased=tuple(n for n in sorted(live) if alias in live[n].get("aliases", {})),
        missing=tuple(a.describe() for a in actions), conflicts=tuple(conflicts))
    return status, actions


def _inspect_tracardi_kind(client: Elasticsearch, tracardi: TracardiSettings,
                           kind: str) -> KindStatus:
    """A data kind of an existing Tracardi installation, read only: its mappings are
    Tracardi's, not compared with the daemon's."""
    alias = alias_name(tracardi, kind)
    template = template_name(tracardi, kind)
    has_template = bool(client.indices.exists_index_template(name=template))
    missing = [] if has_template else [f"index template {template} (Tracardi's)"]
    live = client.indices.get(index=",".join(partition_patterns(tracardi, kind)),
                              features=["aliases"], ignore_unavailable=True,
                              allow_no_indices=True).body
    aliased = tuple(n for n in sorted(live) if alias in live[n].get("aliases", {}))
    if not aliased:
        missing.append(f"alias {alias} (Tracardi's)")
    return KindStatus(kind=kind, alias=alias, template=template if has_template else None,
                      indices=tuple(sorted(live)), aliased=aliased, missing=tuple(missing),
                      conflicts=())


def _refusal(tracardi: TracardiSettings) -> str:
    return (f"the indices of layout {tracardi.layout!r} are owned by Tracardi: the daemon "
            "creates no template, index or alias and changes no mapping there")


def _create_index(client: Elasticsearch, tracardi: TracardiSettings, kind: str,
                  name: str) -> bool:
    """Create an index with the kind's mapping and alias; False if it already existed."""
    if owned_by_tracardi(tracardi) and not own_index_beside_tracardi(tracardi, kind):
        raise InvalidInput(f"create index {name}: {_refusal(tracardi)}")
    try:
        client.indices.create(index=name, mappings=mapping_for(kind),
                              settings=settings_for(kind),
                              aliases={alias_name(tracardi, kind): {}})
    except BadRequestError as exc:
        if exc.error == "resource_already_exists_exception":  # another daemon was faster
            return False
        raise
    return True


def ensure_own_index(client: Elasticsearch, settings: Settings, kind: str) -> bool:
    """Create the daemon's own index of ``kind`` beside Tracardi 0.9 (segments, named
    apart from Tracardi's) if its alias is missing; True if created. Called before the
    first write: install creates nothing in a Tracardi layout."""
    tracardi = settings.tracardi
    if not own_index_beside_tracardi(tracardi, kind):
        raise InvalidInput(f"{kind!r} has no index of the daemon's own in layout "
                           f"{tracardi.layout!r}")
    with elastic_errors(f"create the {kind} index"):
        if client.indices.exists_alias(name=alias_name(tracardi, kind)):
            return False
        created = _create_index(client, tracardi, kind, base_index_name(tracardi, kind))
    if created:
        log.info("created the daemon's own %s index %s", kind, base_index_name(tracardi, kind))
    return created


def _apply(client: Elasticsearch, tracardi: TracardiSettings, action: _Action) -> bool:
    if action.what == "index template":
        try:
            # create=True: never overwrite a template another daemon has just put
            client.indices.put_index_template(
                name=action.name, create=True, **_template_body(tracardi, action.kind))
        except BadRequestError as exc:
            if "already exists" in str(exc):
                return False
            raise
        return True
    if action.what == "index":
        return _create_index(client, tracardi, action.kind, action.name)
    client.indices.put_alias(index=action.name, name=action.alias)
    return True


def status(client: Elasticsearch, settings: Settings,
           now: datetime | None = None) -> StatusReport:
    """What exists, what install would add, and mapping conflicts; changes nothing.
    In a Tracardi layout: the data kinds' templates, partitions and aliases."""
    moment = now or datetime.now(UTC)
    with elastic_errors("index status"):
        if owned_by_tracardi(settings.tracardi):
            return StatusReport(tuple(_inspect_tracardi_kind(client, settings.tracardi, kind)
                                      for kind in DATA_KINDS))
        return StatusReport(tuple(
            _inspect_kind(client, settings.tracardi, kind, moment)[0] for kind in ALL_KINDS))


def install(client: Elasticsearch, settings: Settings,
            now: datetime | None = None) -> InstallReport:
    """Install what is missing: templates, then indices (the current partition of data
    kinds), then aliases. Idempotent; existing mappings are compared, never changed.
    In a Tracardi layout nothing at all: the report says why (``refused``)."""
    if owned_by_tracardi(settings.tracardi):
        return InstallReport((), (), refused=_refusal(settings.tracardi))
    moment = now or datetime.now(UTC)
    installed: list[str] = []
    conflicts: list[Conflict] = []
    with elastic_errors("index install"):
        for kind in ALL_KINDS:
            kind_status, actions = _inspect_kind(client, settings.tracardi, kind, moment)
            conflicts += kind_status.conflicts
            for action in actions:  # template, then index, then aliases
                if _apply(client, settings.tracardi, action):
                    installed.append(action.describe())
    return InstallReport(tuple(installed), tuple(conflicts))


def ensure_installed(client: Elasticsearch, settings: Settings) -> InstallReport:
    """What the daemon calls at start: install, log what was added and every conflict.

    Conflicts are logged at ERROR and returned, not raised: the indices still work for
    what matches, and an operator must decide how to migrate the rest. In a Tracardi
    layout nothing is installed; what Tracardi's installation lacks is logged at ERROR.
    """
    report = install(client, settings)
    if report.refused is not None:
        log.info("%s", report.refused)
        for missing in status(client, settings).missing:
            log.error("missing in Tracardi's installation: %s", missing)
        return report
    for item in report.installed:
        log.info("installed %s", item)
    for conflict in report.conflicts:
        log.error("mapping conflict: %s", conflict)
    if not report.installed:
        log.debug("all indices of tenant %s already installed", settings.tracardi.tenant)
    return report


# ------------------------------------------------- partition-aware reads and writes

class Location(NamedTuple):
    """Where a document lives, with the numbers an optimistic write must match."""

    # shadows tuple.index() on purpose: `location.index` is the index name, as in ES
    index: str  # type: ignore[assignment]
    seq_no: int
    primary_term: int


@dataclass(frozen=True)
class StoredDocument:
    location: Location
    source: dict[str, Any]


# Given the current document (None if there is none), return the new one, or None to
# leave it as it is. Called again with a fresh copy after a concurrent write.
Change = Callable[[dict[str, Any] | None], dict[str, Any] | None]


def alias_members(client: Elasticsearch, alias: str) -> list[str]:
    """The concrete indices behind an alias, oldest partition first (Tracardi's months
    are not zero-padded: ordered by time, not as strings); none if the alias does not
    exist."""
    try:
        return sorted(client.indices.get_alias(name=alias).body, key=partition_order)
    except NotFoundError:
        return []


def fetch(client: Elasticsearch, settings: Settings, kind: str,
          doc_id: str) -> StoredDocument | None:
    """Read a document by id from whichever index of the alias holds it, in real time.

    A multi-get of the id in every member index rather than a search: a get sees a
    document written a moment ago, a search only after the next refresh.
    """
    alias = alias_name(settings.tracardi, kind)
    with elastic_errors(f"read {kind} {doc_id!r}"):
        members = alias_members(client, alias)
    # an unreadable partition (closed, red) raises rather than look like "not found":
    # the caller would create a second copy of the document in the current partition
    docs = mget_documents(client, [{"_index": name, "_id": doc_id} for name in members],
                          f"read {kind} {doc_id!r}")
    found = [doc for doc in docs if doc.get("found")]
    if not found:
        return None
    if len(found) > 1:
        log.warning("%s %r exists in %d indices (%s); using the newest partition", kind,
                    doc_id, len(found), ", ".join(doc["_index"] for doc in found))
    newest = max(found, key=lambda doc: partition_order(str(doc["_index"])))
    location = Location(newest["_index"], newest["_seq_no"], newest["_primary_term"])
    return StoredDocument(location, dict(newest["_source"]))


def locate(client: Elasticsearch, settings: Settings, kind: str,
           doc_id: str) -> Location | None:
    """The index, seq_no and primary_term of a document, or None if it does not exist."""
    stored = fetch(client, settings, kind, doc_id)
    return stored.location if stored else None


def _write(client: Elasticsearch, settings: Settings, kind: str, doc_id: str, *,
           current: StoredDocument | None, document: dict[str, Any], now: datetime) -> Location:
    if current is not None:
        written = client.index(index=current.location.index, id=doc_id, document=document,
                               if_seq_no=current.location.seq_no,
                               if_primary_term=current.location.primary_term)
    else:
        target = index_name(settings.tracardi, kind, now)
        try:
            # op_type=create: a document created concurrently is a 409, not overwritten
            written = client.index(index=target, id=doc_id, document=document,
                                   op_type="create")
        except NotFoundError:
            # auto-creation is off on this cluster: create the partition ourselves (in a
            # Tracardi layout refused: its template makes the partition, or nobody does)
            _create_index(client, settings.tracardi, kind, target)
            written = client.index(index=target, id=doc_id, document=document,
                                   op_type="create")
    return Location(written["_index"], written["_seq_no"], written["_primary_term"])


def write_update(client: Elasticsearch, settings: Settings, kind: str, doc_id: str,
                 change: Change, *, now: datetime, max_attempts: int = 5) -> Location | None:
    """Read, change and write one document where it lives, with optimistic concurrency.

    An existing document is written back to its own index (a profile stays in the
    partition it was created in); a new one goes to the partition of ``now``. A
    concurrent write (409) re-reads and re-applies ``change``, up to ``max_attempts``.
    Returns where the document was written, or None if ``change`` returned None.
    """
    for attempt in range(1, max_attempts + 1):
        current = fetch(client, settings, kind, doc_id)
        document = change(copy.deepcopy(current.source) if current else None)
        if document is None:
            return None
        with elastic_errors(f"write {kind} {doc_id!r}"):
            try:
                return _write(client, settings, kind, doc_id, current=current,
                              document=document, now=now)
            except ConflictError:
                log.debug("%s %r changed concurrently (attempt %d of %d)", kind, doc_id,
                          attempt, max_attempts)
    raise BackendError("elasticsearch", f"write {kind} {doc_id!r}: still conflicting "
                       f"after {max_attempts} attempts")


def upsert_document(client: Elasticsearch, settings: Settings, kind: str,
                    document: Mapping[str, Any], now: datetime) -> Location:
    """Write ``document`` (keyed by its ``id``) in place if it exists, else create it in
    the current partition; the document replaces the stored one."""
    doc_id = document.get("id")
    if not isinstance(doc_id, str) or not doc_id:
        raise InvalidInput(f"{kind} document: field 'id' must be a non-empty string")
    wanted = dict(document)
    location = write_update(client, settings, kind, doc_id, lambda _current: wanted,
                            now=now)
    assert location is not None  # the change never returns None
    return location
