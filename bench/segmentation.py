"""Segmentation: a full pass beside the floor of Elasticsearch's own work, in one run.

Two tenants get the same 200,000 profiles. The floor sends the pass's adds (~30 %) and
removes (~10 %), computed in advance, as plain ``streaming_bulk`` partial updates of
``segments``. The daemon's pass finds those profiles itself with two queries, writes
each with optimistic concurrency and announces every transition on ``segment-changes``.
Then: incremental re-segmentation from ``profile-changed`` (20 segments defined), and
trigger dispatches to a local webhook (every transition starts one workflow).

    python -m bench.segmentation [--profiles 200000] [--incremental 20000]
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan, streaming_bulk

from bench.mapping import _drop, bench_elastic
from tracardi_daemon.config.settings import (
    QueueSettings,
    SegmentationSettings,
    Settings,
    TracardiSettings,
)
from tracardi_daemon.infra.cpu_pool import CpuPool
from tracardi_daemon.infra.host_limits import HostLimits
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import SEGMENT_CHANGES_QUEUE, SEGMENTATION_QUEUE
from tracardi_daemon.infra.redis import create_redis
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import Segment, WorkflowTrigger
from tracardi_daemon.model.indices import install
from tracardi_daemon.model.naming import index_name
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.base import RoleContext, RoleCounters
from tracardi_daemon.roles.dispatch.role import DispatchRole
from tracardi_daemon.roles.segmentation.client import profile_changed
from tracardi_daemon.roles.segmentation.passes import pass_spec, submit_pass
from tracardi_daemon.roles.segmentation.role import SegmentationRole
from tracardi_daemon.roles.trigger.role import TriggerRole

GOAL_SHARE = 0.8
ELASTIC = "http://127.0.0.1:9200"
HOT = {"id": "hot", "name": "Hot", "condition": "profile@traits.score >= 60"}


def _settings(tenant: str) -> Settings:
    return Settings(tracardi=TracardiSettings(tenant=tenant),
                    segmentation=SegmentationSettings(poll_interval_s=0.01),
                    queue=QueueSettings(batch_size=1000))


def _profile(number: int, rng: random.Random) -> tuple[dict[str, Any], str | None]:
    """A profile and what the pass does to it: scores 60-89 lack "hot" (add), 0-9 have
    it (remove), 90-99 have it (stay), the rest lack it (stay)."""
    score = rng.randrange(100)
    has = score < 10 or score >= 90
    change = "add" if 60 <= score < 90 else "remove" if score < 10 else None
    return ({"id": f"p{number}", "traits": {"score": score, "s": rng.randrange(20)},
             "segments": ["hot"] if has else []}, change)


def _seed(es: Elasticsearch, settings: Settings, profiles: int) -> dict[str, str]:
    """The profiles, over two partitions; returns the changes a pass must make."""
    rng = random.Random(11)
    now = datetime.now(UTC)
    old = now.replace(year=now.year - 1)
    install(es, settings, now=old)
    install(es, settings, now=now)
    changes: dict[str, str] = {}

    def actions() -> Iterator[dict[str, Any]]:
        for number in range(profiles):
            document, change = _profile(number, rng)
            if change:
                changes[document["id"]] = change
            yield {"_index": index_name(settings.tracardi, "profile",
                                        old if number % 2 else now),
                   "_id": document["id"], **document}

    for ok, item in streaming_bulk(es, actions(), chunk_size=5000, raise_on_error=False):
        if not ok:
            raise RuntimeError(f"seeding failed: {item}")
    es.indices.refresh(index=f"*{settings.tracardi.tenant}.tracardi-profile*")
    return changes


def run_floor(es: Elasticsearch, settings: Settings, changes: dict[str, str]) -> float:
    """The same adds and removes as plain bulk partial updates, computed in advance."""
    index_of = _index_of(es, settings)
    actions = [{"_op_type": "update", "_index": index_of[pid], "_id": pid,
                "doc": {"segments": ["hot"] if change == "add" else []}}
               for pid, change in changes.items()]
    started = time.perf_counter()
    for ok, item in streaming_bulk(es, actions, chunk_size=1000, raise_on_error=False):
        if not ok:
            raise RuntimeError(f"floor update failed: {item}")
    return time.perf_counter() - started


def _index_of(es: Elasticsearch, settings: Settings) -> dict[str, str]:
    return {hit["_id"]: hit["_index"] for hit in scan(
        es, index=f"*{settings.tracardi.tenant}.tracardi-profile*", size=5000,
        query={"query": {"match_all": {}}, "_source": False})}


class Roles:
    """Segmentation role objects stepped in threads of this process, as the supervisor
    would."""

    def __init__(self, es: Elasticsearch, settings: Settings, threads: int = 1) -> None:
        self.stop = threading.Event()
        self.counters = RoleCounters()
        redis = create_redis(settings.redis)
        pool = CpuPool(1)
        self.threads = []
        for index in range(threads):
            ctx = RoleContext(name="segmentation", settings=settings, redis=redis,
                              elastic=es, pool=pool, stop=self.stop,
                              logger=logging.getLogger("bench"), counters=self.counters,
                              thread_index=index, consumer_name=f"bench-{index}")
            role = SegmentationRole()
            role.start(ctx)
            thread = threading.Thread(target=self._loop, args=(role,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _loop(self, role: SegmentationRole) -> None:
        while not self.stop.is_set():
            role.step(time.time())
        role.stop()

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def run_pass(es: Elasticsearch, settings: Settings) -> tuple[float, int]:
    redis = create_redis(settings.redis)
    tasks = TaskStore(redis, es, settings)
    segment = Segment.from_dict(HOT)
    DefinitionStore(es, settings).upsert_many([segment])
    roles = Roles(es, settings)
    try:
        started = time.perf_counter()
        record = submit_pass(tasks, WorkQueue(redis, settings.tracardi.tenant,
                                              SEGMENTATION_QUEUE),
                             pass_spec(segment, [segment], now_iso=datetime.now(UTC).isoformat()),
                             "bench pass")
        while (current := tasks.get(record.id)) is not None and not current.terminal:
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    finally:
        roles.close()
    assert current is not None and current.status == "finished", current
    announced = redis.xlen(f"{{{settings.tracardi.tenant}:q:{SEGMENT_CHANGES_QUEUE}}}")
    return elapsed, int(announced)


def run_incremental(es: Elasticsearch, settings: Settings, profiles: int) -> float:
    """20 segments; ``profiles`` profile-changed messages consumed by the role."""
    segments = [Segment.from_dict({"id": f"s{n}", "name": f"S {n}",
                                   "condition": f"profile@traits.s == {n}"})
                for n in range(20)]
    DefinitionStore(es, settings).upsert_many(segments)
    redis = create_redis(settings.redis)
    tenant = settings.tracardi.tenant
    ids = [f"p{n}" for n in range(profiles)]
    for start in range(0, len(ids), 5000):
        profile_changed(redis, tenant, ids[start:start + 5000], source="bench")
    roles = Roles(es, settings)
    try:
        started = time.perf_counter()
        while roles.counters.processed < profiles:
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    finally:
        roles.close()
    return elapsed


class _Receiver(BaseHTTPRequestHandler):
    count = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with _Receiver.lock:
            _Receiver.count += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


def run_triggers(es: Elasticsearch, settings: Settings, changes: int) -> float:
    """``changes`` segment-changes, each starting one workflow at a local webhook: the
    trigger role and the dispatch senders (4 threads) of this process."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/start"
    DefinitionStore(es, settings).upsert_many([WorkflowTrigger.from_dict({
        "id": "t", "name": "T", "type": "segment-add", "segment": {"id": "hot", "name": "Hot"},
        "workflow": {"id": "wf", "name": "WF"}, "target": f"webhook:{url}"})])
    redis = create_redis(settings.redis)
    queue = WorkQueue(redis, settings.tracardi.tenant, SEGMENT_CHANGES_QUEUE)
    at = datetime.now(UTC).isoformat()
    queue.enqueue_many([{"id": f"c{n}", "profile_id": f"p{n}", "segment": "hot",
                         "segment_id": "hot", "change": "add", "at": at, "cause": "bench"}
                        for n in range(changes)])
    stop = threading.Event()
    pool = CpuPool(1)
    limits = HostLimits(settings.dispatch.per_host_concurrency * 2)
    roles: list[Any] = []
    for index, kind in enumerate([TriggerRole] + [DispatchRole] * 4):
        ctx = RoleContext(name=kind.__name__, settings=settings, redis=redis, elastic=es,
                          pool=pool, stop=stop, logger=logging.getLogger("bench"),
                          counters=RoleCounters(), thread_index=index,
                          consumer_name=f"bench-{index}", host_limits=limits)
        role = kind()
        role.start(ctx)
        roles.append(role)
    threads = [threading.Thread(target=_loop, args=(role, stop), daemon=True) for role in roles]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    while _Receiver.count < changes:
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    stop.set()
    for thread in threads:
        thread.join(30)
    server.shutdown()
    return elapsed


def _loop(role: Any, stop: threading.Event) -> None:
    while not stop.is_set():
        role.step(time.time())
    role.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=200_000)
    parser.add_argument("--incremental", type=int, default=20_000)
    parser.add_argument("--triggers", type=int, default=5_000)
    args = parser.parse_args(argv)
    es = bench_elastic()
    run_id = uuid.uuid4().hex[:6]
    tenants = {name: f"benchseg{name}{run_id}" for name in ("floor", "pass")}
    try:
        changes = _seed(es, _settings(tenants["floor"]), args.profiles)
        _seed(es, _settings(tenants["pass"]), args.profiles)
        floor_s = run_floor(es, _settings(tenants["floor"]), changes)
        print(f"floor: {floor_s:.1f}s", flush=True)
        pass_s, announced = run_pass(es, _settings(tenants["pass"]))
        print(f"pass: {pass_s:.1f}s, {announced:,} transitions announced", flush=True)
        incremental_s = run_incremental(es, _settings(tenants["pass"]), args.incremental)
        triggers_s = run_triggers(es, _settings(tenants["floor"]), args.triggers)
    finally:
        for tenant in tenants.values():
            _drop(es, tenant)
        es.close()
    changed = len(changes)
    floor_rate, pass_rate = changed / floor_s, changed / pass_s
    print(f"\n{args.profiles:,} profiles; a pass adds {sum(c == 'add' for c in changes.values()):,}"
          f" and removes {sum(c == 'remove' for c in changes.values()):,} (profiles/s changed)")
    print(f"{'path':<52}{'profiles/s':>12}{'vs floor':>10}")
    print(f"{'floor: streaming_bulk partial updates (known)':<52}{floor_rate:>12,.0f}{1:>10.2f}")
    print(f"{'daemon pass (finds, checks, announces)':<52}{pass_rate:>12,.0f}"
          f"{pass_rate / floor_rate:>10.2f}")
    print(f"{'incremental from profile-changed (20 segments)':<52}"
          f"{args.incremental / incremental_s:>12,.0f}{'':>10}")
    print(f"{'trigger: workflow starts to a local webhook (/s)':<52}"
          f"{args.triggers / triggers_s:>12,.0f}{'':>10}")
    print(f"goal (pass >= {GOAL_SHARE:.0%} of the floor): "
          f"{'met' if pass_rate >= GOAL_SHARE * floor_rate else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
