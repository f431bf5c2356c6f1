"""Imports: a real daemon (role ``upgrade``) importing a CSV file into events, beside
(a) the floor of Elasticsearch's own work — the same event documents under the same ids,
parsed and built in advance, written by plain ``streaming_bulk`` into a partition of the
same mapping — and (b) Tracardi's way, one POST per row to a local collector, sequential,
timed on the first ``--post-rows`` rows and extrapolated. The same daemon then imports a
MariaDB table and a "remote-style" Elasticsearch index (a second index on this cluster,
named by ``hosts``), both into events.

The daemon runs as a real ``tracardi-daemon run`` process (its RSS is sampled from
/proc). Each import is timed from its submission to its task being finished. When the
daemon reaches less than 80 % of the floor, ``CsvSource.read`` + ``EventsTarget.write``
are profiled in this process over 100,000 rows.

    python -m bench.import [--rows 1000000] [--post-rows 20000] [--mysql-rows 100000]
                           [--es-documents 100000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pymysql
from elasticsearch import Elasticsearch
from elasticsearch.helpers import streaming_bulk
from pymysql.connections import Connection

from bench.mapping import Daemon, _drop, bench_elastic
from bench.migration import _drop_redis, _wait, settle
from tracardi_daemon.config.settings import Settings, TracardiSettings
from tracardi_daemon.infra.bulk import BulkWriter
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import UPGRADE_QUEUE
from tracardi_daemon.infra.redis import RedisClient, create_redis
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import ImportConfig
from tracardi_daemon.model.import_spec import ImportSpec, read_spec
from tracardi_daemon.model.indices import install
from tracardi_daemon.model.naming import alias_name, index_name
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.jobs import queue_task
from tracardi_daemon.roles.upgrade.imports.files import open_file_source
from tracardi_daemon.roles.upgrade.imports.job import IMPORT_TASK, import_params
from tracardi_daemon.roles.upgrade.imports.targets import EventsTarget, imported_id, row_key

GOAL_SHARE_OF_FLOOR = 0.8
GOAL_PEAK_RSS_MB = 150.0
PROFILE_ROWS = 100_000
SAMPLE_IDS = 500  # daemon events compared with the floor's
ELASTIC = "http://127.0.0.1:9200"
# the account scripts/services creates (the same default as
# tests/roles/upgrade/imports/mysql_fixtures.py)
MYSQL_URL = os.environ.get("TEST_MYSQL_URL", "mysql://tracardi:tracardi@127.0.0.1:3306")
HEADER = ("customer_id", "email", "name", "city", "orders", "score", "joined", "active")
FIRST = ("Ann", "Bob", "Cid", "Dora", "Eve", "Finn", "Gus", "Hanna", "Ida", "Jan", "Kai")
LAST = ("Nowak", "Smith", "Berg", "Kowalski", "Olsen", "Meyer", "Rossi", "Dubois", "Novak")
CITIES = ("Oslo", "Warsaw", "Berlin", "Paris", "Rome", "Lisbon", "Prague", "Riga", "Dublin")
TARGET = {"target": "events", "event_type": "customer-imported", "event_source": "crm",
          "key": "customer_id"}


@dataclass(frozen=True)
class Options:
    rows: int
    post_rows: int
    mysql_rows: int
    es_documents: int
    batch: int


@dataclass(frozen=True)
class Tenants:
    run_id: str
    daemon: str  # the daemon's queue, tasks, definitions and events; the MariaDB database
    floor: str
    source: str  # the remote-style index is named after it, so that _drop finds it
    profile: str

    @classmethod
    def fresh(cls) -> Tenants:
        run_id = uuid.uuid4().hex[:6]
        return cls(run_id, *(f"benchimp{name}{run_id}"
                             for name in ("", "floor", "src", "prof")))


@dataclass(frozen=True)
class Result:
    label: str
    rows: int
    seconds: float
    peak_rss_mb: float | None = None  # the daemon's main process
    peak_tree_rss_mb: float | None = None  # with its process pool (forkserver, workers)


def _settings(tenant: str) -> Settings:
    return Settings(tracardi=TracardiSettings(tenant=tenant))


# ----------------------------------------------------------------- data


def _values(number: int) -> tuple[str, str, str, str, int, float, date, bool]:
    return (f"c{number:07d}", f"user{number}@example.com",
            f"{FIRST[number % len(FIRST)]} {LAST[number // 7 % len(LAST)]}",
            CITIES[number % len(CITIES)], number % 50, number * 37 % 10_000 / 100,
            date(2020, 1, 1) + timedelta(days=number % 1500), number % 3 == 0)


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write(",".join(HEADER) + "\n")
        for start in range(0, rows, 100_000):
            out.write("".join(f"{c},{e},{n},{t},{o},{s:.2f},{j},{str(a).lower()}\n" for
                              c, e, n, t, o, s, j, a in map(_values, range(start, min(
                                  rows, start + 100_000)))))


def _mysql_address() -> dict[str, Any]:
    parts = urlsplit(MYSQL_URL)
    return {"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
            "user": unquote(parts.username or ""), "password": unquote(parts.password or "")}


def _mysql() -> Connection[Any]:
    return pymysql.connect(**_mysql_address(), charset="utf8mb4", autocommit=True,
                           connect_timeout=5)


def seed_mysql(database: str, rows: int) -> None:
    with _mysql() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
        cursor.execute(f"CREATE TABLE `{database}`.customers (customer_id VARCHAR(16) PRIMARY "
                       "KEY, email VARCHAR(64), name VARCHAR(64), city VARCHAR(32), orders "
                       "INT, score DOUBLE, joined DATE, active BOOLEAN)")
        for start in range(0, rows, 5000):
            cursor.executemany(f"INSERT INTO `{database}`.customers VALUES "
                               "(%s, %s, %s, %s, %s, %s, %s, %s)",
                               [_values(n) for n in range(start, min(rows, start + 5000))])


def seed_elastic(es: Elasticsearch, index: str, documents: int) -> None:
    es.indices.create(index=index, settings={"number_of_shards": 1, "number_of_replicas": 0},
                      mappings={"properties": {"id": {"type": "keyword"}}})
    actions = ({"_index": index, "_id": values[0],
                "_source": {"id": values[0], **dict(zip(HEADER, values, strict=True)),
                            "joined": values[6].isoformat()}}
               for values in map(_values, range(documents)))
    for ok, item in streaming_bulk(es, actions, chunk_size=5000, raise_on_error=False):
        if not ok:
            raise RuntimeError(f"seeding failed: {item}")
    es.indices.refresh(index=index)


def definitions(csv_path: Path, tenants: Tenants, opts: Options) -> dict[str, ImportConfig]:
    common = {**TARGET, "batch": opts.batch}
    configs = {
        "csv": {"path": str(csv_path), "columns": {"joined": "date"}, **common},
        "mysql-table": {**_mysql_address(), "database": tenants.daemon,
                        "table": "customers", **common},
        "elasticsearch": {"hosts": ["http://127.0.0.1:9200"],
                          "index": f"{tenants.source}-customers", **common},
    }
    return {source: ImportConfig.from_dict({"id": f"bench-{source}", "name": f"bench {source}",
                                            "source": source, "config": config})
            for source, config in configs.items()}


def _spec(definition: ImportConfig) -> ImportSpec:
    return read_spec(definition.id, definition.name, definition.source, definition.config)


# ----------------------------------------------------------------- the baselines


def run_floor(es: Elasticsearch, tenant: str, definition: ImportConfig) -> float:
    """streaming_bulk of the event documents EventsTarget builds, built in advance from
    the parsed rows, into the tenant's event partition (installed as the daemon does)."""
    settings, now = _settings(tenant), datetime.now(UTC)
    install(es, settings, now=now)
    spec, index = _spec(definition), index_name(settings.tracardi, "event", now)
    builder = EventsTarget(spec, es, BulkWriter(es), settings, insert_time=now, dry_run=True)
    actions: list[dict[str, Any]] = []
    with closing(open_file_source("csv", definition.config, None)) as source:
        while rows := source.read(10_000):
            for row in rows:
                event_id = imported_id(spec.id, str(row_key(spec, row)))
                actions.append({"_index": index, "_id": event_id,
                                "_source": builder.event(row, event_id)})
    started = time.perf_counter()
    for ok, item in streaming_bulk(es, actions, chunk_size=1000, raise_on_error=False):
        if not ok:
            raise RuntimeError(f"floor write failed: {item}")
    return time.perf_counter() - started


class _Collector(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # else headers and body wait on a delayed ACK (40 ms)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def run_posts(definition: ImportConfig, post_rows: int) -> float:
    """Seconds for ``post_rows`` parsed rows POSTed one by one, each answer awaited."""
    spec = _spec(definition)
    with closing(open_file_source("csv", definition.config, None)) as source:
        rows = source.read(post_rows)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = (f"http://127.0.0.1:{server.server_address[1]}/collect/{spec.event_type}/"
           f"{spec.event_source}")
    try:
        with httpx.Client() as client:
            started = time.perf_counter()
            for row in rows:
                client.post(url, json=row.data).raise_for_status()
            return time.perf_counter() - started
    finally:
        server.shutdown()
        server.server_close()


# ----------------------------------------------------------------- the daemon


def run_daemon(es: Elasticsearch, redis: RedisClient, tenants: Tenants,
               defs: dict[str, ImportConfig], opts: Options, workdir: Path) -> list[Result]:
    """The three imports one after another in one daemon; after each, the tenant's event
    count checked against the rows imported so far."""
    settings = _settings(tenants.daemon)
    install(es, settings)
    DefinitionStore(es, settings).upsert_many(list(defs.values()))
    tasks = TaskStore(redis, es, settings)
    queue = WorkQueue(redis, tenants.daemon, UPGRADE_QUEUE)
    daemon = Daemon(tenants.daemon, workdir, role="upgrade", licensed=False,
                    sections=f"[upgrade]\nbatch_size = {opts.batch}\npoll_interval_s = 0.2\n")
    results: list[Result] = []
    alias, expected = alias_name(settings.tracardi, "event"), 0
    try:
        daemon.wait_running()
        for label, source, rows in (("daemon: CSV file", "csv", opts.rows),
                                    ("daemon: MariaDB table", "mysql-table", opts.mysql_rows),
                                    ("daemon: remote-style ES", "elasticsearch",
                                     opts.es_documents)):
            started = time.perf_counter()
            record = queue_task(tasks, queue, IMPORT_TASK, f"bench {source}",
                                import_params(defs[source].id))
            final = _wait(tasks, record.id, lambda r: r.terminal, daemon,
                          max(600.0, rows / 200))
            seconds = time.perf_counter() - started
            if (final.status, final.done, final.failed) != ("finished", rows, 0):
                raise RuntimeError(f"{source} import ended {final.status}, {final.done} done, "
                                   f"{final.failed} failed: {final.last_error}")
            expected += rows
            es.indices.refresh(index=alias)
            if (found := es.count(index=alias)["count"]) != expected:
                raise RuntimeError(f"after the {source} import: {found:,} events, "
                                   f"expected {expected:,}")
            results.append(Result(label, rows, seconds, daemon.peak_rss_mb,
                                  daemon.peak_tree_rss_mb))
            print(f"{label}: {seconds:.1f}s (task: {final.done:,} done, {final.failed} "
                  f"failed; {found:,} events in all)", flush=True)
        return results
    finally:
        daemon.stop()


def compare(es: Elasticsearch, tenants: Tenants, definition: ImportConfig, rows: int) -> str:
    """A sample of the daemon's CSV events equal to the floor's, but for the times."""
    spec = _spec(definition)
    step = max(1, rows // SAMPLE_IDS)
    ids = [imported_id(spec.id, f"c{n:07d}") for n in range(0, rows, step)]

    def sources(tenant: str) -> dict[str, dict[str, Any]]:
        hits = es.search(index=alias_name(_settings(tenant).tracardi, "event"),
                         query={"ids": {"values": ids}}, size=len(ids))["hits"]["hits"]
        return {hit["_id"]: {**hit["_source"], "metadata": {
            **hit["_source"]["metadata"], "time": None}} for hit in hits}

    daemon, floor = sources(tenants.daemon), sources(tenants.floor)
    if len(daemon) != len(ids) or daemon != floor:
        raise RuntimeError("the daemon's events differ from the floor's")
    return (f"verified: {len(ids)} sampled events of the daemon equal the floor's "
            "(same ids; metadata.time aside)")


# ----------------------------------------------------------------- profile


def profile(es: Elasticsearch, tenant: str, definition: ImportConfig, rows: int,
            runs: tuple[Result, Result]) -> str:
    """CsvSource.read + EventsTarget.write as the job runs them, unprofiled, with the time
    of ``_existing`` and of the BulkWriter taken apart; then what the daemon adds to the
    floor's work (read + a dry-run write: parsing, ids, events) under cProfile. ``runs``:
    the floor's and the daemon's CSV results, shown per batch beside."""
    settings, spec = _settings(tenant), _spec(definition)
    spent = dict.fromkeys(("read", "write", "existing", "bulk"), 0.0)

    def timed(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*args)
            finally:
                spent[name] += time.perf_counter() - started
        return run

    def loop(target: EventsTarget) -> float:
        started, done = time.perf_counter(), 0
        with closing(open_file_source("csv", definition.config, None)) as source:
            while done < rows and (batch := timed("read", source.read)(spec.batch)):
                timed("write", target.write)(batch)
                done += len(batch)
        return time.perf_counter() - started

    writer = BulkWriter(es)
    target = EventsTarget(spec, es, writer, settings, insert_time=datetime.now(UTC),
                          dry_run=False)
    target._existing = timed("existing", target._existing)  # type: ignore[method-assign]
    writer.write = timed("bulk", writer.write)  # type: ignore[method-assign]
    total_s = loop(target)
    build_s = spent["write"] - spent["existing"] - spent["bulk"]
    batches = -(-rows // spec.batch)
    parts = (("CsvSource.read (parse, type)", spent["read"]),
             ("EventsTarget: key, imported_id, event", build_s),
             ("EventsTarget._existing (ids search)", spent["existing"]),
             ("BulkWriter.write (JSON, request, wait)", spent["bulk"]))
    shares = "\n".join(f"  {name:<40}{seconds:>7.2f}s {seconds / total_s:>5.0%} "
                       f"{seconds / batches * 1000:>6.1f} ms/batch" for name, seconds in parts)
    profiler = cProfile.Profile()
    profiler.enable()
    dry_s = loop(EventsTarget(spec, es, writer, settings, insert_time=datetime.now(UTC),
                              dry_run=True))
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(10)
    lines = out.getvalue().replace(os.getcwd() + "/", "").splitlines()
    header = next(number for number, line in enumerate(lines) if "ncalls" in line)
    top = "\n".join(lines[header:header + 11])
    floor_ms, daemon_ms = (run.seconds / run.rows * spec.batch * 1000 for run in runs)
    return (f"per batch of {spec.batch}: floor {floor_ms:.1f} ms, daemon {daemon_ms:.1f} ms "
            f"(+{daemon_ms - floor_ms:.1f} ms)\nprofile over {rows:,} rows in this process, "
            f"unprofiled: {total_s:.2f}s ({rows / total_s:,.0f} rows/s)\n{shares}\n"
            f"the same read + a dry-run write (no Elasticsearch) under cProfile: {dry_s:.2f}s; "
            f"top by own time:\n{top}")


# ----------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag, default in (("--rows", 1_000_000), ("--post-rows", 20_000),
                          ("--mysql-rows", 100_000), ("--es-documents", 100_000),
                          ("--batch", 1000)):
        parser.add_argument(flag, type=int, default=default)
    opts = Options(**vars(parser.parse_args(argv)))
    es = bench_elastic()
    redis = create_redis(Settings().redis)
    tenants = Tenants.fresh()
    workdir = Path(tempfile.mkdtemp(prefix="td-bench-import-"))
    try:
        started = time.perf_counter()
        csv_path = workdir / "customers.csv"
        write_csv(csv_path, opts.rows)
        defs = definitions(csv_path, tenants, opts)
        print(f"CSV: {opts.rows:,} rows x {len(HEADER)} columns, "
              f"{csv_path.stat().st_size / 1e6:.1f} MB, in {time.perf_counter() - started:.1f}s",
              flush=True)
        seed_mysql(tenants.daemon, opts.mysql_rows)
        seed_elastic(es, f"{tenants.source}-customers", opts.es_documents)
        print(f"seeded {opts.mysql_rows:,} MariaDB rows and {opts.es_documents:,} ES documents",
              flush=True)
        settle(es, tenants.run_id)
        floor_s = run_floor(es, tenants.floor, defs["csv"])
        print(f"floor: {floor_s:.1f}s", flush=True)
        post_s = run_posts(defs["csv"], opts.post_rows)
        print(f"POST loop: {post_s:.1f}s for {opts.post_rows:,} rows", flush=True)
        settle(es, tenants.run_id)
        daemon = run_daemon(es, redis, tenants, defs, opts, workdir)
        checked = compare(es, tenants, defs["csv"], opts.rows)
        results = [Result("(a) floor: streaming_bulk of built events", opts.rows, floor_s),
                   Result("(b) POST per row (extrapolated)", opts.rows,
                          post_s / max(1, opts.post_rows) * opts.rows), *daemon]
        if report(opts, results, checked) < GOAL_SHARE_OF_FLOOR:
            settle(es, tenants.run_id)
            print("\n" + profile(es, tenants.profile, defs["csv"], min(opts.rows, PROFILE_ROWS),
                                  (results[0], results[2])))
        return 0
    finally:
        for tenant in (tenants.daemon, tenants.floor, tenants.source, tenants.profile):
            _drop(es, tenant)
        _drop_redis(redis, tenants.daemon)
        try:
            with _mysql() as connection, connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS `{tenants.daemon}`")
        except pymysql.Error as exc:
            print(f"could not drop the database {tenants.daemon}: {exc}", file=sys.stderr)
        redis.close()
        es.close()
        shutil.rmtree(workdir, ignore_errors=True)


def report(opts: Options, results: list[Result], checked: str) -> float:
    """Prints the table and the goals; returns the CSV import's share of the floor."""
    rate = [result.rows / result.seconds for result in results]
    print(f"\nimports into events, batch {opts.batch}; rows/s (higher is better)")
    print(f"{'path':<44}{'rows':>11}{'seconds':>9}{'rows/s':>10}{'vs floor':>10}"
          f"{'peak RSS main/all':>19}")
    for result, per_s in zip(results, rate, strict=True):
        rss = (f"{result.peak_rss_mb:.0f}/{result.peak_tree_rss_mb or 0:.0f} MB"
               if result.peak_rss_mb else "-")
        print(f"{result.label:<44}{result.rows:>11,}{result.seconds:>9.1f}{per_s:>10,.0f}"
              f"{per_s / rate[0]:>10.2f}{rss:>19}")
    print(f"(b) timed on {opts.post_rows:,} rows (one httpx.Client, keep-alive, to a "
          "ThreadingHTTPServer in this process answering 200) and extrapolated;\n"
          "the three daemon imports ran one after another in one daemon (peak RSS up to the "
          "end of each import: its main process / the sum with its process pool);\n"
          "MariaDB and ES 'vs floor': against the "
          f"CSV floor (the same event shape)\n{checked}")
    share, peak = rate[2] / rate[0], max(r.peak_tree_rss_mb or 0.0 for r in results)
    print(f"goal: CSV import >= {GOAL_SHARE_OF_FLOOR:.0%} of the floor: "
          f"{'met' if share >= GOAL_SHARE_OF_FLOOR else 'NOT met'} ({share:.2f})")
    print(f"goal: daemon peak RSS (with its pool) < {GOAL_PEAK_RSS_MB:.0f} MB over the run: "
          f"{'met' if peak < GOAL_PEAK_RSS_MB else 'NOT met'} ({peak:.0f} MB)")
    return share


if __name__ == "__main__":
    sys.exit(main())
