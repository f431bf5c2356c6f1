"""The fault campaign with small counts (``python -m bench.faults`` runs the full one):
real daemons, real Redis, real receivers. Goal: 0 lost, 0 unexplained duplicates, no
stall of unrelated jobs over 50 ms, recovery within 1 s of Redis's return."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import redis

from tests.faults.harness import Fleet, TrialResult, cleanup
from tests.faults.scenarios import (
    corrupt_bodies,
    dead_receiver,
    kill9,
    private_redis,
    redis_restart,
    slow_receiver,
)

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

# the stall bound of the goal, with room for a loaded 2-core test machine
STALL_MS = 50


@pytest.fixture(scope="module")
def client() -> Iterator[redis.Redis]:
    yield redis.Redis()


@pytest.fixture(scope="module")
def pair(client: redis.Redis) -> Iterator[Fleet]:
    fleet = Fleet(2)
    fleet.start()
    yield fleet
    fleet.close()
    cleanup(client, fleet.tenant)


def clean(result: TrialResult) -> None:
    assert (result.lost, result.duplicated, result.early) == (0, 0, 0), result


def test_a_slow_receiver_gets_each_webhook_once_and_stalls_nothing(
        pair: Fleet, client: redis.Redis) -> None:
    result = slow_receiver(pair, client)
    clean(result)
    assert result.worst_lateness_ms <= STALL_MS, result


@pytest.mark.parametrize("kind", ["refused", "black-hole"])
def test_a_dead_receiver_stalls_nothing_and_health_stays_true(
        pair: Fleet, client: redis.Redis, kind: str) -> None:
    result = dead_receiver(pair, client, kind)
    clean(result)
    assert result.worst_lateness_ms <= STALL_MS, result
    assert result.health_not_ok == 0, result


def test_corrupted_bodies_are_dead_lettered_and_stall_nothing(
        pair: Fleet, client: redis.Redis) -> None:
    result = corrupt_bodies(pair, client)
    clean(result)
    assert result.worst_lateness_ms <= STALL_MS, result


def test_kill_9_of_one_of_two_daemons_loses_nothing(pair: Fleet, client: redis.Redis) -> None:
    clean(kill9(pair, client, random.Random(11)))


def test_a_redis_restart_loses_nothing_and_recovers_within_a_second() -> None:
    with private_redis() as server:
        fleet = Fleet(1, redis_port=server.port)
        try:
            fleet.start()
            result = redis_restart(fleet, server)
        finally:
            fleet.close()
    clean(result)
    assert result.health_200_while_down == 0, result
    assert result.recovery_s is not None and result.recovery_s <= 1.0, result
