"""Tracardi's resources, the credentials its importers connect with: one read by id from
its ``tracardi-resource`` index (layout ``tracardi-0.8``) or ``resource`` table
(``tracardi-0.9``), read-only, its ``credentials`` decoded (base64 of gzipped JSON)."""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.elastic import elastic_errors
from tracardi_daemon.model.mysql_definitions import MysqlTables
from tracardi_daemon.model.naming import configured_layout
from tracardi_daemon.model.tracardi_definitions import TRACARDI_08, TRACARDI_09

RESOURCE_INDEX = "tracardi-resource"
RESOURCE_TABLE = "resource"


@dataclass(frozen=True)
class TracardiResource:
    """A resource as Tracardi keeps it; ``test`` and ``production`` are its two sets of
    credentials (Tracardi's ``debug`` picks ``test``)."""

    id: str
    name: str
    type: str
    enabled: bool
    test: Mapping[str, Any] = field(default_factory=dict)
    production: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How errors name it: id and name, never a credential."""
        return f"resource {self.id!r} ({self.name})"

    def credentials(self, *, debug: bool) -> Mapping[str, Any]:
        return self.test if debug else self.production


def load_resource(settings: Settings, elastic: Elasticsearch, resource_id: str,
                  name: str = "") -> TracardiResource:
    """The enabled resource ``resource_id`` of the configured Tracardi layout;
    InvalidInput naming it (with ``name``, the one its user knows it by) when it is
    missing, disabled or unreadable."""
    layout = settings.tracardi.layout
    if layout == TRACARDI_08:
        document = _from_index(settings, elastic, resource_id)
    elif layout == TRACARDI_09:
        document = _from_table(settings, resource_id)
    else:
        raise InvalidInput(f"config.resource: resource {resource_id!r} is Tracardi's, but "
                           f"layout {layout!r} has none: give the source's own connection "
                           "keys, or run beside Tracardi (tracardi.layout)")
    if document is None:
        raise InvalidInput(f"resource {resource_id!r} ({name or 'no name'}) does not exist "
                           "in Tracardi")
    resource = _parsed(resource_id, document)
    if not resource.enabled:
        raise InvalidInput(f"{resource.label} is disabled in Tracardi")
    return resource


def _from_index(settings: Settings, elastic: Elasticsearch,
                resource_id: str) -> dict[str, Any] | None:
    alias = configured_layout(settings.tracardi).alias(RESOURCE_INDEX)
    with elastic_errors(f"read resource {resource_id!r} from {alias}"):
        found = elastic.options(ignore_status=404).search(
            index=alias, query={"ids": {"values": [resource_id]}}, size=1,
            ignore_unavailable=True, allow_no_indices=True).body
    hits = found.get("hits", {}).get("hits", [])
    return dict(hits[0]["_source"]) if hits else None


def _from_table(settings: Settings, resource_id: str) -> dict[str, Any] | None:
    tables = MysqlTables(settings.mysql, settings.tracardi.tenant, settings.tracardi.production)
    try:
        rows = tables.select(RESOURCE_TABLE, row_id=resource_id)
    finally:
        tables.close()
    return dict(rows[0]) if rows else None


def _parsed(resource_id: str, document: Mapping[str, Any]) -> TracardiResource:
    name = str(document.get("name") or "")
    credentials = _decoded(document.get("credentials"), f"resource {resource_id!r} ({name})")
    return TracardiResource(
        id=resource_id, name=name, type=str(document.get("type") or ""),
        # Tracardi's model defaults to enabled; its 0.9 table may hold NULL
        enabled=document.get("enabled") is None or bool(document.get("enabled")),
        test=_credential_set(credentials, "test"),
        production=_credential_set(credentials, "production"))


def _decoded(encoded: Any, label: str) -> dict[str, Any]:
    """Tracardi's ``encrypt``: base64 of gzipped JSON (plain base64 JSON is read too, as
    Tracardi's ``decrypt`` reads it); no credentials is two empty sets."""
    if encoded is None or encoded == "":
        return {}
    if not isinstance(encoded, str):
        raise InvalidInput(f"{label}: field 'credentials' must be text")
    try:
        raw = base64.b64decode(encoded, validate=True)
        with suppress(OSError, EOFError, zlib.error):  # Tracardi reads plain base64 too
            raw = gzip.decompress(raw)
        decoded = json.loads(raw) if raw else {}
    except (binascii.Error, UnicodeDecodeError, ValueError):
        # the exception text could quote the credentials: say what, not what it held
        raise InvalidInput(f"{label}: field 'credentials' is not base64 of gzipped JSON"
                           ) from None
    if not isinstance(decoded, dict):
        raise InvalidInput(f"{label}: field 'credentials' must hold a JSON object")
    return decoded


def _credential_set(credentials: Mapping[str, Any], which: str) -> dict[str, Any]:
    value = credentials.get(which)
    return dict(value) if isinstance(value, Mapping) else {}
