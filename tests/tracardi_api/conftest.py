"""The running Tracardi API, found or started with ``scripts/services tracardi-up``; the
tests that need it skip, saying why, when it cannot be had. TRACARDI_API_START=no only
finds one (it never starts the API); the API is stopped again when these tests started it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.tracardi_api.api import ApiClient, ApiService, services

START_TIMEOUT_S = 600  # a first install fetches about 150 packages


@pytest.fixture(scope="session")
def tracardi_service() -> Iterator[ApiService]:
    try:
        service = ApiService.describe()
    except (OSError, KeyError) as exc:
        pytest.skip(f"Tracardi's API: scripts/services tracardi-info failed ({exc})")
    answered = service.answers()
    if os.environ.get("TRACARDI_API_START", "yes") == "no":
        if not answered:
            pytest.skip(f"Tracardi's API does not answer on {service.url} and "
                        "TRACARDI_API_START=no")
    else:  # starts it if needed, and runs its /install if that was never done
        result = services("tracardi-up", timeout_s=START_TIMEOUT_S)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            pytest.skip("Tracardi's API could not be started by scripts/services "
                        f"tracardi-up: {' | '.join(tail)}")
    started = not answered
    yield service
    if started:
        services("tracardi-down", timeout_s=60)


@pytest.fixture(scope="session")
def tracardi(tracardi_service: ApiService) -> Iterator[ApiClient]:
    client = tracardi_service.login()
    yield client
    client.close()
