"""Tracardi's and the daemon's index names, partitions and collapsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import TracardiSettings
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.model import naming
from tracardi_daemon.model.tracardi_names import (
    Layout,
    collapse_suffix,
    format_suffix,
    parse_partition,
    tracardi_tenant,
)


@pytest.mark.parametrize(("version", "tenant"),
                         [("08x", "01506"), ("0820", "ffe49"), ("09x", "8504a")])
def test_default_tenant_is_md5_of_the_version(version: str, tenant: str) -> None:
    assert tracardi_tenant(version) == tenant


def test_single_index_names() -> None:
    layout = Layout("08x", "01506")
    assert layout.index("tracardi-segment") == "08x.01506.tracardi-segment"
    production = Layout("09x", "8504a", production=True)
    assert production.index("tracardi-segment") == "prod-09x.8504a.tracardi-segment"


def test_static_indices_have_no_production_prefix() -> None:
    assert Layout("09x", "8504a").index("tracardi-bridge", static=True) == (
        "static-09x.8504a.tracardi-bridge")
    assert Layout("09x", "8504a", production=True).index("tracardi-bridge", static=True) == (
        "static-09x.8504a.tracardi-bridge")


def test_the_daemon_has_no_static_indices() -> None:
    with pytest.raises(InvalidInput, match="no static"):
        Layout("100", "acme", style="daemon").index("tracardi-bridge", static=True)


@pytest.mark.parametrize("name", ["Tracardi-Profile", "a.b", "", "-x"])
def test_names_must_be_logical(name: str) -> None:
    with pytest.raises(InvalidInput, match="logical name"):
        Layout("08x", "01506").index(name)


def test_layout_fields_are_checked() -> None:
    with pytest.raises(InvalidInput, match="'tenant'"):
        Layout("08x", "Acme")
    with pytest.raises(InvalidInput, match="'style'"):
        Layout("08x", "acme", style="other")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="'partitioning'"):
        Layout("08x", "acme", partitioning="day")


@pytest.mark.parametrize(("layout", "alias"), [
    (Layout("08x", "01506"), "01506.tracardi-profile"),
    (Layout("0820", "ffe49", production=True), "prod-ffe49.tracardi-profile"),
    (Layout("09x", "8504a"), "09x.8504a.tracardi-profile"),
    (Layout("09x", "8504a", production=True), "prod-09x.8504a.tracardi-profile"),
    (Layout("100", "acme"), "100.acme.tracardi-profile"),
    (Layout("100", "acme", style="daemon"), "acme.tracardi-profile"),
    (Layout("100", "acme", production=True, style="daemon"), "prod-acme.tracardi-profile"),
])
def test_aliases(layout: Layout, alias: str) -> None:
    assert layout.alias("tracardi-profile") == alias


@pytest.mark.parametrize("production", [False, True])
def test_a_daemon_layout_names_like_naming(production: bool) -> None:
    settings = TracardiSettings(tenant="acme", db_version="100", production=production,
                                partitioning="month")
    layout = Layout.from_settings(settings)
    assert layout == Layout("100", "acme", production, "daemon", "month")
    for kind in naming.ALL_KINDS:
        assert layout.index(f"tracardi-{kind}") == naming.base_index_name(settings, kind)
        assert layout.alias(f"tracardi-{kind}") == naming.alias_name(settings, kind)
    when = datetime(2024, 3, 5, tzinfo=UTC)
    for partitioning in ("month", "quarter", "year"):
        name = naming.index_name(TracardiSettings(tenant="acme", db_version="100",
                                                  production=production,
                                                  partitioning=partitioning),
                                 "profile", when)
        match = layout.partition_regex("tracardi-profile").match(name)
        assert match is not None, name
    assert layout.partition_pattern("tracardi-event") == ",".join(
        naming.partition_patterns(settings, "event"))


@pytest.mark.parametrize(("name", "suffix"), [
    ("08x.01506.tracardi-profile-2023-10", "2023-10"),
    ("08x.01506.tracardi-profile-2024-3", "2024-3"),
    ("08x.01506.tracardi-profile-2024-q1", "2024-q1"),
    ("08x.01506.tracardi-profile-2024-year", "2024-year"),
])
def test_tracardi_partition_regex_matches(name: str, suffix: str) -> None:
    match = Layout("08x", "01506").partition_regex("tracardi-profile").match(name)
    assert match is not None and match["suffix"] == suffix


@pytest.mark.parametrize("name", [
    "08x.01506.tracardi-profile",  # the single index, not a partition
    "prod-08x.01506.tracardi-profile-2024-3",  # another mode
    "08x.01506.tracardi-profile-2024",  # the daemon's year form
    "08x.01506.tracardi-profile-2024-q5",
    "08x.01506.tracardi-profile-2024-3/5",  # 0.8.2's day form
    "08x.01506.tracardi-profile-2024-123",
    "0820.01506.tracardi-profile-2024-3",  # another version
    "08x.01506.tracardi-event-management",
])
def test_tracardi_partition_regex_refuses(name: str) -> None:
    assert Layout("08x", "01506").partition_regex("tracardi-profile").match(name) is None


def test_production_partition_regex() -> None:
    regex = Layout("09x", "8504a", production=True).partition_regex("tracardi-profile")
    assert regex.match("prod-09x.8504a.tracardi-profile-2024-q1")
    assert not regex.match("09x.8504a.tracardi-profile-2024-q1")


@pytest.mark.parametrize(("suffix", "matches"), [
    ("2024-03", True), ("2024-q2", True), ("2024", True),
    ("2024-3", False), ("2024-year", False), ("2024-q0", False),
])
def test_daemon_partition_regex(suffix: str, matches: bool) -> None:
    regex = Layout("100", "acme", style="daemon").partition_regex("tracardi-event")
    assert bool(regex.match(f"100.acme.tracardi-event-{suffix}")) is matches


@pytest.mark.parametrize(("suffix", "parsed"), [
    ("2024-3", (2024, 3, "month")),
    ("2024-03", (2024, 3, "month")),
    ("2024-12", (2024, 12, "month")),
    ("2024-q4", (2024, None, "quarter")),
    ("2024-year", (2024, None, "year")),
    ("2024", (2024, None, "year")),
])
def test_parse_partition(suffix: str, parsed: tuple[int, int | None, str]) -> None:
    assert parse_partition(suffix) == parsed


@pytest.mark.parametrize("suffix", ["2024-13", "2024-0", "2024-35", "24-3", "2024-q5", "x"])
def test_parse_partition_refuses(suffix: str) -> None:
    with pytest.raises(InvalidInput, match=repr(suffix)):
        parse_partition(suffix)


QUARTERS = {1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 6: 2, 7: 3, 8: 3, 9: 3, 10: 4, 11: 4, 12: 4}


@pytest.mark.parametrize("month", range(1, 13))
def test_collapse_into_quarters_for_every_month(month: int) -> None:
    expected = f"2024-q{QUARTERS[month]}"
    assert collapse_suffix(2024, month, "quarter", "tracardi") == expected
    assert collapse_suffix(2024, month, "quarter", "daemon") == expected
    # the daemon's own naming agrees
    when = datetime(2024, month, 15, tzinfo=UTC)
    assert naming.partition_suffix("quarter", when) == expected


@pytest.mark.parametrize("month", range(1, 13))
def test_collapse_into_years_and_months(month: int) -> None:
    assert collapse_suffix(2024, month, "year", "tracardi") == "2024-year"
    assert collapse_suffix(2024, month, "year", "daemon") == "2024"
    assert collapse_suffix(2024, month, "month", "tracardi") == f"2024-{month}"
    assert collapse_suffix(2024, month, "month", "daemon") == f"2024-{month:02d}"


def test_collapse_refuses_bad_input() -> None:
    with pytest.raises(InvalidInput, match="month"):
        collapse_suffix(2024, 13, "quarter", "tracardi")
    with pytest.raises(InvalidInput, match="partitioning"):
        collapse_suffix(2024, 1, "week", "tracardi")


def test_format_suffix_keeps_a_quarter() -> None:
    assert format_suffix("daemon", 2023, "quarter", quarter=3) == "2023-q3"
    with pytest.raises(InvalidInput):
        format_suffix("daemon", 2023, "month")


def test_partition_pattern_lists_partitions_only(elastic_client: Elasticsearch,
                                                 prefix: str) -> None:
    """The pattern, as Elasticsearch expands it, holds the partitions and none of the
    indices whose names merely start the same; the regex then keeps Tracardi's forms."""
    layout = Layout("08x", prefix)
    partitions = [f"08x.{prefix}.tracardi-event-2024-3", f"08x.{prefix}.tracardi-event-2024-q2",
                  f"08x.{prefix}.tracardi-event-2023-11"]
    others = [f"08x.{prefix}.tracardi-event-management", f"08x.{prefix}.tracardi-event",
              f"08x.{prefix}.tracardi-event-2024-3-x"]
    for name in partitions + others:
        elastic_client.indices.create(index=name, settings={"number_of_replicas": 0})
    listed = sorted(elastic_client.indices.get(index=layout.partition_pattern("tracardi-event"),
                                               expand_wildcards="open").body)
    regex = layout.partition_regex("tracardi-event")
    assert sorted(name for name in listed if regex.match(name)) == sorted(partitions)
    assert f"08x.{prefix}.tracardi-event-management" not in listed
