"""The painless node, found running or started with ``scripts/services painless-up`` (and
stopped again when this session started it); the tests that need it skip, saying why, when
it cannot be had. PAINLESS_START=no only finds one."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.painless.oracle import PainlessNode

SERVICES = Path(__file__).resolve().parents[2] / "scripts" / "services"
START_TIMEOUT_S = 600  # a first start fetches about 60 MB from Maven Central


def _services(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SERVICES), *args], capture_output=True, text=True,
                          timeout=START_TIMEOUT_S, check=False)


@pytest.fixture(scope="session")
def painless_node() -> Iterator[PainlessNode]:
    node = PainlessNode()
    why_not = node.runs_painless()
    started = False
    if why_not is not None and os.environ.get("PAINLESS_START", "yes") != "no":
        result = _services("painless-up")
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            why_not += f"; scripts/services painless-up failed: {' | '.join(tail)}"
        else:
            started = True
            why_not = node.runs_painless()
    if why_not is not None:
        node.close()
        pytest.skip(why_not)
    yield node
    node.close()
    if started:
        _services("painless-down")
