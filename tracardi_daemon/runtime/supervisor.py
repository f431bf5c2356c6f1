"""Role lifecycle: threads per role, heartbeats, restart with capped backoff, failure.

The supervisor owns every role thread. Each thread builds a fresh role object, starts
it, steps it until told to stop, and on an exception logs it, backs off and starts a
new one. A role that fails ``max_consecutive_failures`` times in a row is marked failed
and left stopped; the other roles keep running. A role that fails because a backend is
unreachable is retried every BACKEND_RETRY_S, without doubling, so it resumes within a
second of the backend's return; such failures are not the role's and never count toward
the cap. An outage is logged once when the role starts waiting, every
OUTAGE_LOG_INTERVAL_S while it lasts, and once when the role works again. A step running
past ``step_budget_s`` makes its role "stalled" in health, and the watchdog is withheld
until it ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from tracardi_daemon.config.settings import SupervisorSettings
from tracardi_daemon.errors import BackendUnavailable, DaemonError
from tracardi_daemon.health.report import RoleReport, RoleState
from tracardi_daemon.redact import mask_text
from tracardi_daemon.roles.base import Role, RoleContext, RoleCounters, TendedRole
from tracardi_daemon.roles.registry import RoleSpec

log = logging.getLogger(__name__)

# a role waiting for a backend tries again this often (not the doubling backoff)
BACKEND_RETRY_S = 0.5
# while a role waits for a backend, say so this often (not at every retry)
OUTAGE_LOG_INTERVAL_S = 30.0

# how often a drain asks whether to stop waiting (a second TERM, say)
DRAIN_POLL_S = 0.1

# builds the context for one thread of one role: (name, index, stop event, counters)
ContextFactory = Callable[[str, int, threading.Event, RoleCounters], RoleContext]


# The states a role runner moves between, and where each may go. A move not listed is
# ignored: a stopping role that finishes a step stays stopping, a failed one stays
# failed. "stalled" (a step past its budget) and "unlicensed" exist only in the report.
TRANSITIONS: Mapping[RoleState, frozenset[RoleState]] = {
    "starting": frozenset({"running", "backoff", "stopping", "stopped", "failed"}),
    "running": frozenset({"backoff", "stopping", "stopped", "failed"}),
    "backoff": frozenset({"running", "stopping", "stopped", "failed"}),
    "stopping": frozenset({"stopped", "failed"}),
    "stopped": frozenset(),
    "failed": frozenset(),
}


@dataclass(frozen=True)
class Drained:
    """How a drain ended: the roles whose threads were still running, and whether it
    was hurried (cut short before the grace period ran out)."""

    late: tuple[str, ...]
    hurried: bool = False


class RoleRunner:
    """The threads of one role and their shared state."""

    def __init__(self, spec: RoleSpec, threads: int, settings: SupervisorSettings,
                 make_context: ContextFactory, clock: Callable[[], float]) -> None:
        self.spec = spec
        self.thread_count = threads
        self.settings = settings
        self.make_context = make_context
        self.clock = clock
        self.stop_event = threading.Event()
        self.counters = RoleCounters()
        self.logger = logging.getLogger(f"tracardi_daemon.role.{spec.name}")
        self._lock = threading.Lock()
        self._beats: dict[int, float] = {}
        self._step_started: dict[int, float] = {}  # threads inside a step, since when
        self._roles: dict[int, Role] = {}  # live role objects, for tend()
        self._threads: list[threading.Thread] = []
        self.state: RoleState = "starting"
        self.restarts = 0
        self.consecutive_failures = 0  # in a row, outages included (shown in health)
        self.own_failures = 0  # in a row, outages left out: what the cap counts
        self.last_error: str | None = None
        self.waiting_for_backend = False
        self._outage = OutageLog(self.logger, spec.name, clock)

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        for index in range(self.thread_count):
            thread = threading.Thread(
                target=self._run_thread, args=(index,), daemon=True,
                name=f"{self.spec.name}-{index}",
            )
            self._beats[index] = self.clock()
            self._threads.append(thread)
            thread.start()

    def request_stop(self) -> None:
        self._move("stopping")
        self.stop_event.set()

    def join(self, deadline: float) -> bool:
        """Wait for every thread until ``deadline`` (monotonic); True if all ended."""
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t for t in self._threads if t.is_alive()]
        if not alive:
            self._move("stopped")
        return not alive

    # -- one thread ----------------------------------------------------------------
    def _run_thread(self, index: int) -> None:
        while not self.stop_event.is_set():
            ctx = self.make_context(self.spec.name, index, self.stop_event, self.counters)
            if self._run_one_role(index, ctx):
                return
            if self._after_failure(index):
                return

    def _run_one_role(self, index: int, ctx: RoleContext) -> bool:
        """Start and step a fresh role object; True if it ended by request."""
        role: Role | None = None
        try:
            role = self.spec.factory()
            role.start(ctx)
            with self._lock:
                self._roles[index] = role
            self._move("running")
            while not self.stop_event.is_set():
                with self._lock:
                    self._step_started[index] = self.clock()
                worked = role.step(ctx.clock())
                self._beat(index, succeeded=True)
                if not worked:
                    # an idle role waits here, not in its step; a stop ends the wait
                    self.stop_event.wait(getattr(role, "idle_wait_s", 0.0))
            return True
        except Exception as exc:  # noqa: BLE001 - the supervisor is the last line for a role
            self._record_failure(exc)
            return False
        finally:
            with self._lock:
                self._roles.pop(index, None)
                self._step_started.pop(index, None)
            if role is not None:
                self._stop_role(role)

    def tend(self) -> None:
        """Let live roles renew claims on in-flight work (see TendedRole)."""
        with self._lock:
            roles = [role for role in self._roles.values() if isinstance(role, TendedRole)]
        for role in roles:
            try:
                role.tend()
            except DaemonError as exc:
                # the claim lapses and another daemon takes the work over: that is safe
                self.logger.warning("role %s could not renew its claims: %s",
                                    self.spec.name, exc)

    def _stop_role(self, role: Role) -> None:
        try:
            role.stop()
        except Exception:
            self.logger.exception("role %s raised while stopping", self.spec.name)

    def _record_failure(self, exc: BaseException) -> None:
        outage = isinstance(exc, BackendUnavailable)
        with self._lock:
            self.consecutive_failures += 1
            if not outage:
                # an outage is not the role's fault: it never counts toward the cap
                self.own_failures += 1
            self.last_error = mask_text(f"{type(exc).__name__}: {exc}")
            failures = self.own_failures
            self.waiting_for_backend = outage
        if isinstance(exc, BackendUnavailable):
            self._outage.waiting(exc)
            return
        self.logger.error("role %s failed (%d in a row): %s", self.spec.name, failures,
                          self.last_error, exc_info=exc)

    def _after_failure(self, index: int) -> bool:
        """Back off before a restart; True if the role must not be restarted."""
        with self._lock:
            failures = self.own_failures
            # an outage is not the role's fault: it backs off and retries until the
            # backend returns, and health shows the backend as down meanwhile
            if (failures >= self.settings.max_consecutive_failures
                    and not self.waiting_for_backend):
                self._move_locked("failed")
                give_up = True
            else:
                self._move_locked("backoff")
                self.restarts += 1
                give_up = False
        if give_up:
            self.logger.error("role %s failed %d times in a row; not restarting it",
                              self.spec.name, failures)
            self.stop_event.set()
            return True
        if self.waiting_for_backend:
            delay = min(BACKEND_RETRY_S, self.settings.restart_backoff_initial_s)
        else:
            delay = min(self.settings.restart_backoff_initial_s * 2 ** (max(failures, 1) - 1),
                        self.settings.restart_backoff_max_s)
            self.logger.warning("restarting role %s in %.2fs", self.spec.name, delay)
        self._wait_with_heartbeat(index, delay)
        return self.stop_event.is_set()

    def _wait_with_heartbeat(self, index: int, delay: float) -> None:
        # a backing-off thread is alive and doing what it should: keep its beat fresh
        end = self.clock() + delay
        while not self.stop_event.is_set():
            remaining = end - self.clock()
            if remaining <= 0:
                return
            self._beat(index, succeeded=False)
            self.stop_event.wait(min(remaining, 1.0))

    def _beat(self, index: int, succeeded: bool) -> None:
        now = self.clock()
        with self._lock:
            self._beats[index] = now
            self._step_started.pop(index, None)
            if succeeded:
                self.consecutive_failures = self.own_failures = 0
                self.waiting_for_backend = False
                self._move_locked("running")
        if succeeded:
            self._outage.ended()

    def _move(self, state: RoleState) -> None:
        with self._lock:
            self._move_locked(state)

    def _move_locked(self, state: RoleState) -> None:
        """Go to ``state`` if TRANSITIONS allows it (the caller holds the lock)."""
        if state in TRANSITIONS[self.state]:
            self.state = state

    # -- reading -----------------------------------------------------------------
    def view(self) -> RoleReport:
        """This role's entry in the health report."""
        now = self.clock()
        with self._lock:
            ages = [now - beat for beat in self._beats.values()]
            step_age = max((now - t for t in self._step_started.values()), default=None)
            state = self.state
            if (state == "running" and step_age is not None
                    and step_age > self.settings.step_budget_s):
                state = "stalled"
            return {
                "state": state, "threads": self.thread_count,
                "heartbeat_age_s": round(max(ages), 3) if ages else None,
                "step_age_s": round(step_age, 3) if step_age is not None else None,
                "restarts": self.restarts, "consecutive_failures": self.consecutive_failures,
                "processed": self.counters.processed, "failed": self.counters.failed,
                "last_error": self.last_error, "queue_lag": self.counters.queue_lag,
                "lag_s": None if self.counters.lag_s is None else round(self.counters.lag_s, 3),
                "detail": None,
            }

    def heartbeat_fresh(self) -> bool:
        """False while the role is stalled, or a thread has not beaten for a step
        budget (the watchdog and health agree)."""
        view = self.view()
        if view["state"] in ("failed", "stopped"):
            return True  # reported as failed in health; not a reason to kill the process
        age = view["heartbeat_age_s"]
        return (view["state"] != "stalled" and age is not None
                and age < self.settings.step_budget_s)


class OutageLog:
    """The log lines of one role's wait for a backend: one when it starts, one every
    OUTAGE_LOG_INTERVAL_S while it lasts (with the count of failed attempts), one when
    the role works again. Thread-safe: a role's threads share it."""

    def __init__(self, logger: logging.Logger, role: str,
                 clock: Callable[[], float]) -> None:
        self._logger = logger
        self._role = role
        self._clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None
        self._logged_at = 0.0
        self._attempts = 0

    def waiting(self, exc: BackendUnavailable) -> None:
        now = self._clock()
        with self._lock:
            self._attempts += 1
            if self._since is None:
                self._since, self._logged_at = now, now
                line: str | None = "role %s waits for %s: %s"
                args: tuple[object, ...] = (self._role, exc.backend, exc.detail)
            elif now - self._logged_at >= OUTAGE_LOG_INTERVAL_S:
                self._logged_at = now
                line = "role %s still waits for %s after %.0f s (%d attempts): %s"
                args = (self._role, exc.backend, now - self._since, self._attempts,
                        exc.detail)
            else:
                line = None
        if line is not None:
            self._logger.warning(line, *args)

    def ended(self) -> None:
        with self._lock:
            since, attempts = self._since, self._attempts
            if since is None:
                return
            self._since, self._attempts = None, 0
        self._logger.warning("role %s works again after %.1f s of waiting (%d attempts)",
                             self._role, self._clock() - since, attempts)


class Supervisor:
    """All role runners; started, stopped and reconciled by the daemon's main thread."""

    def __init__(self, settings: SupervisorSettings, make_context: ContextFactory,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.make_context = make_context
        self.clock = clock
        # replaced, never changed in place: health threads iterate the dict they read
        # while the main thread starts and stops roles (a reload, a licence stop)
        self.runners: Mapping[str, RoleRunner] = {}

    def start_role(self, spec: RoleSpec, threads: int) -> None:
        runner = RoleRunner(spec, threads, self.settings, self.make_context, self.clock)
        self.runners = {**self.runners, spec.name: runner}
        runner.logger.info("starting role %s with %d thread(s)", spec.name, threads)
        runner.start()

    def drain(self, names: Iterable[str], grace_s: float,
              hurry: Callable[[], bool] = lambda: False) -> Drained:
        """Ask the named roles to stop and wait for their threads, for at most
        ``grace_s`` or until ``hurry()`` (asked every DRAIN_POLL_S) says to stop waiting.
        The one way roles are stopped: by a stop signal, a reload, the licence and tests.
        Roles that ended leave the supervisor; late ones stay (health shows them
        stopping) and their threads end on their own, or with the process."""
        runners = [self.runners[name] for name in names if name in self.runners]
        for runner in runners:
            runner.request_stop()
        deadline = time.monotonic() + grace_s
        pending, hurried = runners, False
        while pending:
            until = min(deadline, time.monotonic() + DRAIN_POLL_S)
            pending = [runner for runner in pending if not runner.join(until)]
            if not pending or time.monotonic() >= deadline:
                break
            if hurry():
                hurried = True
                break
        late = tuple(runner.spec.name for runner in pending)
        ended = {runner.spec.name for runner in runners} - set(late)
        self.runners = {name: r for name, r in self.runners.items() if name not in ended}
        return Drained(late, hurried)

    def views(self) -> dict[str, RoleReport]:
        return {name: runner.view() for name, runner in self.runners.items()}

    def heartbeats_fresh(self) -> bool:
        return all(r.heartbeat_fresh() for r in self.runners.values())

    def tend(self) -> None:
        for runner in list(self.runners.values()):
            runner.tend()
