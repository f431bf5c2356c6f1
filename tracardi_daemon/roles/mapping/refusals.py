"""Profiles of one mapping batch whose write Elasticsearch refused for the index's mapping
(e.g. a string for ``traits.name`` where another profile made it an object). Such a
profile is written again without the events whose values conflict: in its next round
every value an event writes is checked against the index's current mapping, and an event
that writes a conflicting value fails on its own (all or nothing, as any event failure),
with a reason naming the field and the mapping. The profile's other events, and every
other profile, are written.

Rounds per refused field: first the values are checked by shape (object or not, strict
objects) and, for the field refused, by type (numbers, booleans); if Elasticsearch refuses
the same field again, every event writing it fails; if it refuses it a third time the
profile's stored value is what it refuses, and all the profile's events fail with that
reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch

from tracardi_daemon.model.field_conflicts import (
    IndexMappings,
    describe,
    leaf_conflict,
    overlaps,
    preview,
    shape_conflict,
)
from tracardi_daemon.model.mapping_ops import MISSING, MappingConflict, read_path
from tracardi_daemon.model.profiles import Saved

__all__ = ["MAX_REFUSED_ROUNDS", "RefusedProfiles", "refusal_reason"]

MAX_REFUSED_ROUNDS = 8  # rounds of one batch that write refused profiles again
_CHECKED_ROUNDS = 2  # refusals of one field after which every event writing it fails
_ERROR_CHARS = 160
# Elasticsearch quotes the refused value in its reason; the daemon quotes a prefix itself
_VALUE_PREVIEW = re.compile(r"\.?\s*Preview of field's value:.*", re.DOTALL)


@dataclass
class _Refusal:
    index: str
    fields: dict[str, int] = field(default_factory=dict)  # field -> times refused
    last_field: str = ""
    error: str = ""


class RefusedProfiles:
    """The refused profiles of one batch and the check their next round applies; the
    index mappings are read when the first refusal comes, once per batch."""

    def __init__(self, elastic: Elasticsearch) -> None:
        self._mappings = IndexMappings(elastic)
        self._refused: dict[str, _Refusal] = {}

    def record(self, saved: Saved[Any]) -> bool:
        """Remember a profile refused for its mapping; True if a next round may write it
        without the events whose values conflict."""
        refused = saved.refused_field
        if saved.status != "failed" or refused is None or saved.index is None:
            return False
        refusal = self._refused.setdefault(saved.profile_id, _Refusal(saved.index))
        refusal.fields[refused] = refusal.fields.get(refused, 0) + 1
        refusal.last_field, refusal.error = refused, saved.error or ""
        return refusal.fields[refused] <= _CHECKED_ROUNDS

    def check(self, profile_id: str) -> Callable[[str, Any], None] | None:
        """What a round applies to each value an event writes to this profile; None for
        a profile that was not refused."""
        refusal = self._refused.get(profile_id)
        if refusal is None:
            return None
        mapping = self._mappings.get(refusal.index)

        def check(path: str, value: Any) -> None:
            conflict = shape_conflict(mapping, refusal.index, path, value)
            for refused, times in refusal.fields.items():
                if conflict is not None:
                    break
                if not overlaps(path, refused):
                    continue
                inside = _inside(value, path, refused)
                if inside is not MISSING:
                    conflict = leaf_conflict(mapping, refusal.index, refused, inside)
                if conflict is None and times >= _CHECKED_ROUNDS:
                    conflict = _refused_text(mapping, refusal.index, refused,
                                             value if inside is MISSING else inside,
                                             refusal.error)
            if conflict is not None:
                raise MappingConflict(conflict)

        return check

    def reason(self, profile_id: str) -> str | None:
        """Why a profile still refused after its rounds was not written."""
        refusal = self._refused.get(profile_id)
        if refusal is None:
            return None
        mapping = self._mappings.get(refusal.index)
        return (f"{refusal.last_field}: the index {refusal.index} "
                f"{describe(mapping, refusal.last_field)}, and refuses the value the "
                f"profile holds ({_short(refusal.error)})")


def refusal_reason(mappings: IndexMappings, index: str, refused: str,
                   document: Any, error: str | None) -> str:
    """Why ``index`` refused ``document`` (a partial document written to it) for the
    field ``refused``: the conflict the checks find, else what the index maps there and
    what Elasticsearch said."""
    mapping = mappings.get(index)
    value = read_path(document, refused) if isinstance(document, dict) else MISSING
    if value is MISSING:
        return f"{refused}: the index {index} {describe(mapping, refused)} ({_short(error)})"
    return (shape_conflict(mapping, index, refused, value)
            or leaf_conflict(mapping, index, refused, value)
            or _refused_text(mapping, index, refused, value, error))


def _inside(value: Any, path: str, refused: str) -> Any:
    """The part of ``value`` (written at ``path``) that lands on ``refused``; MISSING
    when ``path`` lies inside ``refused`` or the value has nothing there."""
    if refused == path:
        return value
    if not refused.startswith(path + "."):
        return MISSING
    return read_path(value, refused[len(path) + 1:]) if isinstance(value, dict) else MISSING


def _refused_text(mapping: Any, index: str, refused: str, value: Any,
                  error: str | None) -> str:
    return (f"{refused}: the index {index} {describe(mapping, refused)}, and refused "
            f"{preview(value)} for it ({_short(error)})")


def _short(error: str | None) -> str:
    text = " ".join(_VALUE_PREVIEW.sub("", error or "refused").split())
    return text[:_ERROR_CHARS] + ("..." if len(text) > _ERROR_CHARS else "")
