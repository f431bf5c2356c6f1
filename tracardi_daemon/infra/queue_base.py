"""What the work queue, its dead letters and the dispatcher share: queue key names, Lua
script loading and decoding of stream entries."""

from __future__ import annotations

import random
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.commands.core import Script

from tracardi_daemon.infra.redis import RedisClient, check_name, text

Fields = Mapping[str, str]


def queue_key(tenant: str, queue: str) -> str:
    """The queue's stream; its satellites share the hash tag so one script may touch all."""
    return f"{{{check_name('tenant', tenant)}:q:{check_name('queue', queue)}}}"


def dead_key(tenant: str, queue: str) -> str:
    return f"{queue_key(tenant, queue)}:dead"


def retry_key(tenant: str, queue: str) -> str:
    return f"{queue_key(tenant, queue)}:retry"


def is_nogroup(exc: BaseException) -> bool:
    """True for the error of a stream whose consumer group is gone (key deleted)."""
    return isinstance(exc, redis.ResponseError) and str(exc).startswith("NOGROUP")


@cache
def _script_source(name: str) -> str:
    return resources.files("tracardi_daemon.infra").joinpath("lua", name).read_text("utf-8")


def load_script(client: RedisClient, name: str) -> Script:
    """A script object; redis-py loads it on first use and again after a SCRIPT FLUSH."""
    return client.register_script(_script_source(name))


def decode_fields(raw: Mapping[Any, Any] | list[Any]) -> dict[str, str]:
    """Entry fields as str -> str, from a redis-py dict or a flat list returned by Lua."""
    if isinstance(raw, Mapping):
        return {text(k): text(v) for k, v in raw.items()}
    return {text(raw[i]): text(raw[i + 1]) for i in range(0, len(raw) - 1, 2)}


def stream_entries(reply: object) -> list[tuple[str, dict[str, str]]]:
    """An XRANGE-style reply as (id, fields) pairs; entries deleted meanwhile (no fields)
    are left out."""
    if not isinstance(reply, list):
        return []
    return [(text(entry_id), decode_fields(fields))
            for entry_id, fields in reply if fields is not None]


def flatten(fields: Fields) -> list[str]:
    """Field/value pairs as one flat argument list for a script."""
    return [part for pair in fields.items() for part in pair]


def id_ms(entry_id: str) -> int:
    """The millisecond timestamp inside a stream id."""
    return int(entry_id.split("-", 1)[0])


def backoff_s(attempt: int, initial_s: float, cap_s: float, rng: random.Random) -> float:
    """Delay after failed attempt ``attempt`` (1-based): doubles per attempt up to the cap,
    and half of it is random so that a burst of failures spreads out."""
    ceiling = min(cap_s, initial_s * 2.0 ** min(attempt - 1, 62))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)
