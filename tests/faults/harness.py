"""The fault campaign's pieces, shared by ``tests/faults`` (small counts, in CI) and
``python -m bench.faults`` (the full table): real daemon processes against real Redis,
real HTTP receivers that are slow, refuse or never answer, ``kill -9``, a Redis that is
stopped and restarted, and corrupted job bodies. Each trial reports what was lost,
duplicated beyond the deliveries in flight at a kill, early, and how late."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from elasticsearch import Elasticsearch

from tests.conftest import drop_indices
from tests.e2e.conftest import daemon_env, write_config
from tracardi_daemon import license as lic
from tracardi_daemon.errors import DaemonError
from tracardi_daemon.health.server import fetch
from tracardi_daemon.infra.delayed import DelayedStore, Job

REPO = Path(__file__).resolve().parents[2]
# appended to write_config's [supervisor] table: its first keys are supervisor's
FAULT_CONFIG = """step_budget_s = 10.0
[queue]
visibility_timeout_s = 1.0
poll_interval_s = 0.2
[scheduler]
horizon_s = 1.0
lease_s = 2.0
[dispatch]
senders = 4
per_host_concurrency = 2
connect_timeout_s = 1.0
read_timeout_s = 3.0
total_timeout_s = 3.0
max_attempts = 4
retry_backoff_initial_s = 0.2
retry_backoff_max_s = 1.0
"""


@dataclass
class TrialResult:
    scenario: str
    jobs: int = 0
    lost: int = 0
    duplicated: int = 0  # beyond the deliveries in flight at a kill
    resent_in_flight: int = 0  # sent again after a kill, with the same key (expected)
    early: int = 0
    worst_lateness_ms: float = 0.0  # of the jobs the fault should not touch
    recovery_s: float | None = None  # first delivery after Redis returned
    health_200_while_down: int = 0  # /health said 200 while a backend was down
    health_not_ok: int = 0  # /health did not say 200 while only a receiver failed


@contextmanager
def black_hole() -> Iterator[str]:
    """A URL whose connections are accepted by the kernel and never answered."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    finally:
        listener.close()


class Daemon:
    """One real ``tracardi-daemon run`` process with the scheduler role."""

    def __init__(self, home: Path, tenant: str, env: dict[str, str], redis_port: int) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home, self.socket = home, str(home / "run" / "health.sock")
        self.config, self.log = home / "daemon.toml", home / "daemon.log"
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        write_config(self.config, tenant, self.socket, ["scheduler"], redis_port,
                     extra=FAULT_CONFIG)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tracardi_daemon.cli", "run", "--config", str(self.config)],
            cwd=REPO, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)

    def health(self) -> tuple[int, dict[str, Any]]:
        status, body = fetch(self.socket, "/health", timeout_s=3.0)
        return status, json.loads(body)

    def wait_running(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.output()}")
            try:
                _, report = self.health()
                roles = report["roles"]
                if all(roles.get(r, {}).get("state") == "running"
                       for r in ("scheduler", "dispatch")):
                    return
            except (OSError, ValueError, KeyError, DaemonError):
                pass  # not listening yet
            time.sleep(0.1)
        raise AssertionError(f"daemon not running in {timeout_s}s:\n{self.output()}")

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


class Fleet:
    """Daemons of one tenant, sharing a licence and a Redis."""

    def __init__(self, count: int, redis_port: int = 6379) -> None:
        self.tenant = "f" + uuid.uuid4().hex[:10]
        self.workdir = Path(tempfile.mkdtemp(prefix="td-faults-"))
        private, public = lic.generate_keypair(str(self.workdir / "keys"))
        licence = lic.issue(lic.load_private_key(str(private)), "faults", ("scheduler",), 1,
                            datetime.now(UTC))
        env = daemon_env(TRACARDI_LICENSE_PUBLIC_KEY_FILE=str(public), LICENSE=licence)
        self.daemons = [Daemon(self.workdir / f"d{n}", self.tenant, dict(env), redis_port)
                        for n in range(count)]

    def start(self) -> None:
        for daemon in self.daemons:
            daemon.start()
        for daemon in self.daemons:
            daemon.wait_running()

    def close(self) -> None:
        for daemon in self.daemons:
            daemon.kill9()
        shutil.rmtree(self.workdir, ignore_errors=True)
        elastic = Elasticsearch("http://127.0.0.1:9200")
        try:
            drop_indices(elastic, self.tenant)  # the daemons installed the tenant's indices
        finally:
            elastic.close()


def schedule(store: DelayedStore, target: str, count: int, start_ms: int,
             span_ms: int = 0) -> dict[str, int]:
    """``count`` jobs due evenly over ``span_ms``; idempotency key -> due ms."""
    jobs = [Job(target=target, payload={"n": n},
                due_ms=start_ms + (n * span_ms // count if span_ms else 0))
            for n in range(count)]
    ids = store.schedule_many(jobs)
    return {f"{i}:{job.due_ms}": job.due_ms for i, job in zip(ids, jobs, strict=True)}


def stream_arrivals(client: redis.Redis, key: str) -> list[tuple[str, float]]:
    """(idempotency key, arrival ms) of every entry of a stream target."""
    return [(fields[b"idempotency_key"].decode(), float(entry_id.split(b"-")[0]))
            for entry_id, fields in client.xrange(key)]


def wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def judge(result: TrialResult, expected: dict[str, int],
          arrivals: list[tuple[str, float]], in_flight: set[str] | None = None,
          timed: bool = True) -> None:
    """Count lost, duplicated (beyond ``in_flight``), early and worst lateness."""
    keys = [key for key, _ in arrivals]
    result.jobs += len(expected)
    result.lost += len(set(expected) - set(keys))
    counts: dict[str, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    in_flight = in_flight or set()
    result.duplicated += sum(n - 1 for key, n in counts.items()
                             if n > 1 and key not in in_flight)
    result.resent_in_flight += sum(n - 1 for key, n in counts.items()
                                   if n > 1 and key in in_flight)
    for key, arrived in arrivals:
        if key in expected:
            late = arrived - expected[key]
            result.early += late < 0
            if timed:
                result.worst_lateness_ms = max(result.worst_lateness_ms, late)


def cleanup(client: redis.Redis, tenant: str) -> None:
    keys = list(client.scan_iter(match=f"*{tenant}*", count=1000))
    if keys:
        client.delete(*keys)
