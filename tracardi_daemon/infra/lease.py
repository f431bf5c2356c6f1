"""One leader per duty across daemons: a lease in Redis with a fencing token, and a
writer that only writes while the lease is still ours.

The lease is the string ``<tenant>:lease:<name>`` = ``"<owner>|<token>"`` with a PX
expiry; the token comes from INCR of ``<tenant>:lease:<name>:fence`` at acquisition, so
it grows strictly from one holder to the next. Acquire, renew and release are Lua
check-and-set scripts.

Fenced writes (``Lease.fenced().execute(commands)``) run in one Lua script that first
compares the lease with the value the writer was created under, and writes nothing when
they differ. Every key the commands touch is passed in KEYS: on Redis Cluster all keys
written together (the lease included) must hash to the same slot, and declaring them
makes Cluster refuse a cross-slot call loudly (CROSSSLOT) rather than run it silently
on one node. The lease and its fence counter are two keys without a shared hash tag,
as the key layout prescribes, so on Cluster the acquire script is refused the same way
until the layout gives them one. A command that fails half-way (a key of the wrong
type) leaves the commands before it written: Redis does not roll back a script.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from redis.commands.core import Script

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.queue_base import load_script
from tracardi_daemon.infra.redis import RedisClient, check_name, redis_errors, text

logger = logging.getLogger(__name__)

Command = tuple[str, ...]


def lease_key(tenant: str, name: str) -> str:
    return f"{check_name('tenant', tenant)}:lease:{check_name('lease name', name)}"


def parse_value(value: str) -> tuple[str, int] | None:
    """``"<owner>|<token>"`` as (owner, token); None for anything else."""
    owner, sep, token = value.rpartition("|")
    if not sep or not token.isdigit():
        return None
    return owner, int(token)


class _Hold(NamedTuple):
    """What we hold, replaced as a whole so that other threads read it consistently."""

    value: str
    token: int
    renewed_at: float  # our clock, taken before the request that acquired or renewed


class Lease:
    """A lease on one duty for one owner (unique per daemon process).

    ``held`` turns False once ``ttl_s`` has passed on our clock since the last
    successful renewal, without asking Redis, so a process that was paused longer
    than the ttl never acts on a stale view. Not meant for several threads calling
    ``acquire`` at once; ``keep`` (a renewal only), ``held``, ``value`` and ``fenced``
    are safe from any thread.
    """

    def __init__(
        self,
        client: RedisClient,
        tenant: str,
        name: str,
        owner: str,
        ttl_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not owner:
            raise InvalidInput("lease owner: must be a non-empty string")
        if not (ttl_s > 0 and math.isfinite(ttl_s)):
            raise InvalidInput(f"lease ttl_s: must be a positive number of seconds, not {ttl_s!r}")
        self._client = client
        self._key = lease_key(tenant, name)
        self._fence_key = f"{self._key}:fence"
        self._owner = owner
        self._ttl_s = ttl_s
        self._ttl_ms = max(1, round(ttl_s * 1000))
        self._clock = clock
        self._hold: _Hold | None = None
        self._acquire = load_script(client, "lease_acquire.lua")
        self._renew = load_script(client, "lease_renew.lua")
        self._release = load_script(client, "lease_release.lua")
        self._fenced = load_script(client, "fenced.lua")

    @property
    def key(self) -> str:
        return self._key

    @property
    def owner(self) -> str:
        return self._owner

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    @property
    def held(self) -> bool:
        return self._current() is not None

    @property
    def token(self) -> int | None:
        hold = self._current()
        return None if hold is None else hold.token

    @property
    def value(self) -> str | None:
        """``"<owner>|<token>"`` while held."""
        hold = self._current()
        return None if hold is None else hold.value

    def _current(self) -> _Hold | None:
        hold = self._hold
        if hold is None or self._clock() - hold.renewed_at >= self._ttl_s:
            return None
        return hold

    def acquire(self) -> bool:
        """Take the lease if it is free, or extend it if it is already ours."""
        started = self._clock()
        with redis_errors(f"acquire lease {self._key}"):
            token = int(
                self._acquire(keys=[self._key, self._fence_key], args=[self._owner, self._ttl_ms])
            )
        if token <= 0:
            self._hold = None
            return False
        previous = self._hold
        self._hold = _Hold(f"{self._owner}|{token}", token, started)
        if previous is None or previous.token != token:
            logger.info("lease %s acquired by %s (fence %d)", self._key, self._owner, token)
        return True

    def renew(self) -> bool:
        """Extend the lease if Redis still holds our value; False (and ``held`` False)
        if it lapsed or went to another owner. A renewal after our local deadline is
        still safe: an unchanged value means no one else held it meanwhile."""
        hold = self._hold
        if hold is None:
            return False
        started = self._clock()
        with redis_errors(f"renew lease {self._key}"):
            renewed = int(self._renew(keys=[self._key], args=[hold.value, self._ttl_ms]))
        if not renewed:
            self._hold = None
            logger.warning("lease %s lost by %s (fence %d)", self._key, self._owner, hold.token)
            return False
        self._hold = hold._replace(renewed_at=started)
        return True

    def release(self) -> None:
        """Give the lease up, deleting it only if it is still ours."""
        hold, self._hold = self._hold, None
        if hold is None:
            return
        with redis_errors(f"release lease {self._key}"):
            self._release(keys=[self._key], args=[hold.value])
        logger.info("lease %s released by %s (fence %d)", self._key, self._owner, hold.token)

    def ensure(self) -> bool:
        """What a role calls from every step: renew once a third of the ttl has passed
        since the last renewal, acquire when not held. Returns ``held``; a failed
        renewal returns False even if the lease is free again, so that the role stops
        the duty at once; the next call tries to acquire it afresh."""
        hold = self._current()
        if hold is None:
            return self.acquire()
        if self._clock() - hold.renewed_at >= self._ttl_s / 3:
            return self.renew()
        return True

    def keep(self) -> bool:
        """Renew a lease we hold once a third of the ttl has passed; never acquire.
        For a heartbeat from another thread than the one that acquires (the role's
        ``tend`` while its step runs a long batch): a renewal races nothing, since
        Redis renews only the value we hold."""
        hold = self._current()
        if hold is None:
            return False
        if self._clock() - hold.renewed_at >= self._ttl_s / 3:
            return self.renew()
        return True

    def holder(self) -> tuple[str, int] | None:
        """Who holds the lease now according to Redis: (owner, token)."""
        with redis_errors(f"read lease {self._key}"):
            value = self._client.get(self._key)
        return None if value is None else parse_value(text(value))

    def fenced(self) -> Fenced:
        """A writer bound to the current holding (owner and token): it keeps working
        across renewals and refuses while the lease is not held, for good once another
        token holds it, even if this process takes it again later (a new holding means
        a new writer, made after reloading the checkpoint). Created while not held, it
        refuses every write."""
        return Fenced(self, self.value, self._fenced)


class Fenced:
    """Writes only while the lease still holds the value it was created under."""

    def __init__(self, lease: Lease, value: str | None, script: Script) -> None:
        self._lease = lease
        self._value = value
        self._script = script

    @property
    def token(self) -> int | None:
        parsed = None if self._value is None else parse_value(self._value)
        return None if parsed is None else parsed[1]

    def execute(self, commands: Sequence[Command]) -> bool:
        """Run ``commands`` (e.g. ``("HSET", key, field, value)``) in one atomic script
        if the lease is still ours, else write nothing and return False. Allowed: DEL,
        SET, PEXPIRE, HSET, HDEL, HINCRBY, ZADD, ZREM, ZREMRANGEBYSCORE, SADD, SREM,
        XADD; any other command, or a write to the lease itself, is refused with
        BackendError before anything runs. No commands at all just checks the lease."""
        lease_key = self._lease.key
        # our own clock first: past the local deadline Redis is not even asked
        if self._value is None or self._lease.value != self._value:
            return False
        keys: dict[str, None] = {}  # ordered and unique
        for command in commands:
            if not command:
                raise InvalidInput("fenced command: must not be empty")
            touched = command[1:] if command[0].upper() == "DEL" else command[1:2]
            keys.update(dict.fromkeys(touched))
        keys.pop(lease_key, None)  # undeclared, so the script refuses to write it
        body = json.dumps([list(command) for command in commands])
        with redis_errors(f"fenced write under lease {lease_key}"):
            written = self._script(keys=[lease_key, *keys], args=[self._value, body])
        return bool(written)
