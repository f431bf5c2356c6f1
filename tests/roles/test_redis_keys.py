"""The roles' and the task records' Redis keys keep their spelling: running
installations hold these keys, so a changed spelling would lose their state."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.dispatch import flow_done_key
from tracardi_daemon.model.tasks.record import active_indexed_key, active_key, task_key
from tracardi_daemon.roles.mapping.keys import live_applied_key, live_state_key
from tracardi_daemon.roles.segmentation.keys import (
    follow_seen_key,
    follow_state_key,
    intent_field,
    intent_key,
    pass_marker_key,
)
from tracardi_daemon.roles.upgrade.keys import done_key, failures_key, written_key


def test_every_role_key_is_spelt_as_installations_hold_it() -> None:
    assert pass_marker_key("acme", "live-segment:busy") == \
        "acme:segmentation:pass:live-segment:busy"
    assert intent_key("acme") == "{acme:q:segment-changes}:intent"
    assert intent_field("p1", "tok") == "p1:tok"
    assert follow_state_key("acme") == "acme:segmentation:follow"
    assert follow_seen_key("acme") == "acme:segmentation:follow:seen"
    assert live_state_key("acme") == "acme:mapping:live"
    assert live_applied_key("acme") == "acme:mapping:live:applied"
    assert done_key("acme", "0123abcd") == "acme:migration:done:0123abcd"
    assert written_key("acme", "def-1") == "acme:import:written:def-1"
    assert failures_key("acme", "t1") == "acme:import:failures:t1"
    assert task_key("acme", "t1") == "acme:task:t1"
    assert active_key("acme") == "acme:tasks:active"
    assert active_indexed_key("acme") == "acme:tasks:active:indexed"
    assert flow_done_key("acme", "0123abcd") == "acme:flow-done:0123abcd"


@pytest.mark.parametrize("build", [lambda t: pass_marker_key(t, "segment:s"), live_state_key,
                                   lambda t: done_key(t, "k"), active_key,
                                   lambda t: flow_done_key(t, "k")])
def test_a_tenant_that_would_break_a_key_is_refused_by_name(build: Callable[[str], str]) -> None:
    with pytest.raises(InvalidInput, match="tenant 'a b'"):
        build("a b")
