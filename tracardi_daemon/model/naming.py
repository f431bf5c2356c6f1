"""Tracardi index names: ``[prod-]<db_version>.<tenant>.tracardi-<kind>[-<partition>]``
and the aliases ``[prod-]<tenant>.tracardi-<kind>`` that every read goes through."""

from __future__ import annotations

from datetime import UTC, datetime

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.settings import TracardiSettings

DATA_KINDS: tuple[str, ...] = ("profile", "event", "session")
DEFINITION_KINDS: tuple[str, ...] = (
    "segment",
    "live-segment",
    "event-to-profile",
    "event-type",
    "workflow-trigger",
    "import",
    "task",
)
ALL_KINDS: tuple[str, ...] = DATA_KINDS + DEFINITION_KINDS


def _check_kind(kind: str) -> None:
    if kind not in ALL_KINDS:
        raise InvalidInput(f"unknown index kind {kind!r}; expected one of {', '.join(ALL_KINDS)}")


def _env_prefix(tracardi: TracardiSettings) -> str:
    return "prod-" if tracardi.production else ""


def alias_name(tracardi: TracardiSettings, kind: str) -> str:
    """``[prod-]<tenant>.tracardi-<kind>``: what every read goes through."""
    _check_kind(kind)
    return f"{_env_prefix(tracardi)}{tracardi.tenant}.tracardi-{kind}"


def base_index_name(tracardi: TracardiSettings, kind: str) -> str:
    """``[prod-]<db_version>.<tenant>.tracardi-<kind>``: a definition index's name, a data
    kind's template name and the stem of its partitions."""
    _check_kind(kind)
    return f"{_env_prefix(tracardi)}{tracardi.db_version}.{tracardi.tenant}.tracardi-{kind}"


def partition_suffix(partitioning: str, when: datetime) -> str:
    """``2024-03`` (month), ``2024-q1`` (quarter) or ``2024`` (year) of ``when`` in UTC.

    A naive datetime is taken as UTC. Months are zero-padded so names sort by time.
    """
    moment = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if partitioning == "month":
        return f"{moment.year:04d}-{moment.month:02d}"
    if partitioning == "quarter":
        return f"{moment.year:04d}-q{(moment.month - 1) // 3 + 1}"
    if partitioning == "year":
        return f"{moment.year:04d}"
    raise InvalidInput(f"partitioning must be month, quarter or year, got {partitioning!r}")


def index_name(tracardi: TracardiSettings, kind: str, when: datetime) -> str:
    """The index a new document of ``kind`` is written to at ``when``: the partition of
    ``when`` for data kinds, the one index for definition kinds."""
    base = base_index_name(tracardi, kind)
    if kind not in DATA_KINDS:
        return base
    return f"{base}-{partition_suffix(tracardi.partitioning, when)}"


def partition_patterns(tracardi: TracardiSettings, kind: str) -> list[str]:
    """Index patterns matching every partition of a data kind, and nothing else.

    A plain ``<base>-*`` for ``event`` would also match the ``event-to-profile`` and
    ``event-type`` indices; partitions always continue with the year's first digit,
    other kinds with a letter.
    """
    base = base_index_name(tracardi, kind)
    return [f"{base}-{digit}*" for digit in "0123456789"]
