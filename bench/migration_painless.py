"""Migration, painless interpreted end to end: N 0.8.0 profiles in a 0.8.0-shaped profile
partition copied by a real daemon (a) through Tracardi's own 080_to_08x profile step, its
painless script run by the daemon's interpreter, (b) through the same step written as
declarative transforms, and (c) by the floor: the same documents, transformed in advance,
written by plain ``streaming_bulk``. One run, documents/s and ratios printed; every target
index is created by the benchmark with Tracardi's 0.8.x profile mapping, as Tracardi's
``/install`` would, before anything is copied into it.

    python -m bench.migration_painless [--plan tracardi:080_to_08x] [--documents 1000000]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import streaming_bulk

from bench.mapping import _drop, bench_elastic
from bench.migration import _drop_redis, _upgrade_daemon, _wait, settle
from bench.painless import PLANS, by_hand_080, profile_080
from tracardi_daemon.config.settings import Settings, TracardiSettings
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import UPGRADE_QUEUE
from tracardi_daemon.infra.redis import create_redis
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.jobs import queue_task
from tracardi_daemon.roles.upgrade.migration.job import MIGRATION_TASK, migration_params
from tracardi_daemon.roles.upgrade.migration.plan import Plan, Step, resolve_targets
from tracardi_daemon.roles.upgrade.migration.plan_files import load_plan
from tracardi_daemon.roles.upgrade.migration.transforms import (
    Copy,
    Delete,
    Move,
    Set,
    Transform,
    apply_all,
)

GOAL_SHARE_OF_DECLARATIVE = 0.8
PLAN_CHOICES = ("tracardi:080_to_08x",)
PARTITION = "2024-1"
SAMPLE_IDS = 1000
MAPPING = (Path(__file__).resolve().parents[1] / "tests" / "tracardi_layouts" / "mappings"
           / "08x" / "profile.json")
# Tracardi's 0.8.0 -> 0.8.x profile script as transforms: exact for a profile whose pii
# is a map (painless throws on a null pii, where these leave the document as it is). The
# skeleton holds the nulls painless writes for absent pii fields; copies come before the
# move of the same field.
_SKELETON = {"contact": {"app": {"twitter": None, "whatsapp": None}, "address": {},
                         "email": None},
             "pii": {"firstname": None, "lastname": None, "name": None}, "devices": {},
             "media": {"social": {"facebook": None, "twitter": None}}, "identifier": {},
             "loyalty": {}}
PROFILE_080_TRANSFORMS: tuple[Transform, ...] = (
    Set("data", _SKELETON), Copy("pii.surname", "data.pii.lastname"),
    Move("pii.name", "data.pii.firstname"), Move("pii.surname", "data.pii.name"),
    Move("pii.email", "data.contact.email"), Move("pii.facebook", "data.media.social.facebook"),
    Copy("pii.twitter", "data.contact.app.twitter"),
    Move("pii.twitter", "data.media.social.twitter"),
    Move("pii.whatsapp", "data.contact.app.whatsapp"), Delete("pii"))


@dataclass(frozen=True)
class Tenants:
    run_id: str
    source: str
    painless: str
    declarative: str
    floor: str
    daemon: str

    @classmethod
    def fresh(cls) -> Tenants:
        run_id = uuid.uuid4().hex[:6]
        return cls(run_id, *(f"benchpl{name}{run_id}"
                             for name in ("src", "painless", "decl", "floor", "")))


def _profiles(documents: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(7)
    return (profile_080(rng, number) for number in range(documents))


def profile_step(plan: Plan) -> Step:
    """The plan's staging profile step (the painless-heavy one)."""
    return next(step for step in plan.steps
                if step.index == "tracardi-profile" and not step.production and step.painless)


def read_plan(name: str, plans: Path, tenants: Tenants) -> Plan:
    """The Tracardi plan cut to its profile step, from the source tenant."""
    plan = load_plan(plans / f"{name.removeprefix('tracardi:')}.json",
                     from_tenant=tenants.source, to_tenant=tenants.painless)
    return replace(plan, steps=(profile_step(plan),))


def as_declarative(plan: Plan, tenant: str) -> Plan:
    step = replace(plan.steps[0], painless=None, script=None,
                   transforms=PROFILE_080_TRANSFORMS)
    return retarget(replace(plan, steps=(step,)), tenant)


def retarget(plan: Plan, tenant: str) -> Plan:
    assert plan.target is not None
    return replace(plan, target=replace(plan.target, tenant=tenant))


def source_index(plan: Plan) -> str:
    return f"{plan.source.index('tracardi-profile')}-{PARTITION}"


def target_index(plan: Plan) -> str:
    assert plan.target is not None
    ((_, target),) = resolve_targets(plan.steps[0], [source_index(plan)], plan.source,
                                     plan.target)
    return target


def create_target(es: Elasticsearch, index: str) -> None:
    """The target as Tracardi's install makes it: its profile mapping (dynamic when the
    mappings folder is absent)."""
    body = json.loads(MAPPING.read_text(encoding="utf-8")) if MAPPING.exists() else {}
    es.indices.create(index=index, mappings=body.get("mappings"),
                      settings={"number_of_shards": 1, "number_of_replicas": 0})


def _bulk(es: Elasticsearch, actions: Iterator[dict[str, Any]] | list[dict[str, Any]],
          what: str) -> None:
    for ok, item in streaming_bulk(es, actions, chunk_size=1000, raise_on_error=False):
        if not ok:
            raise RuntimeError(f"{what} failed: {str(item)[:300]}")


def seed(es: Elasticsearch, plan: Plan, documents: int) -> None:
    index = source_index(plan)
    es.indices.create(index=index, settings={"number_of_shards": 1, "number_of_replicas": 0,
                                             "refresh_interval": "-1"},
                      mappings={"properties": {"id": {"type": "keyword"}}})
    _bulk(es, ({"_index": index, "_id": doc["id"], "_source": doc}
               for doc in _profiles(documents)), "seeding")
    es.indices.put_settings(index=index, settings={"index": {"refresh_interval": "1s"}})
    es.indices.refresh(index=index)


def run_floor(es: Elasticsearch, plan: Plan, documents: int) -> float:
    index = target_index(plan)
    create_target(es, index)
    actions = [{"_index": index, "_id": doc["id"],
                "_source": apply_all(doc, PROFILE_080_TRANSFORMS)}
               for doc in _profiles(documents)]
    started = time.perf_counter()
    _bulk(es, actions, "the floor's write")
    return time.perf_counter() - started


def run_daemon_job(tasks: TaskStore, queue: WorkQueue, plan: Plan, daemon: Any,
                   documents: int) -> float:
    """One migration job from submission to finished, into a target created first."""
    started = time.perf_counter()
    record = queue_task(tasks, queue, MIGRATION_TASK, "bench painless migration",
                        migration_params(plan))
    final = _wait(tasks, record.id, lambda r: r.terminal, daemon,
                  max(600.0, documents / 200))
    if (final.status, final.failed, final.done) != ("finished", 0, documents):
        raise RuntimeError(f"migration ended {final.status}, {final.done} done, "
                           f"{final.failed} failed: {final.last_error}")
    return time.perf_counter() - started


def verify(es: Elasticsearch, index: str, documents: int) -> None:
    """All documents there, and a sample equal to what painless makes of them."""
    es.indices.refresh(index=index)
    count = es.count(index=index)["count"]
    if count != documents:
        raise RuntimeError(f"{index}: {count:,} documents, expected {documents:,}")
    sample = set(random.Random(7).sample(range(documents), min(SAMPLE_IDS, documents)))
    wanted = [doc for number, doc in enumerate(_profiles(documents)) if number in sample]
    found = es.mget(index=index, ids=[doc["id"] for doc in wanted])["docs"]
    for doc, got in zip(wanted, found, strict=True):
        if not got.get("found") or got["_source"] != by_hand_080(doc):
            raise RuntimeError(f"{index} {doc['id']}: migrated as {got.get('_source')}")


def run_all(es: Elasticsearch, plans: dict[str, Plan], tenants: Tenants, documents: int,
            batch_size: int) -> dict[str, float]:
    """Seconds per path: the floor first, then the two daemon jobs on one daemon."""
    seconds = {"floor": run_floor(es, plans["floor"], documents)}
    settle(es, tenants.run_id)
    redis = create_redis(Settings().redis)
    workdir = Path(tempfile.mkdtemp(prefix="td-bench-painless-"))
    daemon = _upgrade_daemon(tenants.daemon, batch_size, workdir, "painless")
    try:
        tasks = TaskStore(redis, es, Settings(tracardi=TracardiSettings(tenant=tenants.daemon)))
        queue = WorkQueue(redis, tenants.daemon, UPGRADE_QUEUE)
        daemon.wait_running()
        for path in ("painless", "declarative"):
            create_target(es, target_index(plans[path]))
            seconds[path] = run_daemon_job(tasks, queue, plans[path], daemon, documents)
            print(f"{path}: {seconds[path]:.1f}s", flush=True)
            verify(es, target_index(plans[path]), documents)
            settle(es, tenants.run_id)
    finally:
        daemon.stop()
        _drop_redis(redis, tenants.daemon)
        redis.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", choices=PLAN_CHOICES, default=PLAN_CHOICES[0])
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--plans", type=Path, default=PLANS,
                        help="the folder of Tracardi's plan files")
    args = parser.parse_args(argv)
    tenants = Tenants.fresh()
    painless = read_plan(args.plan, args.plans, tenants)
    plans = {"painless": painless,
             "declarative": as_declarative(painless, tenants.declarative),
             "floor": retarget(painless, tenants.floor)}
    es = bench_elastic()
    try:
        started = time.perf_counter()
        seed(es, painless, args.documents)
        print(f"seeded {args.documents:,} 0.8.0 profiles into {source_index(painless)} in "
              f"{time.perf_counter() - started:.1f}s", flush=True)
        settle(es, tenants.run_id)
        seconds = run_all(es, plans, tenants, args.documents, args.batch_size)
    finally:
        for tenant in (tenants.source, tenants.painless, tenants.declarative, tenants.floor,
                       tenants.daemon):
            _drop(es, tenant)
        es.close()
    return report(args, seconds)


def report(args: argparse.Namespace, seconds: dict[str, float]) -> int:
    rate = {path: args.documents / value for path, value in seconds.items()}
    print(f"\n{args.documents:,} profiles, {args.plan} profile step, batch "
          f"{args.batch_size}; documents/s (higher is better)")
    print(f"{'path':<56}{'docs/s':>10}{'vs floor':>10}{'vs decl.':>10}")
    for label, path in (("(c) floor: streaming_bulk of transformed documents", "floor"),
                        ("(b) daemon, the step as declarative transforms", "declarative"),
                        ("(a) daemon, the step's painless, interpreted", "painless")):
        print(f"{label:<56}{rate[path]:>10,.0f}{rate[path] / rate['floor']:>10.2f}"
              f"{rate[path] / rate['declarative']:>10.2f}")
    share = rate["painless"] / rate["declarative"]
    print(f"goal (painless >= {GOAL_SHARE_OF_DECLARATIVE:.0%} of the declarative step): "
          f"{'met' if share >= GOAL_SHARE_OF_DECLARATIVE else 'NOT met'} ({share:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
