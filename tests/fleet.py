"""Real daemon processes of one tenant for the fault tests: each with its own
directory, socket, log and a licence for the roles given."""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import DaemonProcess, daemon_env, write_config
from tracardi_daemon import license as lic


class Fleet:
    """Daemons of one tenant, each with its own directory, socket and log."""

    def __init__(self, workdir: Path, prefix: str, roles: tuple[str, ...], *,
                 settings: str = "") -> None:
        self.workdir, self.prefix, self.settings = workdir, prefix, settings
        private, public = lic.generate_keypair(str(workdir / "keys"))
        licence = lic.issue(lic.load_private_key(str(private)), "faults", roles, 1,
                            datetime.now(UTC))
        self.env = daemon_env(TRACARDI_LICENSE_PUBLIC_KEY_FILE=str(public), LICENSE=licence)
        self.started: list[DaemonProcess] = []

    def start(self, roles: list[str], redis_port: int = 6379,
              **values: object) -> DaemonProcess:
        """A daemon of ``roles``; ``values`` fill the settings text's {placeholders}."""
        home = self.workdir / f"d{len(self.started)}"
        home.mkdir()
        process = DaemonProcess(workdir=home, config=home / "daemon.toml",
                                socket=str(home / "run" / "health.sock"),
                                log=home / "daemon.log", env=dict(self.env))
        write_config(process.config, self.prefix, process.socket, roles, redis_port,
                     extra=self.settings.format(**values))
        process.start()
        self.started.append(process)
        return process

    def kill_all(self) -> None:
        for process in self.started:
            if process.proc is not None and process.proc.poll() is None:
                process.proc.send_signal(signal.SIGKILL)
                process.proc.wait(10)


class UnlicensedFleet(Fleet):
    """Daemons started with no licence anywhere (the upgrade role needs none)."""

    def __init__(self, workdir: Path, prefix: str, *, settings: str = "") -> None:
        super().__init__(workdir, prefix, (), settings=settings)
        self.env = {k: v for k, v in self.env.items() if k != "LICENSE"}


@contextmanager
def unlicensed_fleet(prefix: str, settings: str) -> Iterator[UnlicensedFleet]:
    """A fleet in a temporary directory; every daemon killed and the directory removed
    at the end."""
    workdir = Path(tempfile.mkdtemp(prefix="td-fleet-"))
    started = UnlicensedFleet(workdir, prefix, settings=settings)
    try:
        yield started
    finally:
        started.kill_all()
        shutil.rmtree(workdir, ignore_errors=True)


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def running(name: str) -> Callable[[int, dict[str, Any]], bool]:
    return lambda _status, report: report["roles"].get(name, {}).get("state") == "running"
