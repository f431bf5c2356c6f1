"""What Tracardi's collector already did to a profile at /track: it applies the enabled
event-to-profile mappings inline, so beside it the live tail applies only the items the
collector skipped, and only where no newer write of the field exists.

The collector copies an item's value when it is truthy (``if not value: skip``), and it
reads the value as a path whether or not the item says ``ref`` (0.8.2's
``map_event_to_profile``); it knows only equals, equals-if-not-exists and append. So a
``0``, ``False`` or ``0.0`` is the daemon's to apply, and so is a literal or an op the
collector does not have. Events the daemon imported itself never passed the collector.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tracardi_daemon.model.definitions import MappingItem
from tracardi_daemon.model.mapping_ops import MISSING, read_path
from tracardi_daemon.model.stored_time import stored_time

# the ops of Tracardi's own mappings (0, 1, 2), which its collector applies
_COLLECTOR_OPS = frozenset({"equals", "equals_if_not_exists", "append"})
# metadata.status of the events the daemon's import target writes: never collected
IMPORTED_STATUS = "imported"


def collected(event: Mapping[str, Any]) -> bool:
    """Whether the event came through Tracardi's collector (and was mapped there)."""
    metadata = event.get("metadata")
    status = metadata.get("status") if isinstance(metadata, Mapping) else None
    return status != IMPORTED_STATUS


def applied_by_collector(event: Mapping[str, Any], item: MappingItem) -> bool:
    """Whether the collector applied ``item`` for ``event`` (given its definition's
    condition held, as the daemon checks before)."""
    if item.op not in _COLLECTOR_OPS or item.event is None:
        return False
    value = read_path(event, item.event)
    return value is not MISSING and bool(value)


def newer_write(profile: Mapping[str, Any], event: Mapping[str, Any], path: str) -> bool:
    """Whether ``metadata.fields`` records a write of ``path`` by another event after
    this event was collected: the collector wrote a later event's value there (the tail
    sees events seconds late), and an older value must not replace it."""
    recorded = read_path(profile, "metadata.fields")
    entry = recorded.get(path) if isinstance(recorded, Mapping) else None
    if not isinstance(entry, list) or len(entry) < 2 or entry[1] == event.get("id"):
        return False
    written = stored_time(entry[0])
    collected_at = stored_time(read_path(event, "metadata.time.insert"))
    return written is not None and collected_at is not None and written > collected_at

