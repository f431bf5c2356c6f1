"""Times as Tracardi and the daemon store them in documents (``metadata.time.*``,
``metadata.fields``): ISO 8601 with a ``T`` or, as Tracardi writes some, a space; a time
without an offset is UTC (Tracardi runs in UTC)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def stored_time(value: Any) -> datetime | None:
    """An aware datetime, or None when ``value`` is not such a time."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
