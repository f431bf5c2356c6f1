"""The painless scripts of Tracardi's Elasticsearch upgrade plans, read from the reference
copies beside the repository (``../shared/reference/tracardi-plans``, or
TRACARDI_PLANS_DIR); the tests that need them skip, saying so, when they are absent."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

PLANS_DIR = Path(os.environ.get(
    "TRACARDI_PLANS_DIR",
    Path(__file__).resolve().parents[3] / "shared" / "reference" / "tracardi-plans"))


@dataclass(frozen=True)
class PlanScript:
    """One step's painless script: ``plan`` is the file's stem, ``step`` its place among
    the plan's entries (comments included), ``index`` the index it copies from."""

    plan: str
    step: int
    index: str
    source: str


def plan_scripts() -> list[PlanScript]:
    """Every painless script of every plan, in file and step order; skips without them."""
    files = sorted(PLANS_DIR.glob("*.json")) if PLANS_DIR.is_dir() else []
    if not files:
        pytest.skip(f"Tracardi's upgrade plans are not in {PLANS_DIR} (set TRACARDI_PLANS_DIR)")
    found: list[PlanScript] = []
    for path in files:
        for step, entry in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            copy = entry.get("copy_index") if isinstance(entry, dict) else None
            if isinstance(copy, dict) and copy.get("script"):
                found.append(PlanScript(path.stem, step, str(copy.get("from_index")),
                                        copy["script"]))
    return found


def plan_script(plan: str, index: str) -> str:
    """The script of ``plan``'s step copying ``index``; fails when there is not exactly one."""
    sources = [each.source for each in plan_scripts() if each.plan == plan and each.index == index]
    assert len(sources) == 1, f"{plan}: {len(sources)} painless steps copy {index}, not 1"
    return sources[0]
