"""Import memory: a large CSV (default 1 GB, rows of about 1 KB) read by a real daemon
(role ``upgrade``) as a dry run — every row read, parsed, typed and built into its
event, nothing written — with the daemon's RSS sampled from /proc every 0.1 s. The
file's size beside the daemon's peak RSS, and the RSS at a quarter of the rows and at
the end, show whether reading is streamed (flat) or grows with the file.

    python -m bench.import_memory [--megabytes 1024] [--batch 1000]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.mapping import Daemon, _drop, bench_elastic
from bench.migration import _drop_redis
from tracardi_daemon.config.settings import Settings, TracardiSettings
from tracardi_daemon.infra.queue import WorkQueue
from tracardi_daemon.infra.queues import UPGRADE_QUEUE
from tracardi_daemon.infra.redis import create_redis
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import ImportConfig
from tracardi_daemon.model.indices import install
from tracardi_daemon.model.tasks.store import TaskStore
from tracardi_daemon.roles.jobs import queue_task
from tracardi_daemon.roles.upgrade.imports.job import IMPORT_TASK, import_params

GOAL_PEAK_RSS_MB = 150.0
ELASTIC = "http://127.0.0.1:9200"
NOTE = "x" * 960  # makes a row about 1 KB


def write_csv(path: Path, megabytes: int) -> int:
    """Rows until the file holds ``megabytes``; returns the row count."""
    limit, rows = megabytes * 1024 * 1024, 0
    with path.open("w", encoding="utf-8") as out:
        out.write("customer_id,email,orders,note\n")
        while out.tell() < limit:
            chunk = "".join(f"c{n},u{n}@example.com,{n % 50},{NOTE}\n"
                            for n in range(rows, rows + 10_000))
            out.write(chunk)
            rows += 10_000
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=1000)
    opts = parser.parse_args(argv)
    tenant = f"benchimpmem{uuid.uuid4().hex[:6]}"
    settings = Settings(tracardi=TracardiSettings(tenant=tenant))
    es = bench_elastic()
    redis = create_redis(settings.redis)
    workdir = Path(tempfile.mkdtemp(prefix="td-bench-import-memory-"))
    daemon: Daemon | None = None
    try:
        path = workdir / "wide.csv"
        rows = write_csv(path, opts.megabytes)
        size_mb = path.stat().st_size / 1024 / 1024
        print(f"CSV: {rows:,} rows, {size_mb:,.0f} MB", flush=True)
        install(es, settings)
        DefinitionStore(es, settings).upsert_many([ImportConfig.from_dict({
            "id": "wide", "name": "Wide rows", "source": "csv",
            "config": {"path": str(path), "target": "events", "event_type": "customer",
                       "event_source": "crm", "key": "customer_id", "batch": opts.batch}})])
        daemon = Daemon(tenant, workdir, role="upgrade", licensed=False, sections="")
        daemon.wait_running()
        tasks = TaskStore(redis, es, settings)
        started = time.perf_counter()
        record = queue_task(tasks, WorkQueue(redis, tenant, UPGRADE_QUEUE), IMPORT_TASK,
                            "memory bench", import_params("wide", dry_run=True))
        at_quarter: float | None = None
        while True:
            current = tasks.get(record.id)
            assert current is not None
            if at_quarter is None and current.done >= rows // 4:
                at_quarter = daemon.peak_tree_rss_mb
            if current.terminal:
                break
            time.sleep(0.2)
        took = time.perf_counter() - started
        print(f"dry run: {current.status}, {current.done:,} rows read and built, "
              f"{current.failed:,} failed, in {took:.1f}s ({current.done / took:,.0f} rows/s)")
        print(f"daemon peak RSS with its pool: {at_quarter or 0:.0f} MB by a quarter of the "
              f"rows, {daemon.peak_tree_rss_mb:.0f} MB by the end (main process alone: "
              f"{daemon.peak_rss_mb:.0f} MB), for a {size_mb:,.0f} MB file")
        met = daemon.peak_tree_rss_mb < GOAL_PEAK_RSS_MB and current.done == rows
        print(f"goal: peak RSS < {GOAL_PEAK_RSS_MB:.0f} MB with every row read: "
              f"{'met' if met else 'NOT met'}")
        return 0
    finally:
        if daemon is not None:
            daemon.stop()
        _drop(es, tenant)
        _drop_redis(redis, tenant)
        redis.close()
        es.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
