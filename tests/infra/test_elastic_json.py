"""The daemon's Elasticsearch client encodes request bodies with orjson and falls back to
the standard encoder for what orjson refuses; what reaches Elasticsearch and what comes
back is what the standard serializer gives (a round trip through the real node)."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from elastic_transport import JsonSerializer
from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import ElasticSettings
from tracardi_daemon.infra.elastic import FastJsonSerializer, create_elastic

STANDARD = JsonSerializer()
FAST = FastJsonSerializer()

VALUES: list[Any] = [
    {"traits": {"visits": 3, "score": 0.1, "vip": True, "none": None}},
    {"name": "Zoë 名前 🚀", "tags": ["a", "b"], "nested": {"deep": [{"x": 1}]}},
    {"when": datetime(2024, 3, 5, 12, 30, 1, 123456, tzinfo=UTC)},
    {"naive": datetime(2024, 3, 5, 12, 30), "day": date(2024, 3, 5)},
    {"id": uuid.UUID("12345678-1234-5678-1234-567812345678"), "price": Decimal("12.50")},
    {"big": 2**63 - 1, "negative": -(2**63)},
]
# orjson refuses these; the standard encoder writes them
REFUSED: list[Any] = [{"huge": 2**70}, {1: "not a string key"}, {"lone": "\ud800"}]


@pytest.mark.parametrize("value", VALUES)
def test_the_encoding_means_what_the_standard_one_means(value: Any) -> None:
    assert json.loads(FAST.dumps(value)) == json.loads(STANDARD.dumps(value))


@pytest.mark.parametrize("value", REFUSED)
def test_what_orjson_refuses_is_written_by_the_standard_encoder(value: Any) -> None:
    assert FAST.dumps(value) == STANDARD.dumps(value)


def test_a_nan_becomes_null_not_a_token_elasticsearch_refuses() -> None:
    assert json.loads(FAST.dumps({"x": float("nan"), "y": float("inf")})) == \
        {"x": None, "y": None}


def test_responses_keep_integers_beyond_64_bits_exact() -> None:
    assert FAST.loads(b'{"a": 123456789012345678901234567890}') == \
        {"a": 123456789012345678901234567890}


def test_a_document_round_trips_through_elasticsearch_unchanged(
        elastic_client: Elasticsearch, prefix: str) -> None:
    client = create_elastic(replace(ElasticSettings(), hosts=("http://127.0.0.1:9200",)))
    index = f"{prefix}-json"
    document = {"traits": {"huge": 2**70, "text": "Zoë 🚀", "n": 1.5},
                "when": "2024-03-05T12:30:00+00:00", "list": [1, 2, None]}
    try:
        # traits kept in _source only: a dynamic mapping would refuse the huge integer
        client.indices.create(index=index, mappings={
            "properties": {"traits": {"type": "object", "enabled": False}}})
        client.index(index=index, id="d1", document=document, refresh=True)
        assert client.get(index=index, id="d1")["_source"] == document
    finally:
        client.options(ignore_status=404).indices.delete(index=index)
        client.close()
