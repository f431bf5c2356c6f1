"""The names the daemon reads and writes, per ``tracardi.layout``: physical
``[prod-]<db_version>.<tenant>.tracardi-<kind>[-<partition>]`` and the alias every read
goes through, ``[prod-]<tenant>.tracardi-<kind>`` (daemon, Tracardi 0.8) or
``[prod-]<db_version>.<tenant>.tracardi-<kind>`` (Tracardi 0.9). Beside Tracardi 0.9 the
daemon keeps segments and live segments in an index of its own,
``[prod-]<db_version>.<tenant>.daemon-<kind>`` with alias ``[prod-]<tenant>.daemon-<kind>``:
no name of Tracardi's starts with ``daemon-``. The rules themselves are in
tracardi_names.py."""

from __future__ import annotations

from datetime import UTC, datetime

from tracardi_daemon.config.settings import TracardiSettings
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.model.tracardi_names import (
    ALL_KINDS,
    DATA_KINDS,
    DEFINITION_KINDS,
    LAYOUT_STYLES,
    OWN_KINDS_BESIDE_09,
    PARTITIONINGS,
    Layout,
    format_suffix,
    partition_globs,
)

__all__ = [
    "ALL_KINDS",
    "DATA_KINDS",
    "DEFINITION_KINDS",
    "alias_name",
    "base_index_name",
    "configured_layout",
    "index_name",
    "kind_partitioning",
    "own_index_beside_tracardi",
    "owned_by_tracardi",
    "partition_patterns",
    "partition_suffix",
    "template_name",
]


def _check_kind(kind: str) -> None:
    if kind not in ALL_KINDS:
        raise InvalidInput(f"unknown index kind {kind!r}; expected one of {', '.join(ALL_KINDS)}")


def _check_data_kind(kind: str) -> None:
    if kind not in DATA_KINDS:
        raise InvalidInput(f"{kind!r} is not a partitioned kind ({', '.join(DATA_KINDS)})")


def configured_layout(tracardi: TracardiSettings) -> Layout:
    """The layout of ``tracardi.layout`` with the configured version, tenant and mode."""
    return Layout.configured(tracardi)


def owned_by_tracardi(tracardi: TracardiSettings) -> bool:
    """True when the indices are an existing Tracardi installation's: the daemon then
    never creates templates or indices nor changes a mapping."""
    return configured_layout(tracardi).style == "tracardi"


def own_index_beside_tracardi(tracardi: TracardiSettings, kind: str) -> bool:
    """True for a kind the daemon keeps in an index of its own although the layout is
    Tracardi's (segments beside Tracardi 0.9): created on first write, never by install."""
    _check_kind(kind)
    return tracardi.layout == "tracardi-0.9" and kind in OWN_KINDS_BESIDE_09


def _named(tracardi: TracardiSettings, kind: str) -> tuple[Layout, str]:
    """The layout and logical name of ``kind``'s index: Tracardi 0.9 names its aliases as
    its indices, so an own index there takes the daemon's style and a name of its own."""
    layout = configured_layout(tracardi)  # checks the db_version against the layout
    if own_index_beside_tracardi(tracardi, kind):
        return Layout.from_settings(tracardi), f"daemon-{kind}"
    return layout, f"tracardi-{kind}"


def alias_name(tracardi: TracardiSettings, kind: str) -> str:
    """What every read goes through: ``[prod-]<tenant>.tracardi-<kind>``, in a Tracardi
    0.9 layout ``[prod-]<db_version>.<tenant>.tracardi-<kind>`` (the daemon's own
    segment indices there: ``[prod-]<tenant>.daemon-<kind>``)."""
    _check_kind(kind)
    layout, name = _named(tracardi, kind)
    return layout.alias(name)


def base_index_name(tracardi: TracardiSettings, kind: str) -> str:
    """``[prod-]<db_version>.<tenant>.tracardi-<kind>``: a definition index's name and the
    stem of a data kind's partitions (in the daemon layout also its template's name)."""
    _check_kind(kind)
    layout, name = _named(tracardi, kind)
    return layout.index(name)


def template_name(tracardi: TracardiSettings, kind: str) -> str:
    """The index template of a data kind: the daemon's ``base_index_name``, Tracardi's
    ``[prod-]template.<db_version>.<tenant>.tracardi-<kind>``."""
    _check_data_kind(kind)
    return configured_layout(tracardi).template(f"tracardi-{kind}")


def kind_partitioning(tracardi: TracardiSettings, kind: str) -> str:
    """How new documents of a data kind are partitioned: ``tracardi.partitioning`` in the
    daemon layout; in a Tracardi layout ``tracardi.<kind>_partitioning`` (Tracardi's
    ``*_PARTITIONING``) if set, else the version's default for the kind (0.8.1 month,
    0.8.2 profile/session quarter and event month, 0.9 quarter)."""
    _check_data_kind(kind)
    layout = configured_layout(tracardi)
    chosen = getattr(tracardi, f"{kind}_partitioning")
    if layout.style == "tracardi" and chosen is not None:
        return str(chosen)  # the installation's own *_PARTITIONING
    return layout.partitioning_of(f"tracardi-{kind}")


def partition_suffix(partitioning: str, when: datetime, *, layout: str = "daemon") -> str:
    """The suffix of the partition holding ``when`` (in UTC; a naive datetime is UTC).

    Daemon layout: ``2024-03`` (month, zero-padded so names sort by time), ``2024-q1``
    (quarter), ``2024`` (year). Tracardi layouts: ``2024-3``, ``2024-q1``, ``2024-year``.
    """
    if partitioning not in PARTITIONINGS:
        raise InvalidInput(f"partitioning must be month, quarter or year, got {partitioning!r}")
    style = LAYOUT_STYLES.get(layout)
    if style is None:
        raise InvalidInput(f"layout must be one of {', '.join(LAYOUT_STYLES)}, got {layout!r}")
    moment = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return format_suffix(style, moment.year, partitioning, month=moment.month)


def index_name(tracardi: TracardiSettings, kind: str, when: datetime) -> str:
    """The index a new document of ``kind`` is written to at ``when``: the partition of
    ``when`` for data kinds, the one index for definition kinds."""
    base = base_index_name(tracardi, kind)
    if kind not in DATA_KINDS:
        return base
    suffix = partition_suffix(kind_partitioning(tracardi, kind), when, layout=tracardi.layout)
    return f"{base}-{suffix}"


def partition_patterns(tracardi: TracardiSettings, kind: str) -> list[str]:
    """Index patterns matching every partition of a data kind, and nothing else.

    A plain ``<base>-*`` for ``event`` would also match the ``event-to-profile`` and
    ``event-type`` indices; partitions always continue with the year's first digit,
    other kinds with a letter.
    """
    return partition_globs(base_index_name(tracardi, kind))
