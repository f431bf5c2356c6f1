"""Fixtures of the TQL tests: a fixed clock, and one Elasticsearch index per module
holding profiles mapped as Tracardi maps them (see profiles.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import pytest
from elasticsearch import ConnectionError as ElasticConnectionError
from elasticsearch import ConnectionTimeout, Elasticsearch, helpers
from hypothesis import HealthCheck, Phase, given, settings

from tests.tql.profiles import MAPPING, NOW, profiles

CORPUS_SIZE = 400

T = TypeVar("T")


def retry(call: Callable[[], T], attempts: int = 120) -> T:
    """Elasticsearch may be restarted while the tests run: wait for it, then go on."""
    for _ in range(attempts - 1):
        try:
            return call()
        except (ElasticConnectionError, ConnectionTimeout):
            time.sleep(1)
    return call()


@pytest.fixture
def clock() -> Callable[[], datetime]:
    return lambda: NOW


@pytest.fixture(scope="module")
def profile_index(_elastic_session: Elasticsearch) -> Iterator[tuple[Elasticsearch, str]]:
    """A fresh index with the test profile mapping, deleted after the module."""
    name = f"tql-agreement-t{uuid.uuid4().hex[:10]}"
    client = _elastic_session
    retry(lambda: client.indices.create(
        index=name, mappings=MAPPING, settings={"number_of_shards": 1, "number_of_replicas": 0}))
    try:
        yield client, name
    finally:
        retry(lambda: client.options(ignore_status=404).indices.delete(index=name))


def index_batch(client: Elasticsearch, index: str, batch: list[dict[str, Any]],
                batch_id: str | None = None) -> str:
    """Index profiles with ids ``<batch>-<position>``; searchable when this returns."""
    batch_id = batch_id or uuid.uuid4().hex
    actions = [{"_index": index, "_id": f"{batch_id}-{number}",
                "_source": {**profile, "batch": batch_id}}
               for number, profile in enumerate(batch)]
    retry(lambda: helpers.bulk(client, actions, refresh=True))
    return batch_id


@pytest.fixture(scope="module")
def corpus(profile_index: tuple[Elasticsearch, str]) -> tuple[str, list[dict[str, Any]]]:
    """A few hundred varied profiles indexed once, which every condition also runs over.

    Drawn by hypothesis itself with a fixed seed, so the corpus is the same on every run
    and as varied as the per-example batches.
    """
    drawn: list[dict[str, Any]] = []

    @settings(max_examples=CORPUS_SIZE, database=None, derandomize=True,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(profiles)
    def collect(profile: dict[str, Any]) -> None:
        drawn.append(profile)

    collect()
    client, index = profile_index
    return index_batch(client, index, drawn, "corpus"), drawn


def search_ids(client: Elasticsearch, index: str, queries: list[dict[str, Any]],
               batch: str) -> list[set[str]]:
    """The ids each query matches among the documents of one batch (one msearch)."""
    body: list[dict[str, Any]] = []
    for query in queries:
        body.append({"index": index})
        body.append({"query": {"bool": {"filter": [{"term": {"batch": batch}}, query]}},
                     "size": 1000, "_source": False})
    response = retry(lambda: client.msearch(searches=body))
    results = []
    for query, answer in zip(queries, response["responses"], strict=True):
        assert "error" not in answer, f"Elasticsearch refused {query}: {answer['error']}"
        results.append({hit["_id"] for hit in answer["hits"]["hits"]})
    return results
