"""TQL benchmark: conditions evaluated per second in Python (one thread, then a process
pool fed with batches) beside Elasticsearch counting the compiled query's matches over the
same profiles, indexed in the same run with the daemon's profile mapping.

    python bench/tql.py --profiles 100000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from elasticsearch import Elasticsearch, helpers

from tracardi_daemon.model.mappings import mapping_for, settings_for
from tracardi_daemon.tql import Condition, Schema

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

CONDITIONS = [
    'profile@traits.age > 30 AND profile@segments == "vip"',
    'profile@metadata.time.insert > now.offset("-30d") OR profile@data.pii.firstname '
    'STARTS WITH "An"',
    "NOT profile@traits.newsletter == TRUE AND profile@traits.orders BETWEEN 3 AND 10 "
    "AND profile@data.contact.email.main EXISTS",
    'profile@traits.city == ["Warsaw", "Berlin", "Paris"] AND profile@traits.spent >= 100.5 '
    'OR profile@traits.plan != "free"',
]

_CITIES = ["Warsaw", "Berlin", "Paris", "Madrid", "Rome", "Oslo", "Kyiv", "Lisbon"]
_NAMES = ["Anna", "Andrzej", "Bob", "Carla", "Dmitri", "Ewa", "Fatima", "Giorgio"]
_SEGMENTS = ["vip", "new", "churn-risk", "returning", "newsletter"]
_PLANS = ["free", "basic", "pro"]


def make_profile(rng: random.Random, number: int) -> dict[str, Any]:
    """A profile shaped like Tracardi's, with fields present or missing at random."""
    inserted = NOW - timedelta(seconds=rng.randrange(0, 400 * 86400))
    traits: dict[str, Any] = {
        "age": rng.randrange(16, 80),
        "city": rng.choice(_CITIES),
        "orders": rng.randrange(0, 20),
        "spent": round(rng.uniform(0, 500), 2),
        "newsletter": rng.random() < 0.4,
    }
    if rng.random() < 0.5:
        traits["plan"] = rng.choice(_PLANS)
    contact = {"email": {"main": f"user{number}@example.com"}} if rng.random() < 0.7 else {}
    return {
        "id": f"p{number}",
        "metadata": {"time": {"insert": inserted.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}},
        "segments": rng.sample(_SEGMENTS, rng.randrange(0, 3)),
        "data": {"pii": {"firstname": rng.choice(_NAMES)}, "contact": contact},
        "traits": traits,
    }


def make_profiles(count: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    return [make_profile(rng, number) for number in range(count)]


def schema() -> Schema:
    return Schema.from_mappings(profile=mapping_for("profile"))


# -- Python ---------------------------------------------------------------------------

@lru_cache(maxsize=32)
def _compiled(text: str) -> Condition:
    return Condition(text, schema())


def count_batch(text: str, now: datetime, batch: list[dict[str, Any]]) -> int:
    """Worker: how many of the batch's profiles the condition accepts."""
    accepts = _compiled(text).predicate(lambda: now)
    return sum(1 for profile in batch if accepts({"profile": profile}))


def count_json_batch(text: str, now: datetime, payload: bytes) -> int:
    """Worker: as count_batch, for a batch sent as JSON bytes (as Elasticsearch returns it)."""
    return count_batch(text, now, json.loads(payload))


def time_single_thread(text: str, documents: list[dict[str, Any]]) -> tuple[float, int]:
    accepts = _compiled(text).predicate(lambda: NOW)
    started = time.perf_counter()
    matched = sum(1 for document in documents if accepts(document))
    return time.perf_counter() - started, matched


def _batches(profiles: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(profiles), size):
        yield profiles[start:start + size]


def time_pool(pool: ProcessPoolExecutor, text: str, profiles: list[dict[str, Any]],
              batch_size: int) -> tuple[float, int]:
    """Batches of profile dicts: the time includes pickling them to the workers."""
    started = time.perf_counter()
    futures = [pool.submit(count_batch, text, NOW, batch)
               for batch in _batches(profiles, batch_size)]
    matched = sum(future.result() for future in futures)
    return time.perf_counter() - started, matched


def time_pool_json(pool: ProcessPoolExecutor, text: str,
                   payloads: list[bytes]) -> tuple[float, int]:
    """Batches as raw JSON, which a role reading Elasticsearch could hand on unparsed."""
    started = time.perf_counter()
    futures = [pool.submit(count_json_batch, text, NOW, payload) for payload in payloads]
    matched = sum(future.result() for future in futures)
    return time.perf_counter() - started, matched


# -- Elasticsearch --------------------------------------------------------------------

def index_profiles(client: Elasticsearch, index: str, profiles: list[dict[str, Any]]) -> float:
    client.indices.create(index=index, mappings=mapping_for("profile"),
                          settings={**settings_for("profile"), "number_of_replicas": 0})
    started = time.perf_counter()
    actions = ({"_index": index, "_id": profile["id"], "_source": profile}
               for profile in profiles)
    helpers.bulk(client.options(request_timeout=120), actions, chunk_size=2000)
    client.indices.refresh(index=index)
    return time.perf_counter() - started


def time_elastic(client: Elasticsearch, index: str, text: str,
                 repeat: int) -> tuple[list[float], int]:
    query = _compiled(text).to_elastic(lambda: NOW)
    timings, count = [], 0
    for _ in range(repeat):
        # the request cache would answer repeats from memory; measure the search itself
        started = time.perf_counter()
        answer = client.search(index=index, query=query, size=0, track_total_hits=True,
                               request_cache=False)
        count = answer["hits"]["total"]["value"]
        timings.append(time.perf_counter() - started)
    return timings, count


# -- report ---------------------------------------------------------------------------

def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds / 1e6:.2f} M/s" if seconds > 0 else "-"


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))


def run(args: argparse.Namespace, log: Callable[[str], None]) -> int:
    profiles = make_profiles(args.profiles)
    documents = [{"profile": profile} for profile in profiles]
    payloads = [json.dumps(batch).encode() for batch in _batches(profiles, args.batch_size)]
    workers = os.cpu_count() or 1
    client = Elasticsearch(args.elastic, request_timeout=120)
    index = f"bench-tql-{uuid.uuid4().hex[:10]}"
    try:
        log(f"indexing {len(profiles)} profiles ...")
        log(f"indexed and refreshed in {index_profiles(client, index, profiles):.1f} s")
        with ProcessPoolExecutor(max_workers=workers) as pool:
            time_pool(pool, CONDITIONS[0], profiles[:workers], 1)  # start the workers
            rows = [_measure(pool, client, index, text, profiles, documents, payloads, args)
                    for text in CONDITIONS]
    finally:
        client.options(ignore_status=404).indices.delete(index=index)
        client.close()
    _print_table(rows, len(profiles), workers, log)
    return 0 if all(row["agree"] for row in rows) else 1


def _measure(pool: ProcessPoolExecutor, client: Elasticsearch, index: str, text: str,
             profiles: list[dict[str, Any]], documents: list[dict[str, Any]],
             payloads: list[bytes], args: argparse.Namespace) -> dict[str, Any]:
    single, matched = time_single_thread(text, documents)
    pooled, pool_matched = time_pool(pool, text, profiles, args.batch_size)
    pooled_json, json_matched = time_pool_json(pool, text, payloads)
    timings, es_count = time_elastic(client, index, text, args.repeat)
    return {"text": text, "single": single, "pool": pooled, "pool_json": pooled_json,
            "matched": matched, "es_median": statistics.median(timings),
            "es_min": min(timings), "agree": matched == pool_matched == json_matched == es_count}


def _print_table(rows: list[dict[str, Any]], count: int, workers: int,
                 log: Callable[[str], None]) -> None:
    headers = ["#", "matched", "python 1 thread", f"pool({workers}) dicts",
               f"pool({workers}) JSON", "elasticsearch med/min", "es vs 1 thread"]
    widths = [2, 8, 19, 19, 19, 22, 15]
    log("")
    log(_row(headers, widths))
    for number, row in enumerate(rows, 1):
        log(_row([
            str(number), f"{row['matched']}{'' if row['agree'] else ' (!)'}",
            _timing(row["single"], count), _timing(row["pool"], count),
            _timing(row["pool_json"], count),
            f"{row['es_median'] * 1000:.1f} / {row['es_min'] * 1000:.1f} ms",
            f"{row['single'] / row['es_median']:.0f}x faster",
        ], widths))
    log("")
    for number, row in enumerate(rows, 1):
        log(f"{number}: {row['text']}")
    log(f"\n{count} profiles. Rates are condition evaluations per second. The pool columns "
        "include sending the batches\n(pickled dicts, or JSON bytes parsed by the worker). "
        "(!) marks a count on which the back ends disagree.")


def _timing(seconds: float, count: int) -> str:
    return f"{seconds * 1000:.0f} ms {_rate(count, seconds)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=5_000,
                        help="profiles per batch sent to a pool worker")
    parser.add_argument("--repeat", type=int, default=7, help="timed Elasticsearch queries")
    parser.add_argument("--elastic", default=os.environ.get("TEST_ELASTIC_URL",
                                                            "http://127.0.0.1:9200"))
    return run(parser.parse_args(argv), print)


if __name__ == "__main__":
    sys.exit(main())
