"""The bulk writer against the real Elasticsearch: per-item results in order, optimistic
concurrency, item failures that do not fail the batch, request splitting, and a real
429 (the node's indexing-pressure limit) retried and then handed back."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.receivers import free_port
from tracardi_daemon.errors import BackendUnavailable
from tracardi_daemon.infra.bulk import BulkAction, BulkStats, BulkWriter

STRICT = {
    "dynamic": "strict",
    "properties": {
        "id": {"type": "keyword"},
        "n": {"type": "integer"},
        "traits": {"type": "object", "enabled": False},
    },
}

MakeIndex = Callable[..., str]


@pytest.fixture
def make_index(elastic_client: Elasticsearch, prefix: str) -> MakeIndex:
    def make(suffix: str = "profile", mappings: dict[str, Any] | None = None) -> str:
        name = f"{prefix}-{suffix}"
        elastic_client.indices.create(
            index=name,
            mappings=mappings or STRICT,
            # refresh="wait_for" waits for the next periodic refresh: make it come soon
            settings={"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "50ms"},
        )
        return name

    return make


def writer(client: Elasticsearch, **options: Any) -> BulkWriter:
    options.setdefault("refresh", "wait_for")
    return BulkWriter(client, **options)


def source(client: Elasticsearch, index: str, doc_id: str) -> dict[str, Any] | None:
    found = client.options(ignore_status=404).get(index=index, id=doc_id)
    return found["_source"] if found.meta.status == 200 else None


def test_mixed_actions_come_back_in_order(
    elastic_client: Elasticsearch, make_index: MakeIndex
) -> None:
    index = make_index()
    elastic_client.index(index=index, id="c", document={"id": "c", "n": 1})
    elastic_client.index(index=index, id="d", document={"id": "d", "n": 2}, refresh=True)
    actions = [
        BulkAction("index", index, "a", {"id": "a", "n": 10}, key="first"),
        BulkAction("create", index, "b", {"id": "b", "n": 20}, key=("second", 2)),
        BulkAction("update", index, "c", {"n": 30}),
        BulkAction("delete", index, "d"),
        BulkAction("index", index, "a", {"id": "a", "n": 11}),
    ]
    results = writer(elastic_client).write(actions)
    assert [result.action for result in results] == actions
    assert [result.action.key for result in results][:2] == ["first", ("second", 2)]
    assert [result.status for result in results] == [201, 201, 200, 200, 200]
    assert all(result.ok and not result.conflict and result.error is None for result in results)
    assert {result.index for result in results} == {index}
    assert (results[4].seq_no or 0) > (results[0].seq_no or 0)
    assert results[0].primary_term == 1
    assert source(elastic_client, index, "a") == {"id": "a", "n": 11}
    assert source(elastic_client, index, "b") == {"id": "b", "n": 20}
    assert source(elastic_client, index, "c") == {"id": "c", "n": 30}
    assert source(elastic_client, index, "d") is None
    # refresh="wait_for": visible to search at once
    assert elastic_client.count(index=index)["count"] == 3


def test_update_merges_the_partial_document(
    elastic_client: Elasticsearch, make_index: MakeIndex
) -> None:
    index = make_index(mappings={"properties": {"id": {"type": "keyword"}}})
    elastic_client.index(
        index=index, id="p", document={"id": "p", "traits": {"x": 1}, "keep": True}
    )
    [result] = writer(elastic_client).write(
        [BulkAction("update", index, "p", {"traits": {"y": 2}, "new": "v"})]
    )
    assert result.ok and result.status == 200
    assert source(elastic_client, index, "p") == {
        "id": "p",
        "traits": {"x": 1, "y": 2},
        "keep": True,
        "new": "v",
    }


def test_stale_seq_no_is_a_conflict_and_leaves_the_document(
    elastic_client: Elasticsearch, make_index: MakeIndex
) -> None:
    index = make_index()
    elastic_client.index(index=index, id="p", document={"id": "p", "n": 1})
    read = elastic_client.get(index=index, id="p")
    elastic_client.index(index=index, id="p", document={"id": "p", "n": 2})  # someone else
    stale = {"if_seq_no": read["_seq_no"], "if_primary_term": read["_primary_term"]}
    results = writer(elastic_client).write(
        [
            BulkAction("update", index, "p", {"n": 3}, **stale),
            BulkAction("index", index, "p", {"id": "p", "n": 4}, **stale),
            BulkAction("delete", index, "p", **stale),
        ]
    )
    assert [(result.status, result.ok, result.conflict) for result in results] == [
        (409, False, True)
    ] * 3
    assert all(
        result.error and result.error.startswith("version_conflict_engine_exception")
        for result in results
    )
    assert source(elastic_client, index, "p") == {"id": "p", "n": 2}
    current = elastic_client.get(index=index, id="p")
    [result] = writer(elastic_client).write(
        [
            BulkAction(
                "update",
                index,
                "p",
                {"n": 5},
                if_seq_no=current["_seq_no"],
                if_primary_term=current["_primary_term"],
            )
        ]
    )
    assert result.ok and result.seq_no == current["_seq_no"] + 1
    assert source(elastic_client, index, "p") == {"id": "p", "n": 5}


def test_create_of_an_existing_id_is_a_conflict(
    elastic_client: Elasticsearch, make_index: MakeIndex
) -> None:
    index = make_index()
    elastic_client.index(index=index, id="p", document={"id": "p", "n": 1})
    [result] = writer(elastic_client).write([BulkAction("create", index, "p", {"id": "p", "n": 2})])
    assert result.status == 409 and result.conflict and not result.ok
    assert source(elastic_client, index, "p") == {"id": "p", "n": 1}


def test_item_failures_fail_only_their_item(
    elastic_client: Elasticsearch, make_index: MakeIndex
) -> None:
    index = make_index()
    results = writer(elastic_client).write(
        [
            BulkAction("index", index, "ok-1", {"id": "ok-1", "n": 1}),
            BulkAction("index", index, "bad-type", {"id": "bad-type", "n": "not a number"}),
            BulkAction("index", index, "bad-field", {"id": "bad-field", "unknown": 1}),
            BulkAction("update", index, "missing", {"n": 1}),
            BulkAction("delete", index, "missing"),
            BulkAction("index", index, "ok-2", {"id": "ok-2", "n": 2}),
        ]
    )
    assert [result.status for result in results] == [201, 400, 400, 404, 404, 201]
    assert [result.ok for result in results] == [True, False, False, False, False, True]
    assert not any(result.conflict for result in results)
    bad_type, bad_field, missing_update, missing_delete = (
        result.error or "" for result in results[1:5]
    )
    assert bad_type.startswith("document_parsing_exception: ")
    assert "[n]" in bad_type and "integer" in bad_type
    assert "number_format_exception" in bad_type  # the cause is named
    assert bad_field.startswith("strict_dynamic_mapping_exception: ")
    assert "[unknown]" in bad_field
    assert missing_update.startswith("document_missing_exception: ")
    assert missing_delete == "not_found: status 404"
    assert results[1].seq_no is None and results[1].index == index
    assert elastic_client.count(index=index)["count"] == 2


def test_requests_split_by_max_actions(
    elastic_client: Elasticsearch, make_index: MakeIndex
) -> None:
    index = make_index()
    bulk = writer(elastic_client, max_actions=10)
    actions = [BulkAction("index", index, str(n), {"id": str(n), "n": n}) for n in range(25)]
    results = bulk.write(actions)
    assert [result.action.id for result in results] == [str(n) for n in range(25)]
    assert all(result.ok for result in results)
    assert bulk.stats == BulkStats(requests=3, items=25, retried_429=0)
    bulk.write(actions[:10])
    assert bulk.stats == BulkStats(requests=4, items=35, retried_429=0)  # cumulative


def test_requests_split_by_max_bytes(elastic_client: Elasticsearch, make_index: MakeIndex) -> None:
    index = make_index()

    def action(doc_id: str, size: int) -> BulkAction:
        return BulkAction("index", index, doc_id, {"id": doc_id, "traits": {"t": "x" * size}})

    # each action is a little over 1,000 bytes of JSON lines: three fit in 3,500
    bulk = writer(elastic_client, max_bytes=3500)
    results = bulk.write([action(str(n), 1000) for n in range(7)])
    assert all(result.ok for result in results)
    assert bulk.stats.requests == 3  # 3 + 3 + 1
    # an action larger than max_bytes still goes, alone
    bulk = writer(elastic_client, max_bytes=3500)
    results = bulk.write([action("s1", 10), action("huge", 10_000), action("s2", 10)])
    assert all(result.ok for result in results)
    assert bulk.stats.requests == 3
    assert source(elastic_client, index, "huge") is not None


def test_unreachable_cluster_raises_backend_unavailable() -> None:
    client = Elasticsearch(f"http://127.0.0.1:{free_port()}", max_retries=0, request_timeout=2)
    with pytest.raises(BackendUnavailable, match="bulk of 1 actions"):
        BulkWriter(client).write([BulkAction("index", "any", "1", {"n": 1})])


def test_invalid_actions_are_refused() -> None:
    with pytest.raises(ValueError, match="document is required"):
        BulkAction("index", "i", "1")
    with pytest.raises(ValueError, match="document is required"):
        BulkAction("delete", "i", "1", {"n": 1})
    with pytest.raises(ValueError, match="go together"):
        BulkAction("update", "i", "1", {"n": 1}, if_seq_no=3)
    with pytest.raises(ValueError, match="cannot be conditional"):
        BulkAction("create", "i", "1", {"n": 1}, if_seq_no=3, if_primary_term=1)


# A real 429: a request above the node's indexing-pressure limit (10% of the heap) is
# rejected as a whole with es_rejected_execution_exception, every time.

_LARGEST_REQUEST_BYTES = 90 * 1024 * 1024  # below http.max_content_length (100mb)


def oversized_action(client: Elasticsearch, index: str) -> BulkAction:
    stats = client.nodes.stats(metric="indexing_pressure")
    limits = [
        node["indexing_pressure"]["memory"]["limit_in_bytes"] for node in stats["nodes"].values()
    ]
    if len(limits) != 1 or limits[0] > _LARGEST_REQUEST_BYTES:
        pytest.skip(f"needs one node with a small indexing-pressure limit, not {limits}")
    return BulkAction(
        "index", index, "huge", {"id": "huge", "traits": {"blob": "x" * (limits[0] + 1024)}}
    )


def test_rejected_request_is_retried_then_handed_back_as_429(
    elastic_client: Elasticsearch, make_index: MakeIndex
) -> None:
    index = make_index()
    huge = oversized_action(elastic_client, index)
    small = BulkAction("index", index, "small", {"id": "small", "n": 1})
    bulk = writer(elastic_client, max_bytes=1024 * 1024, max_retries=1, backoff_initial_s=0.01)
    results = bulk.write([small, huge])
    assert results[0].ok
    assert (results[1].status, results[1].ok, results[1].conflict) == (429, False, False)
    assert results[1].error is not None
    assert results[1].error.startswith("es_rejected_execution_exception: ")
    assert "coordinating" in results[1].error
    # the small request once, the large one twice (only the rejected item was resent)
    assert bulk.stats == BulkStats(requests=3, items=3, retried_429=1)


def test_stop_cuts_the_429_back_off_short(
    elastic_client: Elasticsearch, make_index: MakeIndex
) -> None:
    index = make_index()
    huge = oversized_action(elastic_client, index)
    stop = threading.Event()
    stop.set()
    bulk = writer(elastic_client, max_retries=5, backoff_initial_s=60, stop=stop)
    [result] = bulk.write([huge])
    assert result.status == 429 and not result.ok
    assert bulk.stats == BulkStats(requests=1, items=1, retried_429=0)
