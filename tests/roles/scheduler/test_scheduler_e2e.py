"""Real daemon processes with the scheduler role, firing to a real local webhook:
1,000 jobs delivered once; a daemon killed with claims held loses nothing."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import REPO, DaemonProcess, daemon_env, write_config
from tests.receivers import Receiver
from tracardi_daemon import license as lic
from tracardi_daemon.infra.delayed import DelayedStore, Job
from tracardi_daemon.infra.redis import RedisClient

pytestmark = pytest.mark.e2e


class SchedulerDaemon(DaemonProcess):
    def start(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tracardi_daemon.cli", "run", "--config",
             str(self.config), *args],
            cwd=REPO, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def daemons(prefix: str, redis_client: RedisClient,
            elastic_client: Any) -> Iterator[list[SchedulerDaemon]]:
    workdir = Path(tempfile.mkdtemp(prefix="td-sched-"))
    private, public = lic.generate_keypair(str(workdir / "keys"))
    licence = lic.issue(lic.load_private_key(str(private)), "e2e", ("scheduler",), 1,
                        datetime.now(UTC))
    env = daemon_env(TRACARDI_LICENSE_PUBLIC_KEY_FILE=str(public), LICENSE=licence)
    started: list[SchedulerDaemon] = []
    for n in range(2):
        home = workdir / f"d{n}"
        home.mkdir()
        process = SchedulerDaemon(workdir=home, config=home / "daemon.toml",
                                  socket=str(home / "run" / "health.sock"),
                                  log=home / "daemon.log", env=dict(env))
        write_config(process.config, prefix, process.socket, ["scheduler"],
                     extra="[scheduler]\nhorizon_s = 1.0\nlease_s = 2.0\n")
        started.append(process)
    yield started
    for process in started:
        if process.proc is not None and process.proc.poll() is None:
            process.proc.send_signal(signal.SIGKILL)
            process.proc.wait(10)
    shutil.rmtree(workdir, ignore_errors=True)


def scheduler_running(status: int, report: dict[str, Any]) -> bool:
    return bool(report["roles"].get("scheduler", {}).get("state") == "running")


def spread_jobs(store: DelayedStore, url: str, count: int, start_ms: int,
                span_ms: int) -> dict[str, int]:
    """``count`` webhook jobs due evenly over ``span_ms``; idempotency key -> due ms."""
    jobs = [Job(target=f"webhook:{url}", payload={"n": n},
                due_ms=start_ms + n * span_ms // count) for n in range(count)]
    ids = store.schedule_many(jobs)
    return {f"{job_id}:{job.due_ms}": job.due_ms for job_id, job in zip(ids, jobs, strict=True)}


def wait_until(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def test_thousand_jobs_delivered_once_on_time(daemons: list[SchedulerDaemon],
                                              receiver: Receiver, redis_client: RedisClient,
                                              prefix: str) -> None:
    daemon = daemons[0]
    daemon.start()
    daemon.wait_health(scheduler_running)
    store = DelayedStore(redis_client, prefix)
    expected = spread_jobs(store, receiver.url, 1000, int(time.time() * 1000) + 1000, 5000)
    assert wait_until(lambda: len(receiver.keys()) >= 1000, 15), len(receiver.keys())
    time.sleep(0.3)
    keys = receiver.keys()
    assert sorted(keys) == sorted(expected)  # every job, each once
    with receiver.lock:
        lateness = sorted(arrived - expected[key] for key, arrived in receiver.received)
    assert lateness[0] >= 0, lateness[:5]  # none early
    # on time, not precisely timed: a scheduler that polls or batches by the second fails
    # this, machine load does not (a CI run saw p90 297 ms on a busy two-core machine);
    # the lateness itself is measured by bench.scheduler_lateness
    assert lateness[int(len(lateness) * 0.9)] < 1500, lateness[-10:]
    print(f"lateness ms: p50={lateness[500]:.1f} p99={lateness[990]:.1f} "
          f"max={lateness[-1]:.1f}")
    assert store.list(10) == []
    report = daemon.wait_health(lambda s, r: r["roles"]["scheduler"]["processed"] >= 1000)
    assert report["roles"]["scheduler"]["failed"] == 0
    # a graceful stop hands held claims straight back instead of letting them lapse
    later = store.schedule(Job(target=f"webhook:{receiver.url}", payload={},
                               due_ms=int(time.time() * 1000) + 5000))
    held = Job(target=f"webhook:{receiver.url}", payload={}, due_ms=int(time.time() * 1000) + 900)
    held_id = store.schedule(held)
    assert wait_until(lambda: redis_client.zscore(store.claimed_key, held_id) is not None, 2)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(15) == 0
    assert redis_client.zcard(store.claimed_key) == 0
    assert redis_client.zscore(store.due_key, held_id) == held.due_ms
    assert store.get(later) is not None


def test_kill_9_with_claims_held_loses_nothing(daemons: list[SchedulerDaemon],
                                               receiver: Receiver, redis_client: RedisClient,
                                               prefix: str) -> None:
    first, second = daemons
    first.start()
    first.wait_health(scheduler_running)
    store = DelayedStore(redis_client, prefix)
    expected = spread_jobs(store, receiver.url, 400, int(time.time() * 1000) + 500, 3000)
    assert wait_until(lambda: len(receiver.keys()) >= 100, 10)
    assert redis_client.zcard(store.claimed_key) > 0  # the victim holds claims
    assert first.proc is not None
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    # requests the victim sent just before it died may still be read by the receiver's
    # threads; until the second daemon starts, everything that arrives is the victim's
    time.sleep(0.5)
    delivered_before = set(receiver.keys())
    second.start()
    second.wait_health(scheduler_running)
    assert wait_until(lambda: set(receiver.keys()) >= set(expected), 20), \
        len(set(expected) - set(receiver.keys()))
    time.sleep(0.5)
    keys = receiver.keys()
    assert set(keys) == set(expected)  # lost = 0
    duplicates = [key for key in set(keys) if keys.count(key) > 1]
    # only jobs in flight at the kill: sent by the victim, not yet marked complete
    assert all(key in delivered_before for key in duplicates)
    assert all(keys.count(key) == 2 for key in duplicates)
    assert len(duplicates) <= 20, duplicates
    assert store.list(10) == []
    print(f"duplicates after kill -9: {len(duplicates)}")
    second.signal(signal.SIGTERM)
    assert second.wait_exit(15) == 0
