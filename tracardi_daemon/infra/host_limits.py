"""Per-host concurrency limits shared by every sender thread of one daemon, so that one
slow receiver can occupy at most its share of the senders."""

from __future__ import annotations

import threading
from collections import Counter


class HostLimits:
    """At most ``per_host`` requests in flight to any one host; never blocks."""

    def __init__(self, per_host: int) -> None:
        self._per_host = max(1, per_host)
        self._lock = threading.Lock()
        self._in_flight: Counter[str] = Counter()

    def try_acquire(self, host: str) -> bool:
        with self._lock:
            if self._in_flight[host] >= self._per_host:
                return False
            self._in_flight[host] += 1
            return True

    def release(self, host: str) -> None:
        with self._lock:
            self._in_flight[host] -= 1
            if self._in_flight[host] <= 0:
                del self._in_flight[host]
