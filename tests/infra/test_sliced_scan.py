"""SlicedScan against the real Elasticsearch: slices split by sampled keys hold every
document exactly once, each in key order, and resume from their own positions."""

from __future__ import annotations

from collections import Counter

import pytest
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk

from tracardi_daemon.infra.sliced_scan import SlicedScan, split_bounds

DOCUMENTS = 1000


@pytest.fixture
def index(elastic_client: Elasticsearch, prefix: str) -> str:
    name = f"{prefix}-sliced"
    elastic_client.indices.create(index=name, mappings={"properties": {"id": {"type": "keyword"}}},
                                  settings={"number_of_shards": 2, "number_of_replicas": 0})
    # ids with one shared prefix: bounds must come from the keys, not from their alphabet
    bulk(elastic_client, ({"_index": name, "_id": f"p{n}", "_source": {"id": f"p{n}"}}
                          for n in range(DOCUMENTS)), refresh=True)
    return name


def _read_all(scan: SlicedScan) -> list[tuple[int, str]]:
    found = []
    while (batch := scan.next())[1]:
        found += [(batch[0], hit.id) for hit in batch[1]]
    scan.close()
    return found


def test_slices_hold_every_document_once_and_come_out_about_equal(
        elastic_client: Elasticsearch, index: str) -> None:
    bounds = split_bounds(elastic_client, index, "id", 3)
    assert len(bounds) == 2 and bounds == sorted(bounds)
    found = _read_all(SlicedScan(elastic_client, index, "id", bounds=bounds,
                                 positions=[None, None, None], batch_size=70, name="t"))
    assert sorted(doc for _, doc in found) == sorted(f"p{n}" for n in range(DOCUMENTS))
    sizes = Counter(number for number, _ in found)
    assert set(sizes) == {0, 1, 2} and min(sizes.values()) > DOCUMENTS // 6
    for number in range(3):  # each slice in key order, inside its range
        ids = [doc for slice_number, doc in found if slice_number == number]
        assert ids == sorted(ids)
        assert all((number == 0 or doc >= bounds[number - 1]) and
                   (number == 2 or doc < bounds[number]) for doc in ids)


def test_each_slice_resumes_from_its_own_position(elastic_client: Elasticsearch,
                                                  index: str) -> None:
    bounds = split_bounds(elastic_client, index, "id", 2)
    first = SlicedScan(elastic_client, index, "id", bounds=bounds, positions=[None, None],
                       batch_size=50, name="t")
    positions: list[list[str] | None] = [None, None]
    before = []
    for _ in range(5):  # three batches of one slice, two of the other
        number, hits = first.next()
        before += [hit.id for hit in hits]
        positions[number] = hits[-1].sort
    first.close()  # batches read ahead are dropped: the positions point before them
    after = [doc for _, doc in _read_all(SlicedScan(
        elastic_client, index, "id", bounds=bounds, positions=positions, batch_size=50,
        name="t"))]
    assert len(before) == 250
    assert sorted(before + after) == sorted(f"p{n}" for n in range(DOCUMENTS))


def test_one_slice_without_bounds_and_no_split_of_a_tiny_index(
        elastic_client: Elasticsearch, index: str, prefix: str) -> None:
    assert split_bounds(elastic_client, index, "id", 1) == []
    assert split_bounds(elastic_client, f"{prefix}-missing", "id", 4) == []
    found = _read_all(SlicedScan(elastic_client, index, "id", bounds=[], positions=[None],
                                 batch_size=300, name="t"))
    assert {number for number, _ in found} == {0} and len(found) == DOCUMENTS
    with pytest.raises(ValueError, match="1 bounds make 2 slices"):
        SlicedScan(elastic_client, index, "id", bounds=["p5"], positions=[None],
                   batch_size=10, name="t")
