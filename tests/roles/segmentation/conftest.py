"""Fixtures of the segmentation tests: the mapping tests' tenant (profiles, events and
definitions in the real Elasticsearch) with settings for the segmentation role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.conftest import start_role
from tests.receivers import LOOPBACK_ALLOWED
from tests.roles.mapping.conftest import World
from tests.roles.mapping.conftest import run_until_idle as step_until_idle
from tracardi_daemon.config.settings import (
    DefinitionsSettings,
    QueueSettings,
    SegmentationSettings,
    Settings,
    TracardiSettings,
)
from tracardi_daemon.infra.queue import Message, WorkQueue
from tracardi_daemon.infra.queues import SEGMENT_CHANGES_QUEUE
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.indices import install

__all__ = ["World", "changes", "segmentation_world", "start_role", "step_until_idle"]


@pytest.fixture
def segmentation_world(elastic_client: Elasticsearch, redis_client: RedisClient,
                       prefix: str) -> Iterator[World]:
    settings = Settings(
        tracardi=TracardiSettings(tenant=prefix),
        outbound=LOOPBACK_ALLOWED,
        segmentation=SegmentationSettings(batch_size=50, poll_interval_s=0.01, lease_s=5.0),
        queue=QueueSettings(visibility_timeout_s=1.0),
        definitions=DefinitionsSettings(refresh_s=0.01))
    install(elastic_client, settings)
    yield World(elastic_client, redis_client, settings)


def changes(world: World) -> list[Message]:
    """Every transition on the segment-changes queue (read by a test consumer)."""
    queue = WorkQueue(world.redis, world.settings.tracardi.tenant, SEGMENT_CHANGES_QUEUE)
    return queue.consume("test-reader", count=10_000)


def with_segmentation(settings: Settings, **changes: Any) -> Settings:
    return replace(settings, segmentation=replace(settings.segmentation, **changes))
