"""A Tracardi 0.8.0 installation's documents, a few per index that ``080_to_08x`` copies:
shaped as 0.8.0 stored them where a script of that plan or of ``08x_to_0820`` reads them
(profile ``pii`` at the top, rule ``event.type``, event_to_profile ``event_type`` a
string, event-management ``index_enabled``, session ``context.browser.local``), with
nulls, missing maps and wrong kinds of values a script handles or throws on; the others
as the 0.8.1 models dump them (documents.py) or small records of their own.

Keys are Tracardi's logical index names; partitioned ones hold (partition suffix,
document) pairs, single ones documents.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.tracardi_layouts import documents as docs

Document = dict[str, Any]

# months of 2024: both fall in the first quarter, so 08x_to_0820 collapses them into one
PARTITIONS = ("2024-1", "2024-2")


def _profile(profile_id: str, pii: Any = None, *, drop_pii: bool = False) -> Document:
    document = docs.profile_document("08x", profile_id)
    del document["data"]  # 0.8.0 had no data: pii sat at the top
    if not drop_pii:
        document["pii"] = pii
    return document


def profiles() -> list[tuple[str, Document]]:
    full = {"name": "Ada", "surname": "Lovelace", "email": "ada@example.com",
            "facebook": "ada.fb", "twitter": "@ada", "whatsapp": "+44 1"}
    return [
        (PARTITIONS[0], _profile("p-full", full)),
        (PARTITIONS[0], _profile("p-some", {"name": "Bo", "email": None})),
        (PARTITIONS[1], _profile("p-empty", {})),
        # ctx._source.pii.name on a null pii: NullPointerException in 080_to_08x
        (PARTITIONS[1], _profile("p-null-pii", None)),
        (PARTITIONS[1], _profile("p-no-pii", drop_pii=True)),
        # copied by 080_to_08x; 08x_to_0820's String x = <a list> throws
        (PARTITIONS[0], _profile("p-two-emails", {"name": "Cy", "email": ["c@x.io", "d@x.io"]})),
    ]


def _event(event_id: str, data: Any = None, *, drop_data: bool = False) -> Document:
    document = docs.event_document("08x", event_id, profile_id="p-full", session_id="s-1")
    if not drop_data:
        document["data"] = data
    return document


def events() -> list[tuple[str, Document]]:
    order = {"cost": {"other": 1.5, "discount": 2, "tax": 3.25, "shipping": 4},
             "income": {"revenue": 5, "value": 6.5}, "id": "o-1"}
    return [
        (PARTITIONS[0], _event("ev-full", {"contact": {"email": "ada@example.com",
                                                       "phone": "+44 1"}, "ec": {"order": order}})),
        (PARTITIONS[0], _event("ev-no-data", drop_data=True)),
        (PARTITIONS[1], _event("ev-null-contact", {"contact": None})),
        (PARTITIONS[1], _event("ev-no-ec", {"contact": {"phone": "+1"}})),
        # 08x_to_0820's String x = <a list> throws
        (PARTITIONS[1], _event("ev-two-emails", {"contact": {"email": ["a@x.io", "b@x.io"]}})),
    ]


def _session(session_id: str, context: Document) -> Document:
    document = docs.session_document("08x", session_id, profile_id="p-full")
    document["context"] = context
    return document


def sessions() -> list[tuple[str, Document]]:
    local = {"browser": {"name": "Firefox"}, "device": {"platform": "Linux"}}
    return [
        (PARTITIONS[0], _session("s-full", {"browser": {"local": local}})),
        (PARTITIONS[0], _session("s-no-browser", {"page": {"url": "https://example.com"}})),
        (PARTITIONS[1], _session("s-no-platform", {"browser": {"local": {
            "browser": {"name": "Chrome"}, "device": {}}}})),
        (PARTITIONS[1], _session("s-empty", {})),
    ]


def _rule(rule_id: str, event: Any = None, *, drop_event: bool = False) -> Document:
    document = docs.segment_add_rule_document(rule_id, segment_id="seg-1", segment_name="Gold",
                                              flow_id="f-1", flow_name="Flow")
    del document["event_type"]  # 0.8.0 named the event type under event.type
    if not drop_event:
        document["event"] = event
    return document


def rules() -> list[Document]:
    return [_rule("r-1", {"type": "segment-added"}), _rule("r-null-type", {"type": None}),
            # ctx._source.event.type on a missing event: NullPointerException
            _rule("r-no-event", drop_event=True)]


def event_to_profiles() -> list[Document]:
    found = []
    for mapping_id, event_type in (("etp-1", "purchase"), ("etp-none", None)):
        document = docs.event_to_profile_document(mapping_id, "x", [
            ("properties.email", 0, "data.contact.email")])
        document["event_type"] = event_type  # a string in 0.8.0
        found.append(document)
    return found


def event_managements() -> list[Document]:
    found = []
    for event_type, index_enabled in (("page-view", True), ("purchase", False),
                                      ("no-flag", None)):
        document = docs.event_management_document(event_type)
        del document["enabled"]
        if index_enabled is not None:
            document["index_enabled"] = index_enabled
        found.append(document)
    return found


def _plain(index: str) -> list[Document]:
    """Two records for an index no script reads: copied as they are."""
    name = index.removeprefix("tracardi-")
    return [{"id": f"{name}-1", "name": f"{name} one", "enabled": True,
             "timestamp": "2024-03-05T10:00:00", "tags": ["a", "b"], "config": {"n": 1}},
            {"id": f"{name}-2", "name": None, "enabled": False, "tags": [],
             "config": {"nested": {"x": None}}}]


def _definitions() -> dict[str, list[Document]]:
    return {
        "tracardi-rule": rules(),
        "tracardi-event_to_profile": event_to_profiles(),
        "tracardi-event-management": event_managements(),
        "tracardi-segment": [docs.segment_document("Gold", "profile@stats.visits > 1")],
        "tracardi-live-segment": [docs.live_segment_document(
            "ls-1", workflow_id="f-1", workflow_name="Flow")],
        "tracardi-import": [docs.import_document("imp-1", config={"a": 1}, module="m.csv")],
        "tracardi-resource": [docs.resource_document(
            "res-1", name="Mail", resource_type="smtp", test={"h": "t"}, production={"h": "p"})],
        "tracardi-task": [docs.task_document("task-1", name="Import")],
        # 08x_to_0820 removes entity timestamp and event-reshaping mapping
        "tracardi-entity": [{"id": "en-1", "type": "car", "timestamp": "2024-03-05T10:00:00",
                             "properties": {"color": "red"}, "profile": {"id": "p-full"}},
                            {"id": "en-2", "type": "car", "properties": {}}],
        "tracardi-event-reshaping": [
            {"id": "rs-1", "name": "Reshape", "mapping": {"profile": "data.id"},
             "reshaping": {"template": {"a": 1}}, "enabled": True},
            {"id": "rs-2", "name": "Bare", "mapping": None, "enabled": False}],
    }


PARTITIONED = {"tracardi-profile": profiles, "tracardi-event": events,
               "tracardi-session": sessions}


def installation(indices: list[tuple[str, bool]]) -> dict[str, list[tuple[str | None, Document]]]:
    """For each (logical index, partitioned) a plan copies: (partition suffix or None,
    document) pairs, fresh copies; an index neither here nor above gets plain records."""
    definitions = _definitions()
    found: dict[str, list[tuple[str | None, Document]]] = {}
    for index, multi in indices:
        if index in PARTITIONED:
            pairs: list[tuple[str | None, Document]] = list(PARTITIONED[index]())
        elif multi:  # log, user-log: partitioned, read by no script
            pairs = [(PARTITIONS[number % 2], document)
                     for number, document in enumerate(_plain(index))]
        else:
            pairs = [(None, document) for document in definitions.get(index, _plain(index))]
        found[index] = [(suffix, copy.deepcopy(document)) for suffix, document in pairs]
    return found
