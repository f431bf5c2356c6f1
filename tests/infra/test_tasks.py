"""Task records on the real Redis, mirrored to the real Elasticsearch ``task`` index:
counters and checkpoints, fencing, rate and ETA, cancel, finish, and the CLI's view."""

from __future__ import annotations

import io
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from redis import Redis

from tracardi_daemon.cli.progress import follow, render
from tracardi_daemon.config.settings import Settings, TracardiSettings
from tracardi_daemon.errors import BackendError, InvalidInput
from tracardi_daemon.infra.lease import Lease
from tracardi_daemon.model.definition_store import DefinitionStore
from tracardi_daemon.model.definitions import Task
from tracardi_daemon.model.indices import install
from tracardi_daemon.model.tasks.record import RATE_SMOOTHING_S
from tracardi_daemon.model.tasks.store import (
    FINISHED_TTL_MS,
    TaskRecord,
    TaskStore,
    task_key,
)

StoreFactory = Callable[..., TaskStore]


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(prefix: str) -> Settings:
    return Settings(tracardi=TracardiSettings(tenant=prefix))


@pytest.fixture
def make_store(redis_client: Redis, settings: Settings) -> StoreFactory:
    """A store without the index unless given an Elasticsearch client."""

    def make(elastic: Elasticsearch | None = None, **options: Any) -> TaskStore:
        return TaskStore(redis_client, elastic, settings, **options)

    return make


@pytest.fixture
def indexed(elastic_client: Elasticsearch, settings: Settings) -> DefinitionStore:
    """The installed indices; the store to read the ``task`` index back."""
    install(elastic_client, settings)
    return DefinitionStore(elastic_client, settings)


def mirrored(definitions: DefinitionStore, task_id: str) -> Task:
    task = definitions.get(Task, task_id)
    assert task is not None
    return task


def test_create_is_pending_in_redis_and_in_the_index(
    make_store: StoreFactory,
    elastic_client: Elasticsearch,
    indexed: DefinitionStore,
    redis_client: Redis,
    prefix: str,
) -> None:
    store = make_store(elastic_client)
    record = store.create("import", "Import from MySQL", {"source": "mysql"}, total=200)
    assert len(record.id) == 32 and record.status == "pending"
    assert record.total == 200 and record.done == record.failed == 0
    assert store.get(record.id) == record
    assert redis_client.hget(task_key(prefix, record.id), "status") == b"pending"

    task = mirrored(indexed, record.id)
    assert (task.type, task.name, task.status, task.progress) == (
        "import",
        "Import from MySQL",
        "pending",
        0.0,
    )
    assert task.params["source"] == "mysql"
    assert task.params["live"]["total"] == 200
    assert task.created.timestamp() == pytest.approx(record.created_at, abs=0.001)

    with pytest.raises(InvalidInput, match="already exists"):
        store.create("import", "again", {}, task_id=record.id)


def test_create_without_the_index_raises_and_keeps_nothing(
    make_store: StoreFactory, elastic_client: Elasticsearch, redis_client: Redis, prefix: str
) -> None:
    store = make_store(elastic_client)
    with pytest.raises(BackendError):
        store.create("import", "no index yet", {}, task_id="t1")
    assert redis_client.exists(task_key(prefix, "t1")) == 0


def test_start_and_progress_accumulate_with_the_checkpoint(make_store: StoreFactory) -> None:
    store = make_store()
    task_id = store.create("reindex", "Reindex", {}, task_id="job-1").id
    assert store.start(task_id, "daemon-1")
    record = store.get(task_id)
    assert record is not None
    assert (record.status, record.owner) == ("running", "daemon-1")
    assert record.started_at is not None

    assert store.progress(task_id, done=10, failed=1, checkpoint={"after": ["a", 1]})
    assert store.progress(
        task_id,
        done=5,
        total=50,
        checkpoint={"after": ["b", 2]},
        last_error="document b-7: mapping conflict",
    )
    record = store.get(task_id)
    assert record is not None
    assert (record.done, record.failed, record.total) == (15, 1, 50)
    assert record.checkpoint == {"after": ["b", 2]}
    assert record.last_error == "document b-7: mapping conflict"
    assert record.percent == 30.0

    assert not store.progress("no-such-task", done=1)
    assert store.get("no-such-task") is None
    with pytest.raises(InvalidInput):
        store.progress(task_id, done=-1)


def test_progress_never_passes_its_total(make_store: StoreFactory) -> None:
    """Documents written to a source after it was counted: the total grows with them."""
    store = make_store()
    task_id = store.create("migration", "Migration", {}).id
    store.start(task_id, "daemon-1")
    assert store.progress(task_id, total=28)
    assert store.progress(task_id, done=27)
    assert store.progress(task_id, done=1, failed=1)
    record = store.get(task_id)
    assert record is not None
    assert (record.done, record.failed, record.total) == (28, 1, 29)


def test_concurrent_progress_adds_exactly(make_store: StoreFactory) -> None:
    store = make_store()
    task_id = store.create("import", "Import", {}).id
    store.start(task_id, "daemon-1")

    def report(n: int) -> None:
        for i in range(n):
            assert store.progress(task_id, done=1, failed=i % 2, checkpoint={"i": i})

    threads = [threading.Thread(target=report, args=(150,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    record = store.get(task_id)
    assert record is not None
    assert (record.done, record.failed) == (300, 150)


def test_a_lost_fence_writes_nothing(
    make_store: StoreFactory, redis_client: Redis, prefix: str
) -> None:
    store = make_store()
    task_id = store.create("segmentation", "Segmentation pass", {}).id
    # the old holder's clock stands still: only the fenced script can stop it
    old = Lease(redis_client, prefix, "segmentation", "daemon-1", 0.3, clock=lambda: 0.0)
    assert old.acquire()
    old_fence = old.fenced()
    assert store.start(task_id, "daemon-1", fence=old_fence)
    assert store.progress(task_id, done=10, checkpoint={"after": 10}, fence=old_fence)
    time.sleep(0.45)
    new = Lease(redis_client, prefix, "segmentation", "daemon-2", 10)
    assert new.acquire()

    before = redis_client.hgetall(task_key(prefix, task_id))
    assert not store.progress(task_id, done=5, checkpoint={"after": 15}, fence=old_fence)
    assert not store.finish(task_id, "failed", error="late", fence=old_fence)
    assert not store.start(task_id, "daemon-1", fence=old_fence)
    assert redis_client.hgetall(task_key(prefix, task_id)) == before

    new_fence = new.fenced()
    assert store.start(task_id, "daemon-2", fence=new_fence), "a takeover restarts it"
    assert store.progress(task_id, done=5, checkpoint={"after": 15}, fence=new_fence)
    record = store.get(task_id)
    assert record is not None
    assert (record.owner, record.done, record.checkpoint) == ("daemon-2", 15, {"after": 15})


def test_rate_and_eta_with_an_injected_clock(make_store: StoreFactory) -> None:
    clock = FakeClock()
    store = make_store(clock=clock)
    task_id = store.create("import", "Import", {}, total=1000).id
    store.start(task_id, "daemon-1")

    clock.now += 10
    store.progress(task_id, done=100)
    record = store.get(task_id)
    assert record is not None
    assert record.rate == pytest.approx(10.0)
    assert record.eta_s == pytest.approx(90.0)

    clock.now += 10
    store.progress(task_id, done=290, failed=10)  # 300 items in 10 s
    rate = 10.0 + (1 - math.exp(-10 / RATE_SMOOTHING_S)) * (30.0 - 10.0)
    record = store.get(task_id)
    assert record is not None
    assert record.rate == pytest.approx(rate, abs=0.001)
    assert record.eta_s == pytest.approx((1000 - 400) / rate, abs=0.1)
    assert record.updated_at == pytest.approx(clock.now)

    clock.now += 0.2  # too short a window to sample: the rate stays
    store.progress(task_id, done=100)
    record = store.get(task_id)
    assert record is not None
    assert record.rate == pytest.approx(rate, abs=0.001)
    assert record.eta_s == pytest.approx((1000 - 500) / rate, abs=0.1)


def test_cancel_flag(make_store: StoreFactory) -> None:
    store = make_store()
    task_id = store.create("import", "Import", {}).id
    assert not store.cancel_requested(task_id)
    assert store.request_cancel(task_id)
    assert store.cancel_requested(task_id)
    record = store.get(task_id)
    assert record is not None and record.cancel_requested
    assert store.finish(task_id, "cancelled")
    assert not store.request_cancel(task_id)
    assert not store.request_cancel("no-such-task")
    assert not store.cancel_requested("no-such-task")


def test_finish_expires_the_record_and_mirrors_it(
    make_store: StoreFactory,
    elastic_client: Elasticsearch,
    indexed: DefinitionStore,
    redis_client: Redis,
    prefix: str,
) -> None:
    clock = FakeClock()
    store = make_store(elastic_client, clock=clock)
    task_id = store.create("import", "Import", {"file": "a.csv"}, total=10).id
    store.start(task_id, "daemon-1")
    assert mirrored(indexed, task_id).status == "running"
    clock.now += 5
    store.progress(task_id, done=7, failed=3)
    clock.now += 1
    assert store.finish(task_id, "finished")

    record = store.get(task_id)
    assert record is not None
    assert record.status == "finished" and record.terminal
    assert record.finished_at == pytest.approx(clock.now)
    ttl_ms = redis_client.pttl(task_key(prefix, task_id))
    assert FINISHED_TTL_MS - 60_000 < ttl_ms <= FINISHED_TTL_MS
    task = mirrored(indexed, task_id)
    assert (task.status, task.progress) == ("finished", 100.0)
    assert task.params["file"] == "a.csv"
    assert task.params["live"]["done"] == 7 and task.params["live"]["failed"] == 3

    assert not store.finish(task_id, "failed"), "already terminal"
    assert not store.progress(task_id, done=1)
    assert not store.start(task_id, "daemon-2")
    with pytest.raises(InvalidInput):
        store.finish(task_id, "running")

    failing_id = store.create("import", "Import", {}, total=4).id
    assert store.finish(failing_id, "failed", error="source gone: password=hunter2")
    task = mirrored(indexed, failing_id)
    assert (task.status, task.progress) == ("failed", 0.0)
    assert "source gone" in task.params["live"]["last_error"]
    assert "hunter2" not in task.params["live"]["last_error"]


def test_progress_mirrors_at_most_every_interval(
    make_store: StoreFactory, elastic_client: Elasticsearch, indexed: DefinitionStore
) -> None:
    clock = FakeClock()
    store = make_store(elastic_client, clock=clock, mirror_every_s=2.0)
    task_id = store.create("import", "Import", {}, total=100).id
    store.start(task_id, "daemon-1")  # a status change: mirrored at once
    clock.now += 1
    store.progress(task_id, done=10)
    assert mirrored(indexed, task_id).params["live"]["done"] == 0
    clock.now += 1.5
    store.progress(task_id, done=10)
    task = mirrored(indexed, task_id)
    assert task.params["live"]["done"] == 20
    assert task.progress == 20.0


def test_a_mirror_error_only_warns(
    make_store: StoreFactory, elastic_client: Elasticsearch, caplog: pytest.LogCaptureFixture
) -> None:
    task_id = make_store().create("import", "Import", {}).id
    store = make_store(elastic_client)  # no index installed
    with caplog.at_level(logging.WARNING, logger="tracardi_daemon.model.tasks.store"):
        assert store.start(task_id, "daemon-1")
        assert store.progress(task_id, done=3)
    assert "not mirrored" in caplog.text
    record = store.get(task_id)
    assert record is not None and record.done == 3


def test_list_newest_first(make_store: StoreFactory) -> None:
    clock = FakeClock()
    store = make_store(clock=clock)
    ids = []
    for kind in ("import", "reindex", "import"):
        ids.append(store.create(kind, f"{kind} job", {}).id)
        clock.now += 1
    assert [r.id for r in store.list()] == ids[::-1]
    assert [r.id for r in store.list("import")] == [ids[2], ids[0]]
    assert store.list("other") == []


def record_of(**changes: Any) -> TaskRecord:
    fields: dict[str, Any] = {
        "id": "t",
        "type": "import",
        "name": "Import",
        "status": "running",
        "total": 200_000,
        "done": 62_000,
        "failed": 12,
        "started_at": 100.0,
        "updated_at": 110.0,
        "finished_at": None,
        "rate": 8_400.0,
        "eta_s": 16.4,
        "last_error": None,
        "checkpoint": None,
        "cancel_requested": False,
        "owner": "d1",
        "params": {},
    }
    fields.update(changes)
    return TaskRecord(**fields)


def test_render_known_and_unknown_totals() -> None:
    assert render(record_of()) == "31%  62,000/200,000 done  12 failed  8,400/s  ETA 16s  running"
    assert render(record_of(total=None, eta_s=None)) == ("62,000 done  12 failed  8,400/s  running")
    assert (
        render(record_of(total=None, rate=None, eta_s=None, done=0, failed=0, status="pending"))
        == "0 done  0 failed  pending"
    )
    assert render(record_of(rate=2.5, eta_s=3725, cancel_requested=True)).endswith(
        "2.5/s  ETA 1h02m  running  (cancel requested)"
    )
    finished = render(record_of(status="finished", done=199_988, finished_at=225.0))
    assert finished == "99%  199,988/200,000 done  12 failed  took 2m05s  finished"
    failed = render(record_of(status="failed", last_error="bad\nrow " + "x" * 200))
    assert failed.endswith("failed  error: bad row " + "x" * 112 + "...")


def _work_through(store: TaskStore, task_id: str) -> threading.Thread:
    """A worker that learns the total at its first batch: 20 items, one failing."""

    def work() -> None:
        for batch in range(4):
            time.sleep(0.1)
            failed = 1 if batch == 2 else 0
            store.progress(
                task_id, done=5 - failed, failed=failed, total=20 if batch == 0 else None
            )
        store.finish(task_id, "finished")

    worker = threading.Thread(target=work)
    worker.start()
    return worker


def test_follow_until_finished(make_store: StoreFactory) -> None:
    store = make_store()
    task_id = store.create("import", "Import", {}, total=20).id
    store.start(task_id, "daemon-1")
    worker = _work_through(store, task_id)
    out = io.StringIO()
    final = follow(store, task_id, out, interval_s=0.02)
    worker.join()
    assert final.status == "finished" and (final.done, final.failed) == (19, 1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, "not a terminal: the first line, then the last"
    assert lines[0].endswith("running")
    assert lines[-1].startswith("95%  19/20 done  1 failed  took ")
    assert lines[-1].endswith("finished")


def test_follow_on_a_terminal_draws_a_progress_bar(make_store: StoreFactory) -> None:
    store = make_store()
    task_id = store.create("import", "Import", {}).id
    store.start(task_id, "daemon-1")
    worker = _work_through(store, task_id)
    out = io.StringIO()
    final = follow(store, task_id, out, interval_s=0.02, tty=True)
    worker.join()
    assert final.terminal and final.status == "finished"
    assert (final.done, final.failed, final.total) == (19, 1, 20)
    shown = out.getvalue()
    assert shown.count("\r") > 2 and shown.count("\n") == 1, "one line, redrawn"
    last = shown.rstrip("\n").rsplit("\r", 1)[-1]
    assert last.startswith("finished: 100%|"), "the status first"
    assert "| 20/20, 1 failed, took " in last


def test_follow_on_a_terminal_until_stopped(make_store: StoreFactory) -> None:
    store = make_store()
    task_id = store.create("import", "Import", {}).id
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    out = io.StringIO()
    last = follow(store, task_id, out, interval_s=0.02, stop=stop, tty=True)
    timer.join()
    assert last.status == "pending", "stopped before the task ended"
    shown = out.getvalue()
    assert shown.count("\r") > 2 and shown.count("\n") == 1
    assert shown.endswith("\rpending: 0 processed, 0 failed\n"), "no total: a counter"


def test_follow_on_a_terminal_shows_the_error_below_the_bar(make_store: StoreFactory) -> None:
    store = make_store()
    task_id = store.create("import", "Import", {}, total=10).id
    store.start(task_id, "daemon-1")
    store.progress(task_id, done=4)
    store.finish(task_id, "failed", error="source gone")
    out = io.StringIO()
    final = follow(store, task_id, out, tty=True)
    assert final.status == "failed"
    bar, error = out.getvalue().rsplit("\r", 1)[-1].splitlines()
    assert bar.startswith("failed:  40%|") and "| 4/10, 0 failed" in bar
    assert error == "error: source gone"


def test_follow_an_unknown_task(make_store: StoreFactory) -> None:
    with pytest.raises(InvalidInput, match="not found"):
        follow(make_store(), "nope", io.StringIO())
