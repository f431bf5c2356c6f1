"""Fixtures that start the real daemon process (``python -m tests.e2e.launcher run``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tracardi_daemon import license as lic
from tracardi_daemon.health.server import fetch

REPO = Path(__file__).resolve().parents[2]


@dataclass
class DaemonProcess:
    """A running daemon and the files around it."""

    workdir: Path
    config: Path
    socket: str
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def start(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.launcher", "run", "--config", str(self.config),
             *args],
            cwd=REPO, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)

    def health(self) -> tuple[int, dict[str, Any]]:
        status, body = fetch(self.socket, "/health", timeout_s=3.0)
        return status, json.loads(body)

    def wait_health(self, predicate: Any, timeout_s: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"daemon exited with {self.proc.returncode}:\n{self.output()}")
            try:
                status, report = self.health()
                last = (status, report)
                if predicate(status, report):
                    return report
            except Exception as exc:
                last = exc
            time.sleep(0.1)
        pytest.fail(f"health never matched; last: {last}\n{self.output()}")

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait_exit(self, timeout_s: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pytest.fail(f"daemon did not exit within {timeout_s}s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


def daemon_env(**extra: str) -> dict[str, str]:
    """This environment without anything the daemon would read as its configuration
    (or systemd's notify variables), plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRACARDI_", "REDIS_", "ELASTIC_", "LICENSE", "API_LICENSE",
                                "NOTIFY_SOCKET", "WATCHDOG_"))}
    env.update(extra)
    return env


def write_config(path: Path, tenant: str, socket: str, roles: list[str],
                 redis_port: int = 6379, extra: str = "") -> None:
    path.write_text(f"""
[daemon]
roles = {json.dumps(roles)}
health_socket = "{socket}"
pool_processes = 1
[tracardi]
tenant = "{tenant}"
[redis]
port = {redis_port}
[outbound]
# the test receivers and sources listen on loopback, closed by default
allow = ["127.0.0.0/8", "::1"]
[startup]
wait_s = 15.0
[shutdown]
grace_s = 10.0
[supervisor]
backend_probe_interval_s = 0.3
restart_backoff_initial_s = 0.1
{extra}
""")


@pytest.fixture
def daemon(prefix: str, redis_client: Any, elastic_client: Any) -> Iterator[DaemonProcess]:
    workdir = Path(tempfile.mkdtemp(prefix="td-e2e-"))
    keys = workdir / "keys"
    private, public = lic.generate_keypair(str(keys))
    env = daemon_env(TRACARDI_LICENSE_PUBLIC_KEY_FILE=str(public))
    process = DaemonProcess(workdir=workdir, config=workdir / "daemon.toml",
                            socket=str(workdir / "run" / "health.sock"),
                            log=workdir / "daemon.log", env=env)
    process.extra["private_key"] = private
    write_config(process.config, prefix, process.socket, ["upgrade"])
    yield process
    if process.proc is not None and process.proc.poll() is None:
        process.proc.send_signal(signal.SIGKILL)
        process.proc.wait(10)
    shutil.rmtree(workdir, ignore_errors=True)
