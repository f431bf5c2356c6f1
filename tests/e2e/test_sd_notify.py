"""The real daemon talks sd_notify to a datagram socket, as systemd's Type=notify expects."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import DaemonProcess

pytestmark = pytest.mark.e2e


def receive_until(sock: socket.socket, wanted: str, timeout_s: float) -> list[str]:
    messages: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(4096).decode()
        except TimeoutError:
            break
        messages.append(data)
        if wanted in data.splitlines():
            return messages
    pytest.fail(f"{wanted!r} never arrived; got {messages}")


def test_ready_status_watchdog_stopping(daemon: DaemonProcess) -> None:
    path = str(daemon.workdir / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        daemon.env.update({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000",
                           "TEST_ROLES": "upgrade=counting"})
        daemon.start()
        got = receive_until(sock, "READY=1", timeout_s=20)
        got += receive_until(sock, "WATCHDOG=1", timeout_s=5)
        statuses = [line for message in got for line in message.splitlines()
                    if line.startswith("STATUS=")]
        assert statuses and "upgrade" in statuses[-1]
        daemon.signal(signal.SIGTERM)
        receive_until(sock, "STOPPING=1", timeout_s=10)
        assert daemon.wait_exit(10) == 0
    assert not Path(daemon.socket).exists()
