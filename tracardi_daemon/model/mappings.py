"""Mappings and index settings of Tracardi's data indices (profile, event, session) and
definition indices (segment, live-segment, ...), written from Tracardi's document shapes."""

from __future__ import annotations

import copy
from collections.abc import Mapping as ReadMapping
from dataclasses import dataclass
from typing import Any

from tracardi_daemon.errors import InvalidInput

Mapping = dict[str, Any]

_KEYWORD: Mapping = {"type": "keyword"}
_DATE: Mapping = {"type": "date"}
_BOOLEAN: Mapping = {"type": "boolean"}
_DOUBLE: Mapping = {"type": "double"}
_INTEGER: Mapping = {"type": "integer"}
_TEXT: Mapping = {"type": "text"}
_FLATTENED: Mapping = {"type": "flattened"}
# user-supplied dates (a birthday) may be garbage; keep the profile and skip the value
_LENIENT_DATE: Mapping = {"type": "date", "ignore_malformed": True}
# kept in _source for the roles, never searched: no mapping growth, no type conflicts
_STORED_ONLY: Mapping = {"type": "object", "enabled": False}
_STORED_TEXT: Mapping = {"type": "keyword", "index": False, "doc_values": False}
_REF: Mapping = {"properties": {"id": _KEYWORD, "name": _KEYWORD}}


def _object(**properties: Mapping) -> Mapping:
    return {"properties": properties}


def _open_object(**properties: Mapping) -> Mapping:
    """An object whose unknown sub-fields are mapped by the dynamic templates below."""
    return {"type": "object", "dynamic": True, "properties": properties}


def _keywords(*names: str) -> dict[str, Mapping]:
    return {name: _KEYWORD for name in names}


# Dynamic fields inside open objects: strings become exact-match keywords and every number
# a double, so `traits.visits > 3` compares numbers and 3.5 arriving after 3 keeps its
# fraction. ignore_malformed keeps a document whose value changed type (a string where a
# number was first seen) instead of rejecting the whole write.
_DYNAMIC_TEMPLATES: list[Mapping] = [
    {
        "strings_as_keywords": {
            "match_mapping_type": "string",
            "mapping": {"type": "keyword", "ignore_above": 2048},
        }
    },
    {
        "whole_numbers_as_doubles": {
            "match_mapping_type": "long",
            "mapping": {"type": "double", "ignore_malformed": True},
        }
    },
    {
        "fractions_as_doubles": {
            "match_mapping_type": "double",
            "mapping": {"type": "double", "ignore_malformed": True},
        }
    },
]


def _data_root(properties: dict[str, Mapping]) -> Mapping:
    # Unknown top-level fields stay in _source but are not indexed (dynamic: false), so
    # the mapping stays the documented shape; open sub-objects opt in to dynamic mapping.
    # date_detection is off: a trait "2024-01-01" must not turn the field into a date
    # that rejects the next profile whose value is "n/a".
    return {
        "dynamic": False,
        "date_detection": False,
        "numeric_detection": False,
        "dynamic_templates": copy.deepcopy(_DYNAMIC_TEMPLATES),
        "properties": properties,
    }


def _definition_root(properties: dict[str, Mapping]) -> Mapping:
    # Tracardi's own API may add fields to these documents; keep them, do not index them.
    return {"dynamic": False, "date_detection": False, "properties": properties}


_PROFILE = _data_root(
    {
        "id": _KEYWORD,
        "ids": _KEYWORD,
        "active": _BOOLEAN,
        "metadata": _object(
            time=_object(
                insert=_DATE,
                create=_DATE,
                update=_DATE,
                segmentation=_DATE,
                visit=_object(last=_DATE, current=_DATE, count=_INTEGER, tz=_KEYWORD),
            ),
            status=_KEYWORD,
            aux=_FLATTENED,
        ),
        "data": _open_object(
            pii=_open_object(
                **_keywords("firstname", "lastname", "display_name", "gender"),
                birthday=_LENIENT_DATE,
                language=_object(**_keywords("native", "spoken")),
            ),
            contact=_open_object(
                email=_object(**_keywords("main", "private", "business")),
                phone=_object(**_keywords("main", "business", "mobile", "whatsapp")),
            ),
            identifier=_open_object(
                **_keywords("id", "badge", "passport", "credit_card", "token", "coupons")
            ),
        ),
        "stats": _open_object(),
        # Traits are a dynamic object rather than flattened: segment conditions compare
        # traits numerically (`traits.orders > 9`), which a flattened field would compare
        # as strings ("10" < "9"). The dynamic templates and ignore_malformed above limit
        # type conflicts; index.mapping.total_fields.limit bounds the growth.
        "traits": _open_object(),
        "segments": _KEYWORD,
        "interests": _open_object(),
        # keyed by consent id: one flattened field instead of a field per consent type
        "consents": _FLATTENED,
        "aux": _FLATTENED,
        "misc": _FLATTENED,
    }
)

_EVENT = _data_root(
    {
        "id": _KEYWORD,
        "type": _KEYWORD,
        "name": _KEYWORD,
        "metadata": _object(
            time=_object(insert=_DATE, create=_DATE, process_time=_DOUBLE),
            # keyword, not ip: collectors send "unknown" or proxy chains as well
            **_keywords("status", "channel", "ip"),
            **{name: _BOOLEAN for name in ("profile_less", "valid", "debug")},
            instance=_object(id=_KEYWORD),
        ),
        "source": _object(id=_KEYWORD),
        "session": _object(id=_KEYWORD, start=_DATE, duration=_DOUBLE, tz=_KEYWORD),
        "profile": _object(id=_KEYWORD),
        # event properties differ per event type: flattened keeps one field for all of them
        "properties": _FLATTENED,
        # traits are what mapping copied out of properties: typed, like the profile's
        "traits": _open_object(),
        "tags": _object(values=_KEYWORD, count=_INTEGER),
        "journey": _object(state=_KEYWORD),
        "context": _FLATTENED,
        "request": _STORED_ONLY,
        "config": _STORED_ONLY,
    }
)

_SESSION = _data_root(
    {
        "id": _KEYWORD,
        "metadata": _object(
            time=_object(
                insert=_DATE,
                create=_DATE,
                update=_DATE,
                timestamp=_DOUBLE,
                duration=_DOUBLE,
                weekday=_INTEGER,
            ),
            **_keywords("channel", "status"),
            aux=_FLATTENED,
        ),
        "profile": _object(id=_KEYWORD),
        "device": _open_object(
            **_keywords("name", "brand", "model", "type", "ip", "resolution", "orientation"),
            touch=_BOOLEAN,
            color_depth=_INTEGER,
            geo=_open_object(),
        ),
        "os": _open_object(**_keywords("name", "version")),
        "app": _open_object(
            **_keywords("type", "name", "version", "language", "resolution"), bot=_BOOLEAN
        ),
        "utm": _open_object(),
        "context": _FLATTENED,
        "properties": _FLATTENED,
    }
)

# Conditions are TQL text, read by the roles and never searched; ids and names are
# keywords so definitions can be listed and sorted exactly.
_SEGMENT = _definition_root(
    {
        **_keywords("id", "name", "event_type", "machine_name"),
        "description": _TEXT,
        "condition": _STORED_TEXT,
        "enabled": _BOOLEAN,
    }
)

_LIVE_SEGMENT = _definition_root(
    {
        **_keywords("id", "name", "type", "operation"),
        "enabled": _BOOLEAN,
        "condition": _STORED_TEXT,
        # Lucene text or a query object: a disabled object stores either, unparsed
        "query": _STORED_ONLY,
        "workflow": _REF,
        "segment": _REF,
        "target": _STORED_ONLY,  # may hold a webhook URL with a token in it
        "schedule": _STORED_ONLY,
    }
)

_EVENT_TO_PROFILE = _definition_root(
    {
        **_keywords("id", "name"),
        "event_type": _REF,
        "enabled": _BOOLEAN,
        "condition": _STORED_TEXT,
        "items": _STORED_ONLY,
    }
)

_EVENT_TYPE = _definition_root(
    {
        **_keywords("id", "name", "event_type", "journey", "tags"),
        "description": _TEXT,
        "enabled": _BOOLEAN,
        # property path -> trait path: read by the roles, keys are user data, never searched
        "index_schema": _STORED_ONLY,
    }
)

_WORKFLOW_TRIGGER = _definition_root(
    {
        **_keywords("id", "name", "type", "event_type"),
        "segment": _REF,
        "workflow": _REF,
        "target": _STORED_ONLY,  # may hold a webhook URL with a token in it
        "enabled": _BOOLEAN,
    }
)

_IMPORT = _definition_root(
    {
        **_keywords("id", "name", "source"),
        "description": _TEXT,
        "config": _STORED_ONLY,  # source credentials and options: never indexed
        "enabled": _BOOLEAN,
    }
)

_TASK = _definition_root(
    {
        **_keywords("id", "name", "type", "status"),
        "progress": _DOUBLE,
        "created": _DATE,
        "params": _STORED_ONLY,
    }
)

_MAPPINGS: dict[str, Mapping] = {
    "profile": _PROFILE,
    "event": _EVENT,
    "session": _SESSION,
    "segment": _SEGMENT,
    "live-segment": _LIVE_SEGMENT,
    "event-to-profile": _EVENT_TO_PROFILE,
    "event-type": _EVENT_TYPE,
    "workflow-trigger": _WORKFLOW_TRIGGER,
    "import": _IMPORT,
    "task": _TASK,
}

# Dynamic traits can add many fields; the default limit of 1000 would start rejecting
# profiles of a busy installation, an unbounded one would let a bad producer explode it.
_DATA_SETTINGS: Mapping = {"index": {"mapping": {"total_fields": {"limit": 3000}}}}


def mapping_for(kind: str) -> Mapping:
    """The wanted mapping of an index kind (a fresh copy the caller may change)."""
    try:
        return copy.deepcopy(_MAPPINGS[kind])
    except KeyError:
        raise InvalidInput(f"unknown index kind {kind!r}") from None


def settings_for(kind: str) -> Mapping:
    """Index settings of a kind: data indices raise the field limit, definitions don't."""
    mapping_for(kind)  # validates the kind
    return copy.deepcopy(_DATA_SETTINGS) if kind in ("profile", "event", "session") else {}


# comparing a live mapping with the wanted one


@dataclass(frozen=True)
class Conflict:
    """A field whose live type differs from the wanted one; the live mapping stays."""

    index: str  # index name, or "index template <name>"
    field: str  # dotted path
    existing: str
    wanted: str

    def __str__(self) -> str:
        return (
            f"{self.index}: field '{self.field}' is {self.existing}, "
            f"wanted {self.wanted} (left unchanged)"
        )


def _field_type(mapping: ReadMapping[str, Any]) -> str:
    # ES leaves "type" out of object fields unless it was given explicitly
    return str(mapping.get("type", "object"))


def mapping_conflicts(
    index: str, live: ReadMapping[str, Any], wanted: ReadMapping[str, Any], path: str = ""
) -> list[Conflict]:
    """Fields present in both mappings whose types differ, depth first.

    Fields only in the live mapping are fine (dynamic or Tracardi's own); fields only
    in the wanted one are not a conflict either: nothing is added to a live mapping.
    """
    conflicts: list[Conflict] = []
    live_properties = live.get("properties", {})
    for name, want in wanted.get("properties", {}).items():
        have = live_properties.get(name)
        if have is None:
            continue
        field = f"{path}{name}"
        if _field_type(have) != _field_type(want):
            conflicts.append(Conflict(index, field, _field_type(have), _field_type(want)))
        elif "properties" in want:
            conflicts.extend(mapping_conflicts(index, have, want, f"{field}."))
    return conflicts
