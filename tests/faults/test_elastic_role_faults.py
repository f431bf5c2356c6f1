"""Elasticsearch faults under the roles the mapping tests do not cover, each with a
real daemon on the private node (tests/faults/elastic_trial.py): a segmentation pass
with webhook triggers, a migration and an import through a hang of 3.5 times the lease,
and a migration through a kill -9 and restart of the node. Each must end exact: nothing
lost, nothing doubled, every task finished with done == total, no job owned by no one,
no role failed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis

from tests.faults.elastic_node import PrivateElastic, private_elastic
from tests.faults.elastic_trial import run_trial

pytestmark = [pytest.mark.faults, pytest.mark.e2e]
MOMENT = 0.25  # of the work done when the fault hits: past the first batches


@pytest.fixture(scope="module")
def node() -> Iterator[PrivateElastic]:
    with private_elastic() as started:
        yield started


def _clean(node: PrivateElastic, client: Redis, role: str, fault: str) -> None:
    trial = run_trial(node, client, role, fault, MOMENT)
    assert not trial.missed, f"the {role} work ended before the fault: make it larger"
    assert trial.clean, trial


def test_a_segmentation_pass_through_a_hang_longer_than_the_lease_ends_exact(
        node: PrivateElastic, _redis_session: Redis) -> None:
    _clean(node, _redis_session, "segmentation", "hang")


def test_a_migration_through_a_hang_longer_than_the_lease_copies_each_document_once(
        node: PrivateElastic, _redis_session: Redis) -> None:
    _clean(node, _redis_session, "migration", "hang")


def test_an_import_through_a_hang_longer_than_the_lease_imports_each_row_once(
        node: PrivateElastic, _redis_session: Redis) -> None:
    _clean(node, _redis_session, "import", "hang")


def test_a_migration_through_a_restart_of_elasticsearch_copies_each_document_once(
        node: PrivateElastic, _redis_session: Redis) -> None:
    _clean(node, _redis_session, "migration", "restart")
