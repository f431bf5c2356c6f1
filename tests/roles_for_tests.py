"""Roles that exist only for tests: they exercise the supervisor and the daemon with
real Redis side effects, so tests can see from outside what a role did."""

from __future__ import annotations

import threading
import time

import redis

from tracardi_daemon.errors import BackendError, BackendUnavailable
from tracardi_daemon.roles.base import Role, RoleContext, RoleFactory


class CountingRole:
    """Each step increments ``<tenant>:test:<role>:steps`` in Redis."""

    def __init__(self, step_s: float = 0.01) -> None:
        self.step_s = step_s
        self.ctx: RoleContext | None = None

    def start(self, ctx: RoleContext) -> None:
        self.ctx = ctx

    def step(self, now: float) -> bool:
        assert self.ctx is not None
        tenant = self.ctx.settings.tracardi.tenant
        try:
            self.ctx.redis.incr(f"{tenant}:test:{self.ctx.name}:steps")
        except redis.ConnectionError as exc:  # converted as a real role's adapter does
            raise BackendUnavailable("redis", str(exc)) from exc
        self.ctx.counters.add(processed=1)
        self.ctx.stop.wait(self.step_s)
        return True

    def stop(self) -> None:
        if self.ctx is not None:
            tenant = self.ctx.settings.tracardi.tenant
            self.ctx.redis.incr(f"{tenant}:test:{self.ctx.name}:stopped")


class SlowStepRole(CountingRole):
    """A step that takes ``work_s`` and cannot be interrupted, like a bulk write."""

    def __init__(self, work_s: float) -> None:
        super().__init__()
        self.work_s = work_s

    def step(self, now: float) -> bool:
        assert self.ctx is not None
        tenant = self.ctx.settings.tracardi.tenant
        self.ctx.redis.incr(f"{tenant}:test:{self.ctx.name}:begun")
        threading.Event().wait(self.work_s)  # in-flight work the stop event must not cut
        self.ctx.redis.incr(f"{tenant}:test:{self.ctx.name}:finished")
        return True


class FailingRole(CountingRole):
    """Raises in ``step`` for its first ``failures`` instances, then behaves."""

    def __init__(self, should_fail: bool) -> None:
        super().__init__()
        self.should_fail = should_fail

    def step(self, now: float) -> bool:
        if self.should_fail:
            raise RuntimeError("simulated crash")
        return super().step(now)


def counting() -> Role:
    return CountingRole()


def failing_factory(failures: int) -> RoleFactory:
    """A factory whose first ``failures`` roles crash; a closure, so tests share nothing."""
    lock = threading.Lock()
    made = [0]

    def make() -> Role:
        with lock:
            made[0] += 1
            return FailingRole(should_fail=made[0] <= failures)

    return make


def slow(work_s: float) -> RoleFactory:
    def make() -> Role:
        return SlowStepRole(work_s)
    return make


def wait_for(predicate: object, timeout_s: float = 10.0, interval_s: float = 0.02) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())


class BackendDownRole(CountingRole):
    """Raises BackendUnavailable in ``step`` while ``down`` is set."""

    def __init__(self, down: threading.Event) -> None:
        super().__init__()
        self.down = down

    def step(self, now: float) -> bool:
        if self.down.is_set():
            raise BackendUnavailable("redis", "connection refused (simulated)")
        return super().step(now)


def backend_down(down: threading.Event) -> RoleFactory:
    def make() -> Role:
        return BackendDownRole(down)
    return make


class RecoveringBackendRole(BackendDownRole):
    """Like BackendDownRole, then once ``down`` is cleared one BackendError (what a
    recovering cluster's first answer was taken for), then steps as usual."""

    def __init__(self, down: threading.Event, refused: list[int]) -> None:
        super().__init__(down)
        self.refused = refused  # shared across restarts: refusals still to make

    def step(self, now: float) -> bool:
        if not self.down.is_set() and self.refused:
            self.refused.pop()
            raise BackendError("elasticsearch", "a refusal right after the outage")
        return super().step(now)


def recovering_backend(down: threading.Event, refusals: int) -> RoleFactory:
    refused = [1] * refusals

    def make() -> Role:
        return RecoveringBackendRole(down, refused)
    return make
