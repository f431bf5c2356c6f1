"""The shared Redis and Elasticsearch clients and their reachability, probed in the
background so that an outage degrades health instead of stopping the process."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from elasticsearch import Elasticsearch

from tracardi_daemon.errors import BackendError, BackendUnavailable
from tracardi_daemon.infra.elastic import create_elastic, probe_elastic
from tracardi_daemon.infra.redis import RedisClient, create_redis, probe_redis
from tracardi_daemon.redact import mask_text
from tracardi_daemon.settings import Settings

log = logging.getLogger(__name__)


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
        now = time.monotonic()
        self._states = {
            "redis": BackendState(False, "not checked yet", now),
            "elasticsearch": BackendState(False, "not checked yet", now),
        }

    def probe_all(self) -> dict[str, BackendState]:
        results = {
            "redis": self._probe(lambda: probe_redis(self.redis, self.settings.redis)),
            "elasticsearch": self._probe(
                lambda: probe_elastic(self.elastic, self.settings.elastic)),
        }
        with self._lock:
            for name, state in results.items():
                previous = self._states[name]
                if previous.up != state.up and previous.detail != "not checked yet":
                    if state.up:
                        log.warning("%s is reachable again", name)
                    else:
                        log.error("%s became unreachable: %s", name, state.detail)
                self._states[name] = state
        return results

    @staticmethod
    def _probe(check: Callable[[], None]) -> BackendState:
        try:
            check()
            return BackendState(True, None, time.monotonic())
        except (BackendUnavailable, BackendError) as exc:
            # the detail goes to /health, /metrics and log lines: never a credential
            return BackendState(False, mask_text(exc.detail), time.monotonic())

    def states(self) -> dict[str, BackendState]:
        with self._lock:
            return dict(self._states)

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
        """Thread body: probe every ``interval_s`` until stopped."""
        while not stop.wait(interval_s):
            self.probe_all()

    def close(self) -> None:
        self.redis.close()
        self.elastic.close()
