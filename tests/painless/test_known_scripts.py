"""The eight 0.8.2 scripts the migration once translated to declarative transforms,
interpreted: where those transforms were more lenient than painless, painless's own
answer is pinned."""

from __future__ import annotations

from typing import Any

from tests.painless.helpers import failure, run
from tests.painless.known_scripts import SCRIPTS

Doc = dict[str, Any]


def _profile(**data: Any) -> Doc:
    base: Doc = {"contact": {"email": "ann@example.com", "phone": "+48 1"},
                 "pii": {"name": "Ann", "firstname": "Ann"},
                 "devices": {"names": ["phone"]}, "anonymous": True}
    base.update(data)
    return {"id": "p1", "metadata": {"time": {"insert": "2023-01-01T00:00:00"}},
            "traits": {"a": 1}, "data": base}


def _event(**data: Any) -> Doc:
    base: Doc = {"contact": {"email": "e@example.com", "phone": "7"},
                 "ec": {"order": {"cost": {"other": 1, "tax": 2, "shipping": 3,
                                           "discount": 4, "total": 10},
                                  "income": {"revenue": 5, "value": 6}}}}
    base.update(data)
    return {"id": "e1", "type": "page-view", "profile": {"id": "p1"}, "data": base}


SESSION: Doc = {"id": "s1", "timestamp": 1, "metadata": {"time": {"insert": "x"}},
                "context": {"browser": None}, "profile": None}
USER: Doc = {"id": "u1", "email": "admin@example.com", "roles": ["admin"], "mapping": None,
             "timestamp": None, "data": {"x": None}}
RESHAPING: Doc = {"id": "r1", "mapping": {"a": "b"}, "event_type": "page-view"}
PROFILE_0820 = "profile 0.8.2: contact, pii.name, devices.names"
EVENT_0820 = "event 0.8.2: contact, ec.order fields"


def test_painless_fails_a_profile_without_pii_or_devices_where_transforms_pass() -> None:
    for data in (None, {"contact": {"email": "a"}}, {"pii": {"name": "x"}}):
        failed = failure(SCRIPTS[PROFILE_0820], {"id": "p", "data": data})
        assert failed.exception == "NullPointerException"
    early = failure(SCRIPTS["profile 0.8.2 (early): data.anonymous = null"], {"id": "p"})
    assert (early.exception, early.line) == ("NullPointerException", 3)


def test_painless_writes_empty_contact_maps_where_transforms_leave_them_out() -> None:
    # the transforms move only what exists; painless sets email/phone to maps always and
    # turns a null or missing e-mail into "" (the ?: ""), and copies a null name not at all
    document = _profile(contact={"email": None}, pii={"name": None}, devices={})
    data = run(SCRIPTS[PROFILE_0820], document)["_source"]["data"]
    assert data["contact"] == {"email": {"main": ""}, "phone": {"main": ""}}
    assert data["pii"] == {} and data["devices"] == {"other": None}
    no_data = run(SCRIPTS[EVENT_0820], {"id": "e"})["_source"]
    assert no_data == {"id": "e", "data": {"contact": {"email": {}, "phone": {}}}}


def test_the_early_event_script_fails_an_event_without_ec_order() -> None:
    failed = failure(SCRIPTS["event 0.8.2 (early): ec.order fields"], _event(ec=None))
    assert failed.exception == "NullPointerException"
