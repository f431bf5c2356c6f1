"""The running Tracardi APIs (0.8.2: ``tracardi``, 0.9: ``tracardi09``; 0.8.1's installed
service: ``tracardi081_service``), found or started with ``scripts/services tracardi-up
[--version 0.9|0.8.1]``; the tests that need one skip, saying
why, when it cannot be had. TRACARDI_API_START=no only finds one (it never starts an API);
an API is stopped again when these tests started it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.tracardi_api.api import ApiClient, ApiService, services

START_TIMEOUT_S = 600  # a first install fetches about 150 packages


def found_or_started(version: str) -> Iterator[ApiService]:
    """The API of ``version``, found running or started (and stopped again after the
    session); skips, saying why, when it cannot be had."""
    name = f"Tracardi {version}'s API"
    try:
        service = ApiService.describe(version)
    except (OSError, KeyError) as exc:
        pytest.skip(f"{name}: scripts/services tracardi-info --version {version} failed ({exc})")
    answered = service.answers()
    if os.environ.get("TRACARDI_API_START", "yes") == "no":
        if not answered:
            pytest.skip(f"{name} does not answer on {service.url} and TRACARDI_API_START=no")
    else:  # starts it if needed, and runs its /install if that was never done
        result = services("tracardi-up", "--version", version, timeout_s=START_TIMEOUT_S)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            pytest.skip(f"{name} could not be started by scripts/services tracardi-up "
                        f"--version {version}: {' | '.join(tail)}")
    started = not answered
    yield service
    if started:
        services("tracardi-down", "--version", version, timeout_s=60)


@pytest.fixture(scope="session")
def tracardi_service() -> Iterator[ApiService]:
    yield from found_or_started("0.8.2")


@pytest.fixture(scope="session")
def tracardi09_service() -> Iterator[ApiService]:
    yield from found_or_started("0.9")


@pytest.fixture(scope="session")
def tracardi081_service() -> Iterator[ApiService]:
    yield from found_or_started("0.8.1")


@pytest.fixture(scope="session")
def tracardi(tracardi_service: ApiService) -> Iterator[ApiClient]:
    client = tracardi_service.login()
    yield client
    client.close()


@pytest.fixture(scope="session")
def tracardi09(tracardi09_service: ApiService) -> Iterator[ApiClient]:
    client = tracardi09_service.login()
    yield client
    client.close()
