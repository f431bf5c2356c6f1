"""Definitions refresh benchmark: what a role pays every ``definitions.refresh_s`` with
many segments stored and nothing changed -- the incremental refresh (a listing of ids
and versions without sources) beside a full listing that parses every definition (what
each refresh did before) -- and the segment rules of one batch built from kept compiled
conditions beside compiling every condition again.

    python -m bench.definitions_refresh --segments 10000
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable

from elasticsearch import Elasticsearch

from tests.model.conftest import delete_tenant_indices
from tracardi_daemon.config.settings import Settings, TracardiSettings
from tracardi_daemon.model.definition_store import DefinitionCache, DefinitionStore
from tracardi_daemon.model.definitions import Segment
from tracardi_daemon.model.indices import install
from tracardi_daemon.roles.segmentation.rules import SegmentRules
from tracardi_daemon.tql import Condition

CONDITIONS = ["profile@stats.visits > {n}",
              'profile@traits.city == "c{n}" AND profile@metadata.time.visit.count < 5',
              'NOT profile@segments == "s{n}" OR profile@traits.age BETWEEN 18 AND {n}']


def _median_s(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--segments", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--elastic", default="http://127.0.0.1:9200")
    args = parser.parse_args()
    client = Elasticsearch(args.elastic, request_timeout=120)
    tenant = f"bench{uuid.uuid4().hex[:8]}"
    settings = Settings(tracardi=TracardiSettings(tenant=tenant))
    try:
        install(client, settings)
        store = DefinitionStore(client, settings)
        segments = [Segment.from_dict({"id": f"s{n}", "name": f"s{n}",
                                       "condition": CONDITIONS[n % 3].format(n=n)})
                    for n in range(args.segments)]
        for start in range(0, len(segments), 2_000):
            store.upsert_many(segments[start:start + 2_000])
        now = [0.0]
        cache = DefinitionCache(store, Segment, refresh_s=1.0, clock=lambda: now[0])
        cache.get_all()

        def refresh() -> None:
            now[0] += 1.0
            cache.get_all()

        parsed = store.parsed
        incremental = _median_s(refresh, args.repeats)
        assert store.parsed == parsed, "an unchanged refresh parsed definitions"
        full = _median_s(lambda: store.list(Segment), args.repeats)
        kept = cache.get_all()
        rules_kept = _median_s(lambda: SegmentRules(kept), args.repeats)
        rules_compiled = _median_s(lambda: [Condition(s.condition).predicate()
                                            for s in kept], args.repeats)
        print(f"{args.segments:,} segments, median of {args.repeats}")
        print(f"  no-change refresh, incremental:      {incremental * 1000:9.1f} ms")
        print(f"  full listing parsing every one:      {full * 1000:9.1f} ms "
              f"({full / incremental:.0f}x)")
        print(f"  segment rules from kept conditions:  {rules_kept * 1000:9.1f} ms")
        print(f"  segment rules compiling every one:   {rules_compiled * 1000:9.1f} ms "
              f"({rules_compiled / rules_kept:.0f}x)")
    finally:
        delete_tenant_indices(client, tenant)


if __name__ == "__main__":
    main()
