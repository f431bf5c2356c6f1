"""The eight Tracardi 0.8.2 painless scripts the daemon translates to declarative
transforms (``known_painless``), checked against a real painless: on the same document
the node's result and the transforms' result are the same, or both fail.

Four scripts are in Tracardi's shipped plans; the other four are earlier revisions of
them, rebuilt here from the shipped ones by the change that tells them apart, and each
checked to be the one the daemon recognises under that name.

Six of the eight translations disagree with painless (DISAGREES says how); their tests
are strict xfails, so they fail the day the translation agrees (or is replaced by the
interpreter) and this file must be updated with it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.painless.documents import ENTITY, EVENT, EVENT_RESHAPING, PROFILE, Shape, documents
from tests.painless.oracle import Failure, PainlessNode
from tests.painless.plans import plan_script
from tracardi_daemon.roles.upgrade.migration.transforms import (
    TransformError,
    apply_all,
    known_painless,
    translate_painless,
)

PLAN = "08x_to_0820"
GUARD = "ctx._source.data!=null && "
ENTITY_BODY = 'row.remove("timestamp");'
EC_REMOVES = "\n".join(f'row.data.ec.order.{part}.remove("{key}");' for part, key in (
    ("cost", "other"), ("income", "revenue"), ("cost", "discount"), ("cost", "tax"),
    ("cost", "shipping")))


def _unguarded(index: str) -> str:
    source = plan_script(PLAN, index)
    assert GUARD in source, f"{PLAN}'s {index} script no longer holds {GUARD!r}"
    return source.replace(GUARD, "")


def _entity_with(body: str) -> str:
    source = plan_script(PLAN, "tracardi-entity")
    assert ENTITY_BODY in source
    return source.replace(ENTITY_BODY, body)


# description (as known_painless names it) -> how to get its script, and its documents' shape
SCRIPTS: dict[str, tuple[Callable[[], str], Shape]] = {
    "entity: drop timestamp": (lambda: plan_script(PLAN, "tracardi-entity"), ENTITY),
    "event-reshaping: drop mapping":
        (lambda: plan_script(PLAN, "tracardi-event-reshaping"), EVENT_RESHAPING),
    "profile 0.8.2 (early): data.anonymous = null":
        (lambda: _entity_with("row.data.anonymous = null;"), PROFILE),
    "profile 0.8.2: contact, pii.name, devices.names":
        (lambda: plan_script(PLAN, "tracardi-profile"), PROFILE),
    "profile 0.8.2 (unguarded): contact, pii.name, devices.names":
        (lambda: _unguarded("tracardi-profile"), PROFILE),
    "event 0.8.2: contact, ec.order fields": (lambda: plan_script(PLAN, "tracardi-event"), EVENT),
    "event 0.8.2 (unguarded): contact, ec.order fields":
        (lambda: _unguarded("tracardi-event"), EVENT),
    "event 0.8.2 (early): ec.order fields": (lambda: _entity_with(EC_REMOVES), EVENT),
}


def script_of(description: str) -> str:
    """The script, checked to be the one the daemon translates under ``description``."""
    source = SCRIPTS[description][0]()
    assert translate_painless(source) == known_painless()[description], (
        f"the script built for {description!r} is not translated as that entry")
    return source


def by_transforms(description: str, document: dict[str, Any]) -> dict[str, Any] | None:
    """The transforms' result, or None when they refuse the document."""
    try:
        return apply_all(document, known_painless()[description])
    except TransformError:
        return None


def _shown(result: dict[str, Any] | Failure) -> str:
    return str(result) if isinstance(result, Failure) else json.dumps(result, sort_keys=True)


def check_agrees(node: PainlessNode, description: str, document: dict[str, Any]) -> None:
    source = script_of(description)
    painless = node.apply(source, document)
    ours = by_transforms(description, document)
    if isinstance(painless, Failure) and ours is None:
        return  # both fail
    assert painless == ours, (
        f"the translation of {description!r} disagrees with painless\n"
        f"document:   {json.dumps(document, sort_keys=True)}\n"
        f"painless:   {_shown(painless)}\n"
        f"transforms: {'refused' if ours is None else json.dumps(ours, sort_keys=True)}")


def test_every_known_script_is_checked() -> None:
    assert set(SCRIPTS) == set(known_painless())


HAND_WRITTEN: dict[str, list[dict[str, Any]]] = {
    "entity": [
        {"id": "e1", "timestamp": "2023-01-01T00:00:00", "type": "car", "properties": {"a": 1}},
        {"id": "e2", "type": "car"},
        {"id": "e3", "timestamp": None, "properties": []},
        {"id": "e4", "timestamp": ""},
    ],
    "event-reshaping": [
        {"id": "r1", "name": "n", "mapping": {"a": "b"}, "reshaping": {"x": 1}},
        {"id": "r2", "mapping": None},
        {"id": "r3", "reshaping": None},
        {"id": "r4", "mapping": [], "name": ""},
    ],
    "profile": [
        {"id": "p1", "data": {"anonymous": True,
                              "pii": {"name": "Ann", "surname": "Lee"},
                              "contact": {"email": "ann@example.com", "phone": "+48 1"},
                              "devices": {"names": ["phone", "laptop"]}}},
        {"id": "p2", "data": {"pii": {}, "contact": {}, "devices": {}}},
        {"id": "p3", "data": {"pii": {"name": None}, "contact": {"email": None, "phone": ""},
                              "devices": {"names": None}}},
        {"id": "p4", "data": {"pii": {"name": ""}, "contact": {"email": ""},
                              "devices": {"names": []}}},
        {"id": "p5", "data": {"pii": {"name": "Bo"}, "devices": {"names": ["x"]}}},
        {"id": "p6", "data": None},
        {"id": "p7"},
        {"id": "p8", "data": {"contact": None, "pii": None, "devices": None}},
    ],
    "event": [
        {"id": "v1", "type": "purchase",
         "data": {"contact": {"email": "a@example.com", "phone": "1"},
                  "ec": {"order": {"cost": {"other": 1, "discount": 2, "tax": 3,
                                            "shipping": 4, "total": 10},
                                   "income": {"revenue": 5, "value": 6}}}}},
        {"id": "v2", "data": {"contact": {}, "ec": {"order": {"cost": {}, "income": {}}}}},
        {"id": "v3", "data": {"contact": {"email": None},
                              "ec": {"order": {"cost": None, "income": {"revenue": None}}}}},
        {"id": "v4", "data": {}},
        {"id": "v5", "data": None},
        {"id": "v6", "type": "page-view"},
    ],
}
KIND = {"entity: drop timestamp": "entity", "event-reshaping: drop mapping": "event-reshaping"}


def _kind(description: str) -> str:
    return KIND.get(description, description.split(maxsplit=1)[0])


_CONTACT = ("painless replaces data.contact.email and .phone by maps ({'main': value ?: ''} "
            "when data.contact was set, else {}, making data.contact); the transforms move "
            "only a present value (null becomes {'main': null}, a missing one adds nothing)")
_PROFILE = (_CONTACT + "; painless drops a null pii.name without writing display_name, the "
            "transforms write display_name null; painless fails (null_pointer_exception) where "
            "data, data.pii or data.devices is null or missing, the transforms do not")
_UNGUARDED = "; without the guard painless also fails where data is null or missing"
# description -> why its translation disagrees, and the hand-written documents it shows on
DISAGREES: dict[str, tuple[str, set[str]]] = {
    "profile 0.8.2 (early): data.anonymous = null":
        ("painless fails (null_pointer_exception) where data is null or missing; the "
         "transforms make data", {"p6", "p7"}),
    "profile 0.8.2: contact, pii.name, devices.names":
        (_PROFILE, {"p2", "p3", "p4", "p5", "p6", "p7", "p8"}),
    "profile 0.8.2 (unguarded): contact, pii.name, devices.names":
        (_PROFILE + _UNGUARDED, {"p2", "p3", "p4", "p5", "p6", "p7", "p8"}),
    "event 0.8.2: contact, ec.order fields": (_CONTACT, {"v2", "v3", "v4", "v5", "v6"}),
    "event 0.8.2 (unguarded): contact, ec.order fields":
        (_CONTACT + _UNGUARDED, {"v2", "v3", "v4", "v5", "v6"}),
    "event 0.8.2 (early): ec.order fields":
        ("painless fails (null_pointer_exception) where data.ec.order.cost or .income is "
         "null or missing (its removes are outside try); the transforms do not",
         {"v3", "v4", "v5", "v6"}),
}


def _disagrees(description: str, document_id: str | None = None) -> list[pytest.MarkDecorator]:
    reason, documents_shown = DISAGREES.get(description, ("", set()))
    if not reason or (document_id is not None and document_id not in documents_shown):
        return []
    return [pytest.mark.xfail(strict=True, reason=f"{description}: {reason}")]


@pytest.mark.parametrize(("description", "document"), [
    pytest.param(description, document, id=f"{description.split(':')[0]}-{document['id']}",
                 marks=_disagrees(description, document["id"]))
    for description in SCRIPTS for document in HAND_WRITTEN[_kind(description)]])
def test_hand_written_document(painless_node: PainlessNode, description: str,
                               document: dict[str, Any]) -> None:
    check_agrees(painless_node, description, document)


@pytest.mark.parametrize("description", [
    pytest.param(description, marks=_disagrees(description)) for description in SCRIPTS])
# no shrinking: every example is a round trip to the node, and the hand-written documents
# above are the small ones
@settings(max_examples=60, derandomize=True, deadline=None,
          phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_generated_document(painless_node: PainlessNode, description: str,
                            data: st.DataObject) -> None:
    document = data.draw(documents(SCRIPTS[description][1]), label="document")
    check_agrees(painless_node, description, document)
