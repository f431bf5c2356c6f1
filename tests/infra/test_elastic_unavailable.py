"""What a recovering cluster answers is "not now", never "not found" nor a bug: the
answers of an index whose shards are not allocated (what every index gives for a moment
after a restart), made on the real node by an allocation filter that no node matches.

- a search answers 503 (search_phase_execution_exception): BackendUnavailable;
- a multi-get answers 200 with a per-document no_shard_available_action_exception:
  BackendUnavailable, never an absent document;
- a command's client waits for the index to come back instead of failing;
- a search of an alias over partitions, some readable and some not, raises instead of
  answering with the hits of the readable ones.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import ELASTIC_URL
from tracardi_daemon.config.settings import ElasticSettings, Settings, TracardiSettings
from tracardi_daemon.errors import BackendUnavailable
from tracardi_daemon.infra.elastic import (
    create_elastic,
    elastic_errors,
    mget_documents,
    search_whole,
)
from tracardi_daemon.infra.scan import Hit
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import Segment
from tracardi_daemon.model.indices import install
from tracardi_daemon.model.profiles import load_by_ids
from tracardi_daemon.roles.mapping.batch import load_events

NOWHERE = {"index.routing.allocation.require._name": "no-such-node"}


@pytest.fixture
def red_index(elastic_client: Elasticsearch, prefix: str) -> Iterator[str]:
    """An index whose one shard no node may hold: red until ``allocate``."""
    name = f"{prefix}-red-{uuid.uuid4().hex[:6]}"
    elastic_client.indices.create(index=name, wait_for_active_shards=0,
                                  settings={"number_of_replicas": 0, **NOWHERE})
    yield name
    elastic_client.options(ignore_status=404).indices.delete(index=name)


def allocate(client: Elasticsearch, index: str) -> None:
    client.indices.put_settings(index=index, settings={
        "index.routing.allocation.require._name": None})


def test_a_search_of_unallocated_shards_is_unavailable(
        elastic_client: Elasticsearch, red_index: str) -> None:
    with pytest.raises(BackendUnavailable) as info, elastic_errors("search events"):
        elastic_client.search(index=red_index)
    assert "search events" in str(info.value)


def test_a_per_document_error_of_a_multi_get_is_unavailable_not_absent(
        elastic_client: Elasticsearch, red_index: str) -> None:
    with pytest.raises(BackendUnavailable) as info:
        mget_documents(elastic_client, [{"_index": red_index, "_id": "e1"}], "load events")
    assert "no_shard_available_action_exception" in str(info.value)
    assert f"{red_index}/e1" in str(info.value)


def test_a_missing_index_is_absent_and_a_missing_document_is_absent(
        elastic_client: Elasticsearch, prefix: str) -> None:
    name = f"{prefix}-there"
    elastic_client.indices.create(index=name)
    docs = mget_documents(elastic_client, [{"_index": f"{prefix}-gone", "_id": "x"},
                                           {"_index": name, "_id": "y"}], "load")
    assert [doc.get("found") for doc in docs] == [False, False]


def test_replayed_events_of_a_recovering_shard_are_never_taken_for_deleted(
        elastic_client: Elasticsearch, red_index: str) -> None:
    # the mapping batch job's replay and the live tail's recovery read events so
    ref = Hit(red_index, "e1", {}, [1], None, None)
    with pytest.raises(BackendUnavailable):
        load_events(elastic_client, [ref])
    allocate(elastic_client, red_index)
    elastic_client.cluster.health(index=red_index, wait_for_status="green", timeout="30s")
    elastic_client.index(index=red_index, id="e1", document={"id": "e1"})
    [event] = load_events(elastic_client, [ref])
    assert event.source == {"id": "e1"}


def test_profiles_of_a_recovering_partition_are_unavailable(
        elastic_client: Elasticsearch, red_index: str, prefix: str) -> None:
    alias = f"{prefix}-profiles"
    elastic_client.indices.put_alias(index=red_index, name=alias)
    with pytest.raises(BackendUnavailable):
        load_by_ids(elastic_client, alias, ["e1"])


def test_a_command_waits_for_a_recovering_index_where_the_daemon_client_fails(
        elastic_client: Elasticsearch, red_index: str) -> None:
    settings = ElasticSettings(hosts=(ELASTIC_URL,))
    plain, patient = create_elastic(settings), create_elastic(settings, patient=True)
    searched = threading.Event()
    try:
        with pytest.raises(BackendUnavailable), elastic_errors("search"):
            plain.search(index=red_index)
        # the index comes back while the command's client waits between its tries
        timer = threading.Timer(0.5, allocate, (elastic_client, red_index))
        timer.start()
        response = patient.search(index=red_index)
        searched.set()
        timer.join()
    finally:
        plain.close()
        patient.close()
    assert searched.is_set() and response["hits"]["total"]["value"] == 0


@pytest.fixture
def half_red_alias(elastic_client: Elasticsearch, red_index: str, prefix: str) -> Iterator[str]:
    """An alias over a green index holding one document and the red index: what an
    alias over partitions is while a restarted node recovers them one by one."""
    green = f"{prefix}-green-{uuid.uuid4().hex[:6]}"
    elastic_client.indices.create(index=green, settings={"number_of_replicas": 0})
    elastic_client.index(index=green, id="g1", document={"id": "a"}, refresh=True)
    alias = f"{prefix}-partitions"
    elastic_client.indices.put_alias(index=[green, red_index], name=alias)
    yield alias
    elastic_client.options(ignore_status=404).indices.delete(index=green)


def test_a_search_that_could_read_only_some_partitions_is_unavailable_not_partial(
        elastic_client: Elasticsearch, half_red_alias: str) -> None:
    partial = elastic_client.search(index=half_red_alias)  # what a plain search answers
    assert partial["_shards"]["failed"] == 1 and partial["hits"]["total"]["value"] == 1
    with pytest.raises(BackendUnavailable) as info:
        search_whole(elastic_client, "find profiles", index=half_red_alias)
    assert "find profiles" in str(info.value)


def test_definitions_of_a_partly_readable_index_are_unavailable_not_fewer(
        elastic_client: Elasticsearch, red_index: str, prefix: str) -> None:
    settings = Settings(tracardi=TracardiSettings(tenant=prefix))
    install(elastic_client, settings)
    store = DefinitionStore(elastic_client, settings)
    store.upsert_many([Segment.from_dict({"id": "s1", "name": "S",
                                          "condition": "profile@traits.a == 1"})])
    elastic_client.indices.put_alias(index=red_index, name=store.source(Segment).alias)
    with pytest.raises(BackendUnavailable):
        store.list(Segment)
    with pytest.raises(BackendUnavailable):
        store.refresh(Segment, {})
