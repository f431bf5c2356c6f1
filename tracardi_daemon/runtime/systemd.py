"""sd_notify without libsystemd: READY, STATUS, WATCHDOG, STOPPING and RELOADING datagrams.

A no-op outside systemd; a failed send is logged, never raised, so that a vanished
manager cannot take the daemon down with it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

# a full receive queue would otherwise block the supervisor loop on send
SEND_TIMEOUT_S = 0.5


class Notifier:
    """Sends notifications to ``NOTIFY_SOCKET``; every method is safe to call always."""

    def __init__(self, address: bytes | None, watchdog_usec: int | None = None) -> None:
        self._address = address
        self._watchdog_usec = watchdog_usec
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._warned = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Notifier:
        """Build from ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``."""
        address = _parse_address(environ.get("NOTIFY_SOCKET", ""))
        return cls(address, _parse_watchdog(environ) if address is not None else None)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def watchdog_interval_s(self) -> float | None:
        """systemd's watchdog timeout in seconds, or None when it is not watching us."""
        return None if self._watchdog_usec is None else self._watchdog_usec / 1_000_000

    def ready(self) -> bool:
        return self.notify(READY=1)

    def status(self, text: str) -> bool:
        # one line: a newline would start a new KEY=value assignment
        return self.notify(STATUS=text)

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG=1)

    def stopping(self) -> bool:
        return self.notify(STOPPING=1)

    def reloading(self) -> bool:
        # systemd >= 253 pairs RELOADING=1 with the monotonic time of the reload request
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify(RELOADING=1, MONOTONIC_USEC=usec)

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines in one datagram; True if it was sent."""
        if self._address is None or not fields:
            return False
        message = "\n".join(f"{key}={_one_line(str(value))}" for key, value in fields.items())
        try:
            with self._lock:
                if self._socket is None:
                    self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._socket.settimeout(SEND_TIMEOUT_S)
                self._socket.sendto(message.encode(), self._address)
        except OSError as exc:
            self._log_failure(exc)
            return False
        return True

    def close(self) -> None:
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None

    def _log_failure(self, exc: OSError) -> None:
        if self._warned:
            log.debug("sd_notify failed: %s", exc)
            return
        self._warned = True
        log.warning("cannot notify systemd on %r (%s); further failures are logged at debug",
                    self._address, exc)


def _parse_address(value: str) -> bytes | None:
    if value.startswith("@"):
        return b"\0" + value[1:].encode()  # Linux abstract namespace
    if value.startswith("/"):
        return os.fsencode(value)
    if value:
        log.warning("NOTIFY_SOCKET=%r is not a path or an abstract socket; not notifying",
                    value)
    return None


def _parse_watchdog(environ: Mapping[str, str]) -> int | None:
    """WATCHDOG_USEC, unless WATCHDOG_PID says the watchdog belongs to another process."""
    pid = environ.get("WATCHDOG_PID")
    try:
        if pid is not None and int(pid) != os.getpid():
            return None
        usec = int(environ.get("WATCHDOG_USEC", "0"))
    except ValueError:
        log.warning("ignoring malformed WATCHDOG_USEC/WATCHDOG_PID in the environment")
        return None
    return usec if usec > 0 else None


def _one_line(text: str) -> str:
    return " ".join(text.splitlines()).strip()
