"""Partition-aware writes: a document is updated in the partition it lives in, created in
the current one, and concurrent writes are retried with optimistic concurrency."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import BackendError, InvalidInput
from tracardi_daemon.model.indices import fetch, install, locate, upsert_document, write_update
from tracardi_daemon.model.naming import alias_name, index_name

Q1 = datetime(2024, 2, 10, 12, 0, tzinfo=UTC)
Q2 = datetime(2024, 5, 2, 9, 30, tzinfo=UTC)


def profile(profile_id: str, **traits: Any) -> dict[str, Any]:
    return {"id": profile_id, "ids": [profile_id], "segments": [], "traits": traits,
            "metadata": {"time": {"insert": Q1.isoformat()}}}


def copies(es: Elasticsearch, settings: Settings, doc_id: str) -> list[str]:
    alias = alias_name(settings.tracardi, "profile")
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, query={"ids": {"values": [doc_id]}})["hits"]["hits"]
    return [hit["_index"] for hit in hits]


@pytest.fixture
def installed(es: Elasticsearch, settings: Settings) -> Settings:
    install(es, settings, Q1)
    return settings


def test_update_stays_in_its_partition_across_a_quarter(es: Elasticsearch,
                                                        installed: Settings) -> None:
    q1_index = index_name(installed.tracardi, "profile", Q1)
    q2_index = index_name(installed.tracardi, "profile", Q2)
    created = upsert_document(es, installed, "profile", profile("p1", tier="silver"), Q1)
    assert created.index == q1_index

    # the clock says Q2 now: the existing profile is still updated where it lives
    updated = upsert_document(es, installed, "profile", profile("p1", tier="gold"), Q2)
    assert updated.index == q1_index and updated.seq_no > created.seq_no
    # a new profile goes to the Q2 partition, which the template creates with the alias
    assert upsert_document(es, installed, "profile", profile("p2"), Q2).index == q2_index

    assert copies(es, installed, "p1") == [q1_index]
    assert copies(es, installed, "p2") == [q2_index]
    stored = fetch(es, installed, "profile", "p1")
    assert stored is not None and stored.source["traits"] == {"tier": "gold"}
    members = es.indices.get_alias(name=alias_name(installed.tracardi, "profile")).body
    assert sorted(members) == [q1_index, q2_index]


def test_locate_sees_a_write_before_any_refresh(es: Elasticsearch, installed: Settings) -> None:
    assert locate(es, installed, "profile", "p1") is None
    written = upsert_document(es, installed, "profile", profile("p1"), Q1)
    index, seq_no, primary_term = locate(es, installed, "profile", "p1") or ("", -1, -1)
    assert (index, seq_no, primary_term) == written


def test_concurrent_update_is_retried_on_fresh_data(es: Elasticsearch,
                                                    installed: Settings) -> None:
    upsert_document(es, installed, "profile", profile("p1", visits=1), Q1)
    seen: list[dict[str, Any] | None] = []

    def add_segment(current: dict[str, Any] | None) -> dict[str, Any]:
        assert current is not None
        seen.append(current)
        if len(seen) == 1:  # another worker writes between our read and our write
            other = dict(current, traits={"visits": 2})
            es.index(index=index_name(installed.tracardi, "profile", Q1), id="p1",
                     document=other)
        return dict(current, segments=[*current["segments"], "vip"])

    written = write_update(es, installed, "profile", "p1", add_segment, now=Q2)
    assert written is not None and len(seen) == 2
    # the retry saw the other write
    assert seen[1] is not None and seen[1]["traits"] == {"visits": 2}
    stored = fetch(es, installed, "profile", "p1")
    assert stored is not None
    assert stored.source["traits"] == {"visits": 2} and stored.source["segments"] == ["vip"]


def test_endless_conflicts_end_in_a_backend_error(es: Elasticsearch,
                                                  installed: Settings) -> None:
    upsert_document(es, installed, "profile", profile("p1"), Q1)
    calls = 0

    def always_overtaken(current: dict[str, Any] | None) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        es.index(index=index_name(installed.tracardi, "profile", Q1), id="p1",
                 document=current)
        return dict(current or {}, segments=["x"])

    with pytest.raises(BackendError, match="still conflicting after 3 attempts"):
        write_update(es, installed, "profile", "p1", always_overtaken, now=Q1, max_attempts=3)
    assert calls == 3


def test_concurrent_create_becomes_an_update(es: Elasticsearch, installed: Settings) -> None:
    def create_elsewhere_first(current: dict[str, Any] | None) -> dict[str, Any]:
        if current is None:  # another worker creates the same new profile meanwhile
            upsert_document(es, installed, "profile", profile("p1", source="other"), Q1)
            return profile("p1", source="mine")
        return dict(current, segments=["merged"])

    write_update(es, installed, "profile", "p1", create_elsewhere_first, now=Q1)
    stored = fetch(es, installed, "profile", "p1")
    assert stored is not None
    assert stored.source["traits"] == {"source": "other"}
    assert stored.source["segments"] == ["merged"]
    assert len(copies(es, installed, "p1")) == 1


def test_no_change_writes_nothing(es: Elasticsearch, installed: Settings) -> None:
    written = upsert_document(es, installed, "profile", profile("p1"), Q1)
    assert write_update(es, installed, "profile", "p1", lambda current: None, now=Q1) is None
    assert locate(es, installed, "profile", "p1") == written


def test_unreadable_partition_is_an_error_not_a_missing_document(
        es: Elasticsearch, installed: Settings) -> None:
    upsert_document(es, installed, "profile", profile("p1"), Q1)
    es.indices.close(index=index_name(installed.tracardi, "profile", Q1))
    with pytest.raises(BackendError, match="closed"):
        upsert_document(es, installed, "profile", profile("p1"), Q2)


def test_document_without_id_is_invalid(es: Elasticsearch, installed: Settings) -> None:
    with pytest.raises(InvalidInput, match="field 'id' must be a non-empty string"):
        upsert_document(es, installed, "profile", {"traits": {}}, Q1)
