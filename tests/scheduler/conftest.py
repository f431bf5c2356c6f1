"""Fixtures for the scheduler and dispatch tests: the real local receivers, and roles
started with a context of their own against the real Redis."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.receivers import black_hole, http_server, trickler
from tracardi_daemon.config.settings import Settings
from tracardi_daemon.infra.host_limits import HostLimits
from tracardi_daemon.infra.redis import RedisClient
from tracardi_daemon.roles.base import RoleContext, RoleCounters

__all__ = ["black_hole", "http_server", "start_role", "trickler"]

RoleStarter = Callable[..., tuple[Any, RoleContext]]


@pytest.fixture
def start_role(redis_client: RedisClient, elastic_url: str) -> Iterator[RoleStarter]:
    """``start_role(RoleClass, settings, limits=None)`` -> (started role, its context);
    every role is stopped at the end of the test."""
    pool = ThreadPoolExecutor(1)
    elastic = Elasticsearch(elastic_url)
    roles: list[Any] = []

    def start(kind: type[Any], settings: Settings,
              limits: HostLimits | None = None) -> tuple[Any, RoleContext]:
        ctx = RoleContext(name=kind.__name__, settings=settings, redis=redis_client,
                          elastic=elastic, pool=pool, stop=threading.Event(),
                          logger=logging.getLogger(kind.__name__), counters=RoleCounters(),
                          consumer_name=f"test-{len(roles)}", host_limits=limits)
        role = kind()
        role.start(ctx)
        roles.append(role)
        return role, ctx

    yield start
    for role in roles:
        role.stop()
    pool.shutdown()
    elastic.close()
