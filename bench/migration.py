"""Migration: the shipped 0.8.1 -> 0.8.2 plan run by a real daemon over small profiles in
four monthly 0.8.1 partitions (collapsed into two quarters on the way), beside (a) the
floor of Elasticsearch's own work — the same documents, transformed in advance, written
by plain ``streaming_bulk`` — and (b) the naive loop, a scroll and one ``index`` per
document, timed on a sample (``--naive-documents``) and extrapolated.

The daemon runs as a real ``tracardi-daemon run`` process (its RSS is sampled from
/proc). At ~30 % it is killed with ``kill -9`` and a second daemon is started at once:
it takes the job over from its checkpoint once the message's visibility timeout and the
job's lease lapse (2 s and 5 s here). Reported: the time from the second daemon's start
to its first batch, the daemon's rate over the time it was copying, and its rate end to
end; afterwards every document is checked to be in its quarter exactly once.

    python -m bench.migration [--documents 1000000] [--naive-documents 5000] [--batch-size 1000]
"""

from __future__ import annotations

import argparse
import itertools
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan as es_scan
from elasticsearch.helpers import streaming_bulk

from bench.mapping import Daemon, _drop, bench_elastic
from tracardi_daemon.cli.migrate import choose_plan
from tracardi_daemon.config.settings import Settings, TracardiSettings
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import UPGRADE_QUEUE
from tracardi_daemon.infra.redis import RedisClient, create_redis
from tracardi_daemon.model.tasks.store import TaskRecord, TaskStore
from tracardi_daemon.roles.jobs import queue_task
from tracardi_daemon.roles.upgrade.migration.job import MIGRATION_TASK, migration_params
from tracardi_daemon.roles.upgrade.migration.plan import Plan, Step, resolve_targets
from tracardi_daemon.roles.upgrade.migration.transforms import apply_all

GOAL_SHARE_OF_FLOOR = 0.8
GOAL_TIMES_NAIVE = 10
KILL_AT = 0.3  # share of the documents done when the first daemon is killed
MONTHS = (1, 2, 3, 4)  # 2024-1..3 collapse into 2024-q1, 2024-4 into 2024-q2
SAMPLE_IDS = 1000  # documents compared with their expected migrated form
ELASTIC = "http://127.0.0.1:9200"


@dataclass(frozen=True)
class Options:
    documents: int
    naive_documents: int
    batch_size: int


@dataclass(frozen=True)
class Tenants:
    run_id: str
    source: str  # the 0.8.1 installation
    target: str  # where the daemon migrates it
    daemon: str  # the daemon's own tenant: its queue, task record and lease
    floor: str
    plain_floor: str
    naive: str

    @classmethod
    def fresh(cls) -> Tenants:
        run_id = uuid.uuid4().hex[:6]
        return cls(run_id, *(f"benchmig{name}{run_id}"
                             for name in ("src", "dst", "", "floor", "plain", "naive")))


@dataclass(frozen=True)
class DaemonRun:
    total_s: float  # from submission to finished, the takeover included
    pause_s: float  # from the kill to the second daemon's first batch
    resume_s: float  # from the second daemon's start to its first batch
    done_at_kill: int
    peak_rss_mb: float


# ----------------------------------------------------------------- data


def _source_index(tenant: str, month: int) -> str:
    return f"08x.{tenant}.tracardi-profile-2024-{month}"  # Tracardi: months not padded


def _profiles(documents: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """(month, 0.8.1 profile): the same documents every time they are asked for."""
    for number in range(documents):
        month = MONTHS[number * len(MONTHS) // documents]
        yield month, {
            "id": f"p{number}",
            "metadata": {"time": {"insert": f"2024-{month:02d}-{1 + number % 28:02d}T"
                                            f"{number % 24:02d}:00:00+00:00"}},
            "data": {"contact": {"email": f"u{number}@example.com",
                                 "phone": f"+48 600 {number % 1000:03d}"},
                     "pii": {"name": f"User {number}"}},
            "traits": {"score": number % 100, "orders": number % 13},
        }


def seed(es: Elasticsearch, tenant: str, documents: int) -> None:
    indices = [_source_index(tenant, month) for month in MONTHS]
    for index in indices:
        es.indices.create(index=index, settings={"number_of_shards": 1,
                                                 "number_of_replicas": 0,
                                                 "refresh_interval": "-1"},
                          mappings={"properties": {"id": {"type": "keyword"}}})
    actions = ({"_index": _source_index(tenant, month), "_id": doc["id"], "_source": doc}
               for month, doc in _profiles(documents))
    for ok, item in streaming_bulk(es, actions, chunk_size=5000, raise_on_error=False):
        if not ok:
            raise RuntimeError(f"seeding failed: {item}")
    es.indices.put_settings(index=",".join(indices),
                            settings={"index": {"refresh_interval": "1s"}})
    es.indices.refresh(index=",".join(indices))


def settle(es: Elasticsearch, run_id: str, limit_s: float = 120.0) -> None:
    """Wait for the merges of this run's indices to end, so that one path does not pay
    for the previous one's writes."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        stats = es.indices.stats(index=f"*{run_id}*", metric="merge")
        if stats["_all"]["total"]["merges"]["current"] == 0:
            return
        time.sleep(0.5)


def migration_plan(tenants: Tenants) -> Plan:
    """The shipped plan from the source tenant to the daemon's target tenant."""
    plan = choose_plan("08x", None, tenants.source)
    assert plan.target is not None
    return replace(plan, target=replace(plan.target, tenant=tenants.target))


def _profile_step(plan: Plan) -> Step:
    return next(step for step in plan.steps if step.id == "profile")


def _targets(plan: Plan, tenant: str) -> dict[str, str]:
    """Source partition -> the quarter the plan copies it to, in ``tenant``'s layout."""
    assert plan.target is not None
    names = [_source_index(plan.source.tenant, month) for month in MONTHS]
    return dict(resolve_targets(_profile_step(plan), names, plan.source,
                                replace(plan.target, tenant=tenant)))


def _create_targets(es: Elasticsearch, targets: dict[str, str]) -> None:
    for index in sorted(set(targets.values())):
        es.indices.create(index=index)  # the cluster's defaults, as the daemon creates them


# ----------------------------------------------------------------- the baselines


def run_floor(es: Elasticsearch, plan: Plan, tenant: str, documents: int) -> float:
    """streaming_bulk of the documents, transformed in advance, into the quarters."""
    targets = _targets(plan, tenant)
    _create_targets(es, targets)
    transforms = _profile_step(plan).transforms
    actions = [{"_index": targets[_source_index(plan.source.tenant, month)],
                "_id": doc["id"], "_source": apply_all(doc, transforms)}
               for month, doc in _profiles(documents)]
    started = time.perf_counter()
    for ok, item in streaming_bulk(es, actions, chunk_size=1000, raise_on_error=False):
        if not ok:
            raise RuntimeError(f"floor write failed: {item}")
    return time.perf_counter() - started


def run_naive(es: Elasticsearch, plan: Plan, tenant: str, opts: Options) -> float:
    """A scroll over the partitions and one ``index`` per transformed document, over the
    first ``naive_documents``; the time extrapolated to all of them."""
    targets = _targets(plan, tenant)
    _create_targets(es, targets)
    transforms = _profile_step(plan).transforms
    started = time.perf_counter()
    hits = cast(Generator[dict[str, Any], None, None],
                es_scan(es, index=",".join(targets), size=1000))
    copied = 0
    try:
        for hit in itertools.islice(hits, opts.naive_documents):
            es.index(index=targets[hit["_index"]], id=hit["_id"],
                     document=apply_all(hit["_source"], transforms))
            copied += 1
    finally:
        hits.close()  # clears the scroll
    return (time.perf_counter() - started) / max(1, copied) * opts.documents


# ----------------------------------------------------------------- the daemon


def _upgrade_daemon(tenant: str, batch_size: int, workdir: Path, name: str) -> Daemon:
    # poll_interval_s: how long an idle upgrade thread waits before looking for a job
    return Daemon(tenant, workdir, role="upgrade", licensed=False, name=name,
                  sections=f"""[upgrade]
batch_size = {batch_size}
lease_s = 5
poll_interval_s = 0.2
[queue]
visibility_timeout_s = 2
""")


def _wait(tasks: TaskStore, task_id: str, until: Callable[[TaskRecord], bool],
          daemon: Daemon, limit_s: float) -> TaskRecord:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        record = tasks.get(task_id)
        if record is None:
            raise RuntimeError(f"task {task_id} disappeared")
        if until(record) or record.terminal:
            return record
        if daemon.proc.poll() is not None:
            log_tail = Path(daemon.log.name).read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the daemon exited with {daemon.proc.returncode}:\n{log_tail}")
        time.sleep(0.05)
    raise RuntimeError(f"task {task_id}: still not there after {limit_s:.0f}s")


def run_daemon(es: Elasticsearch, redis: RedisClient, plan: Plan, tenants: Tenants,
               opts: Options, workdir: Path) -> DaemonRun:
    """Submit the plan to a daemon, kill it with -9 at ~30 %, start another; from
    submission until the task is finished."""
    tasks = TaskStore(redis, es, Settings(tracardi=TracardiSettings(tenant=tenants.daemon)))
    limit_s = max(600.0, opts.documents / 200)
    first = _upgrade_daemon(tenants.daemon, opts.batch_size, workdir, "first")
    second: Daemon | None = None
    try:
        first.wait_running()
        started = time.perf_counter()
        record = queue_task(tasks, WorkQueue(redis, tenants.daemon, UPGRADE_QUEUE),
                            MIGRATION_TASK, "bench migration", migration_params(plan))
        _wait(tasks, record.id, lambda r: r.done >= KILL_AT * (r.total or opts.documents),
              first, limit_s)
        first.kill()
        killed = time.perf_counter()
        at_kill = tasks.get(record.id)
        assert at_kill is not None
        if at_kill.terminal:
            raise RuntimeError(f"the migration ended ({at_kill.status}) before the kill")
        done_at_kill = at_kill.done
        second = _upgrade_daemon(tenants.daemon, opts.batch_size, workdir, "second")
        second_started = time.perf_counter()
        _wait(tasks, record.id, lambda r: r.done > done_at_kill, second, limit_s)
        resumed = time.perf_counter()
        final = _wait(tasks, record.id, lambda r: r.terminal, second, limit_s)
        total_s = time.perf_counter() - started
        if (final.status, final.failed, final.done) != ("finished", 0, opts.documents):
            raise RuntimeError(f"migration ended {final.status}, {final.done} done, "
                               f"{final.failed} failed: {final.last_error}")
        return DaemonRun(total_s, resumed - killed, resumed - second_started, done_at_kill,
                         max(first.peak_rss_mb, second.peak_rss_mb))
    finally:
        first.stop()
        if second is not None:
            second.stop()


def verify(es: Elasticsearch, plan: Plan, opts: Options) -> str:
    """Every document in its quarter once (counts per quarter), and a sample of them
    equal to their expected migrated form."""
    assert plan.target is not None
    targets = _targets(plan, plan.target.tenant)
    es.indices.refresh(index=",".join(sorted(set(targets.values()))))
    expected = Counter(targets[_source_index(plan.source.tenant, month)]
                       for month, _ in _profiles(opts.documents))
    found = {index: es.count(index=index)["count"] for index in expected}
    if found != expected:
        raise RuntimeError(f"target counts {found}, expected {dict(expected)}")
    transforms = _profile_step(plan).transforms
    sample = set(random.Random(7).sample(range(opts.documents),
                                         min(SAMPLE_IDS, opts.documents)))
    wanted = [(targets[_source_index(plan.source.tenant, month)], doc)
              for number, (month, doc) in enumerate(_profiles(opts.documents))
              if number in sample]
    docs = es.mget(docs=[{"_index": index, "_id": doc["id"]} for index, doc in wanted])["docs"]
    for (_, doc), got in zip(wanted, docs, strict=True):
        if not got.get("found") or got["_source"] != apply_all(doc, transforms):
            raise RuntimeError(f"{doc['id']}: migrated as {got.get('_source')}")
    quarters = ", ".join(f"{index.rsplit('-', 1)[1]} {count:,}"
                         for index, count in sorted(found.items()))
    return (f"verified: the target holds {sum(found.values()):,} documents = the source "
            f"({quarters}); {len(wanted):,} sampled ids present and migrated as expected")


def _drop_redis(redis: RedisClient, tenant: str) -> None:
    # a leading *: queue keys carry a hash tag, {<tenant>:q:<name>}
    keys = list(redis.scan_iter(match=f"*{tenant}:*", count=1000))
    for start in range(0, len(keys), 1000):
        redis.delete(*keys[start:start + 1000])


# ----------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--naive-documents", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args(argv)
    opts = Options(args.documents, args.naive_documents, args.batch_size)
    es = bench_elastic()
    # the client as elasticsearch-py builds it, standard-library JSON and all
    plain = Elasticsearch(ELASTIC, request_timeout=120)
    tenants = Tenants.fresh()
    redis = create_redis(Settings().redis)
    workdir = Path(tempfile.mkdtemp(prefix="td-bench-migration-"))
    plan = migration_plan(tenants)
    try:
        started = time.perf_counter()
        seed(es, tenants.source, opts.documents)
        print(f"seeded {opts.documents:,} 0.8.1 profiles in {len(MONTHS)} monthly partitions "
              f"in {time.perf_counter() - started:.1f}s", flush=True)
        settle(es, tenants.run_id)
        floor_s = run_floor(es, plan, tenants.floor, opts.documents)
        print(f"floor: {floor_s:.1f}s", flush=True)
        settle(es, tenants.run_id)
        plain_floor_s = run_floor(plain, plan, tenants.plain_floor, opts.documents)
        print(f"floor with the standard JSON encoder: {plain_floor_s:.1f}s", flush=True)
        settle(es, tenants.run_id)
        daemon = run_daemon(es, redis, plan, tenants, opts, workdir)
        print(f"daemon: {daemon.total_s:.1f}s", flush=True)
        checked = verify(es, plan, opts)
        naive_s = run_naive(es, plan, tenants.naive, opts)
        return report(opts, floor_s, plain_floor_s, naive_s, daemon, checked)
    finally:
        for tenant in (tenants.source, tenants.target, tenants.daemon, tenants.floor,
                       tenants.plain_floor, tenants.naive):
            _drop(es, tenant)
        _drop_redis(redis, tenants.daemon)
        redis.close()
        es.close()
        plain.close()
        shutil.rmtree(workdir, ignore_errors=True)


def report(opts: Options, floor_s: float, plain_floor_s: float, naive_s: float,
           daemon: DaemonRun, checked: str) -> int:
    copying_s = daemon.total_s - daemon.pause_s
    rate = {name: opts.documents / seconds for name, seconds in
            (("floor", floor_s), ("plain", plain_floor_s), ("naive", naive_s),
             ("copying", copying_s),
             ("total", daemon.total_s))}
    print(f"\n{opts.documents:,} profiles, {len(MONTHS)} monthly partitions -> 2 quarters, "
          f"shipped plan 08x -> 0820, batch {opts.batch_size}; documents/s (higher is better)")
    print(f"{'path':<50}{'docs/s':>10}{'vs floor':>10}{'vs naive':>10}{'peak RSS':>10}")
    rows = [("(a) floor: streaming_bulk of transformed docs", "floor", None),
            ("(a') the same, standard JSON encoder", "plain", None),
            ("(b) naive: scroll + index per document", "naive", None),
            ("daemon, while copying (total - takeover pause)", "copying", daemon.peak_rss_mb),
            ("daemon, end to end (kill -9 and takeover incl.)", "total", daemon.peak_rss_mb)]
    for label, key, rss in rows:
        print(f"{label:<50}{rate[key]:>10,.0f}{rate[key] / rate['floor']:>10.2f}"
              f"{rate[key] / rate['naive']:>10.1f}{(f'{rss:.0f} MB' if rss else '-'):>10}")
    print(f"(the naive loop was timed on {opts.naive_documents:,} documents and "
          f"extrapolated; peak RSS: the larger of the two daemon processes; (a) uses the "
          f"daemon's client, whose JSON encoder is orjson, (a') elasticsearch-py's default)")
    print(f"kill -9 at {daemon.done_at_kill:,} of {opts.documents:,} done: the second daemon "
          f"resumed {daemon.resume_s:.1f}s after its start ({daemon.pause_s:.1f}s after the "
          f"kill); total {daemon.total_s:.1f}s, copying {copying_s:.1f}s")
    print(checked)
    for label, key in (("while copying", "copying"), ("end to end", "total")):
        met = (rate[key] >= GOAL_SHARE_OF_FLOOR * rate["floor"]
               and rate[key] >= GOAL_TIMES_NAIVE * rate["naive"])
        print(f"goal (>= {GOAL_SHARE_OF_FLOOR:.0%} of the floor and >= {GOAL_TIMES_NAIVE}x "
              f"naive), {label}: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
