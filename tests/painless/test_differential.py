"""Every painless script of Tracardi's ten upgrade plans, run by the interpreter and by a
real painless node on the same documents: hand-written ones for the index each step
copies (every touched path present, missing, null, empty, of the wrong kind) and
generated ones; they must leave the same document, or both fail with the same exception.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.painless.differential import check_agrees
from tests.painless.documents import documents
from tests.painless.oracle import PainlessNode
from tests.painless.plan_documents import SHAPES, hand_written
from tests.painless.plans import PLANS_DIR, PlanScript, plan_scripts

# each example is a batch of documents sent to the node in one round trip
EXAMPLES_PER_SCRIPT, DOCUMENTS_PER_EXAMPLE = 4, 15


def _unique_scripts() -> list[PlanScript]:
    """The plans' scripts, each (source, index) once: several steps repeat a script."""
    if not PLANS_DIR.is_dir():
        return []
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in plan_scripts():
        if (script.source, script.index) not in seen:
            seen.add((script.source, script.index))
            unique.append(script)
    return unique


SCRIPTS = _unique_scripts()
SCRIPT_IDS = [f"{script.plan}-{script.step}-{script.index}" for script in SCRIPTS]


def _shape_of(script: PlanScript) -> str:
    return script.index.removeprefix("tracardi-")


def test_every_plan_script_is_compared() -> None:
    every = plan_scripts()
    assert len(every) == 42, f"Tracardi's plans hold {len(every)} painless steps, not 42"
    assert {(each.source, each.index) for each in every} == {
        (each.source, each.index) for each in SCRIPTS}
    assert {_shape_of(each) for each in SCRIPTS} <= set(SHAPES)


@pytest.mark.parametrize("script", SCRIPTS, ids=SCRIPT_IDS)
def test_hand_written_documents(painless_node: PainlessNode, script: PlanScript) -> None:
    labelled = hand_written(_shape_of(script))
    check_agrees(painless_node, script.source, [document for _, document in labelled],
                 labels=[label for label, _ in labelled])


@pytest.mark.parametrize("script", SCRIPTS, ids=SCRIPT_IDS)
# no shrinking: every example is a round trip to the node, and the hand-written
# documents are the small ones
@settings(max_examples=EXAMPLES_PER_SCRIPT, derandomize=True, deadline=None,
          phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_generated_documents(painless_node: PainlessNode, script: PlanScript,
                             data: st.DataObject) -> None:
    batch: list[dict[str, Any]] = data.draw(st.lists(
        documents(SHAPES[_shape_of(script)]), min_size=DOCUMENTS_PER_EXAMPLE,
        max_size=DOCUMENTS_PER_EXAMPLE), label="documents")
    check_agrees(painless_node, script.source, batch)
