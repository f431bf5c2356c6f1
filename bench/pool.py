"""The process pool against one thread, in one run: a segmentation pass's Python-path
evaluation over generated profiles and a migration's transforms over generated
documents, each timed inline and through ``CpuPool``, with the core count, the pool's
size, both rates, the ratio, the pool's RSS, and where pickling eats the gain.

Run: ``python -m bench.pool [--items 100000] [--batch 1000,5000,25000]``. No service
is needed: this is the CPU part of both jobs, which is what the pool takes.
"""

from __future__ import annotations

import argparse
import os
import pickle
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from tracardi_daemon.infra.cpu_pool import INLINE_BELOW_ITEMS, CpuPool
from tracardi_daemon.roles.segmentation.predicates import matches
from tracardi_daemon.roles.upgrade.migration.transforms import (
    Convert,
    Delete,
    Move,
    Set,
    Transform,
    transform_batch,
)

# a field compared with a field: a pass evaluates it in Python over every profile
CONDITION = ('profile@traits.spent > profile@traits.budget AND profile@traits.city == '
             '["Warsaw", "Berlin"] OR profile@data.pii.firstname STARTS WITH "An"')
TRANSFORMS: tuple[Transform, ...] = (
    Move("data.contact.email", "data.contact.email.main"),
    Move("data.contact.phone", "data.contact.phone.main"), Set("data.anonymous", None),
    Move("data.pii.name", "data.pii.display_name"), Delete("mapping"),
    Convert("metadata.time.insert", "date"), Convert("traits.spent", "string"))


def profile(number: int) -> dict[str, Any]:
    return {"id": f"p{number}", "segments": ["vip"] if number % 3 == 0 else [],
            "traits": {"spent": number % 97, "budget": number % 89,
                       "city": ("Warsaw", "Paris", "Berlin")[number % 3]},
            "data": {"pii": {"firstname": ("Anna", "Bob", "Andrzej")[number % 3],
                             "name": f"User {number}"},
                     "contact": {"email": f"u{number}@example.com", "phone": "+48 600"}},
            "metadata": {"time": {"insert": 1_700_000_000_000 + number}},
            "mapping": {"old": number}}


def _timed(run: Callable[[], list[Any]]) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def _batched(pool: CpuPool, function: Callable[[Any, list[Any]], list[Any]], shared: Any,
             items: list[Any], batch: int) -> list[Any]:
    """A job's way: one ``map_chunks`` per batch, as a pass or a migration calls it."""
    results: list[Any] = []
    for start in range(0, len(items), batch):
        results += pool.map_chunks(function, shared, items[start:start + batch])
    return results


def _round_trip(items: list[Any]) -> list[Any]:
    """What the pool adds to a batch, at the least: its items pickled and unpickled."""
    copied: list[Any] = pickle.loads(pickle.dumps(items))
    return copied


def _rss_mb(pids: tuple[int, ...]) -> float:
    total = 0.0
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in lines if line.startswith("VmRSS:"))
    return total / 1024


def measure(name: str, function: Callable[[Any, list[Any]], list[Any]], shared: Any,
            make: Callable[[], list[dict[str, Any]]], batches: list[int],
            pool: CpuPool) -> list[dict[str, Any]]:
    """One row per batch size: inline and pooled seconds over fresh copies of the items
    (a transform changes its documents in place), the results compared."""
    inline = CpuPool(1)
    rows = []
    for batch in batches:
        single_s, expected = _timed(partial(_batched, inline, function, shared, make(), batch))
        items = make()
        pickle_s, _ = _timed(partial(_round_trip, items))
        pooled_s, got = _timed(partial(_batched, pool, function, shared, items, batch))
        rows.append({"job": name, "batch": batch, "items": len(items), "single_s": single_s,
                     "pool_s": pooled_s, "pickle_s": pickle_s, "agree": got == expected})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--batch", default="1000,5000,25000",
                        help="batch sizes, comma separated (1000 is the jobs' default)")
    parser.add_argument("--processes", type=int, default=0, help="pool size, 0 = per CPU")
    args = parser.parse_args(argv)
    batches = [int(size) for size in args.batch.split(",")]
    pool = CpuPool(args.processes, inline_below=1)  # every batch to the workers here
    key = (CONDITION, datetime.now(UTC).isoformat())
    try:
        pool.map_chunks(matches, key, [profile(n) for n in range(pool.size * 2)])  # start
        rows = measure("segmentation, Python path", matches, key,
                       lambda: [profile(n) for n in range(args.items)], batches, pool)
        rows += measure("migration transforms", transform_batch, TRANSFORMS,
                        lambda: [profile(n) for n in range(args.items)], batches, pool)
        rss = _rss_mb(pool.pids())
    finally:
        pool.shutdown()
    _print(rows, pool.size, rss)
    return 0 if all(row["agree"] for row in rows) else 1


def _print(rows: list[dict[str, Any]], size: int, rss_mb: float) -> None:
    print(f"os.cpu_count() = {os.cpu_count()}, pool size = {size}, the pool's workers' "
          f"RSS = {rss_mb:.0f} MB, inline below {INLINE_BELOW_ITEMS} items in the daemon")
    print(f"{'job':<27}{'batch':>7}{'1 thread/s':>12}{f'pool({size})/s':>12}{'ratio':>7}"
          f"{'pickle rt':>11}{'same':>6}")
    for row in rows:
        print(f"{row['job']:<27}{row['batch']:>7}{row['items'] / row['single_s']:>12,.0f}"
              f"{row['items'] / row['pool_s']:>12,.0f}{row['single_s'] / row['pool_s']:>7.2f}"
              f"{row['pickle_s'] / row['single_s']:>10.0%}{'yes' if row['agree'] else 'NO':>6}")
    print("Rates are items per second; ratio = pool rate / one-thread rate. 'pickle rt' is "
          "one pickle round trip of the items as a share of the one-thread time. The "
          "calling thread pickles every item to the workers itself (and, for a migration, "
          "unpickles every document that comes back), serially: where that alone costs "
          "about as much as the work, the pool cannot win on any number of cores, and on "
          "2 cores it wins at most ~2x even when pickling were free. A pass gets booleans "
          "back; a migration gets whole documents back, so it pays pickling twice.")


if __name__ == "__main__":
    raise SystemExit(main())
