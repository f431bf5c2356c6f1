"""One Elasticsearch fault trial, shared by ``tests/faults`` and ``python -m
bench.elastic_faults``: a fresh tenant's work on the private node (see elastic_work.py),
a real daemon doing it, and at a chosen moment of the work the node hung for 3.5 times
the lease or killed with -9 and started again; then what was lost, doubled, left owned
by no one, which roles failed, and how long the work took to move again."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis

from tests.faults.elastic_node import PrivateElastic
from tests.faults.elastic_work import LEASE_S, SETTINGS, WORKS, Work
from tests.fleet import Fleet
from tracardi_daemon.errors import DaemonError
from tracardi_daemon.health.server import fetch

FAULTS = ("hang", "restart")
HANG_S = 3.5 * LEASE_S  # well past the lease of the job whose batch it holds up
FINISH_S = 60.0  # after the node came back; a job not done by then is stuck
POLL_S = 0.1


@dataclass
class ElasticTrial:
    role: str
    fault: str
    lost: int = 0
    doubled: int = 0
    unowned: int = 0  # a job running at the end whose lease no one holds
    inexact: int = 0  # a task not 'finished' with done == total and failed == 0
    roles_failed: int = 0  # roles of the daemon 'failed' at the end, or it exited
    recovery_s: float | None = None  # node back -> the work moved again
    missed: bool = False  # the work was done before the fault hit: not a trial
    unfinished: str = ""  # why the work did not end, if it did not
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.doubled or self.unowned or self.inexact
                    or self.roles_failed or self.missed or self.unfinished)


def run_trial(node: PrivateElastic, client: Redis, role: str, fault: str,
              moment: float) -> ElasticTrial:
    """A trial of ``fault`` once ``moment`` (0..1) of the work of ``role`` is done."""
    tenant = "t" + uuid.uuid4().hex[:10]
    workdir = Path(tempfile.mkdtemp(prefix="td-es-trial-"))
    result = ElasticTrial(role, fault)
    work = WORKS[role](node, client, tenant, workdir)
    fleet = Fleet(workdir / "fleet", tenant, ("mapping", "segmentation", "trigger"),
                  settings=SETTINGS)
    try:
        daemon = fleet.start(work.roles, live=work.live, elastic=node.url)
        if _wait(lambda: work.progress() >= max(1, int(moment * work.total)), 90) is None:
            result.unfinished = f"never reached {moment:.0%} of the work"
            return result
        result.missed = work.finished()
        back_at, moved_from = _inject(node, fault), work.progress()
        result.recovery_s = _wait(lambda: work.progress() > moved_from or work.finished(),
                                  FINISH_S, since=back_at)
        if _wait(work.finished, FINISH_S, since=back_at) is None:
            result.unfinished = f"not done {FINISH_S:.0f} s after the node came back"
            result.unowned = int(work.unowned())
        result.lost, result.doubled = work.tally()
        inexact = work.inexact()
        result.roles_failed = _failed_roles(daemon.socket, daemon.proc is not None
                                            and daemon.proc.poll() is None)
        log = daemon.log.read_text(errors="replace")
        # what the daemon warned of, to tell why a trial that is not clean went wrong
        result.notes = [line for line in log.splitlines()
                        if " ERROR " in line or " WARNING " in line][-20:]
        if inexact:
            result.inexact = 1
            result.notes.insert(0, inexact)
    finally:
        fleet.kill_all()
        work.close()
        node.drop(tenant)
        keys = list(client.scan_iter(match=f"*{tenant}*", count=1000))
        if keys:
            client.delete(*keys)
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def _inject(node: PrivateElastic, fault: str) -> float:
    """The fault; returns when (monotonic) the node answers again."""
    if fault == "hang":
        node.pause()
        time.sleep(HANG_S)  # the fault: a node that answers nothing for this long
        node.resume()
    elif fault == "restart":
        node.kill9()
        node.start()  # on the same data: it answers once its shards can recover
    else:
        raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
    return time.monotonic()


def _wait(predicate: Callable[[], bool], timeout_s: float,
          since: float | None = None) -> float | None:
    """Seconds from ``since`` (default now) until ``predicate`` held, None on timeout."""
    start = time.monotonic() if since is None else since
    while time.monotonic() - start < timeout_s:
        if predicate():
            return time.monotonic() - start
        time.sleep(POLL_S)
    return None


def _failed_roles(socket: str, alive: bool) -> int:
    if not alive:
        return 1
    try:
        _status, body = fetch(socket, "/health", timeout_s=3.0)
    except DaemonError:
        return 1
    roles = json.loads(body)["roles"]
    return sum(view.get("state") == "failed" for view in roles.values())


__all__ = ["FAULTS", "HANG_S", "WORKS", "ElasticTrial", "Work", "run_trial"]
