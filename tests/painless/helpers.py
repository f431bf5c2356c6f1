"""Running a script on one document, for the painless tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tracardi_daemon.painless import ScriptFailed, compile_script

PLANS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "tracardi-plans"


def run(source: str, document: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    """The ctx after the script ran on ``document`` (its _source)."""
    ctx: dict[str, Any] = {"_source": document if document is not None else {}, "_id": "1",
                           "_index": "test", "op": "index"}
    compile_script(source, params=params or None).run(ctx)
    return ctx


def source_after(source: str, document: dict[str, Any] | None = None,
                 **params: Any) -> Any:
    return run(source, document, **params)["_source"]


def value_of(expression: str, **params: Any) -> Any:
    """The value of an expression, as the script stores it in ctx._source.v."""
    return source_after(f"ctx._source.v = {expression};", {}, **params)["v"]


def failure(source: str, document: dict[str, Any] | None = None) -> ScriptFailed:
    with pytest.raises(ScriptFailed) as caught:
        run(source, document)
    return caught.value


def plan_scripts() -> list[tuple[str, int, str]]:
    """(plan file, step number, script) of every painless step of Tracardi's plans;
    skips the test when the plans are not here."""
    if not PLANS.is_dir():
        pytest.skip(f"Tracardi's plans are not in {PLANS.name}/ beside the project")
    found = []
    for path in sorted(PLANS.glob("*.json")):
        for number, step in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            if isinstance(step, dict) and (step.get("copy_index") or {}).get("script"):
                found.append((path.name, number, step["copy_index"]["script"]))
    return found
