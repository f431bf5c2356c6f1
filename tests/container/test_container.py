"""The container image, built with podman from the lock and run the way the README's
``docker run`` line runs it, against the real local Redis and Elasticsearch."""

from __future__ import annotations

import json
import re
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from tests.container.conftest import (
    PUBLIC_KEY_IN_CONTAINER,
    REPO,
    ContainerLicence,
    podman,
)
from tracardi_daemon.roles.scheduler import client as scheduler_client

pytestmark = [pytest.mark.container, pytest.mark.timeout(600)]

HEALTHY_WITHIN_S = 60.0
FIRED_WITHIN_S = 10.0
STOP_TIMEOUT_S = 30


def locked_versions() -> dict[str, str]:
    """Package name (normalised) -> version, from requirements/runtime.txt."""
    text = (REPO / "requirements" / "runtime.txt").read_text()
    return {normalise(name): version
            for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", text, re.M)}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def inspect(name: str, template: str) -> str:
    return podman("inspect", "--format", template, name).stdout.strip()


def logs(name: str) -> str:
    result = podman("logs", name, check=False)
    return (result.stdout + result.stderr)[-5000:]


def wait_healthy(name: str, timeout_s: float) -> None:
    """Runs the image's HEALTHCHECK (podman schedules it with systemd timers, which a
    machine without systemd lacks) until podman records the container as healthy."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if inspect(name, "{{.State.Status}}") != "running":
            pytest.fail(f"container stopped before it was healthy "
                        f"(exit {inspect(name, '{{.State.ExitCode}}')}):\n{logs(name)}")
        check = podman("healthcheck", "run", name, check=False)
        status = inspect(name, "{{.State.Health.Status}}")
        if check.returncode == 0 and status == "healthy":
            return
        last = f"healthcheck exit {check.returncode}, status {status}: {check.stdout.strip()}"
        time.sleep(0.5)
    report = podman("exec", name, "tracardi-daemon", "status", check=False)
    pytest.fail(f"not healthy within {timeout_s} s; last: {last}\n"
                f"{report.stdout}{report.stderr}\n{logs(name)}")


def run_healthy(name: str, image: str, licence: ContainerLicence,
                *environment_options: str) -> None:
    """Start the daemon detached, as the README's ``docker run`` line does, with the
    licence's public key mounted, and wait until it is healthy."""
    podman("run", "--detach", "--name", name, "--network", "host", *environment_options,
           "--volume", f"{licence.public_key}:{PUBLIC_KEY_IN_CONTAINER}:ro", image)
    wait_healthy(name, HEALTHY_WITHIN_S)


def stream_entries(client: Redis, key: str, timeout_s: float) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        entries = list(client.xrange(key) or ())
        if entries or time.monotonic() >= deadline:
            return entries
        time.sleep(0.1)


def test_image_builds_from_the_lock(built_image: str) -> None:
    listing = podman("run", "--rm", "--network", "none", "--entrypoint", "python",
                     built_image, "-m", "pip", "list", "--format", "json")
    installed = {normalise(d["name"]): d["version"] for d in json.loads(listing.stdout)}
    locked = locked_versions()
    # pip comes with the virtual environment; everything else is the lock or the package
    outside = {name: version for name, version in installed.items()
               if name not in ("pip", "tracardi-daemon") and locked.get(name) != version}
    assert not outside, f"installed but not as locked: {outside}"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert installed.get("tracardi-daemon") == project["version"]
    for name in ("redis", "elasticsearch", "cryptography", "setuptools", "wheel"):
        assert installed.get(name) == locked[name], name


def test_image_metadata(built_image: str) -> None:
    image = json.loads(podman("image", "inspect", built_image).stdout)[0]
    assert image["Healthcheck"]["Test"] == ["CMD", "tracardi-daemon", "check"]
    config = image["Config"]
    assert config["User"] == "tracardi"
    assert config["StopSignal"] in ("SIGTERM", "15")
    assert config["Entrypoint"] == ["tracardi-daemon"]
    assert config["Cmd"] == ["run"]
    # the documented default: the upgrade role, which needs no licence
    assert "TRACARDI_ROLES=upgrade" in config["Env"]


def test_runs_scheduler_fires_a_job_and_drains_on_stop(
    built_image: str, scheduler_licence: ContainerLicence,
    scheduler_environment: dict[str, str], container_name: str, redis_client: Redis,
    prefix: str,
) -> None:
    name = container_name
    options = [part for key, value in scheduler_environment.items()
               for part in ("--env", f"{key}={value}")]
    run_healthy(name, built_image, scheduler_licence, *options)

    check = podman("exec", name, "tracardi-daemon", "check", check=False)
    assert check.returncode == 0, f"{check.stdout}{check.stderr}"
    uid = podman("exec", name, "id", "-u").stdout.strip()
    assert uid.isdigit() and uid != "0", uid
    assert inspect(name, "{{.Config.User}}") == "tracardi"

    payload = {"type": "reminder", "profile": {"id": "p1"}, "from": "host"}
    job_id = scheduler_client.schedule(redis_client, prefix, "stream:container-test",
                                       payload, delay_s=1)
    entries = stream_entries(redis_client, f"{prefix}:container-test", FIRED_WITHIN_S)
    assert len(entries) == 1, f"stream entries: {entries}\n{logs(name)}"
    fields = {key.decode(): value.decode() for key, value in entries[0][1].items()}
    assert json.loads(fields["payload"]) == payload
    assert fields["idempotency_key"].startswith(job_id)

    started = time.monotonic()
    podman("stop", "--time", str(STOP_TIMEOUT_S), name, timeout_s=STOP_TIMEOUT_S + 15)
    stopped_in_s = time.monotonic() - started
    exit_code = inspect(name, "{{.State.ExitCode}}")
    assert exit_code == "0", f"exit {exit_code} after {stopped_in_s:.1f} s:\n{logs(name)}"
    assert stopped_in_s < STOP_TIMEOUT_S, stopped_in_s


def test_env_file_with_quoted_values_as_tracardi_writes_it(
    built_image: str, scheduler_licence: ContainerLicence,
    scheduler_environment: dict[str, str], container_name: str, tmp_path: Path,
) -> None:
    """``--env-file`` passes the quotes of ``API_LICENSE="..."`` on literally (a shell
    sourcing the same file would remove them); the daemon must accept them."""
    environment = dict(scheduler_environment)
    environment["API_LICENSE"] = environment.pop("LICENSE")  # Tracardi's own name
    single_quoted = {"TENANT_NAME"}  # '...' is accepted as well as "..."
    lines = ["# .env-docker, as in Tracardi's install guide", ""]
    for key, value in environment.items():
        quote = "'" if key in single_quoted else '"'
        lines.append(f"{key}={quote}{value}{quote}")
    env_file = tmp_path / ".env-docker"
    env_file.write_text("\n".join(lines) + "\n")

    run_healthy(container_name, built_image, scheduler_licence, "--env-file", str(env_file))

    passed = inspect(container_name, "{{range .Config.Env}}{{println .}}{{end}}").splitlines()
    assert f'API_LICENSE="{scheduler_licence.token}"' in passed, "quotes not passed on"
    assert f'REDIS_HOST="{environment["REDIS_HOST"]}"' in passed
