"""Layout tracardi-0.8: the segmentation role follows the profiles Tracardi saves (their
``metadata.time.update``) from a checkpoint in Redis: equal update times across a batch
boundary, a restart under another owner, a change visible behind the cursor, a fenced
writer, and a profile Tracardi changed leaving its segment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import RoleStarter, start_role
from tests.tracardi_layouts import DEFAULT_PARTITIONING, partition_suffix
from tests.tracardi_layouts import documents as docs
from tests.tracardi_layouts.chain import MACHINE_NAME, put, stored
from tests.tracardi_layouts.install import TracardiInstall, install_tracardi_elastic
from tracardi_daemon.config.settings import (
    DefinitionsSettings,
    SegmentationSettings,
    Settings,
    TracardiSettings,
)
from tracardi_daemon.infra.lease import Lease
from tracardi_daemon.infra.queues import PROFILE_CHANGED_QUEUE, work_queue
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.roles.segmentation.follow import FollowLeaseLost, ProfileFollower
from tracardi_daemon.roles.segmentation.role import FOLLOW_LEASE, SegmentationRole

__all__ = ["start_role"]

START = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
SEGMENT = "Gold customers"


class Clock:
    def __init__(self, at: datetime) -> None:
        self.now = at.timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=("08x", "0820"))
def tracardi(request: pytest.FixtureRequest, elastic_client: Elasticsearch,
             prefix: str) -> Iterator[TracardiInstall]:
    """Two profile partitions: a profile's save may land in either."""
    version: str = request.param
    kind = DEFAULT_PARTITIONING[version]["profile"]
    install = install_tracardi_elastic(elastic_client, version, prefix, partitions={
        "profile": [partition_suffix(kind, 2025, 1), partition_suffix(kind, 2026, 6)]})
    yield install
    install.drop()


@pytest.fixture
def settings(tracardi: TracardiInstall) -> Settings:
    return Settings(
        tracardi=TracardiSettings(tenant=tracardi.tenant, db_version=tracardi.version,
                                  layout="tracardi-0.8"),
        segmentation=SegmentationSettings(batch_size=2, poll_interval_s=0.01, lease_s=5.0,
                                          follow_late_arrival_s=60.0,
                                          follow_recheck_every_s=1.0),
        definitions=DefinitionsSettings(refresh_s=0.2))


def save(install: TracardiInstall, profile_id: str, when: datetime, *, index: int = 1,
         **traits: object) -> None:
    """Tracardi saving a profile: its update time stamped ``when``."""
    document = docs.profile_document(install.version, profile_id, traits=traits, when=when)
    put(install, "profile", document, index=install.indices["profile"].indices[index])


def follower(redis: RedisClient, elastic: Elasticsearch, settings: Settings, owner: str,
             clock: Clock) -> ProfileFollower:
    lease = Lease(redis, settings.tracardi.tenant, FOLLOW_LEASE, owner, 5.0)
    return ProfileFollower(redis, elastic, settings, lease=lease, clock=clock)


def drain(one: ProfileFollower) -> None:
    """Step until a whole round (forward and look-back) finds nothing."""
    for _ in range(100):
        if one.step() is None:
            return
    raise AssertionError("the follower never went idle")


def announced(redis: RedisClient, settings: Settings) -> list[str]:
    """The profile ids queued on profile-changed since the last call (acknowledged)."""
    queue = work_queue(redis, settings.tracardi.tenant, PROFILE_CHANGED_QUEUE)
    ids: list[str] = []
    while messages := queue.consume("test", count=100):
        assert all(m.payload["source"] == "tracardi" and m.payload["event_types"] is None
                   for m in messages)
        ids.extend(str(m.payload["profile_id"]) for m in messages)
        queue.ack([m.id for m in messages])
    return sorted(ids)


def test_equal_update_times_across_batches_and_partitions_each_once(
        tracardi: TracardiInstall, settings: Settings, redis_client: RedisClient,
        elastic_client: Elasticsearch) -> None:
    clock = Clock(START)
    one = follower(redis_client, elastic_client, settings, "a", clock)
    drain(one)  # the checkpoint is now
    same = START + timedelta(seconds=1)
    for n, profile_id in enumerate(["p-3", "p-1", "p-5", "p-2", "p-4"]):
        save(tracardi, profile_id, same, index=n % 2)  # five saves in one millisecond
    clock.now += 2
    drain(one)
    assert announced(redis_client, settings) == ["p-1", "p-2", "p-3", "p-4", "p-5"]
    clock.now += 2  # another look-back: nothing new, nothing twice
    drain(one)
    assert announced(redis_client, settings) == []


def test_restart_goes_on_from_the_checkpoint(
        tracardi: TracardiInstall, settings: Settings, redis_client: RedisClient,
        elastic_client: Elasticsearch) -> None:
    clock = Clock(START)
    first = follower(redis_client, elastic_client, settings, "a", clock)
    drain(first)
    save(tracardi, "p-a", START + timedelta(seconds=1))
    save(tracardi, "p-b", START + timedelta(seconds=2))
    clock.now += 3
    drain(first)
    assert announced(redis_client, settings) == ["p-a", "p-b"]
    first.close()
    first.release()  # the daemon stops

    save(tracardi, "p-c", START + timedelta(seconds=4))
    save(tracardi, "p-a", START + timedelta(seconds=5), plan="gold")  # saved again
    clock.now += 3
    second = follower(redis_client, elastic_client, settings, "b", clock)
    drain(second)
    assert announced(redis_client, settings) == ["p-a", "p-c"]


def test_a_save_visible_behind_the_cursor_is_seen_once(
        tracardi: TracardiInstall, settings: Settings, redis_client: RedisClient,
        elastic_client: Elasticsearch) -> None:
    clock = Clock(START)
    one = follower(redis_client, elastic_client, settings, "a", clock)
    drain(one)
    save(tracardi, "p-new", START + timedelta(seconds=10))
    clock.now += 11
    drain(one)
    assert announced(redis_client, settings) == ["p-new"]
    # a writer whose clock is behind: its save appears behind the cursor
    save(tracardi, "p-skewed", START + timedelta(seconds=4))
    clock.now += 2
    drain(one)
    assert announced(redis_client, settings) == ["p-skewed"]
    clock.now += 2
    drain(one)
    assert announced(redis_client, settings) == []


def test_a_follower_that_lost_its_lease_cannot_move_the_checkpoint(
        tracardi: TracardiInstall, settings: Settings, redis_client: RedisClient,
        elastic_client: Elasticsearch) -> None:
    clock = Clock(START)
    first = follower(redis_client, elastic_client, settings, "a", clock)
    drain(first)
    # a stalls past its lease; b takes over
    redis_client.delete(Lease(redis_client, settings.tracardi.tenant, FOLLOW_LEASE, "b",
                              5.0).key)
    second = follower(redis_client, elastic_client, settings, "b", clock)
    drain(second)
    save(tracardi, "p-x", START + timedelta(seconds=1))
    clock.now += 2
    # a, not knowing yet, reads on: its write of the checkpoint is refused (what it
    # queued is a repeat b queues too, and a re-evaluation changes nothing twice)
    with pytest.raises(FollowLeaseLost):
        first.step()
    drain(second)
    assert set(announced(redis_client, settings)) == {"p-x"}
    clock.now += 2
    assert first.step() is None  # a knows now and stays out
    drain(second)
    assert announced(redis_client, settings) == []


def test_a_profile_tracardi_changed_leaves_its_segment(
        tracardi: TracardiInstall, settings: Settings, start_role: RoleStarter,
        redis_client: RedisClient) -> None:
    put(tracardi, "segment", docs.segment_document(SEGMENT, 'profile@traits.plan == "gold"'))
    role, ctx = start_role(SegmentationRole, settings)
    machine_name = MACHINE_NAME
    save(tracardi, "p-1", datetime.now(UTC) - timedelta(seconds=5), plan="gold")
    index = tracardi.indices["profile"].indices[1]
    for _ in range(2000):
        role.step(ctx.clock())
        if stored(tracardi, index, "p-1")["segments"] == [machine_name]:
            break
    else:
        raise AssertionError("p-1 never joined the segment")
    # Tracardi's collector maps a new plan and saves the profile (segments kept as read)
    document = docs.profile_document(tracardi.version, "p-1", traits={"plan": "silver"},
                                     segments=(machine_name,), when=datetime.now(UTC))
    put(tracardi, "profile", document, index=index)
    for _ in range(2000):
        role.step(ctx.clock())
        if stored(tracardi, index, "p-1")["segments"] == []:
            break
    else:
        raise AssertionError("p-1 kept a segment its saved traits no longer match")


class CountingElastic:
    """The real client, counting the requests the follower makes through it."""

    def __init__(self, client: Elasticsearch) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> object:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: object, **kwargs: object) -> object:
            self.calls.append(name)
            return attribute(*args, **kwargs)
        return call


def test_an_idle_step_is_one_search(
        tracardi: TracardiInstall, settings: Settings, redis_client: RedisClient,
        elastic_client: Elasticsearch) -> None:
    clock = Clock(START)
    counting = CountingElastic(elastic_client)
    one = follower(redis_client, counting, settings, "a", clock)  # type: ignore[arg-type]
    drain(one)
    save(tracardi, "p-1", START + timedelta(seconds=1))
    clock.now += 2
    drain(one)  # a forward page finds it, the look-back finds it announced
    assert announced(redis_client, settings) == ["p-1"]
    counting.calls.clear()
    assert one.step() is None  # before the next look-back is due
    assert counting.calls == ["search"]
