"""Shared fixtures: the real Redis and Elasticsearch started by ``scripts/services``
(MariaDB: ``tests/roles/upgrade/imports/mysql_fixtures.py``).

Every test gets its own key/index prefix, so tests never see each other's data.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from redis import Redis

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.infra.cpu_pool import CpuPool
from tracardi_daemon.infra.host_limits import HostLimits
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.base import RoleContext, RoleCounters

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ELASTIC_URL = os.environ.get("TEST_ELASTIC_URL", "http://127.0.0.1:9200")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture(scope="session")
def elastic_url() -> str:
    return ELASTIC_URL


@pytest.fixture(scope="session")
def _redis_session() -> Iterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except Exception as exc:
        pytest.exit(f"Redis at {REDIS_URL} is not reachable ({exc}); run scripts/services up")
    yield client
    client.close()


@pytest.fixture(scope="session")
def _elastic_session() -> Iterator[Elasticsearch]:
    client = Elasticsearch(ELASTIC_URL, request_timeout=30)
    try:
        client.cluster.health(wait_for_status="yellow", timeout="30s")
    except Exception as exc:
        pytest.exit(f"Elasticsearch at {ELASTIC_URL} is not reachable ({exc}); "
                    "run scripts/services up")
    yield client
    client.close()


@pytest.fixture
def prefix() -> str:
    """A fresh tenant-like prefix, lowercase and valid in index names and Redis keys."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def redis_client(_redis_session: Redis, prefix: str) -> Iterator[Redis]:
    yield _redis_session
    keys = list(_redis_session.scan_iter(match=f"*{prefix}*", count=1000))
    if keys:
        _redis_session.delete(*keys)


@pytest.fixture
def elastic_client(_elastic_session: Elasticsearch, prefix: str) -> Iterator[Elasticsearch]:
    yield _elastic_session
    drop_indices(_elastic_session, prefix)


def drop_indices(client: Elasticsearch, prefix: str) -> None:
    """Delete the indices and index templates whose names contain ``prefix`` (a daemon
    started for a test tenant installs them; the test cluster's shards are limited)."""
    # delete by exact name: clusters may refuse wildcard deletes
    # (action.destructive_requires_name)
    found = client.options(ignore_status=404).indices.get(
        index=f"*{prefix}*", expand_wildcards="all"
    )
    names = [name for name in found.body if name != "error"] if found.meta.status == 200 else []
    for start in range(0, len(names), 50):  # a URL of bounded length
        client.options(ignore_status=404).indices.delete(index=",".join(names[start:start + 50]))
    templates = client.options(ignore_status=404).indices.get_index_template(
        name=f"*{prefix}*"
    )
    for template in templates.get("index_templates", []):
        client.indices.delete_index_template(name=template["name"])


def supervised(kind: type[Any]) -> type[Any]:
    """``kind`` whose step waits after finding no work, as the supervisor makes it
    wait (``idle_wait_s`` on the stop event): tests step roles in loops."""

    class Supervised(kind):  # type: ignore[misc, valid-type]
        def step(self, now: float) -> bool:
            worked: bool = super().step(now)
            if not worked:
                self.ctx.stop.wait(getattr(self, "idle_wait_s", 0.0))
            return worked

    Supervised.__name__ = Supervised.__qualname__ = kind.__name__
    return Supervised


RoleStarter = Callable[..., tuple[Any, RoleContext]]


@pytest.fixture
def start_role(redis_client: RedisClient, elastic_url: str) -> Iterator[RoleStarter]:
    """``start_role(RoleClass, settings, limits=None, clock=None, cpu_pool=None)`` ->
    (started role, its context; its pool inline unless one is given); every role is
    stopped at the end of the test."""
    pool = CpuPool(1)  # inline: a role's CPU work runs in its own thread
    elastic = Elasticsearch(elastic_url)
    roles: list[Any] = []

    def start(kind: type[Any], settings: Settings, limits: HostLimits | None = None,
              clock: Callable[[], float] | None = None,
              cpu_pool: CpuPool | None = None) -> tuple[Any, RoleContext]:
        timing = {} if clock is None else {"clock": clock}
        ctx = RoleContext(name=kind.__name__, settings=settings, redis=redis_client,
                          elastic=elastic, pool=cpu_pool or pool, stop=threading.Event(),
                          logger=logging.getLogger(kind.__name__), counters=RoleCounters(),
                          consumer_name=f"test-{len(roles)}", host_limits=limits, **timing)
        role = supervised(kind)()
        role.start(ctx)
        roles.append(role)
        return role, ctx

    yield start
    for role in roles:
        role.stop()
    pool.shutdown()
    elastic.close()


def step_until_ended(role: Any, ctx: RoleContext, tasks: TaskStore, task_id: str,
                     steps: int = 500, seen: list[int] | None = None) -> TaskRecord:
    """Step a started role until task ``task_id`` ends (at most ``steps`` steps); its
    ``done`` count after each step goes into ``seen`` when given."""
    for _ in range(steps):
        role.step(ctx.clock())
        record = tasks.get(task_id)
        assert record is not None
        if seen is not None:
            seen.append(record.done)
        if record.terminal:
            return record
    raise AssertionError(f"task {task_id} did not end within {steps} steps")
