"""The daemon's names in the Tracardi layouts are exactly Tracardi's (compared with this
folder's own naming helpers and with real installations), the daemon layout is unchanged,
a profile is written back into its own older partition, and install changes nothing of a
Tracardi installation."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from redis import Redis

from tests.tracardi_layouts import (
    DATA_INDICES,
    DEFAULT_PARTITIONING,
    alias,
    physical_index,
    template_name,
)
from tests.tracardi_layouts import partition_suffix as tracardi_suffix
from tests.tracardi_layouts.documents import profile_document
from tests.tracardi_layouts.install import TracardiInstall, install_tracardi_elastic
from tracardi_daemon.cli import indices as commands
from tracardi_daemon.config.settings import Settings, TracardiSettings
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.bulk import BulkWriter
from tracardi_daemon.model import indices, naming
from tracardi_daemon.model.profiles import LoadedProfile, ProfileStore, Rewrite
from tracardi_daemon.model.tracardi_names import partition_order

LAYOUT = {"08x": "tracardi-0.8", "0820": "tracardi-0.8", "09x": "tracardi-0.9"}
MONTHS = range(1, 13)


def _settings(version: str, tenant: str, *, production: bool = False) -> Settings:
    return Settings(tracardi=TracardiSettings(tenant=tenant, db_version=version,
                                              production=production, layout=LAYOUT[version]))


# ------------------------------------------------------------------- names, no backend

@pytest.mark.parametrize("production", [False, True])
@pytest.mark.parametrize("version", LAYOUT)
def test_names_are_tracardis(version: str, production: bool) -> None:
    tracardi = _settings(version, "01506", production=production).tracardi
    assert naming.owned_by_tracardi(tracardi)
    for kind in DATA_INDICES:
        assert naming.alias_name(tracardi, kind) == alias(
            version, "01506", kind, production=production)
        assert naming.base_index_name(tracardi, kind) == physical_index(
            version, "01506", kind, production=production)
        assert naming.template_name(tracardi, kind) == template_name(
            version, "01506", kind, production=production)
        assert naming.kind_partitioning(tracardi, kind) == DEFAULT_PARTITIONING[version][kind]
        for month in MONTHS:
            suffix = tracardi_suffix(DEFAULT_PARTITIONING[version][kind], 2024, month)
            assert naming.index_name(tracardi, kind, datetime(2024, month, 9, tzinfo=UTC)) \
                == physical_index(version, "01506", kind, production=production,
                                  suffix=suffix)


@pytest.mark.parametrize("layout", ["tracardi-0.8", "tracardi-0.9"])
@pytest.mark.parametrize("partitioning", ["month", "quarter", "year"])
def test_partition_suffixes_are_tracardis_for_every_month(layout: str,
                                                          partitioning: str) -> None:
    for month in MONTHS:
        assert naming.partition_suffix(partitioning, datetime(2024, month, 28, 23, 59),
                                       layout=layout) == \
            tracardi_suffix(partitioning, 2024, month)


def test_the_examples_of_tracardis_own_code() -> None:
    prod_09x = TracardiSettings(tenant="8504a", db_version="09x", production=True,
                                layout="tracardi-0.9")
    q1 = datetime(2024, 2, 1, tzinfo=UTC)
    assert naming.index_name(prod_09x, "profile", q1) == "prod-09x.8504a.tracardi-profile-2024-q1"
    assert naming.alias_name(prod_09x, "profile") == "prod-09x.8504a.tracardi-profile"
    v08x = TracardiSettings(tenant="01506", db_version="08x", layout="tracardi-0.8")
    october = datetime(2023, 10, 2, tzinfo=UTC)
    assert naming.index_name(v08x, "profile", october) == "08x.01506.tracardi-profile-2023-10"
    assert naming.alias_name(v08x, "profile") == "01506.tracardi-profile"


@pytest.mark.parametrize("production", [False, True])
def test_the_daemon_layout_is_unchanged(production: bool) -> None:
    env = "prod-" if production else ""
    for partitioning, suffixes in (
            ("month", [f"2024-{month:02d}" for month in MONTHS]),
            ("quarter", [f"2024-q{(month - 1) // 3 + 1}" for month in MONTHS]),
            ("year", ["2024"] * 12)):
        tracardi = TracardiSettings(tenant="acme", db_version="100", production=production,
                                    partitioning=partitioning)
        assert not naming.owned_by_tracardi(tracardi)
        for kind in ("profile", "event", "session"):
            assert naming.alias_name(tracardi, kind) == f"{env}acme.tracardi-{kind}"
            assert naming.template_name(tracardi, kind) == f"{env}100.acme.tracardi-{kind}"
            assert naming.kind_partitioning(tracardi, kind) == partitioning
            assert naming.partition_patterns(tracardi, kind) == [
                f"{env}100.acme.tracardi-{kind}-{digit}*" for digit in "0123456789"]
            for month, suffix in zip(MONTHS, suffixes, strict=True):
                when = datetime(2024, month, 15, tzinfo=UTC)
                assert naming.partition_suffix(partitioning, when) == suffix
                assert naming.index_name(tracardi, kind, when) == \
                    f"{env}100.acme.tracardi-{kind}-{suffix}"
        assert naming.index_name(tracardi, "segment", datetime(2024, 1, 1)) == \
            f"{env}100.acme.tracardi-segment"


def test_a_db_version_of_another_layout_is_refused() -> None:
    for version, layout in (("09x", "tracardi-0.8"), ("08x", "tracardi-0.9"),
                            ("100", "tracardi-0.8")):
        tracardi = TracardiSettings(tenant="acme", db_version=version, layout=layout)
        with pytest.raises(InvalidInput, match="db_version"):
            naming.alias_name(tracardi, "profile")


# ----------------------------------------------------------- real installations

@pytest.fixture(params=list(LAYOUT))
def version(request: pytest.FixtureRequest) -> str:
    result: str = request.param
    return result


def _older_and_newer(version: str, kind: str) -> list[str]:
    partitioning = DEFAULT_PARTITIONING[version][kind]
    return [tracardi_suffix(partitioning, 2024, 2), tracardi_suffix(partitioning, 2024, 5)]


@pytest.fixture
def two_partitions(elastic_client: Elasticsearch, prefix: str,
                   version: str) -> Iterator[TracardiInstall]:
    """An installation of ``version`` with partitions of February and May 2024."""
    install = install_tracardi_elastic(
        elastic_client, version, prefix,
        partitions={kind: _older_and_newer(version, kind) for kind in DATA_INDICES})
    yield install
    install.drop()


@pytest.mark.parametrize("production", [False, True])
def test_names_match_a_real_installation(elastic_client: Elasticsearch, prefix: str,
                                         version: str, production: bool) -> None:
    install = install_tracardi_elastic(elastic_client, version, prefix, production=production)
    try:
        settings = _settings(version, prefix, production=production)
        march = datetime(2024, 3, 5, tzinfo=UTC)
        for kind in DATA_INDICES:
            installed = install.indices[kind]
            assert naming.alias_name(settings.tracardi, kind) == installed.alias
            assert naming.index_name(settings.tracardi, kind, march) == installed.write_index
            assert naming.template_name(settings.tracardi, kind) == installed.template
        report = indices.status(elastic_client, settings)
        assert [kind.kind for kind in report.kinds] == list(DATA_INDICES)
        assert report.missing == () and report.conflicts == ()
        for kind in report.kinds:
            assert kind.aliased == kind.indices == install.indices[kind.kind].indices
            assert kind.template == install.indices[kind.kind].template
    finally:
        install.drop()


def test_a_profile_is_written_back_into_its_older_partition(
        two_partitions: TracardiInstall, redis_client: Redis) -> None:
    es, version = two_partitions.elastic, two_partitions.version
    older, newer = two_partitions.indices["profile"].indices
    es.index(index=older, id="p1", document=profile_document(version, "p1"), refresh=True)
    settings = _settings(version, two_partitions.tenant)
    store = ProfileStore(es, redis_client, settings, BulkWriter(es))

    def change(profile: LoadedProfile) -> Rewrite[None]:
        return Rewrite({**profile.source, "traits": {"tier": "gold"}}, None)

    [saved] = store.update_many(["p1"], change, max_attempts=3)
    assert (saved.status, saved.index) == ("written", older)
    assert es.get(index=older, id="p1")["_source"]["traits"] == {"tier": "gold"}
    assert not es.exists(index=newer, id="p1")


def test_a_new_profile_goes_to_tracardis_current_partition(
        two_partitions: TracardiInstall) -> None:
    es, version = two_partitions.elastic, two_partitions.version
    settings = _settings(version, two_partitions.tenant)
    profile = two_partitions.indices["profile"]
    may = datetime(2024, 5, 20, tzinfo=UTC)
    written = indices.upsert_document(es, settings, "profile",
                                      profile_document(version, "p2"), may)
    assert written.index == profile.write_index
    # a partition Tracardi has not made yet comes from its template, with its alias
    december = datetime(2024, 12, 1, tzinfo=UTC)
    later = indices.upsert_document(es, settings, "profile",
                                    profile_document(version, "p3"), december)
    suffix = tracardi_suffix(DEFAULT_PARTITIONING[version]["profile"], 2024, 12)
    assert later.index == physical_index(version, two_partitions.tenant, "profile",
                                         suffix=suffix)
    assert later.index in es.indices.get_alias(name=profile.alias).body


# --------------------------------------------------- install changes nothing of Tracardi

def _snapshot(es: Elasticsearch, prefix: str) -> dict[str, Any]:
    every = es.indices.get(index=f"*{prefix}*", expand_wildcards="all").body
    templates = es.indices.get_index_template(name=f"*{prefix}*")["index_templates"]
    return {"indices": every, "templates": sorted(templates, key=lambda t: str(t["name"]))}


def _run_cli(*argv: str, env: dict[str, str]) -> int:
    parser = argparse.ArgumentParser(prog="tracardi-daemon")
    commands.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    result: int = args.handler(args, env)
    return result


def test_install_changes_nothing_of_a_tracardi_installation(
        two_partitions: TracardiInstall, prefix: str, elastic_url: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    es, version = two_partitions.elastic, two_partitions.version
    settings = _settings(version, prefix)
    before = _snapshot(es, prefix)

    report = indices.install(es, settings)
    assert report.installed == () and report.refused is not None
    assert "owned by Tracardi" in report.refused
    with caplog.at_level(logging.INFO, logger="tracardi_daemon.model.indices"):
        assert indices.ensure_installed(es, settings).installed == ()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    config = tmp_path / "daemon.toml"
    config.write_text(f'[tracardi]\ntenant = "{prefix}"\ndb_version = "{version}"\n'
                      f'layout = "{LAYOUT[version]}"\n', encoding="utf-8")
    env = {"ELASTIC_HOST": elastic_url}
    assert _run_cli("indices", "install", "--config", str(config), env=env) == 1
    assert "owned by Tracardi" in capsys.readouterr().err
    assert _run_cli("indices", "status", "--config", str(config), env=env) == 0
    out = capsys.readouterr().out
    assert "Tracardi owns these indices" in out and "missing" not in out
    assert _snapshot(es, prefix) == before


# ------------------------------------------------------ unpadded months sort by time

def test_partitions_are_ordered_by_time_not_as_strings() -> None:
    names = [f"08x.t.tracardi-profile-{suffix}" for suffix in ("2024-10", "2024-9", "2023-12")]
    assert sorted(names, key=partition_order) == [names[2], names[1], names[0]]
    daemon = [f"100.t.tracardi-profile-{suffix}" for suffix in ("2024-q2", "2024-03", "2023")]
    assert sorted(daemon, key=partition_order) == [daemon[2], daemon[1], daemon[0]]


def test_a_duplicated_document_is_read_from_the_newest_partition(
        elastic_client: Elasticsearch, prefix: str) -> None:
    # Tracardi issue #638: one profile id in two partitions; October is the newer
    install = install_tracardi_elastic(elastic_client, "08x", prefix,
                                       partitions={"profile": ["2024-9", "2024-10"]})
    try:
        september, october = install.indices["profile"].indices
        for index in (september, october):
            elastic_client.index(index=index, id="p1",
                                 document=profile_document("08x", "p1", email=f"{index}@x.io"))
        settings = _settings("08x", prefix)
        alias_name = install.indices["profile"].alias
        assert indices.alias_members(elastic_client, alias_name) == [september, october]
        stored = indices.fetch(elastic_client, settings, "profile", "p1")
        assert stored is not None and stored.location.index == october
    finally:
        install.drop()
