"""One Tracardi API for one test tenant: started from an installed version's virtual
environment on a free port (the env file of ``scripts/services`` with TENANT_NAME set to
the tenant), ready once /healthcheck answers, stopped when the block ends."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.tracardi_api.api import ApiService

START_TIMEOUT_S = 90.0  # it answers in 5-7 s; an import of a cold venv takes longer
STOP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthcheck", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


@contextmanager
def api_for_tenant(service: ApiService, tenant: str) -> Iterator[str]:
    """The URL of ``service``'s version serving ``tenant``; its own process, stopped at
    the end of the block. Its environment is the env file's and a PATH, nothing of the
    caller's: Tracardi dies at import on a LICENSE that is not its own."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    home = Path(tempfile.mkdtemp(prefix=f"td-api-{tenant}-"))
    log = home / "api.log"
    env = {**service.env(), "TENANT_NAME": tenant, "PATH": "/usr/bin:/bin",
           "HOME": str(home)}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(service.python), "-m", "uvicorn", "app.main:application", "--host",
             "127.0.0.1", "--port", str(port)],
            cwd=service.home, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(url):
            assert process.poll() is None, (
                f"Tracardi {service.version} for {tenant} exited with {process.returncode}:\n"
                f"{_tail(log)}")
            assert time.monotonic() < deadline, (
                f"Tracardi {service.version} for {tenant}: no /healthcheck within "
                f"{START_TIMEOUT_S} s:\n{_tail(log)}")
            time.sleep(0.2)
        yield url
    finally:
        _stop(process)
        if os.environ.get("TRACARDI_API_KEEP_LOGS") != "yes":
            shutil.rmtree(home, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the API's session (uvicorn and anything it started), SIGKILL after a
    bounded wait."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT_S)
