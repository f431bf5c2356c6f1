"""Fixtures for the container tests: podman with the project's containers.conf, the image
built by ``scripts/container build``, and a licence for the daemon inside it.

Tests here are skipped only where podman cannot be installed or cannot run containers;
a failing build or a misbehaving container is a failure.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from redis import Redis

from tracardi_daemon import license as lic

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "container"
IMAGE = os.environ.get("TRACARDI_TEST_IMAGE", "localhost/tracardi-daemon:test")
# where the public key is mounted in the container (read-only)
PUBLIC_KEY_IN_CONTAINER = "/etc/tracardi-daemon/license-public.pem"
# the base (stand-in) made once, the tools installed once, a build from a cold layer cache
BUILD_TIMEOUT_S = 480


def podman_env() -> dict[str, str]:
    """The environment for podman: the project's containers.conf unless one is set."""
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(REPO / "scripts" / "containers.conf"))
    env["TRACARDI_IMAGE"] = IMAGE
    return env


def podman(*args: str, timeout_s: float = 60.0, check: bool = True,
           ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", *args], env=podman_env(), capture_output=True,
                            text=True, timeout=timeout_s, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} exited {result.returncode}:\n"
                    f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result


def _script(command: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), command], env=podman_env(), capture_output=True,
                          text=True, timeout=timeout_s, check=False)


@pytest.fixture(scope="session")
def podman_ready() -> None:
    """podman installed (by ``scripts/container tools`` when missing) and able to run."""
    tools = _script("tools", timeout_s=300)
    if tools.returncode != 0:
        pytest.skip("podman could not be installed (scripts/container tools exited "
                    f"{tools.returncode}): {(tools.stdout + tools.stderr).strip()[-1500:]}")
    info = podman("info", check=False)
    if info.returncode != 0:
        pytest.skip(f"podman is installed but cannot be used here (podman info exited "
                    f"{info.returncode}): {info.stderr.strip()[-1500:]}")


@pytest.fixture(scope="session")
def built_image(podman_ready: None) -> str:
    """The tag of the image built from the working tree and the lock, as
    ``scripts/container build`` builds it (making the stand-in base first if missing)."""
    build = _script("build", timeout_s=BUILD_TIMEOUT_S)
    if build.returncode != 0:
        pytest.fail(f"scripts/container build exited {build.returncode}:\n"
                    f"{(build.stdout + build.stderr)[-4000:]}")
    return IMAGE


@dataclass(frozen=True)
class ContainerLicence:
    token: str
    public_key: Path


@pytest.fixture
def scheduler_licence(tmp_path: Path) -> ContainerLicence:
    """A licence for the scheduler role, signed by a fresh key whose public half the
    container's user can read."""
    private, public = lic.generate_keypair(str(tmp_path / "keys"))
    public.chmod(0o644)
    token = lic.issue(lic.load_private_key(str(private)), "container-test", ("scheduler",),
                      1, datetime.now(UTC))
    return ContainerLicence(token, public)


@pytest.fixture
def scheduler_environment(scheduler_licence: ContainerLicence, prefix: str, redis_url: str,
                          elastic_url: str) -> dict[str, str]:
    """The environment of a daemon in a container running the scheduler role for the
    test's tenant against the local Redis and Elasticsearch (``--network host``), with
    ``scheduler_licence``'s public key mounted at ``PUBLIC_KEY_IN_CONTAINER``."""
    return {
        "TRACARDI_ROLES": "scheduler",
        "LICENSE": scheduler_licence.token,
        "TENANT_NAME": prefix,
        "REDIS_HOST": redis_url,
        "ELASTIC_HOST": elastic_url,
        "TRACARDI_LICENSE_PUBLIC_KEY_FILE": PUBLIC_KEY_IN_CONTAINER,
    }


@pytest.fixture
def container_name(prefix: str, redis_client: Redis, elastic_client: Elasticsearch,
                   ) -> Iterator[str]:
    """A name for the test's container. The container is removed afterwards, whatever
    state it is in, before the tenant's Redis keys and indices are (the fixtures this one
    depends on are torn down after it)."""
    name = f"tracardi-daemon-test-{prefix}"
    yield name
    podman("rm", "--force", "--ignore", "--time", "0", name, timeout_s=60, check=False)
