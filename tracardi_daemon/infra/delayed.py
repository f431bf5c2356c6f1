"""The durable delayed-job store: jobs wait in Redis until a daemon claims the next
horizon of them under a lease, fires them, and completes (or re-arms) them."""

from __future__ import annotations

import builtins
import json
import logging
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.deadletters import add_dead_letter
from tracardi_daemon.infra.dispatch_targets import parse_target
from tracardi_daemon.infra.queue_base import load_script
from tracardi_daemon.infra.queues import SCHEDULER_QUEUE
from tracardi_daemon.infra.redis import RedisClient, check_name, redis_errors, text
from tracardi_daemon.redact import mask_text

logger = logging.getLogger(__name__)

_SCRIPTS = ("claim", "renew", "complete", "release")


@dataclass(frozen=True)
class Job:
    """One delayed job; ``interval_s`` makes it recurring, due again every interval."""

    target: str
    payload: dict[str, Any]
    due_ms: int
    interval_s: float | None = None
    id: str = ""
    attempts: int = 0

    def to_json(self) -> str:
        return json.dumps({"id": self.id, "due_ms": self.due_ms, "target": self.target,
                           "payload": self.payload, "interval_s": self.interval_s,
                           "attempts": self.attempts}, separators=(",", ":"))

    @classmethod
    def from_json(cls, body: bytes | str) -> Job:
        """The job a stored body describes; InvalidInput naming the field unless every
        field is as ``validate_job`` wants,
        so that a body written by anything else can never crash the role that fires it.
        """
        try:
            data = json.loads(body)
        except RecursionError:
            raise InvalidInput("body: JSON nested too deeply") from None
        except ValueError as exc:  # not JSON, or not UTF-8
            raise InvalidInput(f"body: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise InvalidInput(f"body: must be a JSON object, not {type(data).__name__}")
        missing = [name for name in ("id", "target", "payload", "due_ms") if name not in data]
        if missing:
            raise InvalidInput(f"body: missing {', '.join(missing)}")
        job = cls(target=data["target"], payload=data["payload"], due_ms=data["due_ms"],
                  interval_s=data.get("interval_s"), id=data["id"],
                  attempts=data.get("attempts", 0))
        validate_job(job)
        return job

    @property
    def idempotency_key(self) -> str:
        """The same for every delivery of one occurrence, whichever daemon fires it."""
        return f"{self.id}:{self.due_ms}"

    def next_due_ms(self, now_ms: float) -> int | None:
        """The next occurrence after ``now_ms`` of a recurring job (missed ones are
        skipped, not fired in a burst), or None for a one-off job."""
        if not self.interval_s:
            return None
        step_ms = max(1, round(self.interval_s * 1000))
        missed = max(0, math.floor((now_ms - self.due_ms) / step_ms))
        return self.due_ms + (missed + 1) * step_ms


# ``DelayedStore.list`` shadows the builtin inside the class
Jobs = list[Job]
Ids = list[str]


# the last millisecond of year 9999: every due time stays a printable date
MAX_DUE_MS = 253_402_300_799_999
# a recurring job fires at most once per millisecond whatever wrote it
MIN_INTERVAL_S = 0.001


def validate_job(job: Job) -> None:
    """InvalidInput naming the field unless the job can be stored and dispatched."""
    if not isinstance(job.target, str):
        raise InvalidInput(f"target: must be a string, not {_shown(job.target)}")
    parse_target(job.target)
    if not isinstance(job.payload, dict):
        raise InvalidInput(f"payload: must be a JSON object, not {_shown(job.payload)}")
    try:
        json.dumps(job.payload)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"payload: not JSON serialisable ({exc})") from None
    interval = job.interval_s
    if interval is not None and not (_is_number(interval) and math.isfinite(interval)
                                     and interval >= MIN_INTERVAL_S):
        raise InvalidInput(f"interval_s: must be a number of seconds >= {MIN_INTERVAL_S}, "
                           f"not {_shown(interval)}")
    if not _is_int(job.due_ms) or not 0 <= job.due_ms <= MAX_DUE_MS:
        raise InvalidInput(f"due_ms: must be an integer from 0 to {MAX_DUE_MS}, "
                           f"not {_shown(job.due_ms)}")
    if not _is_int(job.attempts) or job.attempts < 0:
        raise InvalidInput(f"attempts: must be a non-negative integer, not "
                           f"{_shown(job.attempts)}")
    if not isinstance(job.id, str):
        raise InvalidInput(f"id: must be a string, not {_shown(job.id)}")
    check_name("id", job.id)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _shown(value: object) -> str:
    """A value for an error message, cut short (a bad field may be huge)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class DelayedStore:
    """One tenant's delayed jobs; safe to share between threads and daemons.

    Keys share the ``{<tenant>:sched}`` hash tag: ``due`` (zset by due ms), ``jobs``
    (hash id -> JSON), ``claimed`` (zset by lease deadline ms) and ``owner`` (hash
    id -> claim owner), so a claim lapsed and taken by another daemon can no longer be
    renewed or completed by the first.
    """

    def __init__(self, client: RedisClient, tenant: str) -> None:
        self._client = client
        self._tenant = tenant
        base = f"{{{check_name('tenant', tenant)}:sched}}"
        self.due_key, self.jobs_key = f"{base}:due", f"{base}:jobs"
        self.claimed_key, self.owner_key = f"{base}:claimed", f"{base}:owner"
        self._all_keys = [self.due_key, self.jobs_key, self.claimed_key, self.owner_key]
        self._scripts = {name: load_script(client, f"sched_{name}.lua") for name in _SCRIPTS}

    # producing

    def schedule(self, job: Job) -> str:
        """Store a job durably (a new id unless it has one); returns its id."""
        return self.schedule_many([job])[0]

    def schedule_many(self, jobs: Iterable[Job]) -> Ids:
        """Store jobs in one atomic round trip; returns their ids in order."""
        ready = [job if job.id else replace(job, id=uuid.uuid4().hex) for job in jobs]
        for job in ready:
            validate_job(job)
        if not ready:
            return []
        with redis_errors(f"schedule on {self.jobs_key}"):
            pipe = self._client.pipeline(transaction=True)
            pipe.hset(self.jobs_key, mapping={job.id: job.to_json() for job in ready})
            pipe.zadd(self.due_key, {job.id: job.due_ms for job in ready})
            pipe.execute()
        return [job.id for job in ready]

    def cancel(self, job_id: str) -> bool:
        """Remove a job wherever it is; False if there was no such job. A daemon that
        holds it drops it at its next check instead of firing it."""
        with redis_errors(f"cancel on {self.jobs_key}"):
            pipe = self._client.pipeline(transaction=True)
            pipe.hdel(self.jobs_key, job_id)
            pipe.zrem(self.due_key, job_id)
            pipe.zrem(self.claimed_key, job_id)
            pipe.hdel(self.owner_key, job_id)
            removed = pipe.execute()[0]
        return bool(removed)

    def get(self, job_id: str) -> Job | None:
        with redis_errors(f"get from {self.jobs_key}"):
            body = self._client.hget(self.jobs_key, job_id)
        return None if body is None else Job.from_json(body)

    def list(self, limit: int = 100) -> Jobs:
        """The next ``limit`` jobs by due time, claimed ones included."""
        with redis_errors(f"list {self.jobs_key}"):
            ids = [text(i) for i in self._client.zrange(self.claimed_key, 0, -1)]
            ids += [text(i) for i in self._client.zrange(self.due_key, 0, max(0, limit - 1))]
            bodies = self._client.hmget(self.jobs_key, ids) if ids else []
        jobs = [job for job in map(_readable, bodies) if job is not None]
        return sorted(jobs, key=lambda job: (job.due_ms, job.id))[:limit]

    # consuming

    def claim_due(self, owner: str, horizon_ms: int, lease_ms: int,
                  limit: int = 1000) -> tuple[int, Jobs]:
        """Take jobs due within ``horizon_ms`` for ``owner`` under a lease of
        ``lease_ms``, after handing lapsed claims back. Returns (Redis now ms, jobs)."""
        with redis_errors(f"claim from {self.due_key}"):
            now_ms, flat = self._scripts["claim"](
                keys=self._all_keys, args=[owner, horizon_ms, lease_ms, limit])
        jobs: Jobs = []
        for raw_id, body in zip(flat[::2], flat[1::2], strict=True):
            job_id = text(raw_id)
            try:
                job = Job.from_json(body)
                if job.id != job_id:
                    raise InvalidInput(f"id: {_shown(job.id)} differs from its key "
                                       f"{job_id!r}")
            except InvalidInput as exc:
                self._bury(owner, job_id, text(body), exc)
                continue
            jobs.append(job)
        return int(now_ms), jobs

    def _bury(self, owner: str, job_id: str, body: str, error: Exception) -> None:
        """Move an unreadable job (written by something else) to the dead letters, so
        it is seen and never blocks the jobs behind it."""
        reason = mask_text(f"unreadable delayed job {job_id}: {error}")
        logger.error("%s; moved to the dead letters of %s", reason, SCHEDULER_QUEUE)
        add_dead_letter(self._client, self._tenant, SCHEDULER_QUEUE, payload=body,
                        reason=reason, attempts=0, extra={"job_id": job_id})
        with redis_errors(f"remove unreadable job from {self.jobs_key}"):
            self._scripts["complete"](keys=self._all_keys, args=[owner, 0, job_id, "done", 0, ""])

    def renew(self, owner: str, ids: Sequence[str], lease_ms: int) -> Ids:
        """Extend the lease on held jobs; returns the ids still held by ``owner``."""
        if not ids:
            return []
        with redis_errors(f"renew claims on {self.claimed_key}"):
            held = self._scripts["renew"](keys=[self.claimed_key, self.owner_key],
                                          args=[owner, lease_ms, *ids])
        return [text(i) for i in held]

    def owned(self, owner: str, ids: Sequence[str]) -> set[str]:
        """The ids among ``ids`` still claimed by ``owner`` (not cancelled, not lost)."""
        if not ids:
            return set()
        with redis_errors(f"check claims on {self.owner_key}"):
            owners = self._client.hmget(self.owner_key, list(ids))
        return {job_id for job_id, who in zip(ids, owners, strict=True)
                if who is not None and text(who) == owner}

    def complete(self, owner: str, jobs: Sequence[Job], now_ms: float, *,
                 hold_until_ms: float | None = None, lease_ms: int = 0) -> Jobs:
        """Finish fired jobs still held by ``owner``: remove one-off jobs, re-arm
        recurring ones. A recurring job next due before ``hold_until_ms`` stays claimed
        (lease ``lease_ms``). Returns the jobs that stay held, with their next due time."""
        args: builtins.list[str | int] = [owner, lease_ms]
        rearmed: dict[str, Job] = {}
        for job in jobs:
            next_due = job.next_due_ms(now_ms)
            if next_due is None:
                args += [job.id, "done", 0, ""]
                continue
            again = replace(job, due_ms=next_due)
            hold = hold_until_ms is not None and next_due <= hold_until_ms
            args += [job.id, "hold" if hold else "rearm", next_due, again.to_json()]
            if hold:
                rearmed[job.id] = again
        if not jobs:
            return []
        with redis_errors(f"complete on {self.jobs_key}"):
            finished = self._scripts["complete"](keys=self._all_keys, args=args)
        return [rearmed[i] for i in map(text, finished) if i in rearmed]

    def release(self, owner: str, ids: Sequence[str]) -> int:
        """Hand held jobs back to due so any daemon may fire them; returns how many."""
        if not ids:
            return 0
        with redis_errors(f"release claims on {self.claimed_key}"):
            released = self._scripts["release"](keys=self._all_keys, args=[owner, *ids])
        return int(released)


def _readable(body: bytes | str | None) -> Job | None:
    """The job, or None if it is gone or unreadable (claiming dead-letters those)."""
    if body is None:
        return None
    try:
        return Job.from_json(body)
    except InvalidInput:
        return None
