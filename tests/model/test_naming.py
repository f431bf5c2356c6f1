"""Index names, partitions and aliases: pure functions of the settings and a datetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tracardi_daemon.config.settings import TracardiSettings
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.model.naming import (
    ALL_KINDS,
    DATA_KINDS,
    DEFINITION_KINDS,
    alias_name,
    base_index_name,
    index_name,
    partition_patterns,
    partition_suffix,
)

QUARTERLY = TracardiSettings(tenant="acme", db_version="090", partitioning="quarter")


@pytest.mark.parametrize(("month", "quarter"), [
    (1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2),
    (7, 3), (8, 3), (9, 3), (10, 4), (11, 4), (12, 4),
])
def test_every_month_falls_in_its_calendar_quarter(month: int, quarter: int) -> None:
    first = datetime(2024, month, 1, tzinfo=UTC)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(seconds=1)
    assert partition_suffix("quarter", first) == f"2024-q{quarter}"
    assert partition_suffix("quarter", last) == f"2024-q{quarter}"


@pytest.mark.parametrize("month", range(1, 13))
def test_every_month_is_zero_padded(month: int) -> None:
    assert partition_suffix("month", datetime(2024, month, 15, tzinfo=UTC)) == f"2024-{month:02d}"


@pytest.mark.parametrize(("partitioning", "before", "after"), [
    ("month", "2024-12", "2025-01"),
    ("quarter", "2024-q4", "2025-q1"),
    ("year", "2024", "2025"),
])
def test_year_boundary(partitioning: str, before: str, after: str) -> None:
    last_second = datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)
    first_second = datetime(2025, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert partition_suffix(partitioning, last_second) == before
    assert partition_suffix(partitioning, first_second) == after


def test_partitions_are_taken_in_utc() -> None:
    # 00:30 on Jan 1 in UTC+2 is still Dec 31 in UTC
    local = datetime(2025, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert partition_suffix("quarter", local) == "2024-q4"
    assert partition_suffix("quarter", datetime(2025, 1, 1, 0, 30)) == "2025-q1"  # naive = UTC


def test_unknown_partitioning_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="partitioning"):
        partition_suffix("week", datetime(2024, 1, 1, tzinfo=UTC))


def test_data_index_names_carry_the_partition() -> None:
    when = datetime(2024, 3, 31, 23, 59, 59, tzinfo=UTC)
    assert index_name(QUARTERLY, "profile", when) == "090.acme.tracardi-profile-2024-q1"
    assert index_name(QUARTERLY, "event", when) == "090.acme.tracardi-event-2024-q1"
    monthly = TracardiSettings(tenant="acme", db_version="090", partitioning="month")
    assert index_name(monthly, "session", when) == "090.acme.tracardi-session-2024-03"
    yearly = TracardiSettings(tenant="acme", db_version="090", partitioning="year")
    assert index_name(yearly, "session", when) == "090.acme.tracardi-session-2024"


def test_definition_indices_are_not_partitioned() -> None:
    when = datetime(2024, 3, 1, tzinfo=UTC)
    for kind in DEFINITION_KINDS:
        assert index_name(QUARTERLY, kind, when) == f"090.acme.tracardi-{kind}"


def test_production_prefix_and_aliases() -> None:
    prod = TracardiSettings(tenant="acme", db_version="090", production=True)
    when = datetime(2024, 7, 1, tzinfo=UTC)
    assert index_name(prod, "profile", when) == "prod-090.acme.tracardi-profile-2024-q3"
    assert alias_name(prod, "profile") == "prod-acme.tracardi-profile"
    assert alias_name(QUARTERLY, "event-to-profile") == "acme.tracardi-event-to-profile"
    assert base_index_name(prod, "segment") == "prod-090.acme.tracardi-segment"
    assert {alias_name(QUARTERLY, kind) for kind in ALL_KINDS} == {
        f"acme.tracardi-{kind}" for kind in ALL_KINDS}


def test_partition_patterns_match_no_other_kind() -> None:
    import fnmatch

    when = datetime(2024, 1, 1, tzinfo=UTC)
    for data_kind in DATA_KINDS:
        patterns = partition_patterns(QUARTERLY, data_kind)
        for kind in ALL_KINDS:
            name = index_name(QUARTERLY, kind, when)
            matched = any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
            assert matched == (kind == data_kind), (data_kind, name)


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="unknown index kind 'profiles'"):
        alias_name(QUARTERLY, "profiles")
