"""Point-in-time scans against the real Elasticsearch: every document exactly once, in
sort order, across the indices behind an alias; resumption from a position; a point in
time closed behind the scan's back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import drop_indices
from tracardi_daemon.infra.scan import Hit, Scan, count

SORT = [{"id": "asc"}]
MAPPINGS = {
    "properties": {"id": {"type": "keyword"}, "n": {"type": "integer"}, "tag": {"type": "keyword"}}
}


def make_indices(client: Elasticsearch, names: list[str], alias: str | None = None) -> None:
    for name in names:
        client.indices.create(
            index=name,
            mappings=MAPPINGS,
            settings={"number_of_shards": 1, "number_of_replicas": 0},
            aliases={alias: {}} if alias else None,
        )


def load(client: Elasticsearch, names: list[str], total: int) -> None:
    """Documents ``000000`` .. ``total-1`` spread round-robin over ``names``."""
    operations: list[dict[str, Any]] = []
    for n in range(total):
        doc_id = f"{n:06d}"
        operations.append({"index": {"_index": names[n % len(names)], "_id": doc_id}})
        operations.append({"id": doc_id, "n": n, "tag": "even" if n % 2 == 0 else "odd"})
    for start in range(0, len(operations), 10_000):
        response = client.bulk(operations=operations[start : start + 10_000])
        assert not response["errors"]
    client.indices.refresh(index=",".join(names))


@pytest.fixture(scope="module")
def three_indices(_elastic_session: Elasticsearch) -> Iterator[tuple[str, list[str]]]:
    """2,500 documents over 3 indices behind one alias, shared by the tests that only
    read them."""
    prefix = "t" + uuid.uuid4().hex[:10]
    alias = f"{prefix}-profile"
    names = [f"{prefix}-profile-{part}" for part in ("a", "b", "c")]
    try:
        make_indices(_elastic_session, names, alias)
        load(_elastic_session, names, 2500)
        yield alias, names
    finally:
        drop_indices(_elastic_session, prefix)


def ids(batches: list[list[Hit]]) -> list[str]:
    return [hit.id for batch in batches for hit in batch]


def expected_ids(total: int) -> list[str]:
    return [f"{n:06d}" for n in range(total)]


def test_alias_scan_yields_every_document_once_in_order_with_its_index(
    elastic_client: Elasticsearch, three_indices: tuple[str, list[str]]
) -> None:
    alias, names = three_indices
    scan = Scan(elastic_client, alias, sort=SORT, batch_size=1000)
    batches = list(scan)
    assert [len(batch) for batch in batches] == [1000, 1000, 500]
    assert ids(batches) == expected_ids(2500)
    for hit in (hit for batch in batches for hit in batch):
        assert hit.index == names[hit.source["n"] % 3]
        assert hit.source["id"] == hit.id
        assert hit.sort == [hit.id]  # the caller's sort only, no _shard_doc
        assert hit.seq_no is None and hit.primary_term is None
    assert scan.position == ["002499"]
    assert scan.pit_id is None  # closed at the end
    assert scan.next_batch() == []


def test_seq_no_and_primary_term_when_asked(
    elastic_client: Elasticsearch, three_indices: tuple[str, list[str]]
) -> None:
    alias, _ = three_indices
    with Scan(elastic_client, alias, sort=SORT, batch_size=10, seq_no_primary_term=True) as scan:
        batch = scan.next_batch()
    assert [hit.primary_term for hit in batch] == [1] * 10
    assert all(isinstance(hit.seq_no, int) and hit.seq_no >= 0 for hit in batch)
    # the first document of index a was written first there
    assert batch[0].seq_no == 0


def test_source_false_and_a_field_list(
    elastic_client: Elasticsearch, three_indices: tuple[str, list[str]]
) -> None:
    alias, _ = three_indices
    with Scan(elastic_client, alias, sort=SORT, batch_size=5, source=False) as scan:
        assert [hit.source for hit in scan.next_batch()] == [{}] * 5
    with Scan(elastic_client, alias, sort=SORT, batch_size=2, source=["n"]) as scan:
        assert [hit.source for hit in scan.next_batch()] == [{"n": 0}, {"n": 1}]


def test_resume_from_position_on_a_new_scan_yields_exactly_the_rest(
    elastic_client: Elasticsearch, three_indices: tuple[str, list[str]]
) -> None:
    alias, _ = three_indices
    with Scan(elastic_client, alias, sort=SORT, batch_size=1000) as first:
        head = first.next_batch()
        position = first.position
    assert position == [head[-1].id] == ["000999"]
    resumed = Scan(elastic_client, alias, sort=SORT, batch_size=1000, after=position)
    assert resumed.position == position
    assert ids([head, *resumed]) == expected_ids(2500)


def test_point_in_time_closed_behind_its_back_is_reopened(
    elastic_client: Elasticsearch,
    three_indices: tuple[str, list[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    alias, _ = three_indices
    scan = Scan(elastic_client, alias, sort=SORT, batch_size=1000)
    batches = [scan.next_batch()]
    closed_id = scan.pit_id
    assert closed_id is not None
    assert elastic_client.close_point_in_time(id=closed_id)["succeeded"]
    with caplog.at_level("INFO", logger="tracardi_daemon.infra.scan"):
        batches.extend(scan)
    assert ids(batches) == expected_ids(2500)
    assert any("reopening" in record.getMessage() for record in caplog.records)


def test_many_documents_in_large_batches(elastic_client: Elasticsearch, prefix: str) -> None:
    name = f"{prefix}-big"
    make_indices(elastic_client, [name])
    load(elastic_client, [name], 12_000)
    batches = list(Scan(elastic_client, name, sort=SORT, batch_size=5000, source=False))
    assert [len(batch) for batch in batches] == [5000, 5000, 2000]
    assert ids(batches) == expected_ids(12_000)


def test_names_that_match_nothing_yield_no_batches(
    elastic_client: Elasticsearch, prefix: str
) -> None:
    assert list(Scan(elastic_client, f"{prefix}-nothing-*", sort=SORT)) == []
    assert list(Scan(elastic_client, f"{prefix}-no-such-alias", sort=SORT)) == []
    assert count(elastic_client, f"{prefix}-nothing-*") == 0
    assert count(elastic_client, f"{prefix}-no-such-alias") == 0


def test_query_filter_and_count(
    elastic_client: Elasticsearch, three_indices: tuple[str, list[str]]
) -> None:
    alias, names = three_indices
    odd = {"term": {"tag": "odd"}}
    batches = list(Scan(elastic_client, alias, query=odd, sort=SORT, batch_size=400))
    assert ids(batches) == [f"{n:06d}" for n in range(1, 2500, 2)]
    assert count(elastic_client, alias) == 2500
    assert count(elastic_client, alias, odd) == 1250
    assert count(elastic_client, names[0]) == 834


def test_descending_sort_and_resume(
    elastic_client: Elasticsearch, three_indices: tuple[str, list[str]]
) -> None:
    alias, _ = three_indices
    sort = [{"n": "desc"}]
    with Scan(elastic_client, alias, sort=sort, batch_size=3, source=False) as scan:
        assert [hit.id for hit in scan.next_batch()] == ["002499", "002498", "002497"]
        assert scan.position == [2497]
    rest = Scan(elastic_client, alias, sort=sort, batch_size=1000, after=[2497])
    assert ids(list(rest)) == expected_ids(2497)[::-1]


def test_invalid_arguments_are_refused(elastic_client: Elasticsearch) -> None:
    with pytest.raises(ValueError, match="sort"):
        Scan(elastic_client, "x", sort=[])
    with pytest.raises(ValueError, match="after has 2 values"):
        Scan(elastic_client, "x", sort=SORT, after=["a", 0])
