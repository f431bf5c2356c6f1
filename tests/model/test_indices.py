"""Installing and inspecting indices against the real Elasticsearch: idempotent, and an
existing mapping is reported, never changed."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.model.indices import ensure_installed, install, status
from tracardi_daemon.model.mappings import Conflict
from tracardi_daemon.model.naming import (
    DATA_KINDS,
    DEFINITION_KINDS,
    alias_name,
    base_index_name,
    index_name,
)

from .conftest import CliRunner

Q1 = datetime(2024, 2, 10, tzinfo=UTC)


def test_install_creates_everything_then_is_a_no_op(es: Elasticsearch,
                                                    settings: Settings) -> None:
    first = install(es, settings, Q1)
    ts = settings.tracardi
    expected = (
        {f"index template {base_index_name(ts, kind)}" for kind in DATA_KINDS}
        | {f"index {index_name(ts, kind, Q1)}" for kind in DATA_KINDS + DEFINITION_KINDS})
    assert set(first.installed) == expected
    assert first.conflicts == ()

    second = install(es, settings, Q1)
    assert second.installed == ()
    assert second.conflicts == ()
    for kind in DATA_KINDS + DEFINITION_KINDS:
        members = es.indices.get_alias(name=alias_name(ts, kind)).body
        assert list(members) == [index_name(ts, kind, Q1)]


def test_status_shows_what_exists_and_what_is_missing(es: Elasticsearch,
                                                      settings: Settings) -> None:
    before = status(es, settings, Q1)
    # templates, partitions, definition indices
    assert len(before.missing) == 3 + 3 + len(DEFINITION_KINDS)
    assert all(kind.indices == () for kind in before.kinds)

    install(es, settings, Q1)
    after = status(es, settings, Q1)
    assert after.missing == () and after.conflicts == ()
    profile = next(kind for kind in after.kinds if kind.kind == "profile")
    current = index_name(settings.tracardi, "profile", Q1)
    assert profile.indices == (current,) and profile.aliased == (current,)
    assert profile.template == base_index_name(settings.tracardi, "profile")
    # a new quarter: only its partition is missing, the template creates it with alias
    q2 = status(es, settings, datetime(2024, 4, 1, tzinfo=UTC))
    assert set(q2.missing) == {
        f"index {index_name(settings.tracardi, kind, datetime(2024, 4, 1))}"
        for kind in DATA_KINDS}


def test_conflicting_mapping_is_reported_and_left_alone(es: Elasticsearch,
                                                        settings: Settings) -> None:
    profile_index = index_name(settings.tracardi, "profile", Q1)
    es.indices.create(index=profile_index, mappings={"properties": {
        "id": {"type": "keyword"},
        "segments": {"type": "long"},
        "metadata": {"properties": {"time": {"properties": {"insert": {"type": "keyword"}}}}},
    }})

    report = install(es, settings, Q1)
    assert set(report.conflicts) == {
        Conflict(profile_index, "segments", "long", "keyword"),
        Conflict(profile_index, "metadata.time.insert", "keyword", "date"),
    }
    assert "template" in " ".join(report.installed)
    assert f"index {profile_index}" not in report.installed
    live = es.indices.get_mapping(index=profile_index)[profile_index]["mappings"]
    assert live["properties"]["segments"] == {"type": "long"}
    assert "traits" not in live["properties"]  # nothing was added either
    # the hand-made partition still joins the alias: reads must see its documents
    assert f"alias {alias_name(settings.tracardi, 'profile')} -> {profile_index}" \
        in report.installed

    again = install(es, settings, Q1)
    assert again.installed == ()
    assert set(again.conflicts) == set(report.conflicts)
    assert set(status(es, settings, Q1).conflicts) == set(report.conflicts)
    assert str(Conflict(profile_index, "segments", "long", "keyword")) == (
        f"{profile_index}: field 'segments' is long, wanted keyword (left unchanged)")


def test_conflicting_template_is_reported_and_left_alone(es: Elasticsearch,
                                                         settings: Settings) -> None:
    name = base_index_name(settings.tracardi, "event")
    es.indices.put_index_template(name=name, index_patterns=[f"{name}-x*"], template={
        "mappings": {"properties": {"type": {"type": "text"}}}})
    report = install(es, settings, Q1)
    assert report.conflicts == (Conflict(f"index template {name}", "type", "text", "keyword"),)
    live = es.indices.get_index_template(name=name)["index_templates"][0]["index_template"]
    assert live["index_patterns"] == [f"{name}-x*"]


def test_definition_index_with_other_mapping(es: Elasticsearch, settings: Settings) -> None:
    segment_index = base_index_name(settings.tracardi, "segment")
    es.indices.create(index=segment_index, mappings={"properties": {
        "enabled": {"type": "keyword"}, "extra": {"type": "long"}}})
    report = install(es, settings, Q1)
    # extra fields are fine (Tracardi's own); a different type is not
    assert report.conflicts == (Conflict(segment_index, "enabled", "keyword", "boolean"),)


def test_production_indices(es: Elasticsearch, settings: Settings) -> None:
    prod = replace(settings, tracardi=replace(settings.tracardi, production=True))
    install(es, prod, Q1)
    names = set(es.indices.get(index=f"prod-*{settings.tracardi.tenant}*").body)
    assert index_name(prod.tracardi, "profile", Q1) in names
    assert all(name.startswith("prod-") for name in names)
    assert status(es, settings, Q1).kinds[0].indices == ()  # non-prod sees none of them


def test_ensure_installed_logs_installs_and_conflicts(es: Elasticsearch, settings: Settings,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    es.indices.create(index=base_index_name(settings.tracardi, "task"),
                      mappings={"properties": {"progress": {"type": "keyword"}}})
    with caplog.at_level(logging.INFO, logger="tracardi_daemon.model.indices"):
        report = ensure_installed(es, settings)
    assert len(report.conflicts) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [f"mapping conflict: {report.conflicts[0]}"]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == len(report.installed) > 0


def test_cli_install_and_status(es: Elasticsearch, settings: Settings, run_cli: CliRunner,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("indices", "status") == 0
    assert "missing: index template" in capsys.readouterr().out
    es.indices.create(index=base_index_name(settings.tracardi, "import"),
                      mappings={"properties": {"source": {"type": "long"}}})

    assert run_cli("indices", "install") == 1
    out = capsys.readouterr().out
    assert "installed index template" in out
    assert "field 'source' is long, wanted keyword (left unchanged)" in out
    assert run_cli("indices", "install") == 1
    assert "nothing to install" in capsys.readouterr().out
    assert run_cli("indices", "status") == 1
    out = capsys.readouterr().out
    assert "conflict:" in out and "(in alias)" in out and "missing:" not in out


def test_cli_exit_codes_for_config_and_unreachable(run_cli: CliRunner, prefix: str) -> None:
    assert run_cli("indices", "status", "--config", "/nonexistent/daemon.toml") == 2
    unreachable = {"TENANT_NAME": prefix, "ELASTIC_HOST": "http://127.0.0.1:1"}
    assert run_cli("indices", "install", env=unreachable) == 4
