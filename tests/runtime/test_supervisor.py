"""The supervisor with test roles against real Redis: restart with backoff, failure
marking, heartbeats of the others, graceful stop of an in-flight step."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import get_args

import pytest
from elasticsearch import Elasticsearch
from redis import Redis

from tests.roles_for_tests import (
    CountingRole,
    backend_down,
    counting,
    failing_factory,
    recovering_backend,
    slow,
    wait_for,
)
from tracardi_daemon.config.settings import Settings, SupervisorSettings, TracardiSettings
from tracardi_daemon.health.report import RoleState
from tracardi_daemon.infra.cpu_pool import CpuPool
from tracardi_daemon.roles.base import RoleContext, RoleCounters
from tracardi_daemon.roles.registry import RoleSpec
from tracardi_daemon.runtime.supervisor import TRANSITIONS, Supervisor


@pytest.fixture
def make_supervisor(redis_client: Redis, elastic_url: str, prefix: str
                    ) -> Iterator[object]:
    settings = Settings(tracardi=TracardiSettings(tenant=prefix))
    pool = CpuPool(1)
    elastic = Elasticsearch(elastic_url)
    supervisors: list[Supervisor] = []

    def context(name: str, index: int, stop: threading.Event,
                counters: RoleCounters) -> RoleContext:
        return RoleContext(name=name, settings=settings, redis=redis_client, elastic=elastic,
                           pool=pool, stop=stop, logger=logging.getLogger(name),
                           counters=counters, thread_index=index)

    def make(**overrides: float) -> Supervisor:
        sup_settings = SupervisorSettings(**{"restart_backoff_initial_s": 0.05,
                                             "restart_backoff_max_s": 0.2, **overrides})
        supervisor = Supervisor(sup_settings, context)
        supervisors.append(supervisor)
        return supervisor

    yield make
    for supervisor in supervisors:
        supervisor.drain(list(supervisor.runners), 5.0)
    pool.shutdown()
    elastic.close()


def steps(redis_client: Redis, prefix: str, role: str, what: str = "steps") -> int:
    return int(redis_client.get(f"{prefix}:test:{role}:{what}") or 0)


def test_crashing_role_restarts_with_backoff_while_others_beat(
        make_supervisor: object, redis_client: Redis, prefix: str) -> None:
    assert callable(make_supervisor)
    supervisor: Supervisor = make_supervisor()
    supervisor.start_role(RoleSpec("upgrade", False, counting), threads=2)
    supervisor.start_role(RoleSpec("scheduler", True, failing_factory(3)), threads=1)
    worst_age = 0.0

    def recovered() -> bool:
        nonlocal worst_age
        views = supervisor.views()
        worst_age = max(worst_age, views["upgrade"]["heartbeat_age_s"] or 0.0)
        # a clean step resets the failure count; it is stamped when the step returns
        scheduler = views["scheduler"]
        return scheduler["restarts"] == 3 and scheduler["consecutive_failures"] == 0

    assert wait_for(recovered, timeout_s=10)
    view = supervisor.views()["scheduler"]
    assert view["state"] == "running"
    assert steps(redis_client, prefix, "scheduler") > 0
    assert view["last_error"] == "RuntimeError: simulated crash"
    assert worst_age < 0.5  # the healthy role kept stepping throughout
    assert steps(redis_client, prefix, "upgrade") > 10
    assert supervisor.heartbeats_fresh()


def test_backoff_grows_exponentially(make_supervisor: object) -> None:
    assert callable(make_supervisor)
    supervisor: Supervisor = make_supervisor(restart_backoff_initial_s=0.2,
                                             restart_backoff_max_s=10.0)
    supervisor.start_role(RoleSpec("trigger", True, failing_factory(100)), threads=1)
    runner = supervisor.runners["trigger"]
    # 0.2 + 0.4 = 0.6 s for two restarts; the third needs 0.8 s more
    assert wait_for(lambda: runner.restarts >= 2, timeout_s=3)
    threading.Event().wait(0.3)
    assert runner.restarts == 2
    assert runner.view()["state"] == "backoff"


def test_always_failing_role_is_marked_failed_others_keep_running(
        make_supervisor: object, redis_client: Redis, prefix: str) -> None:
    assert callable(make_supervisor)
    supervisor: Supervisor = make_supervisor(max_consecutive_failures=3)
    supervisor.start_role(RoleSpec("upgrade", False, counting), threads=1)
    supervisor.start_role(RoleSpec("mapping", True, failing_factory(1000)), threads=2)
    assert wait_for(lambda: supervisor.runners["mapping"].view()["state"] == "failed")
    threading.Event().wait(0.3)
    views = supervisor.views()
    assert views["mapping"]["state"] == "failed"
    assert views["mapping"]["consecutive_failures"] >= 3
    assert views["upgrade"]["state"] == "running"
    before = steps(redis_client, prefix, "upgrade")
    assert wait_for(lambda: steps(redis_client, prefix, "upgrade") > before + 5)
    # a failed role is a health matter, not a reason for the watchdog to kill the process
    assert supervisor.heartbeats_fresh()


def test_graceful_stop_finishes_the_in_flight_step(
        make_supervisor: object, redis_client: Redis, prefix: str) -> None:
    assert callable(make_supervisor)
    supervisor: Supervisor = make_supervisor()
    supervisor.start_role(RoleSpec("upgrade", False, slow(0.6)), threads=1)
    assert wait_for(lambda: steps(redis_client, prefix, "upgrade", "begun") == 1)
    drained = supervisor.drain(["upgrade"], grace_s=5.0)
    assert drained.late == () and not drained.hurried
    assert steps(redis_client, prefix, "upgrade", "finished") == 1
    assert steps(redis_client, prefix, "upgrade", "begun") == 1  # no new step after stop
    assert steps(redis_client, prefix, "upgrade", "stopped") == 1
    assert supervisor.runners == {}


def test_stop_reports_roles_that_overrun_the_grace_period(
        make_supervisor: object, redis_client: Redis, prefix: str) -> None:
    assert callable(make_supervisor)
    supervisor: Supervisor = make_supervisor()
    supervisor.start_role(RoleSpec("upgrade", False, slow(1.5)), threads=1)
    assert wait_for(lambda: steps(redis_client, prefix, "upgrade", "begun") == 1)
    assert supervisor.drain(["upgrade"], grace_s=0.2).late == ("upgrade",)
    assert wait_for(lambda: steps(redis_client, prefix, "upgrade", "stopped") == 1)


def test_a_hurried_drain_stops_waiting_and_keeps_the_late_role(
        make_supervisor: object, redis_client: Redis, prefix: str) -> None:
    assert callable(make_supervisor)
    supervisor: Supervisor = make_supervisor()
    supervisor.start_role(RoleSpec("upgrade", False, slow(1.5)), threads=1)
    supervisor.start_role(RoleSpec("scheduler", True, counting), threads=1)
    assert wait_for(lambda: steps(redis_client, prefix, "upgrade", "begun") == 1)
    asked: list[int] = []

    def hurry() -> bool:
        asked.append(1)
        return len(asked) >= 2  # the second time the drain asks

    drained = supervisor.drain(["upgrade", "scheduler"], grace_s=60.0, hurry=hurry)
    assert drained.hurried and drained.late == ("upgrade",)
    assert len(asked) == 2
    # the role that ended left; the late one stays, shown as stopping, and ends by itself
    assert set(supervisor.runners) == {"upgrade"}
    assert supervisor.views()["upgrade"]["state"] == "stopping"
    assert steps(redis_client, prefix, "upgrade", "finished") == 0
    assert wait_for(lambda: steps(redis_client, prefix, "upgrade", "stopped") == 1)


def test_a_drain_that_ends_in_time_never_asks_to_hurry(
        make_supervisor: object, redis_client: Redis, prefix: str) -> None:
    assert callable(make_supervisor)
    supervisor: Supervisor = make_supervisor()
    supervisor.start_role(RoleSpec("scheduler", True, counting), threads=2)
    assert wait_for(lambda: steps(redis_client, prefix, "scheduler") > 0)
    asked: list[int] = []
    drained = supervisor.drain(["scheduler", "not-running"], grace_s=5.0,
                               hurry=lambda: bool(asked.append(1)))
    assert drained.late == () and not drained.hurried
    assert supervisor.runners == {}


def test_stale_heartbeat_detected(make_supervisor: object, redis_client: Redis,
                                  prefix: str) -> None:
    assert callable(make_supervisor)
    supervisor: Supervisor = make_supervisor(step_budget_s=0.3)
    supervisor.start_role(RoleSpec("upgrade", False, slow(1.0)), threads=1)
    assert wait_for(lambda: steps(redis_client, prefix, "upgrade", "begun") == 1)
    assert wait_for(lambda: not supervisor.heartbeats_fresh(), timeout_s=2)


def test_backend_outage_does_not_mark_role_failed(
        make_supervisor: object, redis_client: Redis, prefix: str) -> None:
    assert callable(make_supervisor)
    supervisor: Supervisor = make_supervisor(max_consecutive_failures=2,
                                             restart_backoff_max_s=0.05)
    down = threading.Event()
    down.set()
    supervisor.start_role(RoleSpec("upgrade", False, backend_down(down)), threads=1)
    runner = supervisor.runners["upgrade"]
    assert wait_for(lambda: runner.consecutive_failures >= 5)
    # it restarts at once and steps again: "running" for an instant between failures
    assert runner.view()["state"] in ("backoff", "running")
    assert wait_for(lambda: runner.view()["state"] == "backoff")
    assert "simulated" in (runner.view()["last_error"] or "")
    down.clear()
    assert wait_for(lambda: runner.view()["consecutive_failures"] == 0)
    assert runner.view()["state"] == "running"
    assert wait_for(lambda: steps(redis_client, prefix, "upgrade") > 0)


def test_an_outage_never_counts_toward_the_failure_cap(
        make_supervisor: object, redis_client: Redis, prefix: str) -> None:
    # a long outage, then one refusal as the cluster recovers: one own failure, not
    # the cap's worth (the role was marked failed for good on exactly this)
    assert callable(make_supervisor)
    supervisor: Supervisor = make_supervisor(max_consecutive_failures=3,
                                             restart_backoff_max_s=0.05)
    down = threading.Event()
    down.set()
    supervisor.start_role(RoleSpec("upgrade", False, recovering_backend(down, 1)), threads=1)
    runner = supervisor.runners["upgrade"]
    assert wait_for(lambda: runner.consecutive_failures >= 6)
    down.clear()
    assert wait_for(lambda: steps(redis_client, prefix, "upgrade") > 0)
    assert runner.view()["state"] == "running"


def test_an_outage_is_logged_when_it_starts_and_when_it_ends_not_at_every_retry(
        make_supervisor: object, caplog: pytest.LogCaptureFixture) -> None:
    assert callable(make_supervisor)
    supervisor: Supervisor = make_supervisor(restart_backoff_max_s=0.05)
    down = threading.Event()
    down.set()
    with caplog.at_level(logging.INFO, logger="tracardi_daemon.role.upgrade"):
        supervisor.start_role(RoleSpec("upgrade", False, backend_down(down)), threads=2)
        runner = supervisor.runners["upgrade"]
        assert wait_for(lambda: runner.consecutive_failures >= 8)
        down.clear()
        assert wait_for(lambda: runner.view()["consecutive_failures"] == 0)
        assert wait_for(lambda: any("works again" in r.getMessage() for r in caplog.records))
    lines = [r.getMessage() for r in caplog.records if r.name == "tracardi_daemon.role.upgrade"]
    assert len([line for line in lines if "waits for redis" in line]) == 1, lines
    assert len([line for line in lines if "works again" in line]) == 1, lines
    assert not [line for line in lines if "restarting" in line], lines


def test_a_step_past_its_budget_makes_the_role_stalled_and_withholds_the_watchdog(
        make_supervisor: object, redis_client: Redis, prefix: str) -> None:
    assert callable(make_supervisor)
    supervisor: Supervisor = make_supervisor(step_budget_s=0.3)
    supervisor.start_role(RoleSpec("upgrade", False, slow(1.2)), threads=1)
    runner = supervisor.runners["upgrade"]
    assert wait_for(lambda: steps(redis_client, prefix, "upgrade", "begun") == 1)
    assert runner.view()["state"] == "running" and supervisor.heartbeats_fresh()
    assert wait_for(lambda: runner.view()["state"] == "stalled", timeout_s=2)
    view = runner.view()
    assert view["step_age_s"] is not None and view["step_age_s"] > 0.3
    assert not supervisor.heartbeats_fresh()  # watchdog and health agree
    assert wait_for(lambda: steps(redis_client, prefix, "upgrade", "finished") == 1)
    assert wait_for(lambda: runner.view()["state"] == "running", timeout_s=1)


def test_a_role_waiting_for_a_backend_resumes_within_a_second_of_its_return(
        make_supervisor: object, redis_client: Redis, prefix: str) -> None:
    assert callable(make_supervisor)
    # the doubling backoff would be at its 30 s cap after this long an outage
    supervisor: Supervisor = make_supervisor(restart_backoff_initial_s=0.5,
                                             restart_backoff_max_s=30.0)
    down = threading.Event()
    down.set()
    supervisor.start_role(RoleSpec("upgrade", False, backend_down(down)), threads=1)
    runner = supervisor.runners["upgrade"]
    assert wait_for(lambda: runner.consecutive_failures >= 8, timeout_s=10)
    down.clear()
    returned = time.monotonic()
    assert wait_for(lambda: steps(redis_client, prefix, "upgrade") > 0, timeout_s=3)
    assert time.monotonic() - returned < 1.0


class TendedCounting(CountingRole):
    def __init__(self) -> None:
        super().__init__()
        self.tended = 0

    def tend(self) -> None:
        self.tended += 1


def test_tend_reaches_the_live_roles_that_keep_claims(make_supervisor: object) -> None:
    assert callable(make_supervisor)
    supervisor: Supervisor = make_supervisor()
    made: list[TendedCounting] = []

    def factory() -> TendedCounting:
        made.append(TendedCounting())
        return made[-1]

    supervisor.start_role(RoleSpec("upgrade", False, factory), threads=2)
    supervisor.start_role(RoleSpec("scheduler", True, counting), threads=1)  # no tend
    assert wait_for(lambda: len(made) == 2 and all(r.ctx for r in made))
    supervisor.tend()
    supervisor.tend()
    assert [role.tended for role in made] == [2, 2]


def test_reports_read_while_roles_start_and_stop_never_see_a_changing_dict(
        make_supervisor: object) -> None:
    """Health threads read the runners while the main thread starts and stops roles
    (a HUP reload, a licence stop): every read succeeds and sees whole roles."""
    assert callable(make_supervisor)
    supervisor: Supervisor = make_supervisor()
    supervisor.start_role(RoleSpec("upgrade", False, counting), threads=1)
    done = threading.Event()
    errors: list[BaseException] = []
    reads = [0]

    def read() -> None:
        while not done.is_set():
            try:
                views = supervisor.views()
                supervisor.heartbeats_fresh()
            except RuntimeError as exc:
                errors.append(exc)
                continue
            assert "upgrade" in views
            reads[0] += 1

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    try:
        for cycle in range(200):
            name = ("scheduler", "mapping", "trigger")[cycle % 3]
            supervisor.start_role(RoleSpec(name, True, counting), threads=1)
            supervisor.drain([name], 5.0)
    finally:
        done.set()
        for reader in readers:
            reader.join()
    assert errors == [] and reads[0] > 0


def test_every_runner_state_has_its_moves_and_the_ends_have_none() -> None:
    report_only = {"stalled", "unlicensed"}
    assert set(TRANSITIONS) == set(get_args(RoleState)) - report_only
    assert TRANSITIONS["stopped"] == TRANSITIONS["failed"] == frozenset()
    assert all(not (moves & report_only) for moves in TRANSITIONS.values())
    # a role asked to stop never goes back to work
    assert TRANSITIONS["stopping"] == {"stopped", "failed"}
