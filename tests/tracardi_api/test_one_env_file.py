"""One env file for Tracardi's API and the daemon: the file the API was started with, plus
the daemon's own settings with its licence in TRACARDI_DAEMON_LICENSE, starts a second
Tracardi API and loads the daemon's settings; the licence in LICENSE kills Tracardi."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.config.test_license import make_token
from tests.tracardi_api.api import ApiService, read_env_file, wait_for
from tracardi_daemon import license as lic
from tracardi_daemon.config.load import load_settings

pytestmark = [pytest.mark.tracardi_api, pytest.mark.timeout(900)]


def spare_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def api_from(service: ApiService, env_file: Path, port: int,
             log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Tracardi's API started from ``env_file`` alone (and a PATH), as a container gets it
    from ``--env-file``; stopped on leaving."""
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **read_env_file(env_file)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(service.python), "-m", "uvicorn", "app.main:application", "--host",
             "127.0.0.1", "--port", str(port)], cwd=service.home, env=environ,
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def healthcheck(url: str, process: subprocess.Popen[bytes]) -> int | None:
    """The /healthcheck status once it answers; 0 when the process ended first."""
    if process.poll() is not None:
        return 0
    try:
        return httpx.get(f"{url}/healthcheck", timeout=5).status_code
    except httpx.HTTPError:
        return None


def shared_env_file(service: ApiService, path: Path, keys: Path, licence_name: str) -> str:
    """The API's own env file plus the daemon's settings; the licence under
    ``licence_name``. Returns the licence."""
    public = keys / "license-public.pem"
    token = make_token(keys / "license-private.pem", ("mapping", "scheduler"), days=3650,
                       now=datetime.now(UTC))
    lines = [f"{name}={value}" for name, value in service.env().items()]
    lines += [f"{licence_name}={token}", f"TRACARDI_LICENSE_PUBLIC_KEY_FILE={public}",
              "TRACARDI_ROLES=mapping,scheduler"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return token


def test_tracardi_api_and_daemon_start_from_one_env_file(
        tracardi_service: ApiService, tmp_path: Path) -> None:
    lic.generate_keypair(str(tmp_path / "keys"))
    env_file = tmp_path / ".env-docker"
    token = shared_env_file(tracardi_service, env_file, tmp_path / "keys",
                            "TRACARDI_DAEMON_LICENSE")
    port = spare_port()
    with api_from(tracardi_service, env_file, port, tmp_path / "api.log") as process:
        status = wait_for(lambda: healthcheck(f"http://127.0.0.1:{port}", process),
                          "the second API's /healthcheck", timeout_s=90)
        log = (tmp_path / "api.log").read_text(errors="replace")[-500:]
        assert status == 200, f"Tracardi's API did not start from the shared file: {log}"

    settings = load_settings(read_env_file(env_file))
    api_env = tracardi_service.env()
    assert settings.tracardi.tenant == api_env["TENANT_NAME"]
    assert settings.elastic.hosts == (api_env["ELASTIC_HOST"],)
    assert settings.redis.host == "127.0.0.1"
    assert settings.daemon.roles == ("mapping", "scheduler")
    assert settings.license.token == token
    status_now = lic.load_status(settings.license, datetime.now(UTC))
    assert status_now.valid, status_now.detail


def test_the_daemon_licence_in_license_kills_tracardi(
        tracardi_service: ApiService, tmp_path: Path) -> None:
    """Why the daemon's licence has its own name: Tracardi 0.8.2 reads LICENSE as its own."""
    lic.generate_keypair(str(tmp_path / "keys"))
    env_file = tmp_path / ".env-docker"
    shared_env_file(tracardi_service, env_file, tmp_path / "keys", "LICENSE")
    port = spare_port()
    with api_from(tracardi_service, env_file, port, tmp_path / "api.log") as process:
        status = wait_for(lambda: healthcheck(f"http://127.0.0.1:{port}", process),
                          "the second API ending or answering", timeout_s=90)
        assert status == 0, "Tracardi's API started with a daemon licence in LICENSE"
    assert "License incorrect" in (tmp_path / "api.log").read_text(errors="replace")
    # the daemon reads the same file fine: LICENSE holds a daemon licence
    assert load_settings(read_env_file(env_file)).license.token is not None
