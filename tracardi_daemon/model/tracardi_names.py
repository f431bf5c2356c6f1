"""How Tracardi (0.8.x, 0.9/1.0) and the daemon name indices, aliases and partitions:
the layouts a migration copies from and to, and the one the daemon is configured to work
on (``tracardi.layout``). Pure functions; nothing here talks to ES."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from tracardi_daemon.config.settings import TracardiSettings
from tracardi_daemon.errors import InvalidInput

# the daemon's kinds of index; naming.py re-exports them
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
# what the daemon keeps in indices of its own beside Tracardi 0.9: Tracardi 0.9's open
# source keeps segments nowhere the daemon could read them (no MySQL table since 0.9.0-dev)
OWN_KINDS_BESIDE_09: tuple[str, ...] = ("segment", "live-segment")

Style = Literal["tracardi", "daemon"]
STYLES: tuple[str, ...] = ("tracardi", "daemon")
# the naming style of each ``tracardi.layout``
LAYOUT_STYLES: dict[str, Style] = {
    "daemon": "daemon",
    "tracardi-0.8": "tracardi",
    "tracardi-0.9": "tracardi",
}
PARTITIONINGS: tuple[str, ...] = ("month", "quarter", "year")
# a logical name such as "tracardi-profile" or "tracardi-event_to_profile": no dots, so
# it cannot be mistaken for part of the version.tenant prefix
LOGICAL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# Tracardi's partition suffix, as its migration manager matches it (no zero padding)
_TRACARDI_SUFFIX = r"\d{4}-(?:\d{1,2}|q[1-4]|year)"
# the daemon's (naming.partition_suffix): zero-padded month, quarter or bare year
_DAEMON_SUFFIX = r"\d{4}(?:-\d{2}|-q[1-4])?"
_SUFFIX = re.compile(r"^(?P<year>\d{4})(?:-(?:(?P<month>\d{1,2})|q(?P<quarter>[1-4])|"
                     r"(?P<word>year)))?$")
# 0.0.x to 0.8.x aliases carry no version; 0.9 added it
_VERSIONLESS_ALIAS = re.compile(r"^0[0-8]")
# Tracardi's default partitioning of its data indices (EVENT_PARTITIONING,
# PROFILE_PARTITIONING, SESSION_PARTITIONING): 0.8.1 and older know months only, 0.8.2
# made profiles and sessions quarterly, 0.9 everything
_PARTITIONING_0820 = {"tracardi-profile": "quarter", "tracardi-event": "month",
                      "tracardi-session": "quarter"}
_PARTITIONED = tuple(_PARTITIONING_0820)


# what the names of a production installation's indices start with
PRODUCTION_PREFIX = "prod-"


def tracardi_partitioning(version: str, name: str) -> str:
    """How Tracardi ``version`` partitions the data index ``name`` by default (its
    ``*_PARTITIONING`` settings can override this): ``08x`` and older by month, ``0820``
    profile and session by quarter and event by month, ``09x`` and later by quarter."""
    if name not in _PARTITIONED:
        raise InvalidInput(f"index {name!r} is not a partitioned data index "
                           f"({', '.join(_PARTITIONED)})")
    if not _VERSIONLESS_ALIAS.match(version):
        return "quarter"
    return _PARTITIONING_0820[name] if version == "0820" else "month"


def partition_globs(base: str) -> list[str]:
    """Patterns matching every partition of the index ``base`` and nothing else:
    ``<base>-*`` for ``tracardi-event`` would also match ``tracardi-event-management``;
    a partition continues with the year's first digit, another index with a letter."""
    return [f"{base}-{digit}*" for digit in "0123456789"]


def tracardi_tenant(version: str) -> str:
    """Tracardi's tenant when TENANT_NAME is unset: ``md5(version)[:5]``."""
    return hashlib.md5(version.encode(), usedforsecurity=False).hexdigest()[:5]


def daemon_kind(name: str) -> str | None:
    """``tracardi-profile`` -> ``profile``; None when the daemon has no such kind."""
    kind = name.removeprefix("tracardi-")
    return kind if name.startswith("tracardi-") and kind in ALL_KINDS else None


def _check_name(name: str) -> None:
    if not LOGICAL_NAME.match(name):
        raise InvalidInput(f"index name {name!r} must be a logical name such as "
                           "'tracardi-profile' (lower case letters, digits, '-' and '_')")


@dataclass(frozen=True)
class Layout:
    """Where a migration reads or writes: one installation's version, tenant and mode.

    ``partitioning`` is the daemon's one partitioning of profile/event/session (a
    Tracardi installation partitions each index differently, so it stays None there).
    """

    version: str
    tenant: str
    production: bool = False
    style: Style = "tracardi"
    partitioning: str | None = None

    def __post_init__(self) -> None:
        for field, value in (("version", self.version), ("tenant", self.tenant)):
            if not LOGICAL_NAME.match(value):
                raise InvalidInput(f"layout: field '{field}' must be lower case letters, "
                                   f"digits, '-' or '_', got {value!r}")
        if self.style not in STYLES:
            raise InvalidInput(f"layout: field 'style' must be one of {', '.join(STYLES)}, "
                               f"got {self.style!r}")
        if self.partitioning is not None and self.partitioning not in PARTITIONINGS:
            raise InvalidInput(f"layout: field 'partitioning' must be one of "
                               f"{', '.join(PARTITIONINGS)}, got {self.partitioning!r}")

    @classmethod
    def from_settings(cls, tracardi: TracardiSettings) -> Layout:
        """The daemon's own layout for the configured version, tenant and mode (a
        migration's default target), whatever ``tracardi.layout`` says."""
        return cls(version=tracardi.db_version, tenant=tracardi.tenant,
                   production=tracardi.production, style="daemon",
                   partitioning=tracardi.partitioning)

    @classmethod
    def configured(cls, tracardi: TracardiSettings) -> Layout:
        """The layout whose names the daemon reads and writes (``tracardi.layout``): its
        own, or an existing Tracardi installation's, whose db_version must match."""
        style = LAYOUT_STYLES.get(tracardi.layout)
        if style is None:
            raise InvalidInput(f"'tracardi.layout' must be one of "
                               f"{', '.join(LAYOUT_STYLES)}, got {tracardi.layout!r}")
        if style == "daemon":
            return cls.from_settings(tracardi)
        versionless = bool(_VERSIONLESS_ALIAS.match(tracardi.db_version))
        if versionless != (tracardi.layout == "tracardi-0.8"):
            raise InvalidInput(
                f"'tracardi.db_version' {tracardi.db_version!r} is not a version of layout "
                f"{tracardi.layout!r} (0.8.1 is '08x', 0.8.2 '0820', 0.9 '09x')")
        return cls(version=tracardi.db_version, tenant=tracardi.tenant,
                   production=tracardi.production, style="tracardi")

    @property
    def _env(self) -> str:
        return PRODUCTION_PREFIX if self.production else ""

    def index(self, name: str, *, static: bool = False) -> str:
        """A single index: ``[prod-]{version}.{tenant}.{name}``; static indices (bridges,
        plugins) ``static-{version}.{tenant}.{name}`` in both modes."""
        _check_name(name)
        if static:
            if self.style == "daemon":
                raise InvalidInput(f"index {name!r}: the daemon has no static indices")
            return f"static-{self.version}.{self.tenant}.{name}"
        return f"{self._env}{self.version}.{self.tenant}.{name}"

    def partition_pattern(self, name: str) -> str:
        """An ES multi-target pattern for listing the partitions of ``name``:
        ``tracardi-event-*`` would also match ``tracardi-event-management``, a partition
        continues with the year's first digit. ``partition_regex`` keeps exactly them."""
        return ",".join(partition_globs(self.index(name)))

    def partition_regex(self, name: str) -> re.Pattern[str]:
        """Matches a whole partition name of ``name``; group ``suffix`` is its suffix."""
        suffix = _TRACARDI_SUFFIX if self.style == "tracardi" else _DAEMON_SUFFIX
        return re.compile(f"^{re.escape(self.index(name))}-(?P<suffix>{suffix})$")

    def alias(self, name: str) -> str:
        """What reads go through: 0.8.x and the daemon ``[prod-]{tenant}.{name}``, 0.9 and
        later ``[prod-]{version}.{tenant}.{name}``."""
        _check_name(name)
        if self.style == "tracardi" and not _VERSIONLESS_ALIAS.match(self.version):
            return self.index(name)
        return f"{self._env}{self.tenant}.{name}"

    def template(self, name: str) -> str:
        """The index template of a partitioned index: Tracardi's
        ``[prod-]template.{version}.{tenant}.{name}``, the daemon's is named as the
        partitions' stem ``[prod-]{version}.{tenant}.{name}``."""
        if self.style == "daemon":
            return self.index(name)
        _check_name(name)
        return f"{self._env}template.{self.version}.{self.tenant}.{name}"

    def partitioning_of(self, name: str) -> str:
        """How new documents of the data index ``name`` are partitioned: the daemon's one
        partitioning, or Tracardi's default for the version and index."""
        if self.style == "tracardi":
            return tracardi_partitioning(self.version, name)
        if self.partitioning is None:
            raise InvalidInput(f"layout of {self.version}.{self.tenant}: no partitioning")
        return self.partitioning


def _quarter(month: int) -> int:
    # Tracardi's reindex_to_one_index used month % 4 + 1 (January -> q2): wrong
    return (month - 1) // 3 + 1


def format_suffix(style: Style, year: int, kind: str, *, month: int | None = None,
                  quarter: int | None = None) -> str:
    """A partition suffix in ``style``: Tracardi ``2024-3``, ``2024-q1``, ``2024-year``;
    the daemon ``2024-03``, ``2024-q1``, ``2024``. A quarter needs ``quarter`` or
    ``month``, a month ``month``."""
    if quarter is None and month is not None:
        quarter = _quarter(month)
    if kind == "month" and month is not None:
        return f"{year:04d}-{month:02d}" if style == "daemon" else f"{year:04d}-{month}"
    if kind == "quarter" and quarter is not None:
        return f"{year:04d}-q{quarter}"
    if kind == "year":
        return f"{year:04d}" if style == "daemon" else f"{year:04d}-year"
    raise InvalidInput(f"no {kind!r} partition suffix for year {year}, month {month}, "
                       f"quarter {quarter}")


@dataclass(frozen=True)
class Partition:
    """A parsed partition suffix; ``quarter`` is set for quarter (and month) forms."""

    year: int
    month: int | None
    quarter: int | None
    kind: str


def read_partition(suffix: str) -> Partition:
    """``2024-3``/``2024-03`` (month), ``2024-q1`` (quarter), ``2024-year``/``2024``
    (year), in either style."""
    match = _SUFFIX.match(suffix)
    if match is None:
        raise InvalidInput(f"partition suffix {suffix!r} is not YYYY-M, YYYY-MM, YYYY-qN, "
                           "YYYY-year or YYYY")
    year = int(match["year"])
    if match["month"] is not None:
        month = int(match["month"])
        if not 1 <= month <= 12:
            raise InvalidInput(f"partition suffix {suffix!r}: month {month} is not 1 to 12 "
                               "(a day or hour partition cannot be migrated)")
        return Partition(year, month, _quarter(month), "month")
    if match["quarter"] is not None:
        return Partition(year, None, int(match["quarter"]), "quarter")
    return Partition(year, None, None, "year")


_NAME_SUFFIX = re.compile(r"-(?P<suffix>\d{4}(?:-(?:\d{1,2}|q[1-4]|year))?)$")


def partition_order(index: str) -> tuple[int, int, str]:
    """Sorts the indices of one alias by time, oldest first, in either style: Tracardi's
    ``2024-9`` before ``2024-10`` (a plain string sort puts it after), a quarter or year
    at its first month; an index without a partition suffix first."""
    match = _NAME_SUFFIX.search(index)
    if match is None:
        return (0, 0, index)
    try:
        partition = read_partition(match["suffix"])
    except InvalidInput:  # e.g. a day suffix: not ours to order
        return (0, 0, index)
    first_month = partition.month or 3 * ((partition.quarter or 1) - 1) + 1
    return (partition.year, first_month, index)


def parse_partition(suffix: str) -> tuple[int, int | None, str]:
    """(year, month or None, "month" | "quarter" | "year") of a suffix in either style."""
    partition = read_partition(suffix)
    return partition.year, partition.month, partition.kind


def collapse_suffix(year: int, month: int, partitioning: str, style: Style) -> str:
    """The suffix of the ``partitioning`` partition holding ``month`` of ``year``, in
    ``style``: quarter ``(month - 1) // 3 + 1``."""
    if not 1 <= month <= 12:
        raise InvalidInput(f"month must be 1 to 12, got {month}")
    if partitioning not in PARTITIONINGS:
        raise InvalidInput(f"partitioning must be one of {', '.join(PARTITIONINGS)}, "
                           f"got {partitioning!r}")
    return format_suffix(style, year, partitioning, month=month)


def coarser(kind: str, collapse: str | None) -> str:
    """The partitioning a ``kind`` partition lands in when collapsed to ``collapse``:
    never finer than the source (a quarter cannot be split into months)."""
    if collapse is None:
        return kind
    return max(kind, collapse, key=PARTITIONINGS.index)


def check_daemon_name(name: str, *, multi: bool, static: bool) -> str | None:
    """Why ``name`` cannot be an index of a daemon layout, or None when it can."""
    kind = daemon_kind(name)
    if kind is None:
        return (f"must be one of the daemon's indices "
                f"({', '.join('tracardi-' + kind for kind in ALL_KINDS)}), got {name!r}")
    if static:
        return "cannot be static: the daemon has no static indices"
    partitioned = kind in DATA_KINDS
    if multi != partitioned:
        return (f"{name!r} is {'partitioned' if partitioned else 'a single index'} in the "
                f"daemon: set multi = {'true' if partitioned else 'false'}")
    return None
