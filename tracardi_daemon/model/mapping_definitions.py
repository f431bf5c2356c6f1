"""Event-to-profile mappings, read from the daemon's shape or from Tracardi's stored JSON,
and event-type metadata (which event properties are indexed as which traits)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from tracardi_daemon.model.definition_reader import PATH, Definition, Reader, Ref
from tracardi_daemon.model.mapping_ops import OPERATIONS
from tracardi_daemon.model.mappings import mapping_for
from tracardi_daemon.tql import Condition, Schema, TqlError
from tracardi_daemon.tql.limits import short

# the op names, as model/mapping_ops.py applies them
MAPPING_OPERATIONS = OPERATIONS
# the profile fields a mapping may write; anything else would land outside the mapping
PROFILE_ROOTS = (
    "data",
    "traits",
    "ids",
    "stats",
    "segments",
    "interests",
    "consents",
    "aux",
    "misc",
    "trash",
)
# ops that need no event value: delete takes none, increment/decrement default to 1
EVENT_OPTIONAL_OPERATIONS = ("delete", "increment", "decrement")

# Tracardi stores op as 0, 1 or 2; "equal", "+" and "-" are what people type
_OPERATION_SPELLINGS: dict[str | int, str] = {
    0: "equals",
    1: "equals_if_not_exists",
    2: "append",
    "equal": "equals",
    "+": "increment",
    "-": "decrement",
    **{name: name for name in MAPPING_OPERATIONS},
}
_ACCEPTED_OPERATIONS = ", ".join([*MAPPING_OPERATIONS, "0", "1", "2", "equal", "+", "-"])
_DAEMON_ITEM_KEYS = {"event", "op", "profile", "event_ref"}
_TRACARDI_ITEM_KEYS = {"event", "op", "profile"}
_TRACARDI_EXTRAS = ("tags", "production", "running", "build_in")


@functools.cache
def condition_schema() -> Schema:
    """What mapping conditions are type-checked against, built on first use: the
    profile's mapping only. The role evaluates conditions in Python over events and
    sessions as they are stored; typed by their index mappings, ``event@properties.value
    > 10`` would compare text (properties are one flattened field there) and be refused."""
    return Schema.from_mappings(profile=mapping_for("profile"))


def _check_condition(reader: Reader, field: str, text: str) -> str:
    try:
        Condition(text, condition_schema())
    except TqlError as exc:
        reader.fail(field, f"is not a valid condition: {exc}")
    return text


def _operation(reader: Reader, field: str, value: object) -> str:
    # bool is an int in Python: True must not read as op 1
    spelling = value if isinstance(value, str) or type(value) is int else None
    if spelling is None or spelling not in _OPERATION_SPELLINGS:
        reader.fail(field, f"must be one of {_ACCEPTED_OPERATIONS}, got {short(value)}")
    return _OPERATION_SPELLINGS[spelling]


@dataclass(frozen=True)
class MappingItem:
    """Write the value at ``event`` (a dotted path in the event) to ``profile``; when
    ``event_ref`` is False, ``event`` is the literal value to write. ``event`` is None
    only for delete, increment and decrement (a step of 1)."""

    event: str | None
    op: str
    profile: str
    event_ref: bool = True

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {} if self.event is None else {"event": self.event}
        result.update(op=self.op, profile=self.profile)
        if not self.event_ref:
            result["event_ref"] = False
        return result


@dataclass(frozen=True)
class _ItemFields:
    """How errors name an item's fields: ``items[0].event`` or ``event_to_profile[0]...``."""

    event: str
    profile: str


def _check_event(
    reader: Reader, where: _ItemFields, op: str, event: object, event_ref: bool
) -> str | None:
    if event is None:
        if op not in EVENT_OPTIONAL_OPERATIONS:
            reader.fail(
                where.event,
                f"is required for op '{op}'; only "
                f"{', '.join(EVENT_OPTIONAL_OPERATIONS)} may leave it out",
            )
        if not event_ref:
            reader.fail(where.event, "must hold the value to write, as event_ref is false")
        return None
    if event_ref:
        if not isinstance(event, str) or not PATH.match(event):
            reader.fail(where.event, "must be a dotted path such as 'properties.email'")
        return event
    if not isinstance(event, str) or not event.strip():
        reader.fail(
            where.event, "must be a non-empty string (the value to write, as event_ref is false)"
        )
    if op in ("increment", "decrement"):
        try:
            float(event)
        except ValueError:
            reader.fail(where.event, f"must be a number to {op} by, got {short(event)}")
    return event


def _make_item(
    reader: Reader, where: _ItemFields, op: str, event: object, profile: object, *, event_ref: bool
) -> MappingItem:
    checked_event = _check_event(reader, where, op, event, event_ref)
    if not isinstance(profile, str) or not PATH.match(profile):
        reader.fail(where.profile, "must be a dotted path such as 'data.contact.email.main'")
    if profile.split(".", 1)[0] not in PROFILE_ROOTS:
        reader.fail(
            where.profile,
            f"must start with one of {', '.join(PROFILE_ROOTS)}, got {short(profile)}"
        )
    return MappingItem(checked_event, op, profile, event_ref)


def _daemon_item(reader: Reader, number: int, raw: object) -> MappingItem:
    where = f"items[{number}]"
    if not isinstance(raw, Mapping):
        reader.fail(where, "must be a table/object with event, op and profile")
    reader.check_keys(where, raw, _DAEMON_ITEM_KEYS)
    event_ref = raw.get("event_ref", True)
    if not isinstance(event_ref, bool):
        reader.fail(f"{where}.event_ref", "must be true or false")
    op = _operation(reader, f"{where}.op", raw.get("op"))
    names = _ItemFields(f"{where}.event", f"{where}.profile")
    return _make_item(reader, names, op, raw.get("event"), raw.get("profile"), event_ref=event_ref)


def _ref_value(reader: Reader, where: str, raw: object) -> tuple[str, bool]:
    """Tracardi's RefValue ``{"value": ..., "ref": true}`` as (value, ref)."""
    if not isinstance(raw, Mapping):
        reader.fail(where, "must be an object {value, ref}")
    reader.check_keys(where, raw, {"value", "ref"})
    value, ref = raw.get("value", ""), raw.get("ref", True)
    if value is None:
        value = ""
    if not isinstance(value, str):
        reader.fail(f"{where}.value", "must be a string")
    if not isinstance(ref, bool):
        reader.fail(f"{where}.ref", "must be true or false")
    return value, ref


def _tracardi_item(reader: Reader, number: int, raw: object) -> MappingItem | None:
    """One entry of ``event_to_profile``; None for an entry left blank, which Tracardi
    skips (an event value is optional for the ops that need none)."""
    where = f"event_to_profile[{number}]"
    if not isinstance(raw, Mapping):
        reader.fail(where, "must be an object with event, op and profile")
    reader.check_keys(where, raw, _TRACARDI_ITEM_KEYS)
    op = _operation(reader, f"{where}.op", raw.get("op"))
    event, event_ref = _ref_value(reader, f"{where}.event", raw.get("event"))
    profile, profile_ref = _ref_value(reader, f"{where}.profile", raw.get("profile"))
    if not profile.strip() or (not event.strip() and op not in EVENT_OPTIONAL_OPERATIONS):
        return None
    if not profile_ref:
        reader.fail(
            f"{where}.profile.ref", "must be true: the profile side is always a path, never a value"
        )
    names = _ItemFields(f"{where}.event.value", f"{where}.profile.value")
    if not event.strip():  # delete, or a step of 1: nothing to read or write literally
        return _make_item(reader, names, op, None, profile, event_ref=True)
    return _make_item(reader, names, op, event, profile, event_ref=event_ref)


def _item_list(reader: Reader, field: str, shape: str) -> list[Any]:
    raw = reader.data.get(field)
    reader.ignore(field)
    if not isinstance(raw, list) or not raw:
        reader.fail(field, f"must be a non-empty list of {shape}")
    return raw


@dataclass(frozen=True)
class EventToProfile(Definition):
    """Copies event values to the profile for events of ``event_type``.

    Reads the daemon's shape (``items``, ``condition``) and Tracardi's stored JSON
    (``event_to_profile``, ``config.condition``); ``to_dict()`` writes the daemon's.
    """

    kind: ClassVar[str] = "event-to-profile"
    event_type: Ref
    enabled: bool
    condition: str | None  # TQL, checked on reading; None = every event of the type
    items: tuple[MappingItem, ...]
    description: str = ""

    @functools.cached_property
    def compiled(self) -> Condition | None:
        """The condition, parsed and type-checked once per object (None without one): a
        definitions refresh keeps unchanged objects, so they are not compiled again."""
        return None if not self.condition else Condition(self.condition, condition_schema())

    @classmethod
    def _read(cls, reader: Reader) -> Self:
        ident, name = reader.string("id"), reader.string("name")
        event_type = reader.ref("event_type")
        description = reader.optional_string("description")
        if "event_to_profile" in reader.data:
            enabled, condition, items = cls._read_tracardi_shape(reader)
        else:
            enabled, condition, items = cls._read_daemon_shape(reader)
        return cls(
            id=ident,
            name=name,
            event_type=event_type,
            enabled=enabled,
            condition=condition,
            items=items,
            description=description,
        )

    @staticmethod
    def _read_daemon_shape(reader: Reader) -> tuple[bool, str | None, tuple[MappingItem, ...]]:
        condition = None
        if reader.data.get("condition") is not None:
            condition = _check_condition(reader, "condition", reader.string("condition"))
        raw = _item_list(reader, "items", "{event, op, profile}")
        items = tuple(_daemon_item(reader, number, item) for number, item in enumerate(raw))
        return reader.boolean("enabled", True), condition, items

    @staticmethod
    def _read_tracardi_shape(reader: Reader) -> tuple[bool, str | None, tuple[MappingItem, ...]]:
        if "items" in reader.data:
            reader.fail("items", "cannot be combined with event_to_profile (Tracardi's shape)")
        reader.ignore(*_TRACARDI_EXTRAS)
        config = reader.table("config")
        reader.check_keys("config", config, {"condition"})
        text = config.get("condition")
        if text is not None and not isinstance(text, str):
            reader.fail("config.condition", "must be a string")
        condition = (
            _check_condition(reader, "config.condition", text) if text and text.strip() else None
        )
        raw = _item_list(reader, "event_to_profile", "{event, op, profile}")
        items = tuple(
            item
            for number, entry in enumerate(raw)
            if (item := _tracardi_item(reader, number, entry)) is not None
        )
        if not items:
            reader.fail("event_to_profile", "has no item with both an event and a profile value")
        # Tracardi creates mappings disabled until someone switches them on
        return reader.boolean("enabled", False), condition, items

    def to_dict(self) -> dict[str, Any]:
        result = super().to_dict()
        result["items"] = [item.to_dict() for item in self.items]
        return result


def _index_schema(reader: Reader) -> dict[str, str]:
    """``{"properties.price": "traits.price"}`` -> ``{"price": "price"}``: the keys are
    relative to the event's properties, the values to its traits."""
    schema: dict[str, str] = {}
    for key, value in reader.table("index_schema").items():
        if not PATH.match(key) or not isinstance(value, str) or not PATH.match(value):
            reader.fail(
                f"index_schema.{key}",
                "must map a dotted property path to a dotted trait path, got "
                f"{short(key)} = {short(value)}",
            )
        prop = key.removeprefix("properties.")
        if prop in schema:
            reader.fail(f"index_schema.{key}", f"names property {short(prop)} a second time")
        schema[prop] = value.removeprefix("traits.")
    return schema


@dataclass(frozen=True)
class EventTypeMapping(Definition):
    """Tracardi's metadata of one event type: which properties are indexed as traits."""

    kind: ClassVar[str] = "event-type"
    event_type: str
    description: str
    enabled: bool
    index_schema: dict[str, str]  # property path -> trait path, without the roots
    journey: str | None
    tags: tuple[str, ...]

    @classmethod
    def _read(cls, reader: Reader) -> Self:
        event_type = reader.string("event_type")
        # Tracardi forces id = event_type; an explicit, different id is kept
        ident = reader.string("id") if reader.data.get("id") is not None else event_type
        reader.id = ident
        reader.ignore("build_in", "production", "running")
        return cls(
            id=ident,
            name=reader.optional_string("name") or event_type,
            event_type=event_type,
            description=reader.optional_string("description"),
            enabled=reader.boolean("enabled", True),
            index_schema=_index_schema(reader),
            journey=reader.optional_string("journey") or None,
            tags=reader.string_list("tags"),
        )
