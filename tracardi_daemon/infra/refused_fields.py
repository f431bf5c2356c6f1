"""Which field an Elasticsearch write refused for the index's mapping: read from a bulk
item's error (a value of the wrong type for its field, an object where a concrete value
is mapped or the other way round, a new field under a strict object)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MAPPING_ERROR_TYPES", "refused_field"]

MAPPING_ERROR_TYPES = frozenset({
    "mapper_parsing_exception", "document_parsing_exception", "illegal_argument_exception",
    "strict_dynamic_mapping_exception", "mapper_exception",
})
# the field is what the brackets of these reasons name (Elasticsearch 7.x to 9.x)
_FIELD_PATTERNS = (
    re.compile(r"object mapping for \[([^\]]+)\] tried to parse field"),
    re.compile(r"failed to parse field \[([^\]]+)\] of type"),
    re.compile(r"mapper \[([^\]]+)\] cannot be changed from type"),
    re.compile(r"Could not dynamically add mapping for field \[([^\]]+)\]"),
    re.compile(r"Can't merge a non object mapping \[([^\]]+)\]"),
    re.compile(r"can't merge a non object mapping \[([^\]]+)\]"),
)
_STRICT = re.compile(r"dynamic introduction of \[([^\]]+)\] within \[([^\]]+)\]")
_MAX_DEPTH = 5  # caused_by links followed


def refused_field(error: Any) -> str | None:
    """The dotted path of the field an item error refuses for mapping reasons; None for
    any other error (a version conflict, a rejected request, a refusal that names no
    field, such as the index's field limit)."""
    for _ in range(_MAX_DEPTH):
        if not isinstance(error, Mapping):
            return None
        reason = str(error.get("reason") or "")
        if error.get("type") in MAPPING_ERROR_TYPES:
            strict = _STRICT.search(reason)
            if strict:
                parent = strict.group(2)
                return strict.group(1) if parent in ("_doc", "") else \
                    f"{parent}.{strict.group(1)}"
            for pattern in _FIELD_PATTERNS:
                found = pattern.search(reason)
                if found:
                    return found.group(1)
        error = error.get("caused_by")
    return None
