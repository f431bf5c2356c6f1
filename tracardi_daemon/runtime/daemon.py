"""Wires configuration, licence, backends, supervisor, health socket and signals.

The main thread runs ``Daemon.run``: it starts everything in order, then waits for
signals (which handlers only enqueue) and keeps systemd informed, and on TERM/INT stops
everything in the reverse order within ``shutdown.grace_s``. Roles are stopped one way,
the supervisor's drain, whether for a stop, a reload or the licence; signals that arrive
while roles drain are answered or kept for after it (``_during_drain``), never dropped.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import ConfigError, DaemonError, ExitCode, RoleError
from tracardi_daemon.health.report import HealthReport
from tracardi_daemon.health.server import HealthServer
from tracardi_daemon.health.status import (
    NOT_CONNECTED,
    DaemonSnapshot,
    build_report,
    one_line_summary,
    status_lines,
)
from tracardi_daemon.infra.cpu_pool import CpuPool
from tracardi_daemon.infra.host_limits import HostLimits
from tracardi_daemon.model.indices import ensure_installed
from tracardi_daemon.roles.base import RoleContext, RoleCounters
from tracardi_daemon.roles.registry import Registry, resolve_roles
from tracardi_daemon.runtime.backends import Backends
from tracardi_daemon.runtime.license_gate import LicenseGate
from tracardi_daemon.runtime.supervisor import Drained, Supervisor
from tracardi_daemon.runtime.systemd import Notifier

log = logging.getLogger(__name__)

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)
TICK_S = 0.5
# how long a health request waits for the new backend probes it asks for; a backend
# that has not answered by then is reported from its last probe (down once it counts
# as hung), so a hung Elasticsearch never makes /health slow
FRESH_PROBE_WAIT_S = 0.25


class Daemon:
    def __init__(self, settings: Settings, registry: Registry,
                 reload_settings: Callable[[], Settings], notifier: Notifier) -> None:
        self.settings = settings
        self.registry = registry
        self.reload_settings = reload_settings
        self.notifier = notifier
        self.signals: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.stop = threading.Event()
        self.started_at = time.monotonic()
        self.stopping = False
        self.roles_started = False
        self.license = LicenseGate(registry)
        # signals taken during a drain that must be acted on after it (a HUP, a stop)
        self._deferred: list[int] = []
        self.backends: Backends | None = None
        self.pool: CpuPool | None = None
        self.host_limits = HostLimits(settings.dispatch.per_host_concurrency)
        self.supervisor = Supervisor(settings.supervisor, self._make_context)
        self.health = HealthServer(settings.daemon.health_socket,
                                   lambda: self.report(fresh=True))
        self._last_status = ""

    # -- start -------------------------------------------------------------------------
    def run(self) -> int:
        self._install_signal_handlers()
        try:
            wanted = self._prepare()
        except DaemonError as exc:
            log.critical("%s", exc)
            self._close()
            return int(exc.exit_code)
        self._start_roles(wanted)
        self.roles_started = True
        self.notifier.ready()
        log.info("tracardi-daemon is up (pid %d): %s", os.getpid(), one_line_summary(
            self.report()))
        return self._main_loop()

    def _prepare(self) -> tuple[str, ...]:
        """Everything that can refuse a start, in order: licence, roles, health, backends."""
        self.license.check(self.settings.license)
        wanted = resolve_roles(self.settings.daemon.roles, self.registry, self.license.allows)
        self.health.start()
        self.backends = Backends(self.settings)
        self.backends.wait_until_up(self.settings.startup.wait_s, self.stop)
        ensure_installed(self.backends.elastic, self.settings)
        self.backends.monitor(self.stop, self.settings.supervisor.backend_probe_interval_s)
        # its workers start with the first batch sent to them, not here
        self.pool = CpuPool(self.settings.daemon.pool_processes)
        return wanted

    def _start_roles(self, names: tuple[str, ...]) -> None:
        for name in names:
            if self.license.admit(name):
                spec = self.registry[name]
                self.supervisor.start_role(spec, spec.threads(self.settings))

    def _make_context(self, name: str, index: int, stop: threading.Event,
                      counters: RoleCounters) -> RoleContext:
        assert self.backends is not None and self.pool is not None
        return RoleContext(
            name=name, settings=self.settings, redis=self.backends.redis,
            elastic=self.backends.elastic, pool=self.pool, stop=stop,
            logger=logging.getLogger(f"tracardi_daemon.role.{name}"), counters=counters,
            thread_index=index,
            consumer_name=f"{socket.gethostname()}:{os.getpid()}:{name}-{index}",
            clock=time.time, host_limits=self.host_limits,
        )

    # -- signals -----------------------------------------------------------------------
    def _install_signal_handlers(self) -> None:
        for signum in HANDLED_SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # only enqueue: the main loop acts (no logging or locking in a handler)
        self.signals.put(signum)

    def _main_loop(self) -> int:
        while True:
            signum = self._next_signal()
            if signum in (signal.SIGTERM, signal.SIGINT):
                return self._shutdown()
            if signum == signal.SIGHUP:
                self._handle_hup()
            elif signum == signal.SIGUSR1:
                self._handle_usr1()
            self._tick()

    def _next_signal(self) -> int | None:
        """A signal kept from a drain first (a stop before a reload), else the next one
        to arrive within a tick."""
        if self._deferred:
            stops = [s for s in self._deferred if s in (signal.SIGTERM, signal.SIGINT)]
            signum = stops[0] if stops else self._deferred[0]
            self._deferred.remove(signum)
            return signum
        try:
            return self.signals.get(timeout=TICK_S)
        except queue.Empty:
            return None

    def _drain(self, names: list[str], grace_s: float, stopping: bool = False) -> Drained:
        return self.supervisor.drain(names, grace_s, lambda: self._during_drain(stopping))

    def _during_drain(self, stopping: bool) -> bool:
        """Signals that arrive while roles drain; True cuts the drain short. USR1 is
        answered at once. TERM/INT hurries the drain: during a stop it makes the stop
        fast; during a reload or a licence stop, the stop follows at once. A HUP is
        carried out once a reload's drain ends, and refused, with a log line, during a
        stop."""
        hurry = False
        while True:
            try:
                signum = self.signals.get_nowait()
            except queue.Empty:
                return hurry
            if signum == signal.SIGUSR1:
                self._handle_usr1()
            elif signum in (signal.SIGTERM, signal.SIGINT):
                hurry = True
                if not stopping:
                    self._deferred.append(signum)
            elif stopping:
                log.warning("SIGHUP while stopping: not reloading")
            elif signum not in self._deferred:
                log.info("SIGHUP while roles stop: reloading again once they have stopped")
                self._deferred.append(signum)

    def _stop_requested(self) -> bool:
        return any(s in (signal.SIGTERM, signal.SIGINT) for s in self._deferred)

    def _tick(self) -> None:
        self.supervisor.tend()
        summary = one_line_summary(self.report())
        if summary != self._last_status:
            self._last_status = summary
            self.notifier.status(summary)
        if self.supervisor.heartbeats_fresh():
            self.notifier.watchdog()
        if self.license.due(self.settings.license.check_interval_s):
            self._recheck_license()

    def _recheck_license(self) -> None:
        self.license.check(self.settings.license)
        refused = [n for n in self.supervisor.runners if not self.license.allows(n)]
        if refused:
            log.error("licence no longer allows %s; stopping them", ", ".join(refused))
            self._drain(refused, self.settings.shutdown.grace_s)
            self.license.stopped(refused)

    def _handle_usr1(self) -> None:
        for line in status_lines(self.report()):
            log.info("status: %s", line)

    def _handle_hup(self) -> None:
        log.info("SIGHUP: reloading configuration")
        self.notifier.reloading()
        try:
            new = self.reload_settings()
            self.license.check(new.license)
            wanted = resolve_roles(new.daemon.roles, self.registry, self.license.allows)
        except (ConfigError, RoleError) as exc:
            log.error("reload refused, keeping the running configuration: %s", exc)
            self.notifier.ready()
            return
        self._warn_restart_only_changes(new)
        self._reconcile(new, wanted)
        self.notifier.ready()

    def _warn_restart_only_changes(self, new: Settings) -> None:
        for section in ("redis", "elastic", "daemon"):
            old_value, new_value = getattr(self.settings, section), getattr(new, section)
            if section == "daemon":
                old_value = (old_value.health_socket, old_value.pool_processes)
                new_value = (new_value.health_socket, new_value.pool_processes)
            if old_value != new_value:
                log.warning("changes to [%s] take effect only after a restart", section)

    def _reconcile(self, new: Settings, wanted: tuple[str, ...]) -> None:
        running = set(self.supervisor.runners)
        changed = {n for n in running & set(wanted)
                   if self.registry[n].threads(new) != self.supervisor.runners[n].thread_count}
        to_stop = sorted((running - set(wanted)) | changed)
        self.license.keep_only(wanted)
        drained = self._drain(to_stop, new.shutdown.grace_s)
        if drained.late and not drained.hurried:
            log.error("roles %s did not stop within the grace period", ", ".join(drained.late))
        self.settings = new
        if self._stop_requested():
            log.info("reload cut short: the daemon is stopping")
            return
        self._start_roles(tuple(n for n in wanted if n not in self.supervisor.runners))
        log.info("configuration reloaded; roles now: %s",
                 ", ".join(self.supervisor.runners) or "none")

    # -- stop --------------------------------------------------------------------------
    def _shutdown(self) -> int:
        """Graceful drain within grace_s; a second TERM/INT makes it a fast stop."""
        self.stopping = True
        self.notifier.stopping()
        grace_s = self.settings.shutdown.grace_s
        log.info("stopping: draining roles within %.0fs (send TERM again to stop fast)",
                 grace_s)
        drained = self._drain(list(self.supervisor.runners), grace_s, stopping=True)
        self.stop.set()
        self._close(fast=drained.hurried)
        if drained.hurried:
            log.warning("fast stop: in-flight work of %s is left to other daemons",
                        ", ".join(drained.late) or "no role")
            return int(ExitCode.OK)
        if drained.late:
            log.error("roles %s did not finish within %.0fs", ", ".join(drained.late), grace_s)
            return int(ExitCode.FAILURE)
        log.info("stopped cleanly")
        return int(ExitCode.OK)

    def _close(self, fast: bool = False) -> None:
        self.stop.set()
        if self.pool is not None:
            self.pool.shutdown(fast=fast)
        self.health.stop()
        if self.backends is not None:
            self.backends.close()

    # -- reading -----------------------------------------------------------------------
    def report(self, fresh: bool = False) -> HealthReport:
        """The health report; ``fresh`` asks for new backend probes and waits a moment
        for them, so that an outage is reported at once, but never longer (the health
        socket asks for this; the main loop does not)."""
        return build_report(self.snapshot(fresh))

    def snapshot(self, fresh: bool = False) -> DaemonSnapshot:
        """The daemon's state as a report needs it, copied at one moment."""
        backends = self.backends
        if fresh and backends is not None:
            backends.refresh(FRESH_PROBE_WAIT_S)
        now = time.monotonic()
        return DaemonSnapshot(
            started_at=self.started_at, stopping=self.stopping,
            roles_started=self.roles_started, roles=self.supervisor.views(),
            unlicensed=self.license.refused,
            backends=NOT_CONNECTED if backends is None else {
                name: {"up": state.up, "detail": state.detail,
                       "checked_age_s": round(now - state.checked_at, 3)}
                for name, state in backends.states().items()},
            license=self.license.status)
