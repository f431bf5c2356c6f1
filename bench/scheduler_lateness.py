"""Scheduler lateness: N delayed jobs due evenly over S seconds, fired by the daemon's
scheduler role under the real Supervisor, beside a plain once-per-second ZSET poller on
the same Redis in the same run. A reader thread on its own connection stamps each
``stream:`` entry as it arrives; lateness is arrival minus the job's due time.

    python -m bench.scheduler_lateness [--jobs 100000] [--seconds 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import redis
from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import (
    RedisSettings,
    Settings,
    SupervisorSettings,
    TracardiSettings,
)
from tracardi_daemon.infra.cpu_pool import CpuPool
from tracardi_daemon.infra.delayed import DelayedStore, Job
from tracardi_daemon.infra.dispatch import stream_entry
from tracardi_daemon.infra.redis import RedisClient, create_redis
from tracardi_daemon.roles.base import RoleContext, RoleCounters
from tracardi_daemon.roles.registry import RoleSpec
from tracardi_daemon.roles.scheduler.role import scheduler_factory
from tracardi_daemon.runtime.supervisor import Supervisor

GOAL_P99_MS = 10.0
GOAL_MAX_MS = 50.0
LOST_AFTER_MS = 5_000  # a job not seen by due + this is lost
LEAD_S = 3.0  # first job due this long after scheduling ends
STREAM = "out"
READ_COUNT = 1000
READ_BLOCK_MS = 200
POLL_EVERY_S = 1.0
CALIBRATION_JOBS = 2000
SAFETY = 1.5  # the calibrated scheduling time is stretched by this before planning


@dataclass(frozen=True)
class Options:
    jobs: int
    seconds: float
    threads: int
    schedule_batch: int
    redis_host: str
    redis_port: int


@dataclass(frozen=True)
class Stats:
    accept_jobs_s: float
    gap_s: float  # from the end of scheduling to the first due time
    delivered: int
    stamped: list[float]  # reader stamp - due, ms, first delivery per job, sorted
    by_entry_id: list[float]  # Redis XADD time (entry id) - due, ms, sorted
    early: int
    early_by_entry_id: int
    lost: int
    duplicates: int


class Path(Protocol):
    """One way of firing delayed jobs onto a stream."""

    stream_key: str

    def schedule(self, jobs: list[Job]) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


# the daemon: DelayedStore.schedule_many, the scheduler role under the Supervisor


class DaemonPath:
    def __init__(self, client: RedisClient, tenant: str, opts: Options) -> None:
        self.client, self.tenant, self.opts = client, tenant, opts
        self.store = DelayedStore(client, tenant)
        self.stream_key = stream_entry(tenant, STREAM, "", {})[0]
        self.supervisor: Supervisor | None = None
        self.cleanups: list[Callable[[], Any]] = []

    def schedule(self, jobs: list[Job]) -> None:
        size = self.opts.schedule_batch
        for start in range(0, len(jobs), size):
            self.store.schedule_many(jobs[start:start + size])

    def start(self) -> None:
        settings = Settings(tracardi=TracardiSettings(tenant=self.tenant),
                            redis=RedisSettings(host=self.opts.redis_host,
                                                port=self.opts.redis_port))
        pool = CpuPool(1)
        elastic = Elasticsearch(settings.elastic.hosts[0])  # never called by the scheduler
        self.cleanups += [pool.shutdown, elastic.close]

        def context(name: str, index: int, stop: threading.Event,
                    counters: RoleCounters) -> RoleContext:
            return RoleContext(name=name, settings=settings, redis=self.client,
                               elastic=elastic, pool=pool, stop=stop,
                               logger=logging.getLogger(f"bench.{name}"), counters=counters,
                               thread_index=index, consumer_name=f"bench-{name}-{index}")

        self.supervisor = Supervisor(SupervisorSettings(), context)
        self.supervisor.start_role(RoleSpec("scheduler", True, scheduler_factory),
                                   threads=self.opts.threads)

    def stop(self) -> None:
        late = (self.supervisor.drain(list(self.supervisor.runners), grace_s=10.0).late
                if self.supervisor else ())
        for cleanup in self.cleanups:
            cleanup()
        if late:
            raise RuntimeError(f"roles did not stop in time: {late}")


# the common design: one ZSET of job bodies, polled once a second


class PollerPath:
    def __init__(self, client: RedisClient, tenant: str, opts: Options) -> None:
        self.client, self.tenant, self.opts = client, tenant, opts
        self.due_key = f"{tenant}:poller:due"
        self.stream_key = stream_entry(tenant, STREAM, "", {})[0]
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="poller", daemon=True)

    def schedule(self, jobs: list[Job]) -> None:
        size = self.opts.schedule_batch
        for start in range(0, len(jobs), size):
            chunk = [replace(job, id=uuid.uuid4().hex) for job in jobs[start:start + size]]
            self.client.zadd(self.due_key, {job.to_json(): job.due_ms for job in chunk})

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10.0)

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            self.fire_due(int(time.time() * 1000))
            self.stop_event.wait(POLL_EVERY_S)

    def fire_due(self, now_ms: int) -> None:
        members = self.client.zrangebyscore(self.due_key, "-inf", now_ms)
        if not members:
            return
        pipe = self.client.pipeline(transaction=False)
        for member in members:
            job = Job.from_json(member)
            pipe.zrem(self.due_key, member)
            pipe.xadd(*stream_entry(self.tenant, STREAM, job.idempotency_key, job.payload))
        pipe.execute()


# the measuring reader


class Reader:
    """Stamps each XREAD batch once, when the call returns; parses nothing until the end,
    so it holds the GIL as little as possible while the path under test runs."""

    def __init__(self, opts: Options, stream_key: str) -> None:
        self.client: RedisClient = redis.Redis(host=opts.redis_host,
                                                      port=opts.redis_port)
        self.stream_key = stream_key
        self.batches: list[tuple[float, list[Any]]] = []
        self.entries = 0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="reader", daemon=True)

    def _loop(self) -> None:
        last_id: bytes | str = "0-0"
        while not self.stop_event.is_set():
            reply = self.client.xread({self.stream_key: last_id}, count=READ_COUNT,
                                      block=READ_BLOCK_MS)
            stamp_ms = time.time() * 1000.0
            if not reply:
                continue
            entries = reply[0][1]
            self.batches.append((stamp_ms, entries))
            self.entries += len(entries)
            last_id = entries[-1][0]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(READ_BLOCK_MS / 1000 + 5.0)
        self.client.close()


# one measured path


def make_jobs(base_ms: int, opts: Options) -> list[Job]:
    spacing_ms = opts.seconds * 1000.0 / opts.jobs
    dues = [base_ms + int(n * spacing_ms) for n in range(opts.jobs)]
    return [Job(target=f"stream:{STREAM}", payload={"n": n, "due_ms": due}, due_ms=due)
            for n, due in enumerate(dues)]


def calibrate(scratch: Path, opts: Options) -> float:
    """Seconds per job to schedule on this path, from a scratch key set."""
    sample = min(opts.jobs, CALIBRATION_JOBS)
    far_ms = int(time.time() * 1000) + 3_600_000
    jobs = make_jobs(far_ms, replace(opts, jobs=sample))
    started = time.perf_counter()
    scratch.schedule(jobs)
    return (time.perf_counter() - started) / sample


def measure(path: Path, scratch: Path, opts: Options) -> Stats:
    lead_s = LEAD_S + calibrate(scratch, opts) * opts.jobs * SAFETY
    base_ms = int(time.time() * 1000 + lead_s * 1000)
    jobs = make_jobs(base_ms, opts)
    reader = Reader(opts, path.stream_key)
    reader.start()
    started = time.perf_counter()
    path.schedule(jobs)
    accept_jobs_s = opts.jobs / (time.perf_counter() - started)
    gap_s = base_ms / 1000 - time.time()
    path.start()
    try:
        deadline = (jobs[-1].due_ms + LOST_AFTER_MS) / 1000
        while reader.entries < opts.jobs and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # room for a late duplicate
    finally:
        path.stop()
        reader.stop()
    return analyse(reader.batches, jobs, accept_jobs_s, gap_s)


def analyse(batches: list[tuple[float, list[Any]]], jobs: list[Job], accept_jobs_s: float,
            gap_s: float) -> Stats:
    first: dict[int, tuple[float, int]] = {}  # n -> (stamp ms, entry id ms)
    duplicates = 0
    for stamp_ms, entries in batches:
        for entry_id, fields in entries:
            n = int(json.loads(fields[b"payload"])["n"])
            if n in first:
                duplicates += 1
                continue
            first[n] = (stamp_ms, int(entry_id.split(b"-")[0]))
    on_time = {n: seen for n, seen in first.items()
               if seen[0] <= jobs[n].due_ms + LOST_AFTER_MS}
    stamped = sorted(seen[0] - jobs[n].due_ms for n, seen in first.items())
    by_id = sorted(float(seen[1] - jobs[n].due_ms) for n, seen in first.items())
    return Stats(accept_jobs_s, gap_s, len(first), stamped, by_id,
                 early=sum(1 for late in stamped if late < 0),
                 early_by_entry_id=sum(1 for late in by_id if late < 0),
                 lost=len(jobs) - len(on_time), duplicates=duplicates)


# reporting


def pct(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile; NaN when nothing arrived."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(share * len(sorted_values)) - 1)]


def rows(stats: Stats) -> list[tuple[str, str]]:
    s, e = stats.stamped, stats.by_entry_id
    return [
        ("accept jobs/s", f"{stats.accept_jobs_s:,.0f}"),
        ("first due after sched", f"{stats.gap_s:.1f} s"),
        ("delivered", f"{stats.delivered:,}"),
        ("lateness p50 ms", f"{pct(s, 0.50):.1f}"),
        ("lateness p90 ms", f"{pct(s, 0.90):.1f}"),
        ("lateness p99 ms", f"{pct(s, 0.99):.1f}"),
        ("lateness max ms", f"{pct(s, 1.0):.1f}"),
        ("early", f"{stats.early:,}"),
        ("lost", f"{stats.lost:,}"),
        ("duplicates", f"{stats.duplicates:,}"),
        ("XADD-time p50 ms", f"{pct(e, 0.50):.0f}"),
        ("XADD-time p99 ms", f"{pct(e, 0.99):.0f}"),
        ("XADD-time max ms", f"{pct(e, 1.0):.0f}"),
        ("XADD-time early", f"{stats.early_by_entry_id:,}"),
    ]


GOALS = {"lateness p99 ms": f"<= {GOAL_P99_MS:g}", "lateness max ms": f"<= {GOAL_MAX_MS:g}",
         "early": "0", "lost": "0"}


def goals_met(stats: Stats) -> dict[str, bool]:
    return {"p99": pct(stats.stamped, 0.99) <= GOAL_P99_MS,
            "max": pct(stats.stamped, 1.0) <= GOAL_MAX_MS,
            "none early": stats.early == 0, "none lost": stats.lost == 0}


def report(opts: Options, daemon: Stats, poller: Stats, server: str) -> bool:
    """Print the table and the goals; True if the daemon met all of them."""
    print(f"scheduler lateness: N={opts.jobs:,} jobs due evenly over {opts.seconds:g} s "
          f"({opts.jobs / opts.seconds:,.0f} jobs/s), first due ~{LEAD_S:g} s after "
          f"scheduling ends; schedule batch {opts.schedule_batch:,}")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"cores (os.cpu_count): {os.cpu_count()}, load average {load}, Redis {server} at "
          f"{opts.redis_host}:{opts.redis_port}, scheduler threads T={opts.threads}, "
          f"settings horizon_s/lease_s at their defaults")
    print(f"{'':24}{'daemon':>12}{'1 s poller':>12}   goal (daemon)")
    for (name, ours), (_, theirs) in zip(rows(daemon), rows(poller), strict=True):
        print(f"{name:24}{ours:>12}{theirs:>12}   {GOALS.get(name, '')}")
    met = goals_met(daemon)
    print("daemon goals: " + ", ".join(f"{k} {'met' if ok else 'MISSED'}"
                                       for k, ok in met.items()))
    print(f"note: lateness = reader's wall-clock stamp - due_ms; the reader (own thread, "
          f"own connection) stamps once per XREAD BLOCK COUNT {READ_COUNT} batch when the "
          f"call returns, so a stamp may trail the XADD by the read and a GIL switch. "
          f"XADD-time rows use the entry id (Redis clock at XADD, whole ms) instead: "
          f"free of the reader, but truncated to the ms. lost = not seen by due + "
          f"{LOST_AFTER_MS / 1000:g} s.")
    return all(met.values())


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="the jobs fall due evenly over this span")
    parser.add_argument("--threads", type=int, default=1, help="scheduler role threads")
    parser.add_argument("--schedule-batch", type=int, default=1000,
                        help="jobs per schedule_many (per ZADD on the poller)")
    parser.add_argument("--redis-host", default="127.0.0.1")
    parser.add_argument("--redis-port", type=int, default=6379)
    args = parser.parse_args(argv)
    if min(args.jobs, args.threads, args.schedule_batch) < 1 or args.seconds <= 0:
        parser.error("--jobs, --threads, --schedule-batch and --seconds must be positive")
    return Options(args.jobs, args.seconds, args.threads, args.schedule_batch,
                   args.redis_host, args.redis_port)


def delete_keys(client: RedisClient, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start:start + 1000])


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(threadName)s %(levelname)s %(message)s")
    opts = parse_args(argv)
    client = create_redis(RedisSettings(host=opts.redis_host, port=opts.redis_port))
    prefix = "bench" + uuid.uuid4().hex[:10]
    try:
        server = str(client.info("server")["redis_version"])
        daemon = measure(DaemonPath(client, f"{prefix}-daemon", opts),
                         DaemonPath(client, f"{prefix}-scratch", opts), opts)
        print(f"daemon: accepted {daemon.accept_jobs_s:,.0f} jobs/s", flush=True)
        poller = measure(PollerPath(client, f"{prefix}-poller", opts),
                         PollerPath(client, f"{prefix}-scratch", opts), opts)
    finally:
        delete_keys(client, prefix)
        client.close()
    return 0 if report(opts, daemon, poller, server) else 1


if __name__ == "__main__":
    sys.exit(main())
