"""One trial of each fault, run against a started Fleet (see harness.py)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.faults.harness import (
    Fleet,
    TrialResult,
    black_hole,
    judge,
    schedule,
    stream_arrivals,
    wait_until,
)
from tests.receivers import Receiver, free_port
from tracardi_daemon.errors import DaemonError
from tracardi_daemon.infra.deadletters import DeadLetters
from tracardi_daemon.infra.delayed import DelayedStore

LEAD_MS = 1500  # jobs are due this far ahead: claimed into the wheel before they fire
UNRELATED = 20  # stream jobs due beside the faulty ones


def _unrelated(store: DelayedStore, tenant: str, due_ms: int) -> tuple[dict[str, int], str]:
    """Stream jobs on a stream of this trial's own; their key -> due ms, and the key."""
    name = f"unrelated-{uuid.uuid4().hex[:8]}"
    return schedule(store, f"stream:{name}", UNRELATED, due_ms), f"{tenant}:{name}"


def _parked_keys(client: redis.Redis, tenant: str) -> set[str]:
    """Idempotency keys of deliveries still durable in the dispatch queue (pending,
    waiting to retry, or dead-lettered): not delivered yet, but not lost."""
    base = f"{{{tenant}:q:dispatch}}"
    # one MULTI (one hash tag): a retry promoted back to the stream between two separate
    # reads would be in neither
    pipe = client.pipeline(transaction=True)
    pipe.xrange(base)
    pipe.zrange(f"{base}:retry", 0, -1)
    pipe.xrange(f"{base}:dead")
    waiting, retrying, dead = pipe.execute()
    keys = {json.loads(f[b"payload"])["idempotency_key"] for _, f in waiting + dead}
    for member in retrying:
        keys.add(json.loads(json.loads(member)["payload"])["idempotency_key"])
    return keys


def slow_receiver(fleet: Fleet, client: redis.Redis) -> TrialResult:
    """4 webhooks to a receiver that answers after 2 s, 20 stream jobs due with them:
    each webhook is POSTed once, the stream jobs stay on time."""
    result = TrialResult("slow receiver")
    receiver = Receiver(delay_s=2.0)
    try:
        store = DelayedStore(client, fleet.tenant)
        due = int(time.time() * 1000) + LEAD_MS
        hooks = schedule(store, f"webhook:{receiver.url}", 4, due)
        streams, key = _unrelated(store, fleet.tenant, due)
        wait_until(lambda: len(receiver.keys()) >= 4, 10)
        time.sleep(4.0)  # long enough for any repeat to show
        judge(result, hooks, receiver.received, timed=False)
        judge(result, streams, stream_arrivals(client, key))
    finally:
        receiver.close()
    return result


def dead_receiver(fleet: Fleet, client: redis.Redis, kind: str) -> TrialResult:
    """Webhooks to a refused port or a black hole beside 20 stream jobs: the stream
    jobs stay on time, health stays 200, the webhooks stay durable until dead-lettered."""
    result = TrialResult(f"{kind} receiver")
    with black_hole() as hole:
        url = hole if kind == "black-hole" else f"http://127.0.0.1:{free_port()}/hook"
        store = DelayedStore(client, fleet.tenant)
        due = int(time.time() * 1000) + LEAD_MS
        hooks = schedule(store, f"webhook:{url}", 2, due)
        streams, key = _unrelated(store, fleet.tenant, due)
        deadline = time.monotonic() + LEAD_MS / 1000 + 3.0
        while time.monotonic() < deadline:
            for daemon in fleet.daemons:
                status, _ = daemon.health()
                result.health_not_ok += status != 200
            time.sleep(0.2)
        judge(result, streams, stream_arrivals(client, key))
        result.jobs += len(hooks)
        result.lost += len(set(hooks) - _parked_keys(client, fleet.tenant))
    return result


def kill9(fleet: Fleet, client: redis.Redis, rng: random.Random) -> TrialResult:
    """Two daemons; one is killed with SIGKILL at a random moment while 100 webhook and
    100 stream jobs fall due over 2 s; the other delivers everything."""
    result = TrialResult("kill -9")
    receiver = Receiver()
    try:
        store = DelayedStore(client, fleet.tenant)
        start = int(time.time() * 1000) + LEAD_MS
        hooks = schedule(store, f"webhook:{receiver.url}", 100, start, 2000)
        name = f"killed-{uuid.uuid4().hex[:8]}"  # this trial's own stream
        streams = schedule(store, f"stream:{name}", 100, start, 2000)
        time.sleep(rng.uniform(LEAD_MS / 1000 - 0.5, LEAD_MS / 1000 + 2.0))
        victim = rng.choice(fleet.daemons)
        assert victim.proc is not None
        pid = victim.proc.pid
        victim.kill9()
        # what the victim held at the kill may be sent again, with the same key
        in_flight = _held_by(client, fleet.tenant, pid, set(hooks) | set(streams))
        wait_until(lambda: set(receiver.keys()) >= set(hooks)
                   and client.xlen(f"{fleet.tenant}:{name}") >= 100, 20)
        time.sleep(1.5)
        judge(result, hooks, receiver.received, in_flight, timed=False)
        judge(result, streams, stream_arrivals(client, f"{fleet.tenant}:{name}"), in_flight,
              timed=False)
        victim.start()
        victim.wait_running()
    finally:
        receiver.close()
    return result


def _held_by(client: redis.Redis, tenant: str, pid: int, keys: set[str]) -> set[str]:
    """The idempotency keys of the jobs a killed daemon (by pid) had claimed, and of the
    deliveries its senders had taken: work in flight at the kill."""
    marker = f":{pid}:"
    owners = client.hgetall(f"{{{tenant}:sched}}:owner")
    jobs = {job_id.decode() for job_id, owner in owners.items() if marker in owner.decode()}
    held = {key for key in keys if key.split(":")[0] in jobs}
    stream = f"{{{tenant}:q:dispatch}}"
    try:
        pending = client.xpending_range(stream, "tracardi-daemon", "-", "+", 10_000)
    except redis.ResponseError:  # no group yet: nothing was taken
        return held
    for entry in pending:
        if marker in entry["consumer"].decode():
            for _, fields in client.xrange(stream, entry["message_id"], entry["message_id"]):
                held.add(json.loads(fields[b"payload"])["idempotency_key"])
    return held


def corrupt_bodies(fleet: Fleet, client: redis.Redis) -> TrialResult:
    """Four corrupted bodies due with 20 stream jobs: the stream jobs fire on time and
    every corrupted body is dead-lettered."""
    result = TrialResult("corrupted bodies")
    store = DelayedStore(client, fleet.tenant)
    due = int(time.time() * 1000) + LEAD_MS
    bad = {
        "target5": f'{{"id": "target5", "due_ms": {due}, "target": 5, "payload": {{}}}}',
        "interval": f'{{"id": "interval", "due_ms": {due}, "target": "stream:x", '
                    f'"payload": {{}}, "interval_s": "abc"}}',
        "huge": '{"id": "huge", "due_ms": 1e400, "target": "stream:x", "payload": {}}',
        "mismatch": f'{{"id": "other", "due_ms": {due}, "target": "stream:x", '
                    f'"payload": {{}}}}',
    }
    dead_before = DeadLetters(client, fleet.tenant, "scheduler").count()
    for job_id, body in bad.items():
        client.hset(store.jobs_key, job_id, body)
        client.zadd(store.due_key, {job_id: due})
    streams, key = _unrelated(store, fleet.tenant, due)
    wait_until(lambda: client.xlen(key) >= UNRELATED, 10)
    wait_until(lambda: DeadLetters(client, fleet.tenant, "scheduler").count()
               >= dead_before + len(bad), 5)
    judge(result, streams, stream_arrivals(client, key))
    result.jobs += len(bad)
    result.lost += dead_before + len(bad) - DeadLetters(client, fleet.tenant,
                                                        "scheduler").count()
    client.delete(key)
    return result


class PrivateRedis:
    """A redis-server of its own on a spare port, with an fsync-always AOF, that can be
    stopped (SHUTDOWN, as an outage) and started again on the same data."""

    def __init__(self) -> None:
        self.port, self.dir = free_port(), Path(tempfile.mkdtemp(prefix="td-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.dir), "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL)
        if not wait_until(self.answers, 5):
            raise AssertionError(f"redis-server on {self.port} did not start")

    def stop(self) -> None:
        redis.Redis(port=self.port).shutdown(nosave=False)  # fsyncs the AOF first
        if self.proc is not None:
            self.proc.wait(10)

    def answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.2).ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.close()


def redis_restart(fleet: Fleet, server: PrivateRedis, outage_s: float = 3.0) -> TrialResult:
    """Redis stopped for ``outage_s`` (30 jobs fall due meanwhile) and started again on
    its AOF: nothing lost, health never 200 while it is down, delivery resumes fast."""
    result = TrialResult("redis restart")
    client = redis.Redis(port=server.port)
    store = DelayedStore(client, fleet.tenant)
    down_at_ms = int(time.time() * 1000) + 500
    during = schedule(store, "stream:outage", 30, down_at_ms + 300, int(outage_s * 600))
    time.sleep(0.5)
    server.stop()
    stopped = time.monotonic()
    while time.monotonic() - stopped < outage_s:
        for daemon in fleet.daemons:
            try:
                status, _ = daemon.health()
            except (OSError, DaemonError):
                continue
            result.health_200_while_down += status == 200
        time.sleep(0.1)
    # from the moment the server is launched: the daemon may reconnect and deliver before
    # start() has seen the server answer (it polls), and such a delivery counts
    back_ms = time.time() * 1000
    server.start()
    client = redis.Redis(port=server.port)
    wait_until(lambda: client.xlen(f"{fleet.tenant}:outage") >= 30, 10)
    arrivals = stream_arrivals(client, f"{fleet.tenant}:outage")
    judge(result, during, arrivals, timed=False)
    after = [at for _, at in arrivals if at >= back_ms]
    result.recovery_s = round((min(after) - back_ms) / 1000, 3) if after else None
    client.delete(f"{fleet.tenant}:outage")
    return result
