"""The Redis client built from settings, and a reachability probe."""

from __future__ import annotations

from typing import TypeAlias

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.typing import EncodableT, FieldT

from tracardi_daemon.config.settings import RedisSettings
from tracardi_daemon.errors import BackendUnavailable
from tracardi_daemon.redact import mask_text

# The one name for the client type everywhere: redis-py 8 no longer makes Redis generic
# over its reply type, and our clients never decode (replies are bytes).
RedisClient: TypeAlias = redis.Redis
# what XADD takes as an entry's fields
StreamFields: TypeAlias = dict[FieldT, EncodableT]

# transport failures worth a quick retry inside the client before a role sees them
_RETRY_ON = [redis.ConnectionError, redis.TimeoutError]


def create_redis(settings: RedisSettings) -> RedisClient:
    """A pooled client; the pool is shared by every role thread (redis-py is thread-safe)."""
    return redis.Redis(
        host=settings.host,
        port=settings.port,
        db=settings.db,
        username=settings.username,
        password=settings.password,
        ssl=settings.ssl,
        ssl_ca_certs=settings.ca_file,
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=settings.connect_timeout_s,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=2),
        retry_on_error=list(_RETRY_ON),
        max_connections=256,
    )


def describe(settings: RedisSettings) -> str:
    """Where Redis is, for health details and log lines; never the user or password."""
    scheme = "rediss" if settings.ssl else "redis"
    return mask_text(f"{scheme}://{settings.host}:{settings.port}/{settings.db}")


def probe_redis(client: RedisClient, settings: RedisSettings) -> None:
    """Raise BackendUnavailable unless Redis answers PING."""
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        raise BackendUnavailable("redis", f"{describe(settings)}: authentication failed") from exc
    except redis.RedisError as exc:
        raise BackendUnavailable("redis", f"{describe(settings)}: {mask_text(str(exc))}") from exc
