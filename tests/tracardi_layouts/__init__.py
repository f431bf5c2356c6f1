"""Layouts of existing Tracardi installations (0.8.1, 0.8.2, 0.9) for tests of the daemon
running beside one: index bodies and names as Tracardi declares them. Sources: FACTS.md.

Creating an installation in the real services: ``install.py``; sample documents:
``documents.py``.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

LAYOUTS_DIR = Path(__file__).parent
MYSQL_09X_DDL = LAYOUTS_DIR / "mysql_09x.sql"

# Tracardi's db_version, which names the indices: 0.8.1, 0.8.2 and 0.9.x
VERSIONS: tuple[str, ...] = ("08x", "0820", "09x")
DATA_INDICES: tuple[str, ...] = ("profile", "event", "session")
DEFINITION_INDICES: tuple[str, ...] = (
    "segment",
    "live-segment",
    "event_to_profile",
    "event-management",
    "rule",
    "import",
    "task",
    "resource",
)
# 0.9 keeps the definitions in MySQL (mysql_09x.sql)
INDICES: dict[str, tuple[str, ...]] = {
    "08x": DATA_INDICES + DEFINITION_INDICES,
    "0820": DATA_INDICES + DEFINITION_INDICES,
    "09x": DATA_INDICES,
}

# 0.8.2 declares these definition indices exactly as 0.8.1 does (only rule changed: its
# dates gained formats and metadata.time.create/update), so they share the 08x files.
_SAME_AS: dict[tuple[str, str], str] = {
    ("0820", name): "08x" for name in DEFINITION_INDICES if name != "rule"
}

# Tracardi's default partitioning of the data indices (EVENT_PARTITIONING,
# PROFILE_PARTITIONING, SESSION_PARTITIONING); 0.8.1 knows months only
DEFAULT_PARTITIONING: dict[str, dict[str, str]] = {
    "08x": {"profile": "month", "event": "month", "session": "month"},
    "0820": {"profile": "quarter", "event": "month", "session": "quarter"},
    "09x": {"profile": "quarter", "event": "quarter", "session": "quarter"},
}


def check_version(version: str) -> None:
    if version not in VERSIONS:
        raise ValueError(f"unknown Tracardi version {version!r}; expected one of {VERSIONS}")


def check_index(version: str, name: str) -> None:
    check_version(version)
    if name not in INDICES[version]:
        raise ValueError(f"Tracardi {version} has no index {name!r}; it has {INDICES[version]}")


def index_body(version: str, name: str) -> dict[str, Any]:
    """``{"settings", "mappings"}`` of index ``name`` as Tracardi ``version`` declares it,
    without shard and replica counts and ``_meta`` (the installer adds them). A fresh copy."""
    check_index(version, name)
    return copy.deepcopy(_load_body(_SAME_AS.get((version, name), version), name))


@functools.cache
def _load_body(version: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((LAYOUTS_DIR / "mappings" / version / f"{name}.json")
                                      .read_text(encoding="utf-8"))
    return body


def partition_suffix(partitioning: str, year: int, month: int) -> str:
    """The suffix Tracardi gives a partition: ``2024-3`` (month, not zero-padded),
    ``2024-q1`` (quarter), ``2024-year`` (year)."""
    if partitioning == "month":
        return f"{year}-{month}"
    if partitioning == "quarter":
        return f"{year}-q{(month - 1) // 3 + 1}"
    if partitioning == "year":
        return f"{year}-year"
    raise ValueError(f"partitioning must be month, quarter or year, got {partitioning!r}")


def _env(production: bool) -> str:
    return "prod-" if production else ""


def physical_index(version: str, tenant: str, name: str, *, production: bool = False,
                   suffix: str | None = None) -> str:
    """``[prod-]{version}.{tenant}.tracardi-{name}[-{suffix}]``, the same in every version."""
    check_index(version, name)
    stem = f"{_env(production)}{version}.{tenant}.tracardi-{name}"
    return stem if suffix is None else f"{stem}-{suffix}"


def alias(version: str, tenant: str, name: str, *, production: bool = False) -> str:
    """The alias reads go through: 0.8.x ``[prod-]{tenant}.tracardi-{name}`` (no version),
    0.9 ``[prod-]{version}.{tenant}.tracardi-{name}``."""
    check_index(version, name)
    if version == "09x":
        return physical_index(version, tenant, name, production=production)
    return f"{_env(production)}{tenant}.tracardi-{name}"


def template_name(version: str, tenant: str, name: str, *, production: bool = False) -> str:
    """``[prod-]template.{version}.{tenant}.tracardi-{name}`` (partitioned indices only)."""
    check_index(version, name)
    return f"{_env(production)}template.{version}.{tenant}.tracardi-{name}"


def template_pattern(version: str, tenant: str, name: str, *, production: bool = False) -> str:
    """``[prod-]{version}.{tenant}.tracardi-{name}-*-*``: the partitions' pattern."""
    return f"{physical_index(version, tenant, name, production=production)}-*-*"
