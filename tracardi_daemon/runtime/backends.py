"""The shared Redis and Elasticsearch clients and their reachability, probed in the
background so that an outage degrades health instead of stopping the process.

Each backend has its own probing thread, so a hung Elasticsearch never delays the
Redis probe, and health requests never wait for a probe: they ask for a new one and
read the states a moment later, whatever has come back by then. A probe that has been
waiting for an answer longer than HUNG_PROBE_S makes its backend down meanwhile."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from elasticsearch import Elasticsearch

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import BackendError, BackendUnavailable
from tracardi_daemon.infra.elastic import create_elastic, probe_elastic
from tracardi_daemon.infra.redis import RedisClient, create_redis, probe_redis
from tracardi_daemon.redact import mask_text

log = logging.getLogger(__name__)

# a backend whose probe has waited this long for an answer is reported down
HUNG_PROBE_S = 1.0


@dataclass
class BackendState:
    up: bool
    detail: str | None
    checked_at: float  # monotonic


class Backends:
    """Clients built once from settings; ``probe_all`` refreshes their states."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis: RedisClient = create_redis(settings.redis)
        self.elastic: Elasticsearch = create_elastic(settings.elastic)
        self._lock = threading.Lock()
        self._probed = threading.Condition(self._lock)  # a probe has come back
        self._in_flight: dict[str, float] = {}  # backend -> when its probe was sent
        self._kicks = {name: threading.Event() for name in ("redis", "elasticsearch")}
        now = time.monotonic()
        self._states = {
            "redis": BackendState(False, "not checked yet", now),
            "elasticsearch": BackendState(False, "not checked yet", now),
        }

    def _checks(self) -> dict[str, Callable[[], None]]:
        return {
            "redis": lambda: probe_redis(self.redis, self.settings.redis),
            "elasticsearch": lambda: probe_elastic(self.elastic, self.settings.elastic),
        }

    def probe_all(self) -> dict[str, BackendState]:
        """Probe each backend now, one after the other (start-up and tests)."""
        return {name: self.probe(name, check) for name, check in self._checks().items()}

    def probe(self, name: str, check: Callable[[], None]) -> BackendState:
        with self._lock:
            self._in_flight[name] = time.monotonic()
        state = self._probe(check)
        with self._lock:
            self._in_flight.pop(name, None)
            previous = self._states[name]
            if previous.up != state.up and previous.detail != "not checked yet":
                if state.up:
                    log.warning("%s is reachable again", name)
                else:
                    log.error("%s became unreachable: %s", name, state.detail)
            self._states[name] = state
            self._probed.notify_all()
        return state

    @staticmethod
    def _probe(check: Callable[[], None]) -> BackendState:
        try:
            check()
            return BackendState(True, None, time.monotonic())
        except (BackendUnavailable, BackendError) as exc:
            # the detail goes to /health, /metrics and log lines: never a credential
            return BackendState(False, mask_text(exc.detail), time.monotonic())

    def states(self) -> dict[str, BackendState]:
        """The last probe results; a backend whose probe waits for an answer longer
        than HUNG_PROBE_S is down, with how long it has not answered."""
        now = time.monotonic()
        with self._lock:
            states = dict(self._states)
            for name, since in self._in_flight.items():
                if now - since > HUNG_PROBE_S:
                    states[name] = BackendState(
                        False, f"no answer to a probe for {now - since:.1f} s",
                        states[name].checked_at)
        return states

    def refresh(self, wait_s: float) -> dict[str, BackendState]:
        """Ask each backend's probing thread for a new probe and wait at most
        ``wait_s`` for the answers; then the states as they are (an unanswered probe
        keeps the last result until it counts as hung)."""
        asked = time.monotonic()
        for kick in self._kicks.values():
            kick.set()
        with self._lock:
            self._probed.wait_for(
                lambda: all(s.checked_at >= asked for s in self._states.values()), wait_s)
        return self.states()

    def wait_until_up(self, wait_s: float, stop: threading.Event) -> None:
        """Probe until both answer; raise BackendUnavailable naming the last failure."""
        deadline = time.monotonic() + wait_s
        attempt = 0
        while True:
            states = self.probe_all()
            down = {name: s for name, s in states.items() if not s.up}
            if not down:
                log.info("redis and elasticsearch are reachable")
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0 or stop.is_set():
                name, state = next(iter(down.items()))
                raise BackendUnavailable(
                    name, f"{state.detail} (gave up after startup.wait_s={wait_s:g}s)")
            attempt += 1
            for name, state in down.items():
                log.warning("waiting for %s (%.0fs left): %s", name, remaining, state.detail)
            stop.wait(min(remaining, 0.5 * 2 ** min(attempt, 3)))

    def monitor(self, stop: threading.Event, interval_s: float) -> None:
        """Start one probing thread per backend: each probes every ``interval_s``, or
        at once when ``refresh`` asks, until ``stop`` is set."""
        for name, check in self._checks().items():
            threading.Thread(target=self._watch, args=(name, check, stop, interval_s),
                             daemon=True, name=f"probe-{name}").start()

    def _watch(self, name: str, check: Callable[[], None], stop: threading.Event,
               interval_s: float) -> None:
        kick = self._kicks[name]
        while not stop.is_set():
            kick.wait(interval_s)
            kick.clear()
            if not stop.is_set():
                self.probe(name, check)

    def close(self) -> None:
        self.redis.close()
        self.elastic.close()
