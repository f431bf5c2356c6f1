"""The Redis client built from settings, a reachability probe, and what every user of
Redis shares: key-part checks, error conversion and reply decoding."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeAlias

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.typing import EncodableT, FieldT

from tracardi_daemon.config.settings import RedisSettings
from tracardi_daemon.errors import BackendError, BackendUnavailable, InvalidInput
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


# a hash tag must stay intact: braces would break it, whitespace breaks the CLI
_NAME = re.compile(r"[^\s{}]+")

def valid_name(value: str) -> bool:
    """Whether ``value`` can be part of a key: non-empty, without braces or spaces."""
    return _NAME.fullmatch(value) is not None


def check_name(kind: str, value: str) -> str:
    if not valid_name(value):
        raise InvalidInput(f"{kind} {value!r}: must be non-empty, without braces or spaces")
    return value


@contextmanager
def redis_errors(action: str) -> Iterator[None]:
    """Convert redis-py exceptions to the daemon's own, naming what was being done."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BackendUnavailable("redis", f"{action}: {exc}") from exc
    except redis.RedisError as exc:
        raise BackendError("redis", f"{action}: {exc}") from exc


def text(value: object) -> str:
    """A reply value as text (bytes are UTF-8; anything else through str)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
