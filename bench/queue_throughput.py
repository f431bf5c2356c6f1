"""Queue throughput: a plain redis-py stream loop beside the daemon's WorkQueue consumed by
a role under the real Supervisor, on the same Redis in the same run. Both paths call the
same handler, one INCR per message (``--pipelined``: sent as one pipeline per batch), so
the counter also proves that nothing was lost. The plain loop only XACKs; WorkQueue.ack
also deletes the entries, which is part of what is measured.

    python -m bench.queue_throughput --messages 100000 --threads 2 [--runs 3] [--pipelined]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import (
    RedisSettings,
    Settings,
    SupervisorSettings,
    TracardiSettings,
)
from tracardi_daemon.infra.cpu_pool import CpuPool
from tracardi_daemon.infra.queue import DEFAULT_GROUP, WorkQueue
from tracardi_daemon.infra.redis import RedisClient, create_redis
from tracardi_daemon.roles.base import Role, RoleContext, RoleCounters
from tracardi_daemon.roles.registry import RoleSpec
from tracardi_daemon.runtime.supervisor import Supervisor

GOAL_MSG_S = 15_000
GOAL_SHARE_OF_RAW = 0.5
QUEUE = "bench"
ROLE = "bench-consumer"
BLOCK_MS = 100  # an idle consumer notices a stop within this
POLL_S = 0.002  # how often the main thread reads the counter
MIN_RATE_MSG_S = 500  # slower than this, a path is taken as stuck and the run fails

Handler = Callable[[RedisClient, str, int], None]


@dataclass(frozen=True)
class Options:
    messages: int
    threads: int
    batch: int
    enqueue_batch: int
    pipelined: bool
    runs: int
    redis_host: str
    redis_port: int


@dataclass(frozen=True)
class Figures:
    enqueue_s: float
    process_s: float
    end_to_end_s: float
    counter: int


class FirstCall:
    """The earliest moment any thread began consuming."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.at: float | None = None

    def mark(self) -> None:
        if self.at is None:
            with self._lock:
                if self.at is None:
                    self.at = time.perf_counter()


# the handler, the same for both paths


def incr_each(client: RedisClient, counter_key: str, count: int) -> None:
    for _ in range(count):
        client.incr(counter_key)


def incr_pipelined(client: RedisClient, counter_key: str, count: int) -> None:
    pipe = client.pipeline(transaction=False)
    for _ in range(count):
        pipe.incr(counter_key)
    pipe.execute()


def make_payloads(count: int) -> list[dict[str, Any]]:
    return [{"type": "page-view", "profile": f"p{i % 1000}", "seq": i} for i in range(count)]


def chunks(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def timeout_s(messages: int) -> float:
    return 30.0 + messages / MIN_RATE_MSG_S


def wait_for_counter(client: RedisClient, key: str, target: int) -> float:
    """The moment the counter reached ``target``; raises if it does not in time."""
    limit_s = timeout_s(target)
    deadline = time.perf_counter() + limit_s
    while int(client.get(key) or 0) < target:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{key} stayed below {target} for {limit_s:.0f}s")
        time.sleep(POLL_S)
    return time.perf_counter()


# raw baseline: XADD / XREADGROUP / handler / XACK with redis-py


def stream_ids(reply: Any) -> list[Any]:
    """The entry ids of a one-stream XREADGROUP reply, RESP2 or RESP3."""
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, dict) else [item[1] for item in reply]
    return [entry[0] for entries in streams for entry in entries]


def raw_consumer(client: RedisClient, stream: str, counter_key: str, consumer: str,
                 opts: Options, handler: Handler, first: FirstCall,
                 stop: threading.Event) -> None:
    while not stop.is_set():
        first.mark()
        reply = client.xreadgroup(DEFAULT_GROUP, consumer, {stream: ">"},
                                  count=opts.batch, block=BLOCK_MS)
        ids = stream_ids(reply)
        if ids:
            handler(client, counter_key, len(ids))
            client.xack(stream, DEFAULT_GROUP, *ids)  # type: ignore[no-untyped-call]


def run_raw(client: RedisClient, prefix: str, opts: Options,
            handler: Handler) -> Figures:
    stream, counter_key = f"{{{prefix}:raw}}:stream", f"{prefix}:raw:counter"
    client.xgroup_create(stream, DEFAULT_GROUP, id="0", mkstream=True)
    payloads = make_payloads(opts.messages)
    started = time.perf_counter()
    for chunk in chunks(payloads, opts.enqueue_batch):
        pipe = client.pipeline(transaction=False)
        for payload in chunk:
            pipe.xadd(stream, {"payload": json.dumps(payload, separators=(",", ":"))})
        pipe.execute()
    enqueued = time.perf_counter()
    first, stop = FirstCall(), threading.Event()
    threads = [threading.Thread(target=raw_consumer, name=f"raw-{i}", daemon=True,
                                args=(client, stream, counter_key, f"raw-{i}", opts,
                                      handler, first, stop))
               for i in range(opts.threads)]
    for thread in threads:
        thread.start()
    try:
        done = wait_for_counter(client, counter_key, opts.messages)
    finally:
        stop.set()
        for thread in threads:
            thread.join(BLOCK_MS / 1000 + 5.0)
    assert first.at is not None
    return Figures(enqueued - started, done - first.at, done - started,
                   int(client.get(counter_key) or 0))


# the daemon: WorkQueue.enqueue_many, then a role under the Supervisor


class BenchConsumerRole:
    """Consumes a batch, runs the handler, acks the batch: a queue role at its leanest."""

    def __init__(self, tenant: str, counter_key: str, opts: Options, handler: Handler,
                 first: FirstCall) -> None:
        self.tenant = tenant
        self.counter_key = counter_key
        self.opts = opts
        self.handler = handler
        self.first = first
        self.ctx: RoleContext | None = None
        self.queue: WorkQueue | None = None

    def start(self, ctx: RoleContext) -> None:
        self.ctx = ctx
        self.queue = WorkQueue(ctx.redis, self.tenant, QUEUE)

    def step(self, now: float) -> bool:
        assert self.ctx is not None and self.queue is not None
        self.first.mark()
        messages = self.queue.consume(self.ctx.consumer_name, count=self.opts.batch,
                                      block_ms=BLOCK_MS)
        if not messages:
            return False
        self.handler(self.ctx.redis, self.counter_key, len(messages))
        self.queue.ack([message.id for message in messages])
        self.ctx.counters.add(processed=len(messages))
        return True

    def stop(self) -> None:
        self.queue = None


def make_supervisor(client: RedisClient, tenant: str, stack: list[Callable[[], Any]]
                    ) -> Supervisor:
    """A supervisor whose role contexts share one Redis client, as in the daemon."""
    settings = Settings(tracardi=TracardiSettings(tenant=tenant))
    pool = CpuPool(1)
    elastic = Elasticsearch(settings.elastic.hosts[0])  # never called by the bench role
    stack += [pool.shutdown, elastic.close]

    def context(name: str, index: int, stop: threading.Event,
                counters: RoleCounters) -> RoleContext:
        return RoleContext(name=name, settings=settings, redis=client, elastic=elastic,
                           pool=pool, stop=stop, logger=logging.getLogger(f"bench.{name}"),
                           counters=counters, thread_index=index,
                           consumer_name=f"{name}-{index}")

    return Supervisor(SupervisorSettings(), context)


def run_daemon(client: RedisClient, prefix: str, opts: Options,
               handler: Handler) -> Figures:
    tenant, counter_key = f"{prefix}-daemon", f"{prefix}:daemon:counter"
    producer = WorkQueue(client, tenant, QUEUE)
    payloads = make_payloads(opts.messages)
    started = time.perf_counter()
    for chunk in chunks(payloads, opts.enqueue_batch):
        producer.enqueue_many(chunk)
    enqueued = time.perf_counter()
    first = FirstCall()
    cleanups: list[Callable[[], Any]] = []

    def factory() -> Role:
        return BenchConsumerRole(tenant, counter_key, opts, handler, first)

    supervisor = make_supervisor(client, tenant, cleanups)
    try:
        supervisor.start_role(RoleSpec(ROLE, False, factory), threads=opts.threads)
        done = wait_for_counter(client, counter_key, opts.messages)
    finally:
        late = supervisor.drain(list(supervisor.runners), grace_s=10.0).late
        for cleanup in cleanups:
            cleanup()
    if late:
        raise RuntimeError(f"roles did not stop in time: {late}")
    assert first.at is not None
    return Figures(enqueued - started, done - first.at, done - started,
                   int(client.get(counter_key) or 0))


# reporting


def rate(messages: int, seconds: float) -> float:
    return messages / seconds if seconds > 0 else float("inf")


def median_figures(runs: list[Figures]) -> Figures:
    return Figures(statistics.median(f.enqueue_s for f in runs),
                   statistics.median(f.process_s for f in runs),
                   statistics.median(f.end_to_end_s for f in runs),
                   min(f.counter for f in runs))


def print_runs(n: int, pairs: list[tuple[Figures, Figures]]) -> None:
    for number, (raw, daemon) in enumerate(pairs, start=1):
        raw_rate, daemon_rate = rate(n, raw.process_s), rate(n, daemon.process_s)
        print(f"  run {number}: process raw {raw_rate:,.0f} msg/s, daemon "
              f"{daemon_rate:,.0f} msg/s ({daemon_rate / raw_rate:.0%}); counters "
              f"{raw.counter:,} / {daemon.counter:,}")


def report(opts: Options, pairs: list[tuple[Figures, Figures]], server: str) -> bool:
    """Print the table and the goals; True if every counter equals N (nothing lost)."""
    n = opts.messages
    handler = "INCR pipelined per batch" if opts.pipelined else "one INCR per message"
    print(f"queue throughput: N={n:,} messages, T={opts.threads} threads, "
          f"batch {opts.batch}, enqueue batch {opts.enqueue_batch}, handler {handler}")
    print(f"cores (os.cpu_count): {os.cpu_count()}, Redis {server} at "
          f"{opts.redis_host}:{opts.redis_port}, runs {len(pairs)}")
    if len(pairs) > 1:
        print_runs(n, pairs)
    raw = median_figures([r for r, _ in pairs])
    daemon = median_figures([d for _, d in pairs])
    label = "median" if len(pairs) > 1 else ""
    print(f"{label:18}{'raw redis-py':>14}{'daemon':>12}{'daemon/raw':>12}")
    rows = [("enqueue msg/s", raw.enqueue_s, daemon.enqueue_s),
            ("process msg/s", raw.process_s, daemon.process_s),
            ("end-to-end msg/s", raw.end_to_end_s, daemon.end_to_end_s)]
    for name, raw_s, daemon_s in rows:
        raw_rate, daemon_rate = rate(n, raw_s), rate(n, daemon_s)
        print(f"{name:18}{raw_rate:>14,.0f}{daemon_rate:>12,.0f}"
              f"{daemon_rate / raw_rate:>11.0%}")
    print(f"{'INCR counter':18}{raw.counter:>14,}{daemon.counter:>12,}   expected {n:,}"
          + ("   (lowest of the runs)" if len(pairs) > 1 else ""))
    process = rate(n, daemon.process_s)
    share = process / rate(n, raw.process_s)
    print(f"goal: daemon process >= {GOAL_MSG_S:,} msg/s: {process:,.0f} "
          f"{'met' if process >= GOAL_MSG_S else 'MISSED'}")
    print(f"goal: daemon process >= {GOAL_SHARE_OF_RAW:.0%} of raw: {share:.0%} "
          f"{'met' if share >= GOAL_SHARE_OF_RAW else 'MISSED'}")
    no_loss = all(r.counter == n and d.counter == n for r, d in pairs)
    print(f"no loss (every counter == N): {'yes' if no_loss else 'NO'}")
    return no_loss


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    # with the GIL and two cores, 2 was as fast as 4 or 8 and steadier
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=100, help="messages per consume")
    parser.add_argument("--enqueue-batch", type=int, default=1000,
                        help="messages per enqueue round trip")
    parser.add_argument("--pipelined", action="store_true",
                        help="both handlers pipeline their INCRs per batch")
    parser.add_argument("--runs", type=int, default=1,
                        help="raw then daemon, this many times; the table shows medians")
    parser.add_argument("--redis-host", default="127.0.0.1")
    parser.add_argument("--redis-port", type=int, default=6379)
    args = parser.parse_args(argv)
    counts = (args.messages, args.threads, args.batch, args.enqueue_batch, args.runs)
    if min(counts) < 1:
        parser.error("--messages, --threads, --batch, --enqueue-batch and --runs must be >= 1")
    return Options(args.messages, args.threads, args.batch, args.enqueue_batch,
                   args.pipelined, args.runs, args.redis_host, args.redis_port)


def delete_keys(client: RedisClient, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


def run_pair(client: RedisClient, opts: Options, handler: Handler
             ) -> tuple[Figures, Figures]:
    """Raw then daemon under one fresh key prefix, deleted afterwards."""
    prefix = "bench" + uuid.uuid4().hex[:10]
    try:
        return (run_raw(client, prefix, opts, handler),
                run_daemon(client, prefix, opts, handler))
    finally:
        delete_keys(client, prefix)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(threadName)s %(levelname)s %(message)s")
    opts = parse_args(argv)
    handler: Handler = incr_pipelined if opts.pipelined else incr_each
    # the daemon's own client settings, so both paths talk to Redis the same way
    client = create_redis(RedisSettings(host=opts.redis_host, port=opts.redis_port))
    try:
        server = str(client.info("server")["redis_version"])
        pairs = [run_pair(client, opts, handler) for _ in range(opts.runs)]
    finally:
        client.close()
    return 0 if report(opts, pairs, server) else 1


if __name__ == "__main__":
    sys.exit(main())
